"""`stockturn build` on partial and broken landing zones: what still builds, what is flagged, what is kept."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
from polars.testing import assert_frame_equal

from tests.conftest import run_stockturn

MARTS = ["fct_sales_daily", "fct_inventory_daily", "fct_inventory_turnover_monthly", "dim_product"]


def mart_frame(warehouse: Path, table: str) -> pl.DataFrame:
    """A mart table in a canonical row order."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        frame = con.sql(f"select * from marts.{table}").pl()
    return frame.sort(frame.columns, nulls_last=True)


def mart_fingerprints(warehouse: Path) -> dict[str, tuple]:
    """Row count and an order-independent hash of every column, per mart table."""
    out = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table in MARTS:
            cols = [r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_schema = 'marts' "
                "and table_name = ? order by ordinal_position", [table]).fetchall()]
            row_hash = " || '|' || ".join(f"coalesce(cast({c} as varchar), '~')" for c in cols)
            out[table] = con.execute(f"select count(*), sum(hash({row_hash})) from marts.{table}").fetchone()
    return out


def copy_landing(src: Path, dst: Path, keep: list[str] | None = None) -> Path:
    if keep is None:
        shutil.copytree(src, dst)
        return dst
    for rel in keep:
        for f in src.glob(rel):
            target = dst / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, target)
    return dst


def build_from_files(landing: Path, files: dict[str, str], warehouse: Path) -> Path:
    """Write ``files`` (landing-relative path -> text) and `stockturn build` them into ``warehouse``."""
    for rel, text in files.items():
        (landing / rel).parent.mkdir(parents=True, exist_ok=True)
        (landing / rel).write_text(text)
    run_stockturn("build", "--landing", str(landing), "--warehouse", str(warehouse), "--quiet")
    return warehouse


def test_sales_only_landing_builds_with_missing_measures_null_and_flagged(small_landing: Path, tmp_path: Path) -> None:
    landing = copy_landing(
        small_landing, tmp_path / "landing", ["master/products.csv", "master/locations.csv", "sales/sales_lines*.csv"]
    )
    warehouse = tmp_path / "w.duckdb"
    run_stockturn("build", "--landing", str(landing), "--warehouse", str(warehouse), "--quiet")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        inv = con.execute("""
            select count(*), count(on_hand_units), count(on_hand_value), min(on_hand_basis), max(on_hand_basis),
                   min(valuation_basis), count(on_order_units)
            from marts.fct_inventory_daily""").fetchone()
        assert inv[0] > 0 and inv[1:] == (0, 0, "unavailable", "unavailable", "unavailable", 0)
        sales = con.execute(
            "select sum(units_sold), count(cogs_amount), min(cogs_basis) from marts.fct_sales_daily"
        ).fetchone()
        assert sales[0] > 0 and sales[1] == 0 and sales[2] == "unavailable"
        turnover = con.execute("""
            select count(*), count(inventory_turnover), count(days_inventory_outstanding), count(gmroi),
                   count(stockout_days), sum(units_sold)
            from marts.fct_inventory_turnover_monthly where grain = 'company'""").fetchone()
        assert turnover[0] > 0 and turnover[1:5] == (0, 0, 0, 0) and turnover[5] > 0
        absent = {r[0] for r in con.execute(
            "select entity from marts.data_quality_reconciliation where not is_present").fetchall()}
        assert {"stock_snapshots", "standard_costs", "cogs_ledger", "receipts", "transfers"} <= absent
        assert con.execute("select sum(rows_unaccounted) from marts.data_quality_reconciliation").fetchone()[0] == 0


def test_a_landing_zone_that_breaks_the_contract_changes_nothing(
    small_landing: Path, warehouse_copy: Path, tmp_path: Path
) -> None:
    before = mart_fingerprints(warehouse_copy)
    landing = copy_landing(small_landing, tmp_path / "landing")
    products = pl.read_csv(landing / "master/products.csv", infer_schema=False)
    products.drop("product_id").write_csv(landing / "master/products.csv")
    proc = run_stockturn("build", "--landing", str(landing), "--warehouse", str(warehouse_copy), "--quiet",
                         check=False)
    assert proc.returncode == 2
    assert "master/products.csv" in proc.stderr and "product_id" in proc.stderr
    assert mart_fingerprints(warehouse_copy) == before


def test_a_failing_data_test_stops_downstream_models_and_keeps_the_last_good_marts(
    small_landing: Path, warehouse_copy: Path, tmp_path: Path
) -> None:
    before = mart_fingerprints(warehouse_copy)
    landing = copy_landing(small_landing, tmp_path / "landing")
    # new sales that would change every mart, and a location replenished from a location that does not exist
    locations = pl.read_csv(landing / "master/locations.csv", infer_schema=False)
    locations.with_columns(
        pl.when(pl.col("location_type") == "store").then(pl.lit("NOWHERE")).otherwise(pl.col("replenished_from"))
        .alias("replenished_from")
    ).write_csv(landing / "master/locations.csv")
    for part in sorted(landing.glob("sales/sales_lines*.csv"))[:1]:
        part.unlink()
    proc = run_stockturn("build", "--landing", str(landing), "--warehouse", str(warehouse_copy), "--quiet",
                         check=False)
    assert proc.returncode == 2
    assert "relationships" in proc.stderr and "replenished_from" in proc.stderr
    assert mart_fingerprints(warehouse_copy) == before


