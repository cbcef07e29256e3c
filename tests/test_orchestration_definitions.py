"""The Dagster code location without running it: loads, graph snapshot, executor and pools, translator, manifest
fingerprint, sensor decisions, forecast checks.

The asset graph is compared with ``tests/snapshots/orchestration_asset_graph.txt`` (keys, groups, deps, checks
defined in Python, jobs, schedules, sensors). After an intended change (a new dbt model, source, seed ...),
regenerate it with ``STOCKTURN_UPDATE_SNAPSHOTS=1 pytest tests/test_orchestration_definitions.py`` and review the
diff like code.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from ml.settings import DBT_PROJECT_DIR, PROJECT_ROOT
from orchestration.dbt_manifest import outside_paths, project_fingerprint
from orchestration.defs import checks
from orchestration.defs.dbt import StockturnDbtTranslator
from orchestration.defs.resources import WAREHOUSE_POOL, StockturnDbtCliResource, StockturnPaths
from orchestration.defs.schedules import evaluate_landing, landing_files_sensor

SNAPSHOT = Path(__file__).parent / "snapshots" / "orchestration_asset_graph.txt"


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    from orchestration.definitions import defs

    return defs


def describe(defs: dg.Definitions) -> list[str]:
    """A stable text picture of the code location (what the snapshot holds)."""
    graph = defs.resolve_asset_graph()
    lines = []
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        kind = "external" if not node.is_executable else (node.group_name or "-")
        deps = ", ".join(sorted(p.to_user_string() for p in node.parent_keys))
        lines.append(f"asset {key.to_user_string()} [{kind}] <- {deps}")
    python_names = {c.name for c in checks.FORECAST_CHECKS}
    python_checks = [k for k in graph.asset_check_keys if k.name in python_names]
    for ck in sorted(python_checks, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        lines.append(f"check {ck.asset_key.to_user_string()}:{ck.name}")
    n_dbt_checks = len(list(graph.asset_check_keys)) - len(python_checks)
    lines.append(f"dbt tests as asset checks: {'yes' if n_dbt_checks > 100 else n_dbt_checks}")
    for job in sorted(defs.jobs or [], key=lambda j: j.name):
        lines.append(f"job {job.name}")
    for schedule in defs.schedules or []:
        lines.append(f"schedule {schedule.name} {schedule.cron_schedule} {schedule.default_status.value}")
    for sensor in defs.sensors or []:
        lines.append(f"sensor {sensor.name} {sensor.default_status.value}")
    return lines


def test_definitions_load_and_validate(defs: dg.Definitions) -> None:
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_implicit_global_asset_job_def() is not None


def test_asset_graph_matches_the_snapshot(defs: dg.Definitions) -> None:
    actual = describe(defs)
    if os.environ.get("STOCKTURN_UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text("\n".join(actual) + "\n")
    expected = SNAPSHOT.read_text().splitlines()
    if actual != expected:
        diff = "\n".join(difflib.unified_diff(expected, actual, "snapshot", "definitions", lineterm="", n=0))
        pytest.fail(f"the asset graph changed (STOCKTURN_UPDATE_SNAPSHOTS=1 to accept):\n{diff}")


def test_graph_shape(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys() if graph.get(k).is_executable}
    assert groups == {"landing", "staging", "intermediate", "marts", "planning", "reports"}
    # the slow policy backtest is in the graph (group backtest, after the policy) but not executable, so neither
    # "Materialize all" nor the daily job starts it; its own op job records its materializations
    backtest_key = dg.AssetKey(["ml", "policy_backtest"])
    backtest = graph.get(backtest_key)
    assert not backtest.is_executable and backtest.group_name == "backtest"
    assert backtest.parent_keys == {dg.AssetKey(["ml", "inventory_policy"])}
    assert backtest_key not in defs.resolve_job_def("stockturn_pipeline").asset_layer.selected_asset_keys
    assert [node.name for node in defs.resolve_job_def("policy_backtest").graph.nodes] == ["run_policy_backtest"]
    # every raw table of the contract and the loader's bookkeeping come from the landing asset
    assert {"raw/sales__sales_lines", "raw/landing_files", "raw/landing_entities", "raw/_load_rejects"} <= keys
    # every dbt source is produced by a Python asset (raw.* by landing, ml.* by demand_planning), except tables
    # nobody in this code location writes, which Dagster shows as external assets (none so far)
    external = sorted(k.to_user_string() for k in graph.get_all_asset_keys() if not graph.get(k).is_executable)
    assert not [k for k in external if k.startswith("raw/")], external
    # dbt sources resolve to the landing asset: staging depends on raw
    stg = graph.get(dg.AssetKey(["staging", "stg_sales__sales_lines__validated"]))
    assert dg.AssetKey(["raw", "sales__sales_lines"]) in stg.parent_keys or any(
        dg.AssetKey(["raw", "sales__sales_lines"]) in graph.get(p).parent_keys for p in stg.parent_keys)
    planning = graph.get(dg.AssetKey(["ml", "demand_forecast"]))
    assert {dg.AssetKey(["marts", "fct_sales_daily"]), dg.AssetKey(["planning", "service_levels"])} <= set(
        planning.parent_keys)
    report = graph.get(dg.AssetKey(["reports", "turnover_report"]))
    assert dg.AssetKey(["ml", "inventory_policy"]) in report.parent_keys
    # dbt tests are asset checks
    assert any(k.asset_key == dg.AssetKey(["marts", "fct_sales_daily"]) for k in graph.asset_check_keys)


def test_every_warehouse_step_runs_in_process_and_in_the_warehouse_pool(defs: dg.Definitions) -> None:
    for job_name in ("stockturn_pipeline", "warehouse_build", "__ASSET_JOB"):
        job = defs.resolve_job_def(job_name)
        assert job.executor_def is dg.in_process_executor, job_name
    for assets_def in defs.resolve_asset_graph().assets_defs:
        if assets_def.is_executable:
            assert assets_def.node_def.pool == WAREHOUSE_POOL, assets_def.node_def.name


def test_planning_declares_every_table_its_code_reads(defs: dg.Definitions) -> None:
    """Every ``schema.table`` the forecasting and policy code queries is a dependency of ``demand_planning``."""
    graph = defs.resolve_asset_graph()
    inputs = graph.get(dg.AssetKey(["ml", "demand_forecast"])).parent_keys
    declared = {k.to_user_string().replace("/", ".") for k in inputs}
    pattern = re.compile(r"\b(marts|staging|intermediate|planning)\.([a-z][a-z0-9_]*)\b")
    read = set()
    for package in ("ml/forecasting", "ml/policy"):
        for path in (PROJECT_ROOT / package).glob("*.py"):
            read |= {f"{s}.{t}" for s, t in pattern.findall(path.read_text())}
    assert read <= declared, f"read but not declared as deps of demand_planning: {sorted(read - declared)}"


def test_translator_keys_and_groups() -> None:
    t = StockturnDbtTranslator()

    def model(name: str, schema: str, fqn: list[str], tags: list[str] | None = None, resource_type: str = "model"):
        return {"resource_type": resource_type, "name": name, "alias": name, "schema": schema, "fqn": fqn,
                "tags": tags or [], "meta": {}, "config": {"meta": {}}}

    m = model("stg_sales__prices", "staging", ["stockturn", "staging", "sales", "stg_sales__prices"])
    assert t.get_asset_key(m) == dg.AssetKey(["staging", "stg_sales__prices"])
    assert t.get_group_name(m) == "staging"
    m = model("dim_product", "marts", ["stockturn", "marts", "core", "dim_product"])
    assert (t.get_asset_key(m), t.get_group_name(m)) == (dg.AssetKey(["marts", "dim_product"]), "marts")
    m = model("fct_days_of_supply_forecast", "marts", ["stockturn", "marts", "x", "fct_days_of_supply_forecast"],
              tags=["ml_downstream"])
    assert (t.get_asset_key(m), t.get_group_name(m)) == (dg.AssetKey(["marts", "fct_days_of_supply_forecast"]),
                                                         "reports")
    s = model("service_levels", "planning", ["stockturn", "service_levels"], resource_type="seed")
    assert (t.get_asset_key(s), t.get_group_name(s)) == (dg.AssetKey(["planning", "service_levels"]), "planning")
    src = {"resource_type": "source", "name": "demand_forecast", "source_name": "ml", "schema": "ml", "fqn": [],
           "meta": {"dagster": {"asset_key": ["ml", "demand_forecast"]}},
           "config": {"meta": {"dagster": {"asset_key": ["ml", "demand_forecast"]}}}}
    assert t.get_asset_key(src) == dg.AssetKey(["ml", "demand_forecast"])


def test_dbt_resource_overrides_still_hook_into_dagster_dbt() -> None:
    """The resource skips `dbt --version` and the in-process adapter by overriding two private methods."""
    from dagster_dbt import DbtCliResource

    for name in ("_cli_version", "_initialize_dbt_core_adapter"):
        assert name in vars(DbtCliResource), f"dagster-dbt no longer has {name}: review StockturnDbtCliResource"
    from orchestration.dbt_cli import dbt_executable

    resource = StockturnDbtCliResource(project_dir=DBT_PROJECT_DIR, dbt_executable=dbt_executable())
    assert resource._cli_version.major == 1
    assert resource._initialize_dbt_core_adapter([]) is None


def test_paths_resource_reads_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STOCKTURN_WAREHOUSE", str(tmp_path / "w.duckdb"))
    monkeypatch.delenv("STOCKTURN_LANDING", raising=False)
    paths = StockturnPaths.from_env()
    assert isinstance(paths.warehouse, dg.EnvVar)  # resolved when a run starts, shown as such in the UI
    assert paths.landing_dir.endswith("data/landing")


# ------------------------------------------------------------------------------------------------ manifest


def test_manifest_fingerprint_follows_the_project_content(tmp_path: Path) -> None:
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    shutil.copytree(PROJECT_ROOT / "seeds", tmp_path / "seeds")
    assert outside_paths(project) == [(tmp_path / "seeds").resolve()]
    before = project_fingerprint(project)
    assert project_fingerprint(project) == before
    (project / "target").mkdir()
    (project / "target" / "noise.json").write_text("{}")  # artifacts do not count
    assert project_fingerprint(project) == before
    model = project / "models" / "marts" / "core" / "dim_location.sql"
    model.write_text(model.read_text() + "\n-- edited\n")
    edited = project_fingerprint(project)
    assert edited != before
    seed = next((tmp_path / "seeds").glob("*.csv"))
    seed.write_text(seed.read_text() + "\n")
    assert project_fingerprint(project) != edited


# ------------------------------------------------------------------------------------------------ sensor


def _landing(tmp_path: Path) -> Path:
    landing = tmp_path / "landing"
    files = {
        "master/products.csv": "product_id,product_name\nP1,Widget\n",
        "master/locations.csv": "location_id,location_name\nL1,Main\n",
        "sales/sales_lines.csv": "transaction_id,sold_at,product_id,location_id,quantity,unit_price\n"
                                 "T1,2024-01-02,P1,L1,1,2.0\n",
    }
    for rel, text in files.items():
        (landing / rel).parent.mkdir(parents=True, exist_ok=True)
        (landing / rel).write_text(text)
    _age(landing)
    return landing


def _age(landing: Path) -> None:
    """Give every file the same old modification time (the sensor waits for recently changed files to settle)."""
    old = 1_700_000_000
    for path in landing.rglob("*"):
        os.utime(path, (old, old))


def test_sensor_fires_on_new_and_changed_files_and_not_on_unchanged(tmp_path: Path) -> None:
    landing, warehouse = _landing(tmp_path), tmp_path / "warehouse.duckdb"
    cursor, decision = evaluate_landing(landing, warehouse, None)
    assert isinstance(decision, dg.RunRequest) and cursor
    assert decision.tags["stockturn/landing_fingerprint"] == cursor
    same, decision = evaluate_landing(landing, warehouse, cursor)
    assert same == cursor and isinstance(decision, dg.SkipReason) and "unchanged" in decision.skip_message

    (landing / "sales" / "sales_lines_2024q2.csv").write_text(
        "transaction_id,sold_at,product_id,location_id,quantity,unit_price\nT2,2024-04-02,P1,L1,1,2.0\n")
    waiting, decision = evaluate_landing(landing, warehouse, cursor)  # still being written: wait
    assert waiting == cursor and isinstance(decision, dg.SkipReason) and "settle" in decision.skip_message
    _age(landing)
    new, decision = evaluate_landing(landing, warehouse, cursor)
    assert isinstance(decision, dg.RunRequest) and new != cursor

    (landing / "notes.txt").write_text("not a landing file")  # ignored by the loader, so not a change
    _age(landing)
    assert isinstance(evaluate_landing(landing, warehouse, new)[1], dg.SkipReason)
    (landing / "sales" / "sales_lines_2024q2.csv").unlink()  # a removed file is a change
    assert isinstance(evaluate_landing(landing, warehouse, new)[1], dg.RunRequest)


def test_sensor_definition_keeps_its_cursor(tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    paths = StockturnPaths(landing_dir=str(landing), warehouse=str(tmp_path / "w.duckdb"), report_dir=str(tmp_path))
    context = dg.build_sensor_context(resources={"paths": paths})
    first = landing_files_sensor(context)
    assert isinstance(first, dg.RunRequest) and context.cursor
    second = landing_files_sensor(dg.build_sensor_context(cursor=context.cursor, resources={"paths": paths}))
    assert isinstance(second, dg.SkipReason)
    missing = StockturnPaths(landing_dir=str(tmp_path / "nope"), warehouse=str(tmp_path / "w.duckdb"),
                             report_dir=str(tmp_path))
    assert isinstance(landing_files_sensor(dg.build_sensor_context(resources={"paths": missing})), dg.SkipReason)


# ------------------------------------------------------------------------------------------------ forecast checks


def _backtest(rows: dict[tuple[str, str], float]) -> pl.DataFrame:
    """Pooled hold-out rows in the long layout of ml.forecast_backtest, plus a per-origin row that must be ignored."""
    data = [(None, "holdout", "overall", model, metric, value) for (model, metric), value in rows.items()]
    data.append((date(2024, 1, 1), "holdout", "overall", "selected", "rmsse", 99.0))
    return pl.DataFrame(data, schema={"origin": pl.Date, "split": pl.String, "level": pl.String, "model": pl.String,
                                      "metric": pl.String, "value": pl.Float64}, orient="row")


GOOD_BACKTEST = {("selected", "coverage_80"): 0.78, ("selected", "coverage_95"): 0.94,
                 ("selected", "ltd_coverage_p90"): 0.91, ("selected", "rmsse"): 0.8, ("seasonal_naive", "rmsse"): 1.0,
                 ("selected", "mase"): 0.7, ("seasonal_naive", "mase"): 1.0}


def _tables(**overrides: pl.DataFrame) -> dict[str, pl.DataFrame]:
    keys = pl.DataFrame({"product_id": ["P1", "P1", "P2"], "location_id": ["L1", "L2", "L1"]})
    days = pl.DataFrame({"period_start": pl.date_range(pl.date(2024, 1, 1), pl.date(2024, 1, 7), eager=True)})
    forecast = keys.join(days, how="cross").with_columns(
        pl.int_range(1, 8).over("product_id", "location_id").cast(pl.Int32).alias("horizon"),
        pl.lit(2.0).alias("forecast"), pl.lit(0.5).alias("q100"), pl.lit(4.0).alias("q900"),
        pl.lit("tsb").alias("model"))
    tables = {
        "demand_forecast": forecast,
        "forecast_backtest": _backtest(GOOD_BACKTEST),
        "lead_time_demand": keys.with_columns(pl.lit(14.0).alias("ltd_mean"), pl.lit(1000).alias("n_samples")),
        "inventory_policy": keys.with_columns(pl.lit(20.0).alias("reorder_point")),
        "purchase_proposals": keys.head(1),
        "exceptions": keys.head(0),
    }
    tables.update(overrides)
    return tables


def _outcomes(tables, summary=None) -> dict[str, checks.CheckOutcome]:
    return {o.name: o for o in checks.evaluate_forecast_checks(tables, summary)}


def test_forecast_checks_pass_on_good_tables() -> None:
    outcomes = _outcomes(_tables())
    assert all(o.passed for o in outcomes.values()), {n: o.metadata for n, o in outcomes.items() if not o.passed}
    assert outcomes["interval_coverage"].metadata["coverage_80"] == pytest.approx(0.78)
    assert outcomes["interval_coverage"].metadata["ltd_coverage_p90"] == pytest.approx(0.91)
    assert outcomes["beats_seasonal_naive"].metadata["rmsse_skill_vs_naive"] == pytest.approx(0.2)


def test_forecast_checks_catch_problems() -> None:
    good = _tables()
    gappy = good["demand_forecast"].filter(~((pl.col("product_id") == "P2") & (pl.col("horizon") > 3)))
    assert not _outcomes(_tables(demand_forecast=gappy))["forecast_complete"].passed
    missing_series = good["demand_forecast"].filter(pl.col("product_id") == "P1")
    assert not _outcomes(_tables(demand_forecast=missing_series))["forecast_complete"].passed
    nulls = good["demand_forecast"].with_columns(pl.when(pl.col("product_id") == "P2").then(None)
                                                 .otherwise(pl.col("forecast")).alias("forecast"))
    assert not _outcomes(_tables(demand_forecast=nulls))["forecast_complete"].passed
    negative = good["demand_forecast"].with_columns(pl.lit(-0.1).alias("q100"))
    out = _outcomes(_tables(demand_forecast=negative))["forecast_non_negative"]
    assert not out.passed and "q100" in out.metadata["columns_with_negatives"]
    partial_policy = _tables(inventory_policy=good["inventory_policy"].head(2))
    assert not _outcomes(partial_policy)["policy_covers_every_series"].passed
    worse = _backtest({**GOOD_BACKTEST, ("selected", "mase"): 1.1})
    out = _outcomes(_tables(forecast_backtest=worse))["beats_seasonal_naive"]
    assert not out.passed and out.severity == dg.AssetCheckSeverity.WARN
    undercovered = _backtest({**GOOD_BACKTEST, ("selected", "ltd_coverage_p90"): 0.7})
    out = _outcomes(_tables(forecast_backtest=undercovered))["interval_coverage"]
    assert not out.passed and "ltd_coverage_p90" in out.metadata["worst"]


def test_backtest_checks_fall_back_to_the_summary() -> None:
    bare = _tables(forecast_backtest=pl.DataFrame({"product_id": ["P1"], "location_id": ["L1"]}))
    summary = {"holdout_coverage": {"coverage_80": 0.79, "coverage_95": 0.80},
               "holdout_accuracy": {"selected": {"mase": 0.9, "rmsse": 0.8},
                                    "seasonal_naive": {"mase": 1.0, "rmsse": 1.0}}}
    outcomes = _outcomes(bare, summary)
    assert not outcomes["interval_coverage"].passed  # the 95% interval covered only 80%
    assert outcomes["beats_seasonal_naive"].passed and outcomes["beats_seasonal_naive"].metadata["evaluated"]
    outcomes = _outcomes(bare, {})
    assert outcomes["interval_coverage"].metadata["evaluated"] is False
    assert outcomes["beats_seasonal_naive"].metadata["evaluated"] is False


def test_safety_stock_check_blocks_a_plan_far_above_the_textbook() -> None:
    """"stockturn recommends 3x the textbook" must never pass silently: a blocking check on the totals at 3x and
    a warning above 1.5x."""
    policy = _tables()["inventory_policy"].with_columns(
        pl.Series("safety_stock_value", [10.0, 20.0, 30.0]), pl.Series("classical_safety_stock_value", [10.0] * 3))
    summary = {"policy": {"guards": {"safety_stock_guard": 4, "max_safety_stock_ratio": 3.0,
                                     "warn_safety_stock_ratio": 1.5}}}
    out = _outcomes(_tables(inventory_policy=policy), summary)
    assert out["safety_stock_vs_classical"].passed  # 60 vs 30: 2x
    assert out["safety_stock_vs_classical"].metadata["ratio"] == pytest.approx(2.0)
    assert out["safety_stock_vs_classical"].metadata["guard_safety_stock_guard"] == 4
    warn = out["safety_stock_above_classical"]
    assert not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN
    tripled = policy.with_columns(pl.col("safety_stock_value") * 1.6)  # 96 vs 30: 3.2x
    out = _outcomes(_tables(inventory_policy=tripled), summary)["safety_stock_vs_classical"]
    assert not out.passed and out.severity == dg.AssetCheckSeverity.ERROR
    specs = {c.name: c for c in checks.FORECAST_CHECKS}
    assert specs["safety_stock_vs_classical"].blocking and not specs["safety_stock_above_classical"].blocking
    # 3.2x the textbook, but the items' own histories ask for 100: the block passes (the warning still fails)
    evidenced = tripled.with_columns(pl.Series("guard_reference_safety_stock", [30.0, 30.0, 40.0]),
                                     pl.Series("unit_cost", [1.0] * 3))
    out = _outcomes(_tables(inventory_policy=evidenced), summary)
    block = out["safety_stock_vs_classical"]
    assert block.passed and block.metadata["supported_by_evidence"]
    assert not out["safety_stock_above_classical"].passed
    unsupported = evidenced.with_columns(pl.Series("guard_reference_safety_stock", [10.0, 10.0, 10.0]))
    assert not _outcomes(_tables(inventory_policy=unsupported), summary)["safety_stock_vs_classical"].passed
    within = policy.with_columns(pl.Series("safety_stock_value", [10.0, 10.0, 20.0]))  # 40 / 30 = 1.33x
    assert all(o.passed for o in _outcomes(_tables(inventory_policy=within), {}).values()
               if o.name.startswith("safety_stock"))
