"""The Dagster code location without running it: loads, graph snapshot, executor and pools, translator, manifest
fingerprint, sensor decisions (the planning checks' logic: tests/test_plan_checks.py).

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
from pathlib import Path

import dagster as dg
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
    # an operator sets the study in the launchpad as on the command line (`stockturn backtest --replay-seeds`)
    op_config = defs.resolve_job_def("policy_backtest").graph.node_named("run_policy_backtest").definition.config_schema
    assert {"days", "history_days", "n_boot", "replay_seeds", "forecast_workers", "scenario"} <= set(
        op_config.config_type.fields)
    # every raw table of the contract and the loader's bookkeeping come from the landing asset
    assert {"raw/sales__sales_lines", "raw/landing_files", "raw/landing_entities", "raw/_load_rejects"} <= keys
    # every dbt source is produced by a Python asset (raw.* by landing, ml.* by the planning assets), except tables
    # nobody in this code location writes, which Dagster shows as external assets (none so far)
    external = sorted(k.to_user_string() for k in graph.get_all_asset_keys() if not graph.get(k).is_executable)
    assert not [k for k in external if k.startswith("raw/")], external
    # dbt sources resolve to the landing asset: staging depends on raw
    stg = graph.get(dg.AssetKey(["staging", "stg_sales__sales_lines__validated"]))
    assert dg.AssetKey(["raw", "sales__sales_lines"]) in stg.parent_keys or any(
        dg.AssetKey(["raw", "sales__sales_lines"]) in graph.get(p).parent_keys for p in stg.parent_keys)
    policy = graph.get(dg.AssetKey(["ml", "inventory_policy"]))
    assert {dg.AssetKey(["marts", "fct_sales_daily"]), dg.AssetKey(["planning", "service_levels"]),
            dg.AssetKey(["ml", "demand_forecast"])} <= set(policy.parent_keys)
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
    """Every ``schema.table`` the forecasting code queries is a dependency of ``demand_forecasting``, every one the
    policy code queries of ``replenishment_policy``; the planning seeds feed the policy only (a seed edit makes
    the plan stale, not the forecast)."""
    graph = defs.resolve_asset_graph()
    pattern = re.compile(r"\b(marts|staging|intermediate|planning)\.([a-z][a-z0-9_]*)\b")
    order_release = ("approval.py", "order_export.py")  # the order_release step's modules, checked below
    for package, key, files in (("ml/forecasting", "demand_forecast", None), ("ml/policy", "inventory_policy", None),
                                ("ml/policy", "proposal_approval", order_release)):
        declared = {k.to_user_string().replace("/", ".") for k in graph.get(dg.AssetKey(["ml", key])).parent_keys}
        read = set()
        for path in (PROJECT_ROOT / package).glob("*.py"):
            if (files is None) == (path.name in order_release):
                continue
            read |= {f"{s}.{t}" for s, t in pattern.findall(path.read_text())}
        assert read <= declared, f"{package} ({key}) reads tables not declared as deps: {sorted(read - declared)}"
    forecast_inputs = graph.get(dg.AssetKey(["ml", "demand_forecast"])).parent_keys
    policy_inputs = graph.get(dg.AssetKey(["ml", "inventory_policy"])).parent_keys
    assert not any(k.path[0] == "planning" for k in forecast_inputs)
    assert dg.AssetKey(["planning", "service_levels"]) in policy_inputs
    assert dg.AssetKey(["planning", "approval_rules"]) not in policy_inputs  # an edit re-releases, not re-plans
    assert dg.AssetKey(["ml", "lead_time_demand_samples"]) in policy_inputs


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


def test_a_partial_parse_state_written_for_other_project_content_is_discarded(tmp_path: Path) -> None:
    """dbt's partial parsing kept unit tests of the previous project version after an upgrade (the build then failed;
    a full parse passed): a per-warehouse target folder is parsed in full once when the project's content changed."""
    from orchestration.dbt_cli import PROJECT_STAMP_FILE, discard_stale_partial_parse

    target = tmp_path / "target"
    state = target / "partial_parse.msgpack"
    assert discard_stale_partial_parse(target) is False  # nothing to discard; the content is recorded
    assert (target / PROJECT_STAMP_FILE).read_text().strip() == project_fingerprint()
    state.write_bytes(b"state")
    assert discard_stale_partial_parse(target) is False and state.exists()  # same content: partial parsing
    (target / PROJECT_STAMP_FILE).write_text("written-by-another-version\n")
    assert discard_stale_partial_parse(target) is True and not state.exists()
    assert (target / PROJECT_STAMP_FILE).read_text().strip() == project_fingerprint()
    state.write_bytes(b"state")
    (target / PROJECT_STAMP_FILE).unlink()  # a state file from before the stamp existed
    assert discard_stale_partial_parse(target) is True and not state.exists()


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


def test_the_nightly_job_replans_without_forecasting_and_the_weekly_one_refits(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    nightly = defs.resolve_job_def("stockturn_nightly")
    keys = set(nightly.asset_layer.executable_asset_keys)
    for name in ("demand_forecast", "forecast_backtest", "lead_time_demand", "lead_time_demand_samples"):
        assert dg.AssetKey(["ml", name]) not in keys
    for name in ("inventory_policy", "purchase_proposals", "proposal_approval"):
        assert dg.AssetKey(["ml", name]) in keys
    assert dg.AssetKey(["raw", "sales__sales_lines"]) in keys and dg.AssetKey(["reports", "turnover_report"]) in keys
    from orchestration.defs import schedules

    assert schedules.nightly_job.config == {
        "ops": {"replenishment_policy": {"config": {"plan_as_of_latest_data": True}}}}  # today's stock
    weekly = {s.name: s for s in defs.schedules}["weekly_refit"]
    assert weekly.job_name == "stockturn_pipeline" and weekly.cron_schedule == "0 6 * * 0"
    assert {s.name: s for s in defs.schedules}["nightly_plan"].job_name == "stockturn_nightly"
    assert {s.name for s in defs.sensors} == {"landing_files_sensor", "forecast_drift_sensor"}
    assert graph.get(dg.AssetKey(["ml", "inventory_policy"])) is not None
