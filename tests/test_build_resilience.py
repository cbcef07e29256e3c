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
    """A mart table in a canonical row order, without the build stamp of the incremental tables (_built_at: when
    the build that wrote the row started, which differs between any two builds by construction)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        frame = con.sql(f"select * from marts.{table}").pl()
    frame = frame.drop("_built_at", strict=False)
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


def test_an_unknown_replenishing_location_is_a_field_issue_and_the_build_goes_on(
    small_landing: Path, tmp_path: Path
) -> None:
    """A location replenished from a location that does not exist used to fail a relationships test and stop the
    whole build (no marts, no plan that night). Now it is a kept row with a field issue: replenished_from is set to
    null (the store is planned as buying direct), the store and its sales are kept, and the build goes on."""
    landing = copy_landing(small_landing, tmp_path / "landing")
    locations = pl.read_csv(landing / "master/locations.csv", infer_schema=False)
    stores = locations.filter(pl.col("location_type") == "store")["location_id"].to_list()
    locations.with_columns(
        pl.when(pl.col("location_type") == "store").then(pl.lit("NOWHERE")).otherwise(pl.col("replenished_from"))
        .alias("replenished_from")
    ).write_csv(landing / "master/locations.csv")
    warehouse = tmp_path / "w.duckdb"
    run_stockturn("build", "--landing", str(landing), "--warehouse", str(warehouse), "--quiet")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        issues = con.execute("""
            select field_name, issue, count(*), min(issue_detail) from marts.data_quality_field_issues
            where entity = 'locations' group by all""").fetchall()
        assert issues == [("replenished_from", "unknown_location", len(stores),
                           "replenished_from 'NOWHERE' is not a location in master/locations (or was quarantined): "
                           "set to null, the location is planned as buying direct")]
        kept = con.execute("select location_id, replenished_from from marts.dim_location where location_type = "
                           "'store' order by 1").fetchall()
        assert kept == [(store, None) for store in sorted(stores)]
        assert con.execute("select count(distinct location_id) from marts.fct_sales_daily").fetchone()[0] == len(
            stores)
        recon = con.execute("select sum(rows_unaccounted), sum(rows_kept_with_issues) from "
                            "marts.data_quality_reconciliation where entity = 'locations'").fetchone()
        assert recon == (0, len(stores))


def test_a_failing_structural_check_stops_downstream_models_and_keeps_the_last_good_marts(
    warehouse_copy: Path
) -> None:
    """A structural failure (an error-severity test: here the calendar's bounds, with an as-of date before any
    history) skips every model downstream of it: the previous marts stay as they were, the build's outcome names
    the check, audit.dbt_test_results records it, and the report's data-quality section says the build stopped."""
    from orchestration.dbt_cli import run_dbt
    from orchestration.warehouse_build import ML_DOWNSTREAM_SELECTOR
    from reports.build import build_report

    before = mart_fingerprints(warehouse_copy)
    result = run_dbt(["build", "--select", "int_calendar_bounds+", "--exclude", ML_DOWNSTREAM_SELECTOR], warehouse_copy,
                     vars={"as_of_date": "1985-01-01"}, stream=False, raise_on_failure=False)
    assert any("calendar_bounds_are_ordered" in f for f in result.failures), result.failures
    assert mart_fingerprints(warehouse_copy) == before
    with duckdb.connect(str(warehouse_copy), read_only=True) as con:
        assert con.execute("select status, severity from audit.dbt_test_results "
                           "where test_name = 'calendar_bounds_are_ordered'").fetchone() == ("fail", "error")
    report = build_report(warehouse_copy, warehouse_copy.parent / "report")
    html = report.html_path.read_text()
    assert "The last dbt build stopped at 1 failing check (calendar_bounds_are_ordered on int_calendar_bounds)" in html


