"""Skip the dbt nodes whose inputs have not changed since they were last built.

A night lands new files for a few entities (sales lines, transfers, COGS postings). Every model that reads none of
them, directly or through other models, would be rebuilt from the same rows into the same table, and its tests
would test the same rows again. So after each ``dbt build`` every node that succeeded records a fingerprint of
what it was built from, in ``audit.dbt_node_builds``:

- the dbt project: every file the manifest depends on, the seeds included, and the dbt version
  (``orchestration.dbt_manifest.project_fingerprint``), with the invocation's ``--vars``;
- for a node that reads the landing zone: the files landed in each raw table among its ancestors (path, SHA-256,
  rows kept and quarantined, from ``raw.landing_files``). The loader's bookkeeping tables (``raw.landing_files``,
  ``raw.landing_entities``, ``raw._load_rejects``) change with any file.

A node with an ancestor outside the landing zone (the ``ml`` write-back) has no fingerprint: it always runs.
Unit tests read no data, so the project alone fingerprints them.

The next ``dbt build`` (not a full refresh) excludes the nodes whose fingerprint is unchanged, except a model or
seed with a changed test on it (dbt leaves a node's tests out with the node, and a test across an unchanged table
and a changed one, the new sales lines' product ids against the product master, must run; ``_closed``). A node
that failed,
warned or was skipped is not recorded, so it runs again; a new stockturn version or an edited model, seed or macro
changes every fingerprint, so everything runs. ``tests/test_incremental_mart.py`` proves that a chain of such
nightly builds still equals a full rebuild, row for row.

A model or seed whose table is missing is built again. One thing a skipped model does not see is the date:
staging quarantines rows dated after the load date, and in a raw table that gets no new file such a row stays
quarantined until the table's files change or ``--full-refresh``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("stockturn.dbt")

SCHEMA = "audit"
TABLE = f"{SCHEMA}.dbt_node_builds"
RAW_SCHEMA = "raw"
#: the loader's bookkeeping tables: they change whenever any landed file does
BOOKKEEPING_TABLES = ("landing_files", "landing_entities", "_load_rejects")
#: statuses after which a node's table (or test outcome) stands for its inputs
RECORDED_STATUSES = ("success", "pass")


def landing_fingerprints(con) -> dict[str, str]:
    """``raw.<table>`` -> a fingerprint of the files landed in it (nothing when the loader has not run)."""
    try:
        files = con.execute("""
            select system || '__' || entity as raw_table, file, sha256, rows_loaded, rows_rejected,
                   missing_optional_columns::varchar, ignored_columns::varchar
            from raw.landing_files
            order by raw_table, file
        """).fetchall()
        entities = con.execute("""
            select system || '__' || entity as raw_table, present, files, rows
            from raw.landing_entities
            order by raw_table
        """).fetchall()
    except Exception:  # noqa: BLE001 - no bookkeeping yet (an empty warehouse): nothing can be skipped
        return {}
    parts: dict[str, list[str]] = {}
    for raw_table, *rest in [*entities, *files]:
        parts.setdefault(str(raw_table).lower(), []).append(json.dumps(rest, default=str))
    out = {f"{RAW_SCHEMA}.{table}": _hash(lines) for table, lines in parts.items()}
    everything = _hash(sorted(out.values()))
    for table in BOOKKEEPING_TABLES:
        out[f"{RAW_SCHEMA}.{table}"] = everything
    return out


def node_fingerprints(manifest: Mapping[str, Any], landing: Mapping[str, str], project: str,
                      vars: Mapping[str, Any] | None = None) -> dict[str, str | None]:
    """unique id -> the fingerprint of what the node is built from, or None (always run), for every model, seed,
    snapshot, data test and unit test of ``manifest``."""
    base = _hash([project, json.dumps(dict(vars or {}), sort_keys=True, default=str)])
    sources = manifest.get("sources", {})
    parents = manifest.get("parent_map", {})
    ancestors: dict[str, frozenset[str]] = {}

    def source_ancestors(node: str) -> frozenset[str]:
        if node in ancestors:
            return ancestors[node]
        ancestors[node] = frozenset()  # guards a cycle (there is none in a parsed project)
        found: set[str] = set()
        for parent in parents.get(node, ()):
            found |= {parent} if parent in sources else source_ancestors(parent)
        ancestors[node] = frozenset(found)
        return ancestors[node]

    out: dict[str, str | None] = {}
    nodes = {**manifest.get("nodes", {}), **manifest.get("unit_tests", {})}
    for uid, node in nodes.items():
        if node.get("resource_type") not in ("model", "seed", "snapshot", "test", "unit_test"):
            continue
        if node.get("resource_type") == "unit_test":
            out[uid] = base
            continue
        keys = []
        for source in sorted(source_ancestors(uid)):
            relation = _relation(sources[source])
            keys.append(landing.get(relation))
        out[uid] = None if any(k is None for k in keys) else _hash([base, *keys])
    return out


@dataclass(frozen=True)
class Unchanged:
    """The nodes a build can leave out: their unique ids, and the ``--exclude`` arguments that leave them out (data
    tests, models and seeds by name; unit tests together, ``test_type:unit``, when none of them changed)."""

    unique_ids: frozenset[str] = frozenset()
    selectors: tuple[str, ...] = ()

    def exclude_args(self) -> list[str]:
        # one space-separated value: dbt reads it as a union, and dagster-dbt takes one value per --exclude
        return ["--exclude", " ".join(self.selectors)] if self.selectors else []


def unchanged_nodes(warehouse: Path, manifest_path: Path, vars: Mapping[str, Any] | None = None, *,
                    project_dir: Path | None = None) -> Unchanged:
    """The nodes whose recorded fingerprint equals the current one; none when there is no manifest or no record
    yet (the first build runs everything). ``project_dir``: the dbt project the build runs (default: stockturn's)."""
    from ml.warehouse import open_duckdb

    manifest_path = Path(manifest_path)
    if not manifest_path.exists() or not Path(warehouse).exists():
        return Unchanged()
    manifest = json.loads(manifest_path.read_text())
    with open_duckdb(warehouse, read_only=True) as con:
        try:
            recorded = dict(con.execute(f"select unique_id, fingerprint from {TABLE}").fetchall())
        except Exception:  # noqa: BLE001 - no record yet
            return Unchanged()
        landing = landing_fingerprints(con)
        relations = {f"{schema}.{name}".lower() for schema, name in con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "union all select schema_name, view_name from duckdb_views()").fetchall()}
    current = node_fingerprints(manifest, landing, _project(project_dir), vars)
    same = {uid for uid, fp in current.items() if fp is not None and recorded.get(uid) == fp}
    nodes = {**manifest.get("nodes", {}), **manifest.get("unit_tests", {})}
    # a model or seed whose table is gone (dropped by hand, a restored older file) is built again
    same -= {uid for uid in list(same) if nodes[uid]["resource_type"] in ("model", "seed", "snapshot")
             and nodes[uid].get("config", {}).get("materialized") != "ephemeral"
             and f"{nodes[uid].get('schema')}.{nodes[uid].get('alias') or nodes[uid]['name']}".lower()
             not in relations}
    same = _closed(same, manifest)
    unit = [uid for uid in current if nodes[uid]["resource_type"] == "unit_test"]
    names = sorted(nodes[uid]["name"] for uid in same if nodes[uid]["resource_type"] != "unit_test")
    if unit and all(uid in same for uid in unit):
        names.append("test_type:unit")
    else:
        same -= set(unit)
    return Unchanged(frozenset(same), tuple(names))


