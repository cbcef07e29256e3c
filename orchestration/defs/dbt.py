"""dbt models, seeds and tests as Dagster assets and asset checks (one ``@dbt_assets`` over the whole project).

* **Keys** follow the warehouse: ``[schema, name]`` (``["staging", "stg_sales__sales_lines"]``,
  ``["marts", "dim_product"]``, ``["planning", "service_levels"]`` for seeds). Sources keep the key their
  ``config.meta.dagster.asset_key`` names: ``["raw", ...]`` (made by the landing asset) and ``["ml", ...]``
  (made by the demand-planning asset), which is how dbt models end up downstream of Python assets.
* **Groups** follow the pipeline: ``staging``, ``intermediate``, ``marts``, ``planning`` (seeds) and
  ``reports`` for the models that read the ML write-back (tag ``ml_downstream``), live in ``models/reports/`` or
  are named ``rpt_*``.
* **dbt -> Python -> dbt.** Models tagged ``ml_downstream`` depend on ``ml.*`` sources, so they sit after the
  planning assets (``demand_forecasting``, ``replenishment_policy``) while every other model and the seeds sit
  before them. The definition is subsettable: a run of everything executes it as two steps around the planning
  steps (Dagster splits the op), each a ``dbt build`` of its own selection.
* **dbt build** runs models, seeds and their tests in DAG order: an error-severity test failure skips the models
  downstream of it and fails the step, so nothing downstream in Dagster runs either. dbt data tests are asset
  checks (dagster-dbt's default); unit tests are not (dbt runs them in the same ``build``).
"""

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.asset_utils import get_asset_check_key_for_test

from ml.settings import DBT_PROJECT_DIR
from ml.warehouse import open_duckdb
from orchestration.dbt_cli import discard_stale_partial_parse, target_path_for
from orchestration.dbt_manifest import ensure_manifest
from orchestration.dbt_tests import record_test_results
from orchestration.dbt_unchanged import Unchanged, record_built_nodes, topological, unchanged_nodes
from orchestration.defs.resources import WAREHOUSE_POOL, StockturnPaths, warehouse_env

ML_DOWNSTREAM_TAG = "ml_downstream"
LAYER_GROUPS = ("staging", "intermediate", "marts")


