"""Jobs, the nightly and weekly schedules, the landing-folder sensor and the forecast-drift sensor.

Nightly (``stockturn_nightly``, Monday to Saturday): new landing files in (the loader reads only those), dbt,
the policy re-planned from the last weekly forecast as of today's stock, orders released, the report. Weekly
(``weekly_refit``, Sunday, the whole ``stockturn_pipeline``): forecasting re-fitted and backtested. The
``forecast_drift_sensor`` requests the weekly job early when the stored forecast drifts
(:mod:`ml.forecasting.drift`), once per forecast run.

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


#: what only the weekly re-fit materializes: the forecasting step's tables
FORECAST_KEYS = [dg.AssetKey(["ml", name]) for name in
                 ("demand_forecast", "forecast_backtest", "lead_time_demand", "lead_time_demand_samples")]

nightly_job = dg.define_asset_job(
    "stockturn_nightly",
    selection=dg.AssetSelection.all()
    - dg.AssetSelection.assets(dg.AssetKey(["ml", "policy_backtest"]), *FORECAST_KEYS),
    config={"ops": {"replenishment_policy": {"config": {"plan_as_of_latest_data": True}}}},
    description="Every night: load the new landing files, dbt build, re-plan from the last weekly forecast as of "
                "today's stock (no forecasting), release orders, the models on the plan, the report.",
    tags={"stockturn/job": "nightly"},
)

TZ = os.environ.get("STOCKTURN_TIMEZONE", "UTC")
NIGHTLY_CRON = "0 6 * * 1-6"  # Monday to Saturday; Sunday is the weekly re-fit
WEEKLY_CRON = "0 6 * * 0"


def _schedule_status() -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if _automation_status() else dg.DefaultScheduleStatus.STOPPED


nightly_schedule = dg.ScheduleDefinition(
    name="nightly_plan", job=nightly_job, cron_schedule=NIGHTLY_CRON, execution_timezone=TZ,
    default_status=_schedule_status(),
    description="Monday to Saturday at 06:00 (STOCKTURN_TIMEZONE, default UTC): the nightly job, no forecasting.",
)

weekly_schedule = dg.ScheduleDefinition(
    name="weekly_refit", job=pipeline_job, cron_schedule=WEEKLY_CRON, execution_timezone=TZ,
    default_status=_schedule_status(),
    description="Sunday at 06:00: the whole pipeline, forecasting re-fitted and backtested. The forecast drift "
                "sensor runs it earlier when the forecast drifts.",
)

#: every schedule (both start STOPPED unless STOCKTURN_AUTOMATION=running)
SCHEDULES = [nightly_schedule, weekly_schedule]


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


REFIT_TAG = "stockturn/refit_for_forecast"
#: a drifted forecast is re-fitted with the external signals gated afresh, not with the last gate's decisions (a
#: signal feed that went wrong is one way a forecast drifts; ml.forecasting.signals, "Re-using a recent gate")
REFIT_RUN_CONFIG = {"ops": {"demand_forecasting": {"config": {"forecast": {"signal_gating_max_age_days": 0}}}}}


def evaluate_drift(warehouse: Path, cursor: str | None) -> tuple[str | None, dg.RunRequest | dg.SkipReason]:
    """The drift sensor's decision: (new cursor = the forecast run a re-fit was requested for, request or skip)."""
    if not warehouse.exists():
        return cursor, dg.SkipReason(f"no warehouse at {warehouse}")
    import duckdb

    from ml.forecasting.drift import forecast_drift

    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            drift = forecast_drift(con)
    except duckdb.Error as exc:  # busy (a run is writing) or not built yet: look again later
        return cursor, dg.SkipReason(f"warehouse not readable now: {str(exc)[:200]}")
    if not drift.drifted:
        return cursor, dg.SkipReason(drift.describe())
    if drift.forecast_run_id == cursor:
        return cursor, dg.SkipReason(f"a re-fit was already requested for forecast {cursor}: {drift.describe()}")
    return drift.forecast_run_id, dg.RunRequest(run_key=f"refit-{drift.forecast_run_id}",
                                                tags={REFIT_TAG: str(drift.forecast_run_id)},
                                                run_config=REFIT_RUN_CONFIG)


@dg.sensor(
    name="forecast_drift_sensor",
    job=pipeline_job,
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.RUNNING if _automation_status() else dg.DefaultSensorStatus.STOPPED,
    description="Re-fits the forecast early (the whole pipeline) when the stored forecast has drifted from what "
                "was sold since: WAPE above 1.5x its backtest's or bias beyond ±25% after 7 days "
                "(ml/forecasting/drift.py).",
)
def forecast_drift_sensor(context: dg.SensorEvaluationContext, paths: StockturnPaths):
    new_cursor, decision = evaluate_drift(paths.warehouse_path, context.cursor)
    if new_cursor != context.cursor and new_cursor is not None:
        context.update_cursor(new_cursor)
    return decision
