"""The stockturn Dagster code location: landing -> dbt -> demand planning -> dbt on the plan -> report.

Load it with ``dagster dev -m orchestration.definitions`` (or ``stockturn ui``), ``dagster-webserver -m ...``,
``dagster asset materialize -m orchestration.definitions --select '*'``; ``stockturn run`` executes the same
definitions in-process. The asset definitions live per domain in ``orchestration/defs/``.

Executor: every step of a run executes one after another in the run's own process (``in_process_executor``):
DuckDB admits one writing process per file, and dbt, the loader, the planning step and the report all open the
warehouse. Across runs, every warehouse step is in the concurrency pool ``stockturn_warehouse``; the instance that
``stockturn ui`` / ``stockturn run`` create limits it to one, and queues runs one at a time (see
``orchestration/instance.py``). A warehouse held by another process (a CLI run, a notebook) is waited for up to
10 minutes (``STOCKTURN_WAREHOUSE_WAIT_SECONDS``), then the step fails naming the process that holds it.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ml.ingest.loader import RAW_SCHEMA
from ml.settings import DBT_PROJECT_DIR
from ml.warehouse import ML_SCHEMA, set_default_wait
from orchestration.defs import backtest, landing, orders, planning, reports, schedules
from orchestration.defs import dbt as dbt_defs
from orchestration.defs.resources import StockturnPaths, default_resources

#: runs the webserver or the daemon launch (scheduled ones included) wait up to 10 minutes for a warehouse another
#: process holds (a CLI run, a notebook) instead of failing; the CLI pins its own value (--wait-for-warehouse,
#: default 0) and STOCKTURN_WAREHOUSE_WAIT_SECONDS wins over both
set_default_wait(600.0)


def planning_inputs(manifest: dict) -> list[dg.AssetKey]:
    """What the planning steps read from dbt: the marts and models they query (the seeds: ``planning_seeds``)."""
    available = {dbt_defs.TRANSLATOR.get_asset_key(n) for n in manifest["nodes"].values()
                 if n["resource_type"] in ("model", "seed")}
    wanted = [dg.AssetKey(["marts", m]) for m in planning.PLANNING_INPUT_MARTS] + [
        dg.AssetKey(list(k)) for k in planning.PLANNING_INPUT_MODELS
    ]
    missing = [k.to_user_string() for k in wanted if k not in available]
    if missing:
        raise ValueError(f"demand planning reads models the dbt project does not define: {', '.join(missing)}")
    return wanted


#: seeds the order release reads (upstream of it only; every other seed is the policy step's)
ORDER_SEEDS = ("approval_rules",)


def planning_seeds(manifest: dict) -> list[dg.AssetKey]:
    """The planner-edited seeds the policy reads (service levels, overrides): upstream of the policy step only."""
    return [k for k in dbt_defs.dbt_asset_keys(manifest, resource_type="seed") if k.path[-1] not in ORDER_SEEDS]


def order_seeds(manifest: dict) -> list[dg.AssetKey]:
    """The seeds the order release reads (approval rules)."""
    return [k for k in dbt_defs.dbt_asset_keys(manifest, resource_type="seed") if k.path[-1] in ORDER_SEEDS]


def report_inputs(manifest: dict) -> list[dg.AssetKey]:
    """What the report reads: every model in schema marts (incl. those on the plan), the ml write-back (not the
    lead-time-demand draws, which it never reads) and the policy backtest, so a new backtest makes the report
    stale in the UI."""
    ml_keys = [key for name, key in planning.ML_KEYS.items() if name != "lead_time_demand_samples"]
    return dbt_defs.dbt_asset_keys(manifest, resource_type="model", schema="marts") + ml_keys + [
        orders.APPROVAL_KEY, orders.DECISION_VALUE_KEY, backtest.BACKTEST_KEY]


def build_definitions(
    paths: StockturnPaths | None = None,
    *,
    project_dir: Path = DBT_PROJECT_DIR,
    loggers: dict[str, dg.LoggerDefinition] | None = None,
) -> dg.Definitions:
    """All assets, checks, jobs, the schedule and the sensor.

    ``paths`` overrides the environment defaults; ``project_dir`` another dbt project (tests use a copy).
    """
    project = dbt_defs.dbt_project(project_dir)
    manifest = dbt_defs.manifest_nodes(project)
    return dg.Definitions(
        assets=[
            landing.landing,
            dbt_defs.build_dbt_assets(project),
            *planning.build_planning_assets(planning_inputs(manifest), planning_seeds(manifest)),
            orders.build_order_release_asset(order_seeds(manifest)),
            orders.planner_decisions,
            reports.build_report_asset(report_inputs(manifest)),
            backtest.policy_backtest,
        ],
        jobs=[schedules.pipeline_job, schedules.nightly_job, schedules.warehouse_job, backtest.backtest_job],
        schedules=schedules.SCHEDULES,
        sensors=[schedules.landing_files_sensor, schedules.forecast_drift_sensor],
        resources=default_resources(paths, project_dir),
        executor=dg.in_process_executor,
        loggers=loggers,
        metadata={"raw_schema": RAW_SCHEMA, "ml_schema": ML_SCHEMA},
    )


defs = build_definitions()