class StockturnDbtTranslator(DagsterDbtTranslator):
    """Asset keys by warehouse schema, groups by pipeline layer (see the module docstring)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        meta_key = (dbt_resource_props.get("meta") or {}).get("dagster", {}).get("asset_key") or (
            (dbt_resource_props.get("config") or {}).get("meta") or {}
        ).get("dagster", {}).get("asset_key")
        if dbt_resource_props["resource_type"] == "source" or meta_key:
            return super().get_asset_key(dbt_resource_props)
        name = dbt_resource_props.get("alias") or dbt_resource_props["name"]
        return dg.AssetKey([dbt_resource_props["schema"], name])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        resource_type = dbt_resource_props["resource_type"]
        if resource_type == "seed":
            return "planning"
        if resource_type == "source":
            return None
        tags = dbt_resource_props.get("tags") or []
        fqn = dbt_resource_props.get("fqn") or []
        layer = fqn[1] if len(fqn) > 2 else None
        if ML_DOWNSTREAM_TAG in tags or layer == "reports" or dbt_resource_props["name"].startswith("rpt_"):
            return "reports"
        return layer if layer in LAYER_GROUPS else "marts"


TRANSLATOR = StockturnDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


def dbt_project(project_dir: Path = DBT_PROJECT_DIR) -> DbtProject:
    """The real dbt project directory with the manifest for its current content (parsed if missing)."""
    manifest = ensure_manifest(project_dir)
    return DbtProject(project_dir=project_dir, target_path=manifest.parent.relative_to(project_dir))


def run_target_path(warehouse: Path) -> Path:
    """dbt artifacts of Dagster runs: beside the warehouse (like ``stockturn build``'s), in their own folder.

    One folder per warehouse, so dbt's partial parsing carries over from run to run; runs against one warehouse
    never overlap (single writer), so its steps take turns using it.
    """
    return target_path_for(warehouse) / "dagster"


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False
    """Rebuild the incremental models (the daily stock positions) from scratch (default: only what changed)."""


def build_dbt_assets(project: DbtProject) -> dg.AssetsDefinition:
    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=TRANSLATOR,
        name="dbt_build",
        pool=WAREHOUSE_POOL,
    )
    def dbt_build(context: dg.AssetExecutionContext, dbt: DbtCliResource, paths: StockturnPaths,
                  config: DbtBuildConfig):
        """`dbt build` of the selected models, seeds and tests against the configured warehouse (incremental
        models add what changed, unless ``full_refresh``)."""
        warehouse = paths.warehouse_path
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        target = run_target_path(warehouse)
        discard_stale_partial_parse(target)
        # claim the warehouse for this run's process (waiting for another writer, bounded): dbt, its child, is
        # not blocked by the claim, and no other writer gets in between this step and the next
        open_duckdb(warehouse, claim=True).close()
        t0 = time.perf_counter()
        args = ["build", "--full-refresh"] if config.full_refresh else ["build"]
        # nodes whose landed inputs and code are unchanged since they last succeeded are left out (their tables
        # stand; orchestration.dbt_unchanged)
        project_dir = Path(project.project_dir)
        skipped = Unchanged() if config.full_refresh else unchanged_nodes(warehouse, project.manifest_path,
                                                                            project_dir=project_dir)
        if skipped.unique_ids:
            context.log.info("dbt: skipping %d nodes whose inputs are unchanged since they last succeeded",
                             len(skipped.unique_ids))
        with warehouse_env(warehouse):
            invocation = dbt.cli([*args, *skipped.exclude_args()], context=context, target_path=target,
                                 raise_on_error=False)
            # held back until dbt exits: the row counts need the warehouse, which the dbt process holds
            events = list(invocation.stream())
        seconds = time.perf_counter() - t0
        keys = {ev.output_name: context.asset_key_for_output(ev.output_name) for ev in events
                if isinstance(ev, dg.Output)}
        counts = table_row_counts(warehouse, keys.values()) if keys else {}
        events = [ev.with_metadata({**ev.metadata, "dagster/row_count": counts[keys[ev.output_name]]})
                  if isinstance(ev, dg.Output) and keys[ev.output_name] in counts else ev for ev in events]
        # a table left as it was still stands for this run, so the assets downstream of it (the plan) run: its
        # output and its tests' results join dbt's events in dependency order, as a multi-asset must yield them
        if skipped.unique_ids:
            manifest = json.loads(Path(project.manifest_path).read_text())
            yielded = {ev.output_name for ev in events if isinstance(ev, dg.Output)}
            unchanged = [*unchanged_outputs(context, skipped, yielded, manifest),
                         *unchanged_check_results(context, skipped, manifest, project)]
            events = in_dependency_order(context, events, unchanged, manifest)
        yield from events
        context.log.info("dbt %s finished in %.1f s (artifacts in %s)", " ".join(args), seconds, target)
        try:
            record_built_nodes(warehouse, target, project_dir=project_dir)
        except Exception as exc:  # noqa: BLE001 - it only costs the next build its shortcut
            context.log.error("could not record the built nodes' inputs in %s: %s", warehouse, exc)
        for warned in record_test_results(warehouse, target):
            context.log.warning("data check warned (the run goes on): %s", warned.describe())
        if not invocation.is_successful():
            raise dg.Failure(
                description=dbt_failure_summary(invocation),
                metadata={"dbt_artifacts": dg.MetadataValue.path(str(target)), "seconds": round(seconds, 1)},
            )

    return dbt_build


def unchanged_outputs(context: dg.AssetExecutionContext, skipped: Unchanged, yielded: set[str],
                      manifest: Mapping[str, Any]):
    """An output for each selected model or seed the build left out because its inputs had not changed: its table
    stands as the last build wrote it, and without an output Dagster would skip every asset downstream of it."""
    output_by_key = {key: name for name, key in context.assets_def.keys_by_output_name.items()}
    for uid in sorted(skipped.unique_ids):  # in_dependency_order puts them in the graph's order
        node = manifest.get("nodes", {}).get(uid)
        if node is None or node.get("resource_type") not in ("model", "seed"):
            continue
        name = output_by_key.get(TRANSLATOR.get_asset_key(node))
        if name is not None and name in context.selected_output_names and name not in yielded:
            yield uid, dg.Output(None, output_name=name, metadata={
                "stockturn/unchanged": dg.MetadataValue.text(
                    "not rebuilt: its landed inputs and the dbt project are unchanged since it last succeeded "
                    "(orchestration.dbt_unchanged)")})


def unchanged_check_results(context: dg.AssetExecutionContext, skipped: Unchanged, manifest: Mapping[str, Any],
                            project: DbtProject):
    """The result of each selected dbt test the build left out: it passed when it last ran, on the same landed
    inputs and project (only passing tests are left out), so its blocking check does not hold the plan back."""
    for uid in sorted(skipped.unique_ids):
        if not uid.startswith("test."):
            continue
        key = get_asset_check_key_for_test(manifest, TRANSLATOR, uid, project)
        if key is not None and key in context.selected_asset_check_keys:
            yield uid, dg.AssetCheckResult(asset_key=key.asset_key, check_name=key.name, passed=True, metadata={
                "stockturn/unchanged": dg.MetadataValue.text(
                    "not run again: it passed on the same landed inputs and dbt project "
                    "(orchestration.dbt_unchanged)")})


def in_dependency_order(context: dg.AssetExecutionContext, events: list, unchanged: list[tuple[str, Any]],
                        manifest: Mapping[str, Any]) -> list:
    """dbt's events and the (unique id, event) pairs of the nodes left out, merged so that every node's events
    come after those of the nodes it depends on. An event that names no node keeps its place after the one
    before it."""
    nodes = manifest.get("nodes", {})
    rank = {uid: i for i, uid in enumerate(topological(set(nodes), manifest))}
    uid_by_key = {TRANSLATOR.get_asset_key(n): uid for uid, n in nodes.items() if n.get("resource_type") != "test"}
    test_by_name = {n["name"]: uid for uid, n in nodes.items() if n.get("resource_type") == "test"}
    keys = context.assets_def.keys_by_output_name
    ranked, last = [], -1
    for seq, ev in enumerate(events):
        uid = None
        if isinstance(ev, dg.Output):
            uid = uid_by_key.get(keys.get(ev.output_name))
        elif isinstance(ev, dg.AssetCheckResult):
            uid = test_by_name.get(ev.check_name)
        last = rank.get(uid, last)
        ranked.append((last, 1, seq, ev))
    ranked += [(rank.get(uid, -1), 0, seq, ev) for seq, (uid, ev) in enumerate(unchanged)]
    return [ev for *_, ev in sorted(ranked, key=lambda r: r[:3])]


def table_row_counts(warehouse: Path, keys) -> dict[dg.AssetKey, int]:
    """Rows of every base table among ``keys`` (``[schema, table]``); views are not counted (they would run)."""
    import duckdb

    wanted = {tuple(k.path): k for k in keys if len(k.path) == 2}
    counts: dict[dg.AssetKey, int] = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE'"
        ).fetchall()
        for schema, table in tables:
            key = wanted.get((schema, table))
            if key is not None:
                (counts[key],) = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()
    return counts


def dbt_failure_summary(invocation) -> str:
    """The failed and errored nodes of a dbt invocation, one per line, from its run_results.json."""
    lines = []
    try:
        results = invocation.get_artifact("run_results.json").get("results", [])
    except Exception:  # no run_results.json: dbt failed before running anything (parse or profile error)
        results = []
    for node in results:
        if node.get("status") in ("error", "fail", "runtime error"):
            message = " ".join((node.get("message") or "").split())
            lines.append(f"{node.get('unique_id')}: {node.get('status')}: {message[:400]}")
    skipped = sum(1 for node in results if node.get("status") == "skipped")
    head = f"dbt build failed: {len(lines)} error(s)" + (f", {skipped} node(s) skipped downstream" if skipped else "")
    if not lines:
        error = invocation.get_error()
        lines.append(str(error) if error else "see the step's logs")
    return head + "\n" + "\n".join(f"- {line}" for line in lines)


def manifest_nodes(project: DbtProject) -> dict[str, Any]:
    import json

    return json.loads(project.manifest_path.read_text())


def dbt_asset_keys(manifest: Mapping[str, Any], *, resource_type: str, schema: str | None = None) -> list[dg.AssetKey]:
    """Asset keys of the manifest's nodes of one type (optionally in one schema)."""
    keys = []
    for node in manifest["nodes"].values():
        if node["resource_type"] == resource_type and (schema is None or node["schema"] == schema):
            keys.append(TRANSLATOR.get_asset_key(node))
    return sorted(keys, key=lambda k: k.to_user_string())
