"""Why each dbt data test is an error or a warning, and what the last build's tests found.

**Fail soft on data, fail hard on structure.** A dbt test's severity follows what its failure means:

* *Structure* (``error``): keys, grain, codes, references and the row bookkeeping. The staging models quarantine
  every row that would break them (``duplicate_key``, ``missing_value``, ``unknown_product`` ...), so a failure is
  a defect or a changed contract, not a bad row, and every number built on a broken key would be wrong: the
  models downstream are skipped and the last good tables stay.
* *Value invariants* (``warn``): signs, ranges, balances and roll-ups over values. One bad row that got past the
  plausibility rules (or a combination of good rows) can break them; the build goes on, the failing rows are
  stored in schema ``exceptions`` and the report's data-quality section lists them.

A test may state its own reason (``config.meta.severity_reason``); otherwise its kind decides.
:func:`policy_violations` lists tests whose configured severity differs from the rule (checked by a test), and
``python -m orchestration.dbt_tests`` writes the reviewed list to ``docs/data-tests.md``.

After every ``dbt build`` the outcome of each test is recorded in ``audit.dbt_test_results`` (one row per test,
replaced by the test's latest run), which the report and the build summary read.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("stockturn.dbt")

RESULTS_SCHEMA = "audit"
RESULTS_TABLE = f"{RESULTS_SCHEMA}.dbt_test_results"
DOCS_PATH = Path(__file__).resolve().parents[1] / "docs" / "data-tests.md"

#: kind -> (severity, why), for tests that state no reason of their own.
SEVERITY_RULES: dict[str, tuple[str, str]] = {
    "unique": ("error", "key: staging quarantines duplicate keys (duplicate_key), so a duplicate is a defect that "
                        "would double-count every join on it"),
    "unique_combination_of_columns": ("error", "grain: one row per key is what every sum over the model assumes; a "
                                               "repeated key is a defect (a join that fans out)"),
    "unique_for_rows_written_by_the_last_build": ("error", "grain of an incremental table: a key the latest build "
                                                           "wrote that another row holds is a defect (a join that "
                                                           "fans out)"),
    "not_null": ("error", "key or required value: staging quarantines blank required values (missing_value), so a "
                          "null here is a defect"),
    "relationships": ("error", "reference: staging quarantines unknown products, locations and orders and nulls an "
                               "unknown replenishing location (a field issue), so a dangling key is a defect"),
    "accepted_values": ("error", "code: codes are validated in staging or made by stockturn's SQL; an unknown code "
                                 "would be mis-aggregated silently"),
    "row_count_equals_model": ("error", "bookkeeping: two models that must hold the same rows do not"),
    "not_negative": ("warn", "value invariant: a negative stock, quantity or amount that got past the plausibility "
                             "rules; the rows are kept in schema exceptions and reported, the build goes on"),
    "accepted_range": ("warn", "value invariant: a value outside its range; the rows are kept in schema exceptions "
                               "and reported, the build goes on"),
    "expression_is_true": ("warn", "value invariant (a roll-up or a consistency rule); the rows are kept in schema "
                                   "exceptions and reported, the build goes on"),
    "singular": ("warn", "value invariant (a balance); the rows are kept in schema exceptions and reported, the "
                         "build goes on"),
}


@dataclass(frozen=True)
class TestPolicy:
    kind: str
    severity: str
    reason: str


def test_kind(node: dict[str, Any]) -> str:
    """The generic test's name (``not_null``, ``accepted_range`` ...) or ``singular`` for a SQL file test."""
    return (node.get("test_metadata") or {}).get("name") or "singular"


def configured_severity(node: dict[str, Any]) -> str:
    return str((node.get("config") or {}).get("severity") or "error").lower()


def policy_for(node: dict[str, Any]) -> TestPolicy:
    """The severity a test should have and why (its own ``meta.severity_reason`` wins over its kind's rule)."""
    kind = test_kind(node)
    meta = (node.get("config") or {}).get("meta") or node.get("meta") or {}
    if meta.get("severity_reason"):
        return TestPolicy(kind, configured_severity(node), str(meta["severity_reason"]))
    if kind not in SEVERITY_RULES:
        return TestPolicy(kind, "?", f"no severity rule for test kind {kind!r}: add one to SEVERITY_RULES")
    severity, reason = SEVERITY_RULES[kind]
    return TestPolicy(kind, severity, reason)


def data_tests(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in manifest.get("nodes", {}).values() if n.get("resource_type") == "test"]


def tested_model(node: dict[str, Any]) -> str:
    attached = node.get("attached_node") or ""
    if attached:
        return attached.split(".")[-1]
    depends = [d for d in (node.get("depends_on") or {}).get("nodes", []) if d.startswith("model.")]
    return ", ".join(d.split(".")[-1] for d in depends)


def policy_violations(manifest: dict[str, Any]) -> list[str]:
    """Tests whose configured severity is not the one the rules give (or whose kind has no rule)."""
    out = []
    for node in data_tests(manifest):
        policy = policy_for(node)
        if policy.severity != configured_severity(node):
            out.append(f"{node['name']} ({policy.kind} on {tested_model(node)}): configured "
                       f"{configured_severity(node)}, the rule says {policy.severity}: {policy.reason}")
    return sorted(out)


