"""The real UCI Online Retail extract (541,909 invoice lines, sales only) through import and `stockturn build`.

Its known totals (../shared/data/online_retail/README.md) must survive the whole way: every line is either in
staging or in quarantine with a reason, and the quarantine counts are recomputed here from the raw extract with
polars, following the documented rules, rather than taken from the build.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.conftest import run_stockturn, shared_data_file

SOURCE = shared_data_file("online_retail", "uci_online_retail_transactions.parquet")
KNOWN = {"lines": 541_909, "stock_codes": 4_070, "invoices": 25_900, "quantity": 5_176_450, "cancellations": 9_288}

pytestmark = pytest.mark.skipif(not SOURCE.exists(), reason=f"real extract not found at {SOURCE}")


@pytest.fixture(scope="module")
def retail_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("online_retail")
    run_stockturn("import-transactions", "--source", str(SOURCE), "--out", str(root / "landing"))
    warehouse = root / "warehouse.duckdb"
    run_stockturn("build", "--landing", str(root / "landing"), "--warehouse", str(warehouse), "--quiet")
    return warehouse


def expected_quarantine() -> dict[str, int]:
    """Quarantine counts by reason, from the raw extract, applying staging's rules in their documented order."""
    raw = pl.read_parquet(SOURCE).with_row_index("row")
    merchandise = pl.col("StockCode").str.contains(r"^(\d{5}[A-Za-z]*|DCGS.*)$")
    is_return = pl.col("InvoiceNo").str.starts_with("C")
    # implausible_quantity: |quantity| above 1000 x the product's median |quantity| (at least 1), over all its lines
    scale = pl.max_horizontal(pl.col("Quantity").abs().median().over("StockCode"), pl.lit(1.0))
    reasons = raw.with_columns(
        pl.when(~merchandise).then(pl.lit("non_stock_item"))
        .when((pl.col("Quantity") < 0) & ~is_return).then(pl.lit("negative_quantity_not_return"))
        .when(pl.col("Quantity").abs() > scale * 1000).then(pl.lit("implausible_quantity"))
        .alias("reason")
    )
    # among rows without a reason so far, a repeat of an identical line is a duplicate
    clean = reasons.filter(pl.col("reason").is_null())
    # the contract has no Description or Country column: lines differing only there are the same line
    duplicates = clean.height - clean.drop("row", "reason", "Description", "Country").unique().height
    counts = dict(reasons.filter(pl.col("reason").is_not_null()).group_by("reason").len().iter_rows())
    counts["duplicate_line"] = duplicates
    return counts


def test_known_totals_survive_the_load_and_every_line_is_accounted_for(retail_warehouse: Path) -> None:
    with duckdb.connect(str(retail_warehouse), read_only=True) as con:
        raw = con.execute("""
            select count(*), count(distinct product_id), count(distinct transaction_id),
                   sum(cast(quantity as bigint)), count(*) filter (where line_type = 'return')
            from raw.sales__sales_lines""").fetchone()
        assert raw == (KNOWN["lines"], KNOWN["stock_codes"], KNOWN["invoices"], KNOWN["quantity"],
                       KNOWN["cancellations"])
        kept, kept_qty = con.execute("select count(*), sum(quantity) from staging.stg_sales__sales_lines").fetchone()
        rejected, rejected_qty = con.execute(
            "select count(*), sum(cast(quantity as double)) from staging.stg_sales__sales_lines__rejected"
        ).fetchone()
        assert kept + rejected == KNOWN["lines"]
        assert kept_qty + rejected_qty == pytest.approx(KNOWN["quantity"])
        recon = con.execute("""
            select sum(rows_in), sum(rows_unaccounted) from marts.data_quality_reconciliation
            where entity = 'sales_lines'""").fetchone()
        assert recon == (KNOWN["lines"], 0)
        found = dict(con.execute(
            "select reject_reason, count(*) from staging.stg_sales__sales_lines__rejected group by 1").fetchall())
    assert found == expected_quarantine()


def test_sales_reach_the_marts_and_costed_measures_stay_empty(retail_warehouse: Path) -> None:
    with duckdb.connect(str(retail_warehouse), read_only=True) as con:
        units_kept = con.execute("select sum(units_sold) from staging.stg_sales__sales_lines").fetchone()[0]
        units_mart = con.execute("select sum(units_sold) from marts.fct_sales_daily").fetchone()[0]
        assert units_mart == pytest.approx(units_kept)
        company = con.execute("""
            select count(*), sum(units_sold), count(inventory_turnover), count(avg_inventory_value)
            from marts.fct_inventory_turnover_monthly where grain = 'company'""").fetchone()
        assert company[0] == 13 and company[1] == pytest.approx(units_kept) and company[2:] == (0, 0)
        assert con.execute("select count(*) from marts.dim_product where product_type = 'non_stock'").fetchone()[0] > 0
