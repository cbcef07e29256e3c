"""Run the Dagster definitions in this process with readable progress: what ``stockturn run`` and ``demo`` do.

The run is recorded in the Dagster instance beside the warehouse (``orchestration.instance``), so it shows up in
``stockturn ui`` afterwards. Instead of Dagster's debug log, each step is reported as it starts and ends (with its
duration, the assets it materialized and its checks), failed checks and errors are spelled out, and a summary of
every materialized asset follows.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

log = logging.getLogger("stockturn.run")

PIPELINE_JOB = "stockturn_pipeline"
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
_HEARTBEAT_SECONDS = 15.0
KEEP_LOGS = 20
#: dbt's per-node result lines, e.g. "183 of 201 PASS not_null_fct_sales_daily_date_day .... [PASS in 0.08s]"
_DBT_RESULT = re.compile(r"^\s*(\d+) of (\d+) (OK|PASS|WARN|ERROR|FAIL|SKIP)\b(.*)$")


@dataclass
class StepProgress:
    key: str
    started: float
    ended: float | None = None
    status: str = "not run"  # until its STEP_START ("running"), e.g. downstream of a failed step
    materialized: int = 0
    rows: int = 0
    checks: Counter = field(default_factory=Counter)
    error: str = ""
    last_heartbeat: float = 0.0
    announced: bool = False  # its end line ("done", "FAILED", "skip") was echoed

    @property
    def seconds(self) -> float:
        return (self.ended or time.time()) - self.started


@dataclass
class RunReport:
    run_id: str
    success: bool
    seconds: float
    steps: list[StepProgress]
    materializations: dict[str, dict[str, Any]]  # asset key -> metadata (plain values)
    check_failures: list[str]
    dagster_home: Path | None
    log_file: Path | None = None

    def format(self, *, groups: Mapping[str, str] | None = None) -> str:
        lines = [f"Run {self.run_id[:8]} {'succeeded' if self.success else 'FAILED'} in {self.seconds:,.1f} s "
                 f"({len(self.materializations)} assets materialized)."]
        lines.append(f"  {'step':<28} {'status':<9} {'seconds':>8} {'assets':>7}  checks")
        for s in sorted(self.steps, key=lambda s: s.started):
            checks = ", ".join(f"{n} {k}" for k, n in sorted(s.checks.items())) or "-"
            seconds = f"{s.seconds:>8.1f}" if s.status != "not run" else f"{'-':>8}"
            lines.append(f"  {s.key:<28} {s.status:<9} {seconds} {s.materialized:>7}  {checks}")
        if groups and self.materializations:
            by_group: dict[str, list[str]] = {}
            for key in self.materializations:
                by_group.setdefault(groups.get(key) or "other", []).append(key)
            lines.append("Materialized, by group (rows):")
            for group, keys in sorted(by_group.items(), key=lambda kv: _GROUP_ORDER.get(kv[0], 99)):
                if group in _LIST_GROUPS:
                    shown = ", ".join(f"{k} {_rows(self.materializations[k])}" for k in sorted(keys))
                else:
                    total = sum(r for k in keys if isinstance(r := self.materializations[k].get("dagster/row_count"),
                                                             int))
                    shown = f"{total:,} rows in their tables"
                lines.append(f"  {group:<13} {len(keys):>3}: {shown}")
        if self.check_failures:
            lines.append(f"Checks that did not pass ({len(self.check_failures)}):")
            lines.extend(f"  - {c}" for c in self.check_failures)
        if self.log_file:
            lines.append(f"Step output (dbt's log lines): {self.log_file}")
        return "\n".join(lines)


_GROUP_ORDER = {"landing": 0, "staging": 1, "intermediate": 2, "marts": 3, "planning": 4, "reports": 5}
#: Groups whose assets are listed one by one in the summary (the others are counted).
_LIST_GROUPS = ("marts", "planning", "reports")


def _rows(metadata: Mapping[str, Any]) -> str:
    rows = metadata.get("dagster/row_count")
    return f"{rows:,}" if isinstance(rows, int) else "-"


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)


#: Dagster's run-level terminal events (their event_type_value: Dagster still spells them PIPELINE_*)
_RUN_FAILURE, _RUN_ENDS = "PIPELINE_FAILURE", ("PIPELINE_SUCCESS", "PIPELINE_FAILURE", "PIPELINE_CANCELED")
#: How long the caller waits, after the run returned, for the event listener to deliver the run's last events
RUN_EVENTS_WAIT_SECONDS = 60.0  # a busy machine delays the watcher thread (15 s was missed under load)


class Progress:
    """Turns the run's Dagster events into one line per step start/end (plus failures), via ``echo``.

    A persistent instance delivers events to the listener from its watcher thread, possibly after the run has
    returned: ``finished`` is set once the run's terminal event has been handled, so the caller can wait for the
    last step's line before it reports."""

    def __init__(self, echo: Callable[[str], None], *, verbose: bool = False) -> None:
        self.echo = echo
        self.verbose = verbose
        self.steps: dict[str, StepProgress] = {}
        self.materializations: dict[str, dict[str, Any]] = {}
        self.check_failures: list[str] = []
        self.finished = threading.Event()
        # a step's end line is echoed once, by the listener or by announce_ends (re-entrant: an echo may log)
        self._lock = threading.RLock()

    def __call__(self, entry) -> None:  # EventLogEntry
        try:
            with self._lock:
                self._handle(entry)
        except Exception as exc:  # progress must never break the run
            log.debug("progress: could not handle an event: %s", exc)
        finally:
            event = getattr(entry, "dagster_event", None)
            if event is not None and event.event_type_value in _RUN_ENDS:
                self.finished.set()

    def _step(self, key: str | None, ts: float) -> StepProgress | None:
        if key is None:
            return None
        if key not in self.steps:
            self.steps[key] = StepProgress(key, ts)
        return self.steps[key]

    def _handle(self, entry) -> None:
        event = entry.dagster_event
        if event is None:
            return
        kind = event.event_type_value
        ts = entry.timestamp
        step = self._step(event.step_key, ts)
        if kind == "STEP_START" and step:
            step.started = step.last_heartbeat = ts
            step.status = "running"
            self.echo(f"start {step.key}")
        elif kind == "ASSET_MATERIALIZATION" and step:
            step.materialized += 1
            mat = event.event_specific_data.materialization
            key = mat.asset_key.to_user_string()
            self.materializations[key] = {k: _plain(v) for k, v in mat.metadata.items()}
            rows = self.materializations[key].get("dagster/row_count")
            step.rows += rows if isinstance(rows, int) else 0
            if self.verbose:
                self.echo(f"  materialized {key} ({_rows(self.materializations[key])} rows)")
            self._heartbeat(step, ts)
        elif kind == "ASSET_CHECK_EVALUATION" and step:
            ev = event.event_specific_data
            status = "passed" if ev.passed else ("warned" if ev.severity.value == "WARN" else "failed")
            step.checks[status] += 1
            if not ev.passed:
                desc = (ev.description or "").strip().splitlines()[0:1]
                line = f"{ev.asset_key.to_user_string()}: {ev.check_name} ({status})" + (f": {desc[0]}" if desc else "")
                self.check_failures.append(line)
                self.echo(f"  check {line}")
            self._heartbeat(step, ts)
        elif kind == "STEP_SUCCESS" and step:
            step.ended, step.status = ts, "ok"
            self._announce_end(step)
        elif kind == "STEP_FAILURE" and step:
            step.ended, step.status = ts, "failed"
            err = event.event_specific_data.error
            step.error = (err.message if err else "").strip()
            self._announce_end(step)
        elif kind == "STEP_SKIPPED" and step:
            step.ended, step.status = ts, "skipped"
            self._announce_end(step)
        elif kind == _RUN_FAILURE:
            err = getattr(event.event_specific_data, "error", None)
            if err is not None and not any(s.status == "failed" for s in self.steps.values()):
                self.echo(f"run failed:\n{_indent(err.message.strip())}")

    def _announce_end(self, step: StepProgress) -> None:
        if step.status == "ok":
            self.echo(f"done  {step.key} in {step.seconds:,.1f} s: {self._counts(step)}")
        elif step.status == "failed":
            self.echo(f"FAILED {step.key} after {step.seconds:,.1f} s: {self._counts(step)}\n{_indent(step.error)}")
        elif step.status == "skipped":
            self.echo(f"skip  {step.key} (an upstream step failed)")
        step.announced = True

    def announce_ends(self) -> None:
        """Echo the end line of every ended step whose line the listener has not echoed yet. The caller's last
        word before it reports: a step's line was once missing from a CI log although the step was recorded as
        done (tests/test_orchestration_run.py), so the report never relies on the listener's timing alone."""
        with self._lock:
            for step in self.steps.values():
                if step.ended is not None and not step.announced:
                    try:
                        self._announce_end(step)
                    except Exception as exc:  # progress must never break the report
                        log.debug("progress: could not echo the end of %s: %s", step.key, exc)

    def running_step(self) -> StepProgress | None:
        running = [s for s in self.steps.values() if s.status == "running"]
        return max(running, key=lambda s: s.started) if running else None

    def dbt_line(self, line: str) -> None:
        """A line of dbt's output: report errors at once, and how far dbt is every few seconds."""
        match = _DBT_RESULT.match(line)
        if not match:
            return
        done, total, status, rest = int(match[1]), int(match[2]), match[3], match[4]
        step = self.running_step()
        if status in ("ERROR", "FAIL"):
            self.echo(f"  dbt {status}: {' '.join(rest.split('[')[0].split())[:160]}")
        if step is not None:
            now = time.time()
            if now - step.last_heartbeat >= _HEARTBEAT_SECONDS or done == total:
                step.last_heartbeat = now
                self.echo(f"  ... {step.key}: dbt {done} of {total} nodes done ({step.seconds:,.0f} s)")

    def _heartbeat(self, step: StepProgress, ts: float) -> None:
        if not self.verbose and ts - step.last_heartbeat >= _HEARTBEAT_SECONDS:
            step.last_heartbeat = ts
            self.echo(f"  ... {step.key}: {self._counts(step)} so far ({step.seconds:,.0f} s)")

    @staticmethod
    def _counts(step: StepProgress) -> str:
        checks = ", ".join(f"{n} {k}" for k, n in sorted(step.checks.items()))
        rows = f" ({step.rows:,} rows)" if step.rows else ""
        return f"{step.materialized} assets{rows}" + (f", checks {checks}" if checks else "")