def render_markdown(manifest: dict[str, Any]) -> str:
    """docs/data-tests.md: every data test with its severity and why, errors first."""
    rows = []
    for node in data_tests(manifest):
        policy = policy_for(node)
        kind = policy.kind
        if node.get("config", {}).get("where") == "written_by_the_last_build":
            kind += " (rows of the latest build)"
        rows.append((configured_severity(node), tested_model(node), node.get("column_name") or "", kind,
                     node["name"], policy.reason))
    rows.sort(key=lambda r: (r[0] != "error", r[1], r[2], r[3], r[4]))
    lines = [
        "# Data tests: which stop the build and which warn",
        "",
        "<!-- generated by `python -m orchestration.dbt_tests`; do not edit by hand -->",
        "",
        "Fail soft on data, fail hard on structure. Every dbt data test of the project is listed below with its",
        "severity and the reason for it (the rules are in `orchestration/dbt_tests.py`; a test may state its own in",
        "`config.meta.severity_reason`; `tests/test_dbt_tests.py` fails when a configured severity and the rules",
        "disagree).",
        "",
        "* **error**: keys, grain, codes, references and the row bookkeeping. The staging models quarantine every",
        "  row that would break them, so a failure is a defect or a changed contract, not a bad row. dbt skips the",
        "  models downstream and the previous tables stay in place; `stockturn build` exits with the failing tests",
        "  named.",
        "* **warn**: value invariants (signs, ranges, balances, roll-ups). One bad row that got past the plausibility",
        "  rules can break them, so they never stop the night: the build goes on, the failing rows are stored in",
        "  schema `exceptions` (one table per test, named after it), and the report's data-quality section and the",
        "  `stockturn build` summary list them.",
        "",
        "Tests marked *(rows of the latest build)* are on the large incremental tables: they check the rows the latest",
        "build wrote (every row after a full build, `stockturn build --full-refresh`), not the whole history again;",
        "a row whose inputs change is rewritten and so tested again (`where: written_by_the_last_build`,",
        "`dbt_project/macros/incremental_models.sql`).",
        "",
        "After every `dbt build` (CLI or Dagster) the outcome of each test is in `audit.dbt_test_results`: status,",
        "failing rows, severity, the reason, and the table holding the failing rows.",
        "",
        f"{sum(r[0] == 'error' for r in rows)} tests are errors, {sum(r[0] == 'warn' for r in rows)} warn.",
        "",
        "| Severity | Model | Column | Test | Name | Why |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {sev} | `{model}` | {f'`{col}`' if col else ''} | {kind} | `{name}` | {why} |"
              for sev, model, col, kind, name, why in rows]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ results record
@dataclass(frozen=True)
class TestOutcome:
    name: str
    model: str
    severity: str
    status: str
    failing_rows: int | None
    stored_in: str | None
    reason: str

    def describe(self) -> str:
        rows = f"{self.failing_rows:,} row{'s' if self.failing_rows != 1 else ''}" if self.failing_rows else "failed"
        where = f", rows in {self.stored_in}" if self.stored_in else ""
        return f"{self.name} on {self.model}: {rows}{where}"


def read_test_outcomes(target_path: Path) -> list[TestOutcome]:
    """The data tests of the dbt invocation whose artifacts are in ``target_path`` (empty when there are none)."""
    run_results, manifest_path = Path(target_path) / "run_results.json", Path(target_path) / "manifest.json"
    if not run_results.exists() or not manifest_path.exists():
        return []
    results = json.loads(run_results.read_text()).get("results", [])
    nodes = json.loads(manifest_path.read_text()).get("nodes", {})
    out = []
    for result in results:
        node = nodes.get(result.get("unique_id", ""))
        if node is None or node.get("resource_type") != "test":
            continue
        policy = policy_for(node)
        stored = result.get("relation_name") if (node.get("config") or {}).get("store_failures") else None
        out.append(TestOutcome(
            name=node["name"], model=tested_model(node), severity=configured_severity(node),
            status=str(result.get("status")), failing_rows=result.get("failures"),
            stored_in=str(stored).replace('"', "") if stored else None, reason=policy.reason,
        ))
    return out


def record_test_results(warehouse: Path, target_path: Path) -> list[TestOutcome]:
    """Upsert the outcome of every test of the last dbt invocation into ``audit.dbt_test_results``.

    Returns the outcomes that warned (and logs them). A test not run this time keeps its previous row; tests that
    no longer exist in the project are removed.
    """
    from ml.warehouse import open_duckdb

    outcomes = read_test_outcomes(target_path)
    if not outcomes:
        return []
    manifest = json.loads((Path(target_path) / "manifest.json").read_text())
    known = sorted(n["name"] for n in data_tests(manifest))
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [(o.name, o.model, o.severity, o.status, o.failing_rows, o.stored_in, o.reason, now) for o in outcomes]
    with open_duckdb(warehouse) as con:
        con.execute(f"create schema if not exists {RESULTS_SCHEMA}")
        con.execute(f"""
            create table if not exists {RESULTS_TABLE} (
                test_name varchar primary key, model varchar, severity varchar, status varchar,
                failing_rows bigint, failing_rows_relation varchar, severity_reason varchar, tested_at timestamp
            )""")
        con.execute("begin")
        con.execute(f"delete from {RESULTS_TABLE} where test_name in (select unnest(?))", [[r[0] for r in rows]])
        con.execute(f"delete from {RESULTS_TABLE} where test_name not in (select unnest(?))", [known])
        con.executemany(f"insert into {RESULTS_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute("commit")
    warned = [o for o in outcomes if o.status == "warn"]
    for o in warned:
        log.warning("data check warned (the build goes on): %s", o.describe())
    return warned


def main() -> None:  # pragma: no cover - thin CLI over render_markdown
    from orchestration.dbt_manifest import ensure_manifest

    manifest = json.loads(ensure_manifest().read_text())
    DOCS_PATH.write_text(render_markdown(manifest))
    print(f"wrote: {DOCS_PATH.relative_to(DOCS_PATH.parents[1])}")
    violations = policy_violations(manifest)
    if violations:
        raise SystemExit("severity differs from the rules:\n  " + "\n  ".join(violations))


if __name__ == "__main__":
    main()
