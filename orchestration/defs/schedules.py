"""Jobs, the daily schedule and the landing-folder sensor.

Both automations default to **STOPPED**: each run rebuilds the warehouse and replaces the planners' proposals,
so turning it on is a decision made in the UI (Automation page, one toggle) or with
``STOCKTURN_AUTOMATION=running`` in the environment of ``dagster dev`` / ``stockturn ui``.

The sensor's cursor is the fingerprint of the landing folder: ``compute_load_id`` (relative path, size and mtime
of every file the loader would read), the same id ``raw.landing_files.load_id`` records. It requests a run when
the fingerprint differs from the cursor, and not while files are still being written (a file modified less than
``LANDING_QUIET_SECONDS`` ago). On its first evaluation the cursor is taken from the warehouse: when the
warehouse already holds the current files (``stockturn demo`` or ``stockturn run`` loaded them), no run starts.
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from ml.ingest.loader import LandingContractError, compute_load_id, discover_landing
from orchestration.defs.resources import StockturnPaths

AUTOMATION_ENV = "STOCKTURN_AUTOMATION"
LANDING_QUIET_SECONDS = 30
DAILY_CRON = "0 6 * * *"
FINGERPRINT_TAG = "stockturn/landing_fingerprint"

pipeline_job = dg.define_asset_job(
    "stockturn_pipeline",
    # everything but the policy backtest (an asset spec recorded by its own on-demand job, orchestration.defs.backtest)
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(dg.AssetKey(["ml", "policy_backtest"])),
    description="Everything: load the landing folder, dbt build, forecast and plan, dbt models on the plan, report.",
    tags={"stockturn/job": "pipeline"},
)

warehouse_job = dg.define_asset_job(
    "warehouse_build",
    # everything but the write-back and what depends on it: `stockturn build` = load + `dbt build --exclude
    # tag:ml_downstream`
    selection=dg.AssetSelection.all() - dg.AssetSelection.key_prefixes(["ml"]).downstream(),
    description="Load the landing folder and dbt build the marts (what `stockturn build` does), no planning.",
    tags={"stockturn/job": "warehouse_build"},
)


def _automation_status() -> bool:
    return os.environ.get(AUTOMATION_ENV, "stopped").strip().lower() in ("running", "on", "1", "true")


daily_schedule = dg.ScheduleDefinition(
    name="daily_pipeline",
    job=pipeline_job,
    cron_schedule=DAILY_CRON,
    execution_timezone=os.environ.get("STOCKTURN_TIMEZONE", "UTC"),
    default_status=dg.DefaultScheduleStatus.RUNNING if _automation_status() else dg.DefaultScheduleStatus.STOPPED,
    description="Runs the whole pipeline every morning at 06:00 (STOCKTURN_TIMEZONE, default UTC).",
)


@dataclass(frozen=True)
class LandingState:
    fingerprint: str | None  # None: no file to load
    files: int
    newest_mtime: float
    reason: str = ""


def landing_state(landing_dir: Path) -> LandingState:
    """Fingerprint of the files the loader would read (the loader's own ``load_id``)."""
    try:
        disc = discover_landing(landing_dir)
    except LandingContractError as exc:
        return LandingState(None, 0, 0.0, str(exc))
    files = [p for paths in disc.files.values() for p in paths]
    if not files:
        return LandingState(None, 0, 0.0, f"no landing file in {landing_dir}")
    return LandingState(compute_load_id(landing_dir, files), len(files), max(p.stat().st_mtime for p in files))


def loaded_fingerprint(warehouse: Path) -> str | None:
    """The ``load_id`` of the landing files in the warehouse, or None (no warehouse, or it is busy)."""
    if not warehouse.exists():
        return None
    import duckdb

    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            row = con.execute("select max(load_id) from raw.landing_files").fetchone()
    except duckdb.Error:
        return None
    return row[0] if row else None


def evaluate_landing(
    landing_dir: Path, warehouse: Path, cursor: str | None, *, now: float | None = None,
    quiet_seconds: float = LANDING_QUIET_SECONDS,
) -> tuple[str | None, dg.RunRequest | dg.SkipReason]:
    """The sensor's decision: (new cursor, run request or skip reason)."""
    state = landing_state(landing_dir)
    if state.fingerprint is None:
        return cursor, dg.SkipReason(state.reason)
    if cursor is None and loaded_fingerprint(warehouse) == state.fingerprint:
        return state.fingerprint, dg.SkipReason(f"the warehouse already holds landing load {state.fingerprint}")
    if state.fingerprint == cursor:
        return cursor, dg.SkipReason(f"landing folder unchanged ({state.files} files, load {cursor})")
    age = (now if now is not None else time.time()) - state.newest_mtime
    if age < quiet_seconds:
        return cursor, dg.SkipReason(f"landing files changed {age:.0f} s ago: waiting until they settle")
    return state.fingerprint, dg.RunRequest(
        run_key=None,
        tags={FINGERPRINT_TAG: state.fingerprint},
    )


@dg.sensor(
    name="landing_files_sensor",
    job=pipeline_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING if _automation_status() else dg.DefaultSensorStatus.STOPPED,
    description="Runs the whole pipeline when files in the landing folder are added, changed or removed.",
)
def landing_files_sensor(context: dg.SensorEvaluationContext, paths: StockturnPaths):
    new_cursor, decision = evaluate_landing(paths.landing_path, paths.warehouse_path, context.cursor)
    if new_cursor != context.cursor and new_cursor is not None:
        context.update_cursor(new_cursor)
    return decision