def test_a_value_check_that_fails_warns_keeps_its_rows_and_reaches_the_report(warehouse_copy: Path) -> None:
    """A value invariant (severity warn) that fails never stops the night: dbt exits cleanly, the failing rows are
    stored in schema exceptions, audit.dbt_test_results says warn with the row count, and the report lists the
    check. (A row is corrupted in the mart itself, as a defect that got past every staging rule would.)"""
    from orchestration.dbt_cli import run_dbt
    from reports.build import build_report

    with duckdb.connect(str(warehouse_copy)) as con:
        con.execute("""update marts.fct_sales_daily set units_returned = -7
                       where (date_day, product_id, location_id) in (
                           select (date_day, product_id, location_id) from marts.fct_sales_daily
                           order by all limit 2)""")
    result = run_dbt(["test", "--select", "fct_sales_daily"], warehouse_copy, stream=False)
    assert result.status_counts.get("warn") == 1 and not result.failures
    assert [w.name for w in result.warnings] == ["not_negative_fct_sales_daily_units_returned"]
    assert "warned: not_negative_fct_sales_daily_units_returned on fct_sales_daily: 2 rows, rows in " in result.format()
    with duckdb.connect(str(warehouse_copy), read_only=True) as con:
        status, rows, kept_in = con.execute(
            "select status, failing_rows, failing_rows_relation from audit.dbt_test_results "
            "where test_name = 'not_negative_fct_sales_daily_units_returned'").fetchone()
        assert (status, rows) == ("warn", 2) and kept_in.split(".")[-2:] == [
            "exceptions", "not_negative_fct_sales_daily_units_returned"]
        assert con.execute(f"select units_returned from {kept_in}").fetchall() == [(-7.0,), (-7.0,)]
        # the passing checks of the same run are recorded too
        assert con.execute("select count(*) from audit.dbt_test_results where model = 'fct_sales_daily' and "
                           "status = 'pass'").fetchone()[0] >= 5
    html = build_report(warehouse_copy, warehouse_copy.parent / "report").html_path.read_text()
    assert "Data checks that warned" in html and "not_negative_fct_sales_daily_units_returned" in html


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