def test_rebuilding_in_place_from_the_same_company_in_parquet_gives_the_same_marts(
    small_warehouse: Path, warehouse_copy: Path, tmp_path: Path
) -> None:
    """Re-running over an existing warehouse replaces every table; the file format of the landing is irrelevant.

    Floating-point sums may differ in the last bits between runs (DuckDB aggregates in parallel), so values are
    compared to 1e-9 relative, everything else exactly.
    """
    from tests.conftest import SMALL_DEMO

    landing = tmp_path / "landing"
    run_stockturn("generate", "--out", str(landing), "--format", "parquet", "--quiet",
                  *[a for k, v in SMALL_DEMO.items() for a in (f"--{k}", str(v))])
    run_stockturn("build", "--landing", str(landing), "--warehouse", str(warehouse_copy), "--quiet")
    for table in MARTS:
        before, after = mart_frame(small_warehouse, table), mart_frame(warehouse_copy, table)
        assert_frame_equal(after, before, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)


def test_a_sales_line_with_a_bad_price_keeps_its_units_and_is_listed_as_a_field_issue(tmp_path: Path) -> None:
    """A negative or unparseable unit_price used to quarantine the line, losing its units from demand. Now the
    line is kept: its units reach marts.fct_sales_daily, its revenue is left out (not negative), and the data-quality
    marts list it as a kept row with a field issue while rows in = kept + quarantined still holds."""
    landing = tmp_path / "landing"
    files = {
        "master/products.csv": "product_id\nP1\n",
        "master/locations.csv": "location_id\nL1\n",
        "sales/sales_lines.csv": "transaction_id,sold_at,product_id,location_id,quantity,unit_price\n"
                                 "T1,2024-01-02,P1,L1,2,5.00\n"
                                 "T2,2024-01-02,P1,L1,3,-5.00\n"  # negative price: 3 units kept, no revenue
                                 "T3,2024-01-03,P1,L1,4,abc\n"  # not a number: 4 units kept, no revenue
                                 "T4,2024-01-03,P9,L1,1,-1\n",  # unknown product: still quarantined
    }
    warehouse = build_from_files(landing, files, tmp_path / "w.duckdb")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        days = con.execute("""
            select date_day::varchar, units_sold, gross_sales_amount, net_sales_amount, avg_selling_price,
                   sales_lines, unpriced_sales_lines
            from marts.fct_sales_daily where product_id = 'P1' order by date_day""").fetchall()
        assert days == [("2024-01-02", 5.0, 10.0, 10.0, 5.0, 2, 1), ("2024-01-03", 4.0, 0.0, 0.0, None, 1, 1)]
        issues = con.execute(
            "select file_row, field_name, issue, issue_detail from marts.data_quality_field_issues order by 1"
        ).fetchall()
        assert issues == [(2, "unit_price", "negative_price", "unit_price -5.0 is negative"),
                          (3, "unit_price", "invalid_price", "unit_price 'abc' is not a valid decimal")]
        recon = con.execute("""
            select rows_in, rows_kept, rows_quarantined, rows_unaccounted, quarantine_reasons, rows_kept_with_issues,
                   field_issues
            from marts.data_quality_reconciliation where entity = 'sales_lines'""").fetchall()
        assert recon == [(4, 3, 1, 0, "unknown_product: 1", 2,
                          "unit_price invalid_price: 1; unit_price negative_price: 1")]
        assert con.execute(
            "select reject_reason from marts.data_quality_rejections where entity = 'sales_lines'"
        ).fetchall() == [("unknown_product",)]


