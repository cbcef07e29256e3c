"""The CLI's progress lines from Dagster's events (orchestration.runner.Progress), on the event types Dagster
actually emits: a run that fails outside any step says so, and the run's terminal event releases the caller that
waits for the last lines (a persistent instance delivers events from a watcher thread, after the run returned)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import dagster as dg

from orchestration.runner import Progress


def _entry(kind: dg.DagsterEventType, step: str | None = None, data=None) -> SimpleNamespace:
    event = SimpleNamespace(event_type_value=kind.value, step_key=step, event_specific_data=data)
    return SimpleNamespace(dagster_event=event, timestamp=time.time())


def test_a_run_that_fails_outside_a_step_says_so_and_ends_the_wait() -> None:
    lines: list[str] = []
    progress = Progress(lines.append)
    error = SimpleNamespace(error=SimpleNamespace(message="resource 'duckdb' could not start\n"))
    progress(_entry(dg.DagsterEventType.RUN_FAILURE, data=error))
    assert lines == ["run failed:\n    resource 'duckdb' could not start"]
    assert progress.finished.is_set()


def test_the_last_step_line_arrives_before_the_wait_ends() -> None:
    lines: list[str] = []
    progress = Progress(lines.append)
    progress(_entry(dg.DagsterEventType.STEP_START, "landing"))

    def late_events() -> None:  # the watcher thread, behind the run
        time.sleep(0.3)
        progress(_entry(dg.DagsterEventType.STEP_SUCCESS, "landing"))
        progress(_entry(dg.DagsterEventType.RUN_SUCCESS))

    threading.Thread(target=late_events).start()
    assert progress.finished.wait(5.0)
    assert lines[0] == "start landing" and lines[1].startswith("done  landing in ")
    assert progress.steps["landing"].status == "ok"


def test_a_step_line_the_listener_could_not_echo_is_echoed_before_the_report_and_only_once() -> None:
    lines: list[str] = []
    failures = iter([OSError("stderr busy")])

    def flaky_echo(line: str) -> None:  # the first end line fails, the later ones go through
        if line.startswith("done  ") and (exc := next(failures, None)) is not None:
            raise exc
        lines.append(line)

    progress = Progress(flaky_echo)
    for step in ("landing", "dbt_build"):
        progress(_entry(dg.DagsterEventType.STEP_START, step))
        progress(_entry(dg.DagsterEventType.STEP_SUCCESS, step))
    progress(_entry(dg.DagsterEventType.RUN_SUCCESS))
    assert [line.split(" in ")[0] for line in lines] == ["start landing", "start dbt_build", "done  dbt_build"]
    progress.announce_ends()
    progress.announce_ends()
    assert [line.split(" in ")[0] for line in lines] == [
        "start landing", "start dbt_build", "done  dbt_build", "done  landing"]
    assert all(s.status == "ok" and s.announced for s in progress.steps.values())
