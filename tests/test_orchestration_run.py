"""Running the Dagster definitions in-process: the materialization path `stockturn run` uses, the demand-planning
write-back, the dbt -> Python -> dbt shape, and the `stockturn run` command itself.

* ``run_pipeline`` (what ``stockturn run`` calls) on a copy of the dbt project with a throwaway ``ml`` source and a
  model tagged ``ml_downstream``, over a copy of the session's small warehouse: the landing asset, dbt (a slice:
  ``dim_location`` and its tests), ``demand_planning`` and dbt again for the model on the write-back, in one run.
  The full ``dbt build`` through Dagster runs in ``test_orchestration_ui.py`` (from the UI, all assets).
* ``demand_planning`` runs with stand-in ``ml.forecasting`` / ``ml.policy`` modules (the asset is a thin wrapper;
  the real stages have their own tests and run for real in the UI test): six ``ml`` tables with one run stamp,
  the forecast checks, and a failing stage leaving the previous tables as they were.
* ``stockturn run --select group:landing`` as a user runs it (a subprocess): progress lines, the summary, no wall
  of dbt/Dagster logs, the run recorded in the Dagster instance.

Dagster instances live on /dev/shm when there is one (sqlite event writes are several times faster on tmpfs than
on this machine's disk; nothing else differs).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import types
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest

from ml.demand_distribution import LeadTimeDemand
from ml.ingest.contract import ENTITIES
from ml.settings import DBT_PROJECT_DIR, PROJECT_ROOT
from orchestration.defs import planning
from orchestration.defs.resources import StockturnPaths
from orchestration.defs.schedules import evaluate_landing
from tests.conftest import run_stockturn

pytestmark = pytest.mark.slow


def fast_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    shm = Path("/dev/shm")
    if shm.is_dir():
        path = Path(tempfile.mkdtemp(prefix=f"stockturn-{name}-", dir=shm))
        _CLEANUP.append(path)
        return path
    return tmp_path_factory.mktemp(name)


_CLEANUP: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def _cleanup_fast_dirs():
    yield
    for path in _CLEANUP:
        shutil.rmtree(path, ignore_errors=True)


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


# ------------------------------------------------------------------------------------------------ stand-in stages


@dataclass
class FakeConfig:
    values: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values):
        return cls(dict(values or {}))

    def to_dict(self):
        return dict(self.values)


@dataclass
class FakeForecastRun:
    demand_forecast: pl.DataFrame
    forecast_backtest: pl.DataFrame
    lead_time_demand: LeadTimeDemand
    summary: dict


@dataclass
class FakePolicyRun:
    inventory_policy: pl.DataFrame
    purchase_proposals: pl.DataFrame
    exceptions: pl.DataFrame
    summary: dict


def _series(con) -> tuple[pl.DataFrame, date]:
    keys = con.sql("select distinct product_id, location_id from marts.fct_sales_daily order by all").pl()
    (as_of,) = con.execute("select max(date_day) from marts.fct_sales_daily").fetchone()
    return keys, as_of


def fake_run_forecasting(con, config, *, as_of=None):
    if config.values.get("fail"):
        raise RuntimeError("forecasting failed on purpose")
    keys, latest = _series(con)
    as_of = as_of or latest
    days = pl.DataFrame({"forecast_date": [as_of + timedelta(days=i) for i in range(1, 8)]})
    forecast = keys.join(days, how="cross").with_columns(pl.lit(1.5).alias("forecast_mean"),
                                                         pl.lit(0.0).alias("q10"), pl.lit(3.0).alias("q90"))
    if config.values.get("negative"):  # a forecast a blocking check must stop before it is written
        forecast = forecast.with_columns(pl.lit(-1.0).alias("q10"))
    backtest = pl.DataFrame({"model": ["selected", "seasonal_naive"], "interval_level": [0.8, 0.8],
                             "coverage": [0.8, 0.7], "rmsse": [0.9, 1.0]})
    n = keys.height
    ltd = LeadTimeDemand(keys, np.full((n, 50), 10.0), np.full(n, 1.5), np.full(n, 6.0), np.full(n, 8.0),
                         np.full(n, 1.0), np.array(["default"] * n))
    return FakeForecastRun(forecast, backtest, ltd, {"as_of_date": as_of.isoformat(), "model_version": "fake-fc",
                                                     "rmsse": 0.9, "by_model": {"lightgbm": 0.9}})


#: what each call of the fake policy was asked (the plan's day and the forecast's day)
POLICY_CALLS: list[dict] = []


def fake_run_policy(con, ltd, forecast, config, *, as_of=None, forecast_as_of=None):
    POLICY_CALLS.append({"as_of": as_of, "forecast_as_of": forecast_as_of})
    if config.values.get("fail"):
        raise RuntimeError("policy failed on purpose")
    keys = ltd.keys
    policy = keys.with_columns(pl.lit(12.0).alias("reorder_point"), pl.lit(6.0).alias("order_quantity"))
    proposals = keys.head(3).with_columns(  # the columns the order release reads and updates
        pl.lit("transfer").alias("proposal_type"), pl.lit(None, pl.String).alias("supplier_id"),
        pl.lit("DC01").alias("source_location_id"), pl.lit(6.0).alias("quantity"), pl.lit(12.0).alias("value"),
        pl.lit(6.0).alias("order_quantity"), pl.lit("C").alias("abc_class"), pl.lit("proposed").alias("status"),
        pl.lit(None, pl.String).alias("status_author"), pl.lit(None, pl.String).alias("status_reason"),
        pl.lit(None, pl.Datetime("us")).alias("status_changed_at"),
    ).with_columns((pl.col("product_id") + "@" + pl.col("location_id")).alias("proposal_id"))
    exceptions = keys.head(0).with_columns(pl.lit("none").alias("exception_type"))
    return FakePolicyRun(policy, proposals, exceptions, {"series": keys.height, "proposals": {"count": 3}})


def _install_fake_stages(monkeypatch: pytest.MonkeyPatch) -> None:
    import ml.policy.approval  # noqa: F401 (the real order release runs on the fake plan's proposals)
    import ml.policy.config  # noqa: F401 (the real defaults the safety-stock checks fall back on stay importable)
    import ml.policy.order_export  # noqa: F401

    forecasting = types.ModuleType("ml.forecasting")
    forecasting.ForecastConfig, forecasting.run_forecasting = FakeConfig, fake_run_forecasting
    policy = types.ModuleType("ml.policy")
    policy.PolicyConfig, policy.run_policy = FakeConfig, fake_run_policy
    monkeypatch.setitem(sys.modules, "ml.forecasting", forecasting)
    monkeypatch.setitem(sys.modules, "ml.policy", policy)


@pytest.fixture
def fake_stages(monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fake_stages(monkeypatch)


THROWAWAY_SOURCE = """\
sources:
  - name: ml
    schema: ml
    tables:
      - name: demand_forecast
        config:
          meta:
            dagster:
              asset_key: ["ml", "demand_forecast"]
