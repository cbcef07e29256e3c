"""What each dbt node is fingerprinted by (``orchestration.dbt_unchanged``), on a small hand-made manifest; the
chain of real nightly builds that skip unchanged nodes is in ``tests/test_incremental_mart.py``."""

from __future__ import annotations

import json

import duckdb

from orchestration.dbt_manifest import project_fingerprint
from orchestration.dbt_unchanged import TABLE, landing_fingerprints, node_fingerprints, unchanged_nodes

MANIFEST = {
    "sources": {
        "source.p.sales.sales_lines": {"schema": "raw", "identifier": "sales__sales_lines", "name": "sales_lines"},
        "source.p.master.products": {"schema": "raw", "identifier": "master__products", "name": "products"},
        "source.p.ml.demand_forecast": {"schema": "ml", "identifier": None, "name": "demand_forecast"},
    },
    "nodes": {
        "model.p.stg_sales": {"resource_type": "model", "name": "stg_sales", "schema": "marts"},
        "model.p.stg_products": {"resource_type": "model", "name": "stg_products", "schema": "marts"},
        "model.p.fct_sales": {"resource_type": "model", "name": "fct_sales", "schema": "marts"},
        "test.p.unique_products": {"resource_type": "test", "name": "unique_products"},
        "test.p.sales_products": {"resource_type": "test", "name": "relationships_sales_products"},
        "model.p.rpt_plan": {"resource_type": "model", "name": "rpt_plan", "schema": "marts"},
        "seed.p.service_levels": {"resource_type": "seed", "name": "service_levels", "schema": "marts"},
    },
    "unit_tests": {"unit_test.p.fct_sales.sums": {"resource_type": "unit_test", "name": "sums"}},
    "parent_map": {
        "model.p.stg_sales": ["source.p.sales.sales_lines"],
        "model.p.stg_products": ["source.p.master.products"],
        "model.p.fct_sales": ["model.p.stg_sales", "model.p.stg_products"],
        "test.p.unique_products": ["model.p.stg_products"],
        "test.p.sales_products": ["model.p.stg_sales", "model.p.stg_products"],
        "model.p.rpt_plan": ["model.p.fct_sales", "source.p.ml.demand_forecast"],
        "seed.p.service_levels": [],
        "unit_test.p.fct_sales.sums": ["model.p.fct_sales"],
    },
}


def test_a_node_changes_with_the_files_it_reads_and_the_project_only():
    landing = {"raw.sales__sales_lines": "s1", "raw.master__products": "p1"}
    before = node_fingerprints(MANIFEST, landing, "project-1")
    new_sales = node_fingerprints(MANIFEST, {**landing, "raw.sales__sales_lines": "s2"}, "project-1")
    changed = {uid for uid in before if before[uid] != new_sales[uid]}
    assert changed == {"model.p.stg_sales", "model.p.fct_sales", "test.p.sales_products"}
    # the ml write-back is not fingerprinted: a model reading it always runs
    assert before["model.p.rpt_plan"] is None
    # another project (an edited model, a new version) or other --vars: everything runs
    edited = node_fingerprints(MANIFEST, landing, "project-2")
    assert all(edited[uid] != before[uid] for uid in before if before[uid] is not None)
    with_vars = node_fingerprints(MANIFEST, landing, "project-1", {"as_of_date": "2024-06-30"})
    assert with_vars["model.p.stg_products"] != before["model.p.stg_products"]
    # unit tests and seeds read no landed data: the project alone
    assert new_sales["unit_test.p.fct_sales.sums"] == before["unit_test.p.fct_sales.sums"]
    assert new_sales["seed.p.service_levels"] == before["seed.p.service_levels"]
    # a raw table the loader has no record of: not fingerprinted
    assert node_fingerprints(MANIFEST, {"raw.sales__sales_lines": "s1"}, "project-1")["model.p.stg_products"] is None


