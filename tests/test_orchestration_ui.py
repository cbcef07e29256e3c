"""The real Dagster UI: `stockturn ui` (dagster dev) on a temporary instance, driven by headless Chromium.

The webserver, daemon and code server start on a free 127.0.0.1 port with a temporary DAGSTER_HOME (the
project's dagster.yaml: telemetry off, one warehouse run at a time) and the landing/warehouse/report paths of a
temporary warehouse. The browser opens the asset graph, dismisses the "Join the Dagster community" dialog, checks
that the groups and assets are shown (screenshots in ./artifacts/), clicks "Materialize all" and the run that the
UI launched is followed (GraphQL, as the UI itself does) until it succeeds; then the warehouse holds the marts, the
ml tables and the report. While that run is in progress, a second run of the warehouse job is launched and must
stay queued (one warehouse run at a time); it is then cancelled.

Marked ``browser``: skipped when Chromium or the playwright package is missing, except under CI=true where that
is a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import duckdb
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
STOCKTURN = str(Path(sys.executable).parent / "stockturn")
PLANNING_FILTER = quote('group:"planning"')
START_TIMEOUT = 240
RUN_TIMEOUT = 600


def _require_browser() -> str:
    chromium = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    problem = None
    if not chromium:
        problem = "chromium is not installed (make browser)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is not installed (pip install -e '.[dev]')"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test under CI: {problem}")
        pytest.skip(problem)
    return chromium


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DagsterUI:
    url: str
    warehouse: Path
    report_dir: Path
    log: Path

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = json.loads(response.read())
        if payload.get("errors"):
            raise AssertionError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


LOCATION_STATUS = """
query { workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
RUNS = """
query { runsOrError(limit: 10) { __typename ... on Runs { results { runId status jobName } } } }
"""
LAUNCH = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId status } } ... on PythonError { message } } }
"""
RUN_STATUS = """
query($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status } } }
"""
TERMINATE = """
mutation($runId: String!) { terminateRun(runId: $runId) { __typename } }
"""
RUN_FAILURES = """
query($runId: ID!) { logsForRun(runId: $runId) { __typename ... on EventConnection { events {
  __typename ... on ExecutionStepFailureEvent { stepKey error { message } } } } } }
"""


@pytest.fixture(scope="module")
def dagster_ui(small_landing: Path, tmp_path_factory: pytest.TempPathFactory):
    _require_browser()
    work = tmp_path_factory.mktemp("dagster_ui")
    # the instance on tmpfs when there is one: its sqlite event writes are several times faster than on disk here
    home = Path(tempfile.mkdtemp(prefix="stockturn-ui-home-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    port = _free_port()
    ui = DagsterUI(f"http://127.0.0.1:{port}", work / "warehouse.duckdb", work / "report", work / "dagster.log")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    env.pop("STOCKTURN_AUTOMATION", None)
    with open(ui.log, "w") as log:
        proc = subprocess.Popen(
            [STOCKTURN, "ui", "--port", str(port), "--landing", str(small_landing), "--warehouse", str(ui.warehouse),
             "--report-dir", str(ui.report_dir), "--dagster-home", str(home)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    try:
        deadline = time.time() + START_TIMEOUT
        while True:
            assert proc.poll() is None, f"stockturn ui exited ({proc.returncode}):\n{ui.tail()}"
            assert time.time() < deadline, f"the Dagster UI did not come up in {START_TIMEOUT} s:\n{ui.tail()}"
            try:
                with urllib.request.urlopen(f"{ui.url}/server_info", timeout=5) as response:
                    if response.status == 200:
                        entries = ui.graphql(LOCATION_STATUS)["workspaceOrError"]["locationEntries"]
                        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                            errors = [e["locationOrLoadError"] for e in entries
                                      if e["locationOrLoadError"]["__typename"] == "PythonError"]
                            assert not errors, f"the code location failed to load: {errors}"
                            break
            except OSError:
                pass
            time.sleep(2)
        yield ui
    finally:
        _stop(proc)
        shutil.rmtree(home, ignore_errors=True)


def _stop(proc: subprocess.Popen) -> None:
    """Ctrl-C to the process group we started (webserver, daemon, code server), then SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGINT, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        time.sleep(1)  # give the children a moment to follow the parent
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # children that outlived the parent


@pytest.fixture(scope="module")
def page(dagster_ui: DagsterUI):
    from playwright.sync_api import sync_playwright

    chromium = _require_browser()
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        browser = p.chromium.launch_persistent_context(
            profile, executable_path=chromium, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1600, "height": 1000},
        )
        try:
            yield browser.new_page()
        finally:
            browser.close()


def _dismiss_community_dialog(page) -> None:
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=15_000)
        skip.click()
        skip.wait_for(state="hidden", timeout=10_000)
    except Exception:  # the dialog is shown once per browser profile; not seeing it is fine
        pass