def test_ordering_costs_and_holding_rates_reach_dim_product_and_bad_ones_are_quarantined(tmp_path: Path) -> None:
    """products/suppliers.ordering_cost and annual_holding_rate (optional): dim_product takes the product's, else its
    supplier's, and says which; a negative or non-numeric cost or a holding rate outside (0, 5] quarantines the row
    with its reason, and every landed row is still accounted for."""
    landing = tmp_path / "landing"
    files = {
        "master/products.csv": "product_id,supplier_id,ordering_cost,annual_holding_rate\n"
                               "P1,S1,,\n"  # both from the supplier
                               "P2,S1,12,\n"  # own ordering cost, the supplier's holding rate
                               "P3,S2,,0.3\n"  # own holding rate; S2 gives no cost: null
                               "P4,S1,,0\n"  # holding rate 0: quarantined
                               "P5,S1,-2,\n",  # negative ordering cost: quarantined
        "master/suppliers.csv": "supplier_id,ordering_cost,annual_holding_rate\n"
                                "S1,30,0.2\n"
                                "S2,,\n"
                                "S3,abc,\n"  # not a number: quarantined
                                "S4,,7.5\n",  # above 5: quarantined
        "master/locations.csv": "location_id\nL1\n",
        "sales/sales_lines.csv": "transaction_id,sold_at,product_id,location_id,quantity\n"
                                 "T1,2024-01-02,P1,L1,1\nT2,2024-01-02,P2,L1,1\nT3,2024-01-03,P3,L1,1\n",
    }
    warehouse = build_from_files(landing, files, tmp_path / "w.duckdb")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("""
            select product_id, ordering_cost, ordering_cost_basis, annual_holding_rate, holding_rate_basis
            from marts.dim_product order by 1""").fetchall() == [
            ("P1", 30.0, "supplier", 0.2, "supplier"),
            ("P2", 12.0, "product", 0.2, "supplier"),
            ("P3", None, None, 0.3, "product"),
        ]
        assert con.execute("""
            select entity, file_row, reject_reason, reject_detail from marts.data_quality_rejections
            where entity in ('products', 'suppliers') order by 1, 2""").fetchall() == [
            ("products", 4, "invalid_value", "annual_holding_rate 0.0 is not above 0 and at most 5"),
            ("products", 5, "invalid_value", "ordering_cost -2.0 is negative"),
            ("suppliers", 3, "invalid_number", "ordering_cost 'abc' is not a valid decimal"),
            ("suppliers", 4, "invalid_value", "annual_holding_rate 7.5 is not above 0 and at most 5"),
        ]
        assert con.execute("select supplier_id, ordering_cost, annual_holding_rate from marts.dim_supplier "
                           "where is_in_supplier_master order by 1").fetchall() == [
            ("S1", 30.0, 0.2), ("S2", None, None)]
        assert con.execute("select sum(rows_unaccounted) from marts.data_quality_reconciliation").fetchone()[0] == 0


def test_non_finite_numbers_and_implausible_dates_are_quarantined(tmp_path: Path) -> None:
    """NaN, infinities and overflows parse as doubles in DuckDB; a quantity or price must be a finite number
    (issue 10): the rows go to quarantine as invalid_number, every landed row is accounted for, and the marts'
    sums stay finite. A sale dated 2099 (future_date) or 1980 (implausible_date) is quarantined too, so it
    neither moves the as-of date nor stretches the calendar, and so is a fat-finger 1e15 units
    (implausible_quantity: far above the product's median line)."""
    landing = tmp_path / "landing"
    files = {
        "master/products.csv": "product_id\nP1\n",
        "master/locations.csv": "location_id\nL1\n",
        "sales/sales_lines.csv": "transaction_id,sold_at,product_id,location_id,quantity,unit_price\n"
                                 "T1,2024-01-02,P1,L1,2,3.5\n"
                                 "T2,2024-01-02,P1,L1,NaN,3.5\n"
                                 "T3,2024-01-02,P1,L1,inf,3.5\n"
                                 "T4,2024-01-03,P1,L1,-Infinity,3.5\n"
                                 "T5,2024-01-03,P1,L1,1e400,3.5\n"
                                 "T6,2024-01-03,P1,L1,1,nan\n"
                                 "T7,2099-01-01,P1,L1,1,3.5\n"
                                 "T8,1980-05-05,P1,L1,1,3.5\n"
                                 "T9,2024-01-03,P1,L1,1e15,3.5\n"  # a fat finger: 1e15 units
                                 "T10,31/12/2023,P1,L1,1,3.5\n"  # a day-first date
                                 'T11,2024-01-03,P1,L1,"1,5",3.5\n'  # a decimal comma
                                 'T12,2024-01-03,P1,L1,"1,000",3.5\n',  # a thousands separator
    }
    warehouse = build_from_files(landing, files, tmp_path / "w.duckdb")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rejected = con.execute("""
            select file_row, reject_reason, reject_detail from marts.data_quality_rejections
            where entity = 'sales_lines' order by 1""").fetchall()
        assert [(r, reason) for r, reason, _ in rejected] == [
            (2, "invalid_number"), (3, "invalid_number"), (4, "invalid_number"), (5, "invalid_number"),
            (7, "future_date"), (8, "implausible_date"), (9, "implausible_quantity"), (10, "invalid_date"),
            (11, "invalid_number"), (12, "invalid_number")]
        assert "quantity 'NaN' is not a valid decimal" in rejected[0][2]
        assert "sold_at 2099-01-01 is after the load date" in rejected[4][2]
        assert con.execute("select min(date_day), max(date_day) from marts.fct_sales_daily").fetchone() == (
            date(2024, 1, 2), date(2024, 1, 3))
        units = con.execute("select sum(units_sold) from marts.fct_sales_daily").fetchone()[0]
        assert units == 3.0  # T1 and T6; T6's unreadable price is an issue on the row, its units count
        assert con.execute("select sum(rows_unaccounted) from marts.data_quality_reconciliation").fetchone()[0] == 0
        assert con.execute("select count(*) from marts.data_quality_field_issues where field_name = 'unit_price'"
                           ).fetchone()[0] == 1