"""
THROWAWAY_MODEL = """\
{{ config(tags=['ml_downstream']) }}
select product_id, location_id, count(*) as forecast_days, sum(forecast_mean) as forecast_units
from {{ source('ml', 'demand_forecast') }}
group by all
"""
DOWNSTREAM = dg.AssetKey(["marts", "rpt_throwaway_forecast"])
SLICE = 'group:landing or key:"marts/dim_location" or key:"ml/*" or key:"marts/rpt_throwaway_forecast"'


@dataclass
class PipelineRun:
    warehouse: Path
    defs: dg.Definitions
    report: object  # orchestration.runner.RunReport
    groups: dict[str, str]
    lines: list[str]


@pytest.fixture(scope="module")
def pipeline(small_landing: Path, small_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    from orchestration.definitions import build_definitions
    from orchestration.runner import run_pipeline

    root = tmp_path_factory.mktemp("orch_pipeline")
    project = root / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    shutil.copytree(PROJECT_ROOT / "seeds", root / "seeds")
    # the throwaway model stands in for the real planning models (whose ml.* sources it would duplicate)
    shutil.rmtree(project / "models" / "marts" / "planning")
    (project / "models" / "marts" / "throwaway").mkdir()
    (project / "models" / "marts" / "throwaway" / "__ml_sources.yml").write_text(THROWAWAY_SOURCE)
    (project / "models" / "marts" / "throwaway" / "rpt_throwaway_forecast.sql").write_text(THROWAWAY_MODEL)
    warehouse = root / "warehouse.duckdb"
    shutil.copy(small_warehouse, warehouse)
    paths = StockturnPaths(landing_dir=str(small_landing), warehouse=str(warehouse), report_dir=str(root / "report"))
    defs = build_definitions(paths, project_dir=project)
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        _install_fake_stages(mp)
        report, groups = run_pipeline(small_landing, warehouse, root / "report", selection=SLICE,
                                      dagster_home=fast_dir(tmp_path_factory, "pipeline-home"),
                                      echo=lines.append, definitions=defs)
    return PipelineRun(warehouse, defs, report, groups, lines)


def test_the_write_back_sits_between_two_dbt_steps(pipeline: PipelineRun) -> None:
    graph = pipeline.defs.resolve_asset_graph()
    assert graph.get(DOWNSTREAM).parent_keys == {dg.AssetKey(["ml", "demand_forecast"])}
    assert graph.get(DOWNSTREAM).group_name == "reports"
    report = pipeline.report
    assert report.success, "\n".join(pipeline.lines)
    steps = [s.key for s in sorted(report.steps, key=lambda s: s.started)]
    dbt_steps = [s for s in steps if s.startswith("dbt_build")]
    assert len(dbt_steps) == 2, steps  # Dagster split the dbt op around the Python assets
    assert steps.index(dbt_steps[0]) < steps.index("demand_forecasting") < steps.index(dbt_steps[1])
    assert steps.index("demand_forecasting") < steps.index("replenishment_policy")
    forecast_days, series = query(pipeline.warehouse, "select sum(forecast_days), count(*) "
                                                      "from marts.rpt_throwaway_forecast")[0]
    assert series == query(pipeline.warehouse, "select count(*) from ml.lead_time_demand")[0][0]
    assert forecast_days == 7 * series


def test_progress_is_one_line_per_step_start_and_end(pipeline: PipelineRun) -> None:
    text = "\n".join(pipeline.lines)
    for step in ("landing", "demand_forecasting", "replenishment_policy"):
        assert f"start {step}" in text and f"done  {step} in " in text
    assert sum(line.startswith("done  dbt_build") for line in pipeline.lines) == 2
    assert len(pipeline.lines) < 25, text
    summary = pipeline.report.format(groups=pipeline.groups)
    assert "succeeded" in summary and "marts/dim_location 3" in summary and "ml/inventory_policy" in summary


def test_materializations_carry_rows_load_id_and_the_planning_stamp(pipeline: PipelineRun) -> None:
    mats = pipeline.report.materializations
    assert mats["marts/dim_location"]["dagster/row_count"] == 3
    assert mats["raw/sales__sales_lines"]["load_id"] == mats["raw/landing_files"]["load_id"]
    stamps: dict[str, set] = {"forecast": set(), "policy": set()}
    for name in planning.ML_TABLES:
        stage = "forecast" if name in planning.FORECAST_TABLES else "policy"
        stamps[stage] |= set(query(pipeline.warehouse,
                                   f"select distinct run_id, as_of_date, model_version from ml.{name}"))
        assert mats[f"ml/{name}"]["dagster/row_count"] == query(pipeline.warehouse,
                                                                 f"select count(*) from ml.{name}")[0][0]
    assert len(stamps["forecast"]) == 1 and len(stamps["policy"]) == 1, stamps  # one stamp per step's tables
    (forecast_run, as_of, forecast_version), = stamps["forecast"]
    (policy_run, policy_as_of, policy_version), = stamps["policy"]
    assert (forecast_version, policy_version) == ("fake-fc", "fake-fc+policy-0.1.0")
    assert as_of == policy_as_of == query(pipeline.warehouse, "select max(date_day) from marts.fct_sales_daily")[0][0]
    assert query(pipeline.warehouse, "select distinct forecast_run_id from ml.inventory_policy") == [(forecast_run,)]
    assert mats["ml/demand_forecast"]["run_id"] == forecast_run and mats["ml/inventory_policy"]["run_id"] == policy_run
    assert mats["ml/inventory_policy"]["forecast_run_id"] == forecast_run
    assert mats["ml/demand_forecast"]["by_model.lightgbm"] == pytest.approx(0.9)
    assert pipeline.report.steps and not pipeline.report.check_failures
    for step, stage in (("demand_forecasting", "forecasting"), ("replenishment_policy", "policy")):
        planning_step = next(s for s in pipeline.report.steps if s.key == step)
        assert planning_step.checks == {"passed": len(planning.checks_for_stage(stage))}


def test_sensor_does_not_rerun_what_the_warehouse_already_holds(small_warehouse: Path, small_landing: Path) -> None:
    cursor, decision = evaluate_landing(small_landing, small_warehouse, None)
    assert isinstance(decision, dg.SkipReason) and "already holds" in decision.skip_message
    assert cursor


def _planning_config(values: dict) -> dict:
    """The same run config for both planning steps."""
    return {"ops": {step: {"config": values} for step in ("demand_forecasting", "replenishment_policy")}}


def _materialize_planning(warehouse: Path, tmp_path: Path, run_config: dict | None = None,
                          selection: list | None = None):
    assets = planning.build_planning_assets([dg.AssetKey(["marts", "fct_sales_daily"])])
    paths = StockturnPaths(landing_dir=str(tmp_path), warehouse=str(warehouse), report_dir=str(tmp_path / "r"))
    return dg.materialize(assets, resources={"paths": paths}, run_config=run_config or {}, raise_on_error=False,
                          selection=selection or list(planning.ML_KEYS.values()))


def test_a_failing_stage_leaves_the_previous_write_back_intact(
    small_warehouse: Path, tmp_path: Path, fake_stages: None
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(small_warehouse, warehouse)
    assert _materialize_planning(warehouse, tmp_path).success
    before = {name: query(warehouse, f"select count(*), min(run_id) from ml.{name}") for name in planning.ML_TABLES}
    again = _materialize_planning(warehouse, tmp_path)  # same inputs, same run id
    assert again.success
    assert {name: query(warehouse, f"select count(*), min(run_id) from ml.{name}") for name in planning.ML_TABLES} \
        == before
    for stage in ("forecast", "policy"):
        failed = _materialize_planning(warehouse, tmp_path, _planning_config({stage: {"fail": True}}))
        assert not failed.success
        after = {name: query(warehouse, f"select count(*), min(run_id) from ml.{name}") for name in planning.ML_TABLES}
        assert after == before


def test_a_plan_that_fails_a_blocking_check_is_never_written(
    small_warehouse: Path, tmp_path: Path, fake_stages: None
) -> None:
    """The checks run on the frames before the write-back: a negative forecast fails forecast_non_negative, the
    step fails naming it, the previous plan stays in every ml table, and audit.plan_check_results keeps the outcome
    of both runs (the rejected one marked as not written)."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(small_warehouse, warehouse)
    assert _materialize_planning(warehouse, tmp_path).success
    before = {name: query(warehouse, f"select count(*), min(run_id), max(run_id) from ml.{name}")
              for name in planning.ML_TABLES}
    bad = _materialize_planning(warehouse, tmp_path, _planning_config({"forecast": {"negative": True}}))
    assert not bad.success
    failure = next(e for e in bad.all_events if e.event_type_value == "STEP_FAILURE")
    assert "the plan was not written" in str(failure.event_specific_data.error) and "forecast_non_negative" in str(
        failure.event_specific_data.error)
    checks_seen = {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
                   for e in bad.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks_seen["forecast_non_negative"] is False and checks_seen["forecast_complete"] is True
    after = {name: query(warehouse, f"select count(*), min(run_id), max(run_id) from ml.{name}")
             for name in planning.ML_TABLES}
    assert after == before
    runs = query(warehouse, "select plan_written, count(*), bool_and(passed) from audit.plan_check_results "
                            "group by all order by 1")
    assert runs == [(False, len(planning.checks_for_stage("forecasting")), False),
                    (True, len(planning.checks.FORECAST_CHECKS), True)]  # the rejected run never reached policy
    from reports.context import rejected_plan

    with duckdb.connect(str(warehouse), read_only=True) as con:
        rejected = rejected_plan(con)
    assert rejected is not None and rejected[2] == "forecast_non_negative"


# ------------------------------------------------------------------------------------------------ stockturn run


def test_stockturn_run_prints_progress_and_records_the_run(
    small_landing: Path, small_warehouse: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(small_warehouse, warehouse)
    home = fast_dir(tmp_path_factory, "cli-home")
    proc = run_stockturn("run", "--landing", str(small_landing), "--warehouse", str(warehouse),
                         "--select", "group:landing", "--dagster-home", str(home))
    err, out = proc.stderr, proc.stdout
    print(err, out, sep="\n")  # shown when the test fails
    # one raw table per contract entity, plus the load's own tables (landing_files, landing_entities, _load_rejects)
    assert "start landing" in err and "done  landing in " in err and f"{len(ENTITIES) + 3} assets" in err
    assert "Run " in out and "succeeded" in out and "landing" in out
    assert f"Warehouse: {warehouse}" in out and str(home) in out
    # no wall of logs: neither Dagster's events and debug lines nor the loader's per-file lines reach the console
    assert "STEP_START" not in err and "DEBUG" not in err and "read sales/" not in err
    assert len(err.splitlines()) < 10, err
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        runs = instance.get_runs()
        assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS
        event = instance.get_latest_materialization_event(dg.AssetKey(["raw", "sales__sales_lines"]))
        assert event.asset_materialization.metadata["dagster/row_count"].value > 0
    finally:
        instance.dispose()


# ------------------------------------------------------------------------------------------------ planning settings


def test_run_pipeline_honours_the_settings_file_and_the_flags(
    small_landing: Path, small_warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`stockturn run`'s path: stockturn.toml beside the warehouse, overridden by flags (run config), reaches the
    planning stages, and the settings in effect are recorded in the materialization metadata."""
    import ml.forecasting.config  # noqa: F401  (the settings file is checked against the real classes)
    import ml.policy.config  # noqa: F401
    from orchestration.runner import run_pipeline

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(small_warehouse, warehouse)
    settings_file = tmp_path / "stockturn.toml"
    settings_file.write_text('[forecast]\nhorizon_days = 35\ngrain = "week"\n\n[policy]\nordering_cost_per_line = 40\n')
    paths = StockturnPaths(landing_dir=str(small_landing), warehouse=str(warehouse), report_dir=str(tmp_path / "r"))
    # the planning asset alone in a job of the pipeline's name: no dbt project to parse
    assets = planning.build_planning_assets([dg.AssetKey(["marts", "fct_sales_daily"])])
    defs = dg.Definitions(assets=assets, jobs=[dg.define_asset_job("stockturn_pipeline")],
                          resources={"paths": paths}, executor=dg.in_process_executor)
    _install_fake_stages(monkeypatch)
    seen: dict[str, dict] = {}
    forecasting, policy = sys.modules["ml.forecasting"], sys.modules["ml.policy"]

    def recording_forecasting(con, config, *, as_of=None):
        seen["forecast"] = dict(config.values)
        return fake_run_forecasting(con, config, as_of=as_of)

    def recording_policy(con, ltd, forecast, config, *, as_of=None, forecast_as_of=None):
        seen["policy"] = dict(config.values)
        return fake_run_policy(con, ltd, forecast, config, as_of=as_of, forecast_as_of=forecast_as_of)

    monkeypatch.setattr(forecasting, "run_forecasting", recording_forecasting)
    monkeypatch.setattr(policy, "run_policy", recording_policy)
    lines: list[str] = []
    report, _ = run_pipeline(small_landing, warehouse, tmp_path / "r", selection='key:"ml/*"', ephemeral=True,
                             planning_overrides={"forecast": {"horizon_days": 28}, "policy": {}},
                             echo=lines.append, definitions=defs)
    assert report.success, "\n".join(lines)
    assert seen == {"forecast": {"horizon_days": 28, "grain": "week"}, "policy": {"ordering_cost_per_line": 40.0}}
    recorded = report.materializations["ml/demand_forecast"]["planning_settings"]
    assert recorded["file"] == str(settings_file)
    assert recorded["sources"] == {"forecast.horizon_days": "run config", "forecast.grain": str(settings_file),
                                   "policy.ordering_cost_per_line": str(settings_file)}


def test_the_nightly_policy_plans_from_the_stored_forecast_as_of_the_latest_day(
    small_warehouse: Path, tmp_path: Path, fake_stages: None
) -> None:
    """The nightly job re-plans without forecasting: the policy step reads last week's forecast and plans as of the
    latest day of the marts (today's stock), leaving the forecast tables as they were."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(small_warehouse, warehouse)
    (latest,) = query(warehouse, "select max(date_day) from marts.fct_inventory_daily")[0]
    week_ago = latest - timedelta(days=7)
    config = {"ops": {"demand_forecasting": {"config": {"as_of_date": week_ago.isoformat()}}}}
    assert _materialize_planning(warehouse, tmp_path, config).success
    forecast_before = query(warehouse, "select min(run_id), min(as_of_date) from ml.demand_forecast")
    assert query(warehouse, "select min(as_of_date) from ml.inventory_policy")[0][0] == week_ago
    nightly = {"ops": {"replenishment_policy": {"config": {"plan_as_of_latest_data": True}}}}
    policy_keys = [planning.ML_KEYS[name] for name in planning.POLICY_TABLES]
    POLICY_CALLS.clear()
    assert _materialize_planning(warehouse, tmp_path, nightly, selection=policy_keys).success
    assert query(warehouse, "select min(as_of_date), max(as_of_date) from ml.inventory_policy")[0] == (latest, latest)
    assert query(warehouse, "select min(run_id), min(as_of_date) from ml.demand_forecast") == forecast_before
    # the policy is told which day the forecast was made, so its draws move with the forecast's level to today
    calls = list(POLICY_CALLS)
    assert calls == [{"as_of": None, "forecast_as_of": week_ago}]


def test_the_nightly_job_keeps_its_policy_date_when_a_settings_file_is_given(
    small_landing: Path, small_warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`stockturn run --job stockturn_nightly` with stockturn.toml beside the warehouse: the run config the settings
    become does not drop the nightly job's own setting (plan as of the latest day)."""
    import ml.policy.config  # noqa: F401
    from orchestration.runner import run_pipeline

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(small_warehouse, warehouse)
    (tmp_path / "stockturn.toml").write_text("[policy]\nordering_cost_per_line = 40\n")
    paths = StockturnPaths(landing_dir=str(small_landing), warehouse=str(warehouse), report_dir=str(tmp_path / "r"))
    assets = planning.build_planning_assets([dg.AssetKey(["marts", "fct_sales_daily"])])
    _install_fake_stages(monkeypatch)
    assert _materialize_planning(warehouse, tmp_path, {"ops": {"demand_forecasting": {"config": {
        "as_of_date": "2024-01-10"}}}}).success  # last week's forecast
    policy_keys = [planning.ML_KEYS[name] for name in planning.POLICY_TABLES]
    defs = dg.Definitions(assets=assets, jobs=[dg.define_asset_job("stockturn_nightly", selection=policy_keys)],
                          resources={"paths": paths}, executor=dg.in_process_executor)
    seen: dict[str, object] = {}
    policy = sys.modules["ml.policy"]

    def recording_policy(con, ltd, forecast, config, *, as_of=None, forecast_as_of=None):
        seen.update(as_of=as_of, forecast_as_of=forecast_as_of, values=dict(config.values))
        return fake_run_policy(con, ltd, forecast, config, as_of=as_of, forecast_as_of=forecast_as_of)

    monkeypatch.setattr(policy, "run_policy", recording_policy)
    lines: list[str] = []
    report, _ = run_pipeline(small_landing, warehouse, tmp_path / "r", job="stockturn_nightly", ephemeral=True,
                             planning_overrides={"policy": {}}, echo=lines.append, definitions=defs)
    assert report.success, "\n".join(lines)
    # as_of None: the latest day of the marts, re-planned from last week's forecast
    assert seen == {"as_of": None, "forecast_as_of": date(2024, 1, 10), "values": {"ordering_cost_per_line": 40.0}}
    (latest,) = query(warehouse, "select max(date_day) from marts.fct_inventory_daily")[0]
    assert query(warehouse, "select min(as_of_date) from ml.inventory_policy")[0][0] == latest