def test_implausible_quantities_and_prices_are_judged_against_each_product_in_every_entity(tmp_path: Path) -> None:
    """Issue 10's plausibility rules beyond sales quantities, scale-free: each value is judged against its product's
    own typical value in the same file (quantities, var implausible_quantity_factor) or its typical selling price
    (prices and costs, var implausible_price_factor). Transactions and master prices that are implausible are
    quarantined; a sales-line price or a purchase-order cost is nulled and flagged instead, so the units still
    count. Ordinary values of a product with no history to compare with (P2) are kept. COGS postings get the date
    checks and the same plausibility (a posting a thousand times the product's usual amount). And a repeated header
    line (daily exports concatenated with their headers) is quarantined as repeated_header in every entity rather
    than becoming a product called 'product_id'."""
    landing = tmp_path / "landing"
    sales = "".join(f"S{i},2024-01-0{1 + i % 5},P1,S1,2,5.0\n" for i in range(8))
    files = {
        "master/products.csv": "product_id\nP1\nP2\nProduct_ID \n",
        "master/locations.csv": "location_id,location_type,replenished_from\nDC1,dc,\nS1,store,DC1\n"
                                "location_id,location_type,replenished_from\n",
        "sales/sales_lines.csv": "transaction_id,sold_at,product_id,location_id,quantity,unit_price\n" + sales
                                 + "S90,2024-01-06,P1,S1,2,900\n"  # 180x the median price: flagged, units kept
                                 + "transaction_id,sold_at,product_id,location_id,quantity,unit_price\n",
        "finance/cogs_ledger.csv": "posting_id,posting_date,product_id,location_id,quantity,amount\n"
                                   + "".join(f"G{i},2024-01-0{1 + i % 5},P1,S1,2,7.0\n" for i in range(6))
                                   + "G90,2099-01-01,P1,S1,2,7.0\nG91,2024-01-03,P1,S1,2,7000000\n",
        "sales/prices.csv": "product_id,valid_from,list_price\nP1,2024-01-01,6\nP1,2024-02-01,50000\n",
        "procurement/purchase_order_lines.csv":
            "po_id,po_line,supplier_id,product_id,location_id,order_date,quantity_ordered,unit_cost\n"
            "PO1,1,V1,P1,DC1,2024-01-01,100,3\n"
            "PO2,1,V1,P1,DC1,2024-01-02,100,3\n"
            "PO3,1,V1,P1,DC1,2024-01-03,1000000000,3\n"  # 1e9 units: implausible_quantity
            "PO4,1,V1,P1,DC1,2024-01-04,100,1000000\n"  # a cost of 1e6 on a 5.0 product: nulled, line kept
            "PO5,1,V1,P2,DC1,2024-01-04,40,7\n",
        "procurement/receipts.csv": "receipt_id,po_id,po_line,received_date,quantity_received\n"
                                    "R1,PO1,1,2024-01-05,100\nR2,PO2,1,2024-01-06,100\nR3,PO4,1,2024-01-07,100\n"
                                    "R4,PO2,1,2024-01-07,50000000\n"  # 5e7 against an order of 100
                                    "R5,PO5,1,2024-01-07,40\n",
        "logistics/transfers.csv": "transfer_id,product_id,from_location_id,to_location_id,shipped_date,quantity\n"
                                   "T1,P1,DC1,S1,2024-01-02,10\nT2,P1,DC1,S1,2024-01-03,10\n"
                                   "T3,P1,DC1,S1,2024-01-04,10\nT4,P1,DC1,S1,2024-01-05,100000000\n",
        "inventory/stock_snapshots.csv": "snapshot_date,product_id,location_id,on_hand_qty\n"
                                         "2024-01-01,P1,DC1,50\n2024-01-02,P1,DC1,60\n2024-01-03,P1,DC1,55\n"
                                         "2024-01-04,P1,DC1,1e12\n2024-01-01,P2,DC1,30\n",
        "inventory/cycle_counts.csv": "count_id,count_date,product_id,location_id,book_qty,counted_qty\n"
                                      "C1,2024-01-03,P1,S1,5,4\nC2,2024-01-04,P1,S1,5,6\nC3,2024-01-05,P1,S1,1e12,5\n"
                                      "C4,2024-01-06,P1,S1,5,1e12\n",
        "finance/standard_costs.csv": "product_id,valid_from,unit_cost\nP1,2024-01-01,3\nP1,2024-02-01,3000\n"
                                      "P2,2024-01-01,4\n",
    }
    warehouse = build_from_files(landing, files, tmp_path / "w.duckdb")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rejected = con.execute("""
            select entity, file_row, reject_reason from marts.data_quality_rejections order by 1, 2""").fetchall()
        assert rejected == [
            ("cogs_ledger", 7, "future_date"), ("cogs_ledger", 8, "implausible_price"),
            ("cycle_counts", 3, "implausible_quantity"), ("cycle_counts", 4, "implausible_quantity"),
            ("locations", 3, "repeated_header"),
            ("prices", 2, "implausible_price"), ("products", 3, "repeated_header"),
            ("purchase_order_lines", 3, "implausible_quantity"),
            ("receipts", 4, "implausible_quantity"),
            ("sales_lines", 10, "repeated_header"),
            ("standard_costs", 2, "implausible_price"),
            ("stock_snapshots", 4, "implausible_quantity"),
            ("transfers", 4, "implausible_quantity"),
        ]
        detail = con.execute("select reject_detail from marts.data_quality_rejections where entity = 'receipts'"
                             ).fetchone()[0]
        assert detail.startswith("quantity_received 50000000.0 is more than 1000 x the larger of the order line's "
                                 "quantity and the product's median receipt 100")
        issues = con.execute("select entity, file_row, field_name, issue from marts.data_quality_field_issues "
                             "order by 1, 2").fetchall()
        assert issues == [("purchase_order_lines", 4, "unit_cost", "implausible_price"),
                          ("sales_lines", 9, "unit_price", "implausible_price")]
        assert con.execute("select sum(units_sold) from marts.fct_sales_daily").fetchone()[0] == 18.0
        assert con.execute("select product_id from marts.dim_product order by 1").fetchall() == [("P1",), ("P2",)]
        assert con.execute("select sum(amount) from staging.stg_finance__cogs_ledger").fetchone()[0] == 42.0
        assert con.execute("select quantity_ordered, unit_cost from staging.stg_procurement__purchase_order_lines "
                           "where po_id = 'PO4'").fetchone() == (100.0, None)
        assert con.execute("select sum(rows_unaccounted) from marts.data_quality_reconciliation").fetchone()[0] == 0