class _StepOutput(io.TextIOBase):
    """``sys.stdout`` during the run: step output (dbt's log lines) goes to a file, dbt results feed the progress."""

    def __init__(self, sink, progress: Progress) -> None:
        self.sink = sink
        self.progress = progress
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.sink.write(text)
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self.progress.dbt_line(line)
        return len(text)

    def flush(self) -> None:
        self.sink.flush()


class _QuietFilter(logging.Filter):
    """Keeps the console to stockturn's progress: Dagster's, dagster-dbt's, alembic's and the loader's per-file
    INFO lines are dropped (warnings and errors pass)."""

    NOISY = ("dagster", "alembic", "stockturn.ingest", "stockturn.warehouse")

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not record.name.startswith(self.NOISY)


@contextlib.contextmanager
def _quiet_console(enabled: bool):
    handlers = logging.getLogger().handlers if enabled else []
    flt = _QuietFilter()
    for handler in handlers:
        handler.addFilter(flt)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(flt)


def _indent(text: str, prefix: str = "    ") -> str:
    lines = text.splitlines() or [""]
    if len(lines) > 40:
        lines = [*lines[:40], f"... ({len(lines) - 40} more lines)"]
    return "\n".join(prefix + line for line in lines)


def _job_op_config(job: str) -> dict[str, dict[str, Any]]:
    """The op config a job defines for itself (the nightly job plans as of the latest day), by op."""
    from orchestration.defs import schedules

    jobs = {j.name: j for j in (schedules.pipeline_job, schedules.nightly_job, schedules.warehouse_job)}
    config = getattr(jobs.get(job), "config", None) or {}
    return {op: dict(v.get("config", {})) for op, v in (config.get("ops") or {}).items()}