def test_the_asset_graph_shows_every_group_and_the_planning_assets(
    dagster_ui: DagsterUI, page, artifacts_dir: Path
) -> None:
    page.goto(f"{dagster_ui.url}/asset-groups", wait_until="domcontentloaded")
    _dismiss_community_dialog(page)
    page.get_by_role("button", name="Materialize all").wait_for(timeout=60_000)
    for group in ("landing", "staging", "intermediate", "marts", "planning", "reports"):
        page.get_by_text(group, exact=True).first.wait_for(timeout=30_000)
    page.wait_for_timeout(1500)  # let the graph settle before the picture
    page.screenshot(path=str(artifacts_dir / "dagster_asset_graph.png"))

    # the same graph filtered to one group (what typing group:"planning" in its search box does): its asset nodes
    page.goto(f"{dagster_ui.url}/asset-groups~{PLANNING_FILTER}/", wait_until="domcontentloaded")
    _dismiss_community_dialog(page)
    for asset in ("demand_forecast", "inventory_policy", "purchase_proposals", "service_levels"):
        page.get_by_text(asset, exact=True).first.wait_for(timeout=60_000)
    page.wait_for_timeout(1500)
    for asset in ("demand_forecast", "inventory_policy", "service_levels"):
        assert page.get_by_text(asset, exact=True).count() >= 2, asset  # listed in the sidebar and a graph node
    page.screenshot(path=str(artifacts_dir / "dagster_planning_group.png"))


def _second_run_waits_in_the_queue(ui: DagsterUI) -> None:
    """While a run uses the warehouse, another run that would write it stays queued (pool stockturn_warehouse)."""
    params = {"selector": {"repositoryLocationName": "orchestration.definitions", "repositoryName": "__repository__",
                           "jobName": "warehouse_build"}, "runConfigData": {}}
    launched = ui.graphql(LAUNCH, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    second = launched["run"]["runId"]
    try:
        for _ in range(5):  # the daemon dequeues every few seconds: it must keep this one waiting
            time.sleep(3)
            status = ui.graphql(RUN_STATUS, {"runId": second})["runOrError"]["status"]
            assert status == "QUEUED", f"a second warehouse run started while the first was running: {status}"
    finally:
        ui.graphql(TERMINATE, {"runId": second})


def test_materialize_all_from_the_ui_builds_the_warehouse(dagster_ui: DagsterUI, page, artifacts_dir: Path) -> None:
    page.goto(f"{dagster_ui.url}/asset-groups", wait_until="domcontentloaded")
    _dismiss_community_dialog(page)
    before = {r["runId"] for r in dagster_ui.graphql(RUNS)["runsOrError"]["results"]}
    button = page.get_by_role("button", name="Materialize all")
    button.wait_for(timeout=60_000)
    button.click()

    clicked, run, queue_checked = time.time(), None, False
    while time.time() < clicked + RUN_TIMEOUT:
        runs = [r for r in dagster_ui.graphql(RUNS)["runsOrError"]["results"] if r["runId"] not in before]
        if runs:
            run = runs[-1]  # newest first: the UI's run is the oldest new one
            if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
                break
            if run["status"] == "STARTED" and not queue_checked:
                _second_run_waits_in_the_queue(dagster_ui)
                queue_checked = True
        elif time.time() > clicked + 60:
            page.screenshot(path=str(artifacts_dir / "dagster_materialize_all_no_run.png"))
            pytest.fail("clicking 'Materialize all' launched no run within 60 s (see the screenshot in artifacts/)")
        time.sleep(3)
    assert run is not None and run["status"] in ("SUCCESS", "FAILURE", "CANCELED"), f"run not finished: {run}"
    assert queue_checked, "the run was never seen in progress, so the one-warehouse-run-at-a-time check did not run"
    page.goto(f"{dagster_ui.url}/runs/{run['runId']}", wait_until="domcontentloaded")
    with contextlib.suppress(Exception):
        page.get_by_text("Loading run logs").wait_for(state="hidden", timeout=30_000)
    page.wait_for_timeout(2000)
    page.screenshot(path=str(artifacts_dir / "dagster_materialize_all_run.png"))
    if run["status"] != "SUCCESS":
        events = dagster_ui.graphql(RUN_FAILURES, {"runId": run["runId"]})["logsForRun"].get("events", [])
        failures = [f"{e['stepKey']}: {e['error']['message'][:2000]}" for e in events
                    if e["__typename"] == "ExecutionStepFailureEvent"]
        pytest.fail(f"run {run['runId']} ended {run['status']} (not SUCCESS) after launching from the UI:\n"
                    + ("\n".join(failures) or dagster_ui.tail()))

    with duckdb.connect(str(dagster_ui.warehouse), read_only=True) as con:
        tables = {(s, t) for s, t in con.execute("select table_schema, table_name from information_schema.tables")
                  .fetchall()}
        assert {("marts", "fct_sales_daily"), ("marts", "fct_inventory_turnover_monthly")} <= tables
        assert {("ml", t) for t in ("demand_forecast", "inventory_policy", "purchase_proposals")} <= tables
        (rows,) = con.execute("select count(*) from marts.fct_sales_daily").fetchone()
        assert rows > 0
    assert (dagster_ui.report_dir / "report.html").exists()