def _closed(same: set[str], manifest: Mapping[str, Any]) -> set[str]:
    """dbt leaves out the tests of an excluded node with it (indirect selection), so a node is left out only when
    every test on it is left out too: a test across an unchanged and a changed table (the sales lines' product ids
    against the product master) still runs, and so does the product master. One pass is enough: this removes
    models and seeds only, so no test's membership changes."""
    children = manifest.get("child_map", {})
    return {uid for uid in same if not any(c.startswith("test.") and c not in same for c in children.get(uid, ()))}


def topological(unique_ids: set[str], manifest: Mapping[str, Any]) -> list[str]:
    """``unique_ids`` with every node after the nodes it depends on."""
    parents = manifest.get("parent_map", {})
    out: list[str] = []
    seen: set[str] = set()

    def visit(uid: str) -> None:
        if uid in seen:
            return
        seen.add(uid)
        for parent in parents.get(uid, ()):
            if parent in unique_ids:
                visit(parent)
        out.append(uid)

    for uid in sorted(unique_ids):
        visit(uid)
    return out


def record_built_nodes(warehouse: Path, target_path: Path, vars: Mapping[str, Any] | None = None, *,
                       project_dir: Path | None = None) -> int:
    """After a ``dbt build``: record the fingerprint of every node that succeeded or passed in it, and forget the
    nodes that ran and did not (they run again next time). Returns the nodes recorded."""
    from ml.warehouse import open_duckdb

    target_path = Path(target_path)
    results_path, manifest_path = target_path / "run_results.json", target_path / "manifest.json"
    if not results_path.exists() or not manifest_path.exists():
        return 0
    results = json.loads(results_path.read_text()).get("results", [])
    manifest = json.loads(manifest_path.read_text())
    with open_duckdb(warehouse) as con:
        current = node_fingerprints(manifest, landing_fingerprints(con), _project(project_dir), vars)
        status = {r["unique_id"]: str(r.get("status")) for r in results if r.get("unique_id") in current}
        ran = list(status)
        good = [(uid, current[uid]) for uid in ran
                if current[uid] is not None and status[uid] in RECORDED_STATUSES]
        now = datetime.now(UTC).replace(tzinfo=None)
        con.execute(f"create schema if not exists {SCHEMA}")
        con.execute(f"create table if not exists {TABLE} (unique_id varchar primary key, fingerprint varchar, "
                    "built_at timestamp)")
        con.execute("begin")
        con.execute(f"delete from {TABLE} where unique_id in (select unnest(?))", [ran])
        con.execute(f"delete from {TABLE} where unique_id not in (select unnest(?))", [list(current)])
        if good:
            con.executemany(f"insert into {TABLE} values (?, ?, ?)", [(uid, fp, now) for uid, fp in good])
        con.execute("commit")
    return len(good)


def _project(project_dir: Path | None) -> str:
    from orchestration.dbt_manifest import project_fingerprint

    return project_fingerprint(project_dir) if project_dir is not None else project_fingerprint()


def _relation(source: Mapping[str, Any]) -> str:
    return f"{source.get('schema')}.{source.get('identifier') or source.get('name')}".lower()


def _hash(parts: list[Any]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(str(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:24]