def _planning_steps(job_def: Any, asset_selection: list | None) -> list[str]:
    """The planning steps (``demand_forecasting``, ``replenishment_policy``) the run includes: the run config
    names them, and a step left out of the run must be left out of the config too."""
    from orchestration.defs.planning import FORECAST_TABLES, ML_KEYS, POLICY_TABLES

    keys = set(asset_selection) if asset_selection else set(job_def.asset_layer.executable_asset_keys)
    steps = []
    if keys & {ML_KEYS[t] for t in FORECAST_TABLES}:
        steps.append("demand_forecasting")
    if keys & {ML_KEYS[t] for t in POLICY_TABLES}:
        steps.append("replenishment_policy")
    return steps


def run_pipeline(
    landing: Path,
    warehouse: Path,
    report_dir: Path | None = None,
    *,
    job: str = PIPELINE_JOB,
    selection: str | None = None,
    as_of: date | None = None,
    settings_file: Path | None = None,
    planning_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    dagster_home: Path | None = None,
    ephemeral: bool = False,
    verbose: bool = False,
    echo: Callable[[str], None] | None = None,
    definitions: Any = None,
    full_refresh: bool = False,
) -> tuple[RunReport, dict[str, str]]:
    """Materialize ``job`` (optionally only ``selection``, Dagster selection syntax) in this process.

    The run is recorded in ``dagster_home`` (default: ``.dagster_home`` beside the warehouse), or nowhere with
    ``ephemeral`` (an in-memory instance: no history for the UI, but no sqlite writes either, which cost about a
    tenth of a second per event on a slow disk). Returns the run report and the group of every asset key (for
    :meth:`RunReport.format`). ``definitions`` (tests) must have been built with the same paths.

    Planning settings (``ml.planning_settings``): ``settings_file`` (default: ``stockturn.toml`` beside the
    warehouse, read by the planning step) and ``planning_overrides`` (``{"forecast": {...}, "policy": {...}}``,
    e.g. from command-line flags, which win over the file) become the run config of the planning steps the run
    includes (``demand_forecasting``, ``replenishment_policy``). ``full_refresh`` makes the landing step read every
    file again (default: only new and changed ones) and dbt rebuild its incremental models from scratch.
    """
    import dagster as dg

    from orchestration.defs.resources import DEFAULT_REPORT_DIR, StockturnPaths
    from orchestration.instance import dagster_home_for, instance_for

    echo = echo or log.info
    warehouse = Path(warehouse).resolve()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    paths = StockturnPaths(
        landing_dir=str(Path(landing).resolve()),
        warehouse=str(warehouse),
        report_dir=str(Path(report_dir).resolve() if report_dir else DEFAULT_REPORT_DIR),
    )
    t0 = time.perf_counter()
    if definitions is None:
        from orchestration.definitions import build_definitions

        definitions = build_definitions(paths)
    job_def = definitions.resolve_job_def(job)
    asset_graph = definitions.resolve_asset_graph()
    groups = {k.to_user_string(): asset_graph.get(k).group_name for k in asset_graph.get_all_asset_keys()}
    asset_selection = None
    if selection:
        with warnings.catch_warnings():  # parts of the selection syntax are marked beta
            warnings.simplefilter("ignore", dg.BetaWarning)
            matched = sorted(dg.AssetSelection.from_string(selection).resolve(asset_graph))
        if not matched:
            raise ValueError(f"the selection {selection!r} matches no asset")
        in_job = set(job_def.asset_layer.executable_asset_keys)
        asset_selection = [key for key in matched if key in in_job]
        if not asset_selection:
            outside = ", ".join(k.to_user_string() for k in matched)
            raise ValueError(f"the selection {selection!r} matches only assets outside the job {job!r} ({outside})")
    run_config: dict[str, Any] = dict(QUIET_CONSOLE)
    planning_config: dict[str, Any] = {}
    if as_of is not None:
        planning_config["as_of_date"] = as_of.isoformat()
    if settings_file is not None:
        planning_config["settings_file"] = str(Path(settings_file).resolve())
    for section, values in (planning_overrides or {}).items():
        if values:
            planning_config[section] = dict(values)
    steps = _planning_steps(job_def, asset_selection) if planning_config else []
    if steps:
        run_config["ops"] = {step: {"config": planning_config} for step in steps}
    # a run's config replaces the job's own op config: carry what the job sets (the nightly job's policy date)
    included = set(_planning_steps(job_def, asset_selection))
    for step, values in _job_op_config(job).items():
        if step in included:
            ops = run_config.setdefault("ops", {})
            ops[step] = {"config": {**values, **ops.get(step, {}).get("config", {})}}
    if full_refresh and (asset_selection is None or any(k.path[0] == "raw" for k in asset_selection)):
        run_config.setdefault("ops", {})["landing"] = {"config": {"full_refresh": True}}
    selected = set(asset_selection) if asset_selection else set(job_def.asset_layer.executable_asset_keys)
    if full_refresh and any(k.path[0] in ("staging", "intermediate", "marts") for k in selected):
        run_config.setdefault("ops", {})["dbt_build"] = {"config": {"full_refresh": True}}

    home = Path(dagster_home) if dagster_home else dagster_home_for(warehouse)
    progress = Progress(echo, verbose=verbose)
    run_id = str(uuid.uuid4())
    log_file = home / "cli_logs" / f"{run_id[:8]}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    for old in sorted(log_file.parent.glob("*.log"), key=lambda p: p.stat().st_mtime)[:-KEEP_LOGS]:
        old.unlink(missing_ok=True)
    with (
        _quiet_console(not verbose),
        dg.DagsterInstance.ephemeral() if ephemeral else instance_for(home) as instance,
        open(log_file, "w", encoding="utf-8") as sink,
        contextlib.redirect_stdout(_StepOutput(sink, progress)),
    ):
        instance.add_event_listener(run_id, progress)
        n_assets = len(asset_selection) if asset_selection else len(job_def.asset_layer.executable_asset_keys)
        echo(f"run {run_id[:8]}: {n_assets} assets of job {job} -> {warehouse} "
             f"(Dagster home {'none, ephemeral' if ephemeral else home}; "
             f"definitions loaded in {time.perf_counter() - t0:,.1f} s)")
        result = job_def.execute_in_process(
            run_config=run_config,
            instance=instance,
            run_id=run_id,
            raise_on_error=False,
            asset_selection=asset_selection,
            tags={"stockturn/launched_by": "stockturn run"},
        )
        if not progress.finished.wait(RUN_EVENTS_WAIT_SECONDS):
            log.debug("progress: the run's last events did not arrive within %.0f s", RUN_EVENTS_WAIT_SECONDS)
        progress.announce_ends()
    report = RunReport(
        run_id=run_id,
        success=result.success,
        seconds=time.perf_counter() - t0,
        steps=list(progress.steps.values()),
        materializations=progress.materializations,
        check_failures=progress.check_failures,
        dagster_home=None if ephemeral else home,
        log_file=log_file,
    )
    return report, groups