def test_the_landing_fingerprint_follows_each_tables_files(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert landing_fingerprints(con) == {}  # nothing loaded yet: nothing can be skipped
    con.execute("create schema raw")
    con.execute("create table raw.landing_files (system varchar, entity varchar, file varchar, sha256 varchar, "
                "rows_loaded bigint, rows_rejected bigint, missing_optional_columns varchar[], "
                "ignored_columns varchar[])")
    con.execute("create table raw.landing_entities (system varchar, entity varchar, present boolean, files int, "
                "rows bigint)")
    con.execute("insert into raw.landing_files values ('sales', 'sales_lines', 'sales/a.csv', 'aa', 10, 0, [], []),"
                " ('master', 'products', 'master/products.csv', 'pp', 5, 0, [], [])")
    con.execute("insert into raw.landing_entities values ('sales', 'sales_lines', true, 1, 10), "
                "('master', 'products', true, 1, 5)")
    first = landing_fingerprints(con)
    con.execute("insert into raw.landing_files values ('sales', 'sales_lines', 'sales/b.csv', 'bb', 3, 1, [], [])")
    second = landing_fingerprints(con)
    assert first["raw.master__products"] == second["raw.master__products"]
    assert first["raw.sales__sales_lines"] != second["raw.sales__sales_lines"]
    assert first["raw.landing_files"] != second["raw.landing_files"]  # the bookkeeping changes with any file
    con.execute("update raw.landing_files set sha256 = 'ab' where file = 'sales/a.csv'")  # a corrected re-export
    assert landing_fingerprints(con)["raw.sales__sales_lines"] != second["raw.sales__sales_lines"]


def _landing(con, sales_sha: str) -> None:
    con.execute("create schema if not exists raw")
    con.execute("create or replace table raw.landing_files (system varchar, entity varchar, file varchar, "
                "sha256 varchar, rows_loaded bigint, rows_rejected bigint, missing_optional_columns varchar[], "
                "ignored_columns varchar[])")
    con.execute("create or replace table raw.landing_entities (system varchar, entity varchar, present boolean, "
                "files int, rows bigint)")
    con.execute("insert into raw.landing_files values ('sales', 'sales_lines', 'sales/a.csv', ?, 10, 0, [], []),"
                " ('master', 'products', 'master/products.csv', 'pp', 5, 0, [], [])", [sales_sha])


def test_a_changed_test_keeps_the_unchanged_table_it_reads_in_the_build(tmp_path):
    """dbt drops the tests of an excluded model with it: a model stays in the build while any test on it changed."""
    manifest = {**MANIFEST, "child_map": {
        "model.p.stg_products": ["model.p.fct_sales", "test.p.unique_products", "test.p.sales_products"],
        "model.p.stg_sales": ["model.p.fct_sales", "test.p.sales_products"],
        "model.p.fct_sales": ["model.p.rpt_plan", "unit_test.p.fct_sales.sums"],
    }}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        _landing(con, "s1")
        con.execute("create schema marts")
        for table in ("stg_sales", "stg_products", "fct_sales", "rpt_plan", "service_levels"):
            con.execute(f"create table marts.{table} (x int)")
        built = node_fingerprints(manifest, landing_fingerprints(con), project_fingerprint())
        con.execute("create schema audit")
        con.execute(f"create table {TABLE} (unique_id varchar, fingerprint varchar, built_at timestamp)")
        con.executemany(f"insert into {TABLE} values (?, ?, now())", [(k, v) for k, v in built.items() if v])
    # nothing new: every fingerprinted node is left out (the ml-reading report model has none: it runs)
    assert set(unchanged_nodes(warehouse, path).selectors) == {
        "stg_sales", "stg_products", "fct_sales", "unique_products", "relationships_sales_products",
        "service_levels", "test_type:unit"}
    with duckdb.connect(str(warehouse)) as con:
        con.execute("drop table marts.fct_sales")  # a table dropped by hand is built again
    assert "fct_sales" not in unchanged_nodes(warehouse, path).selectors
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create table marts.fct_sales (x int)")
        _landing(con, "s2")  # a new sales file
    # the sales models run, and so does the product master: the test across sales lines and products changed, and
    # dbt would leave it out with the master; the master's own test, the seed and the unit tests are left out
    assert set(unchanged_nodes(warehouse, path).selectors) == {"unique_products", "service_levels", "test_type:unit"}
