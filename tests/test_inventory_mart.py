"""The inventory mart built from the small demo company: reconciliation, reconstruction and turnover.

The turnover check recomputes monthly turnover for a sample of product-locations independently, with polars,
straight from the landing CSV files (its own cleaning, its own on-hand arithmetic anchored on month-end
snapshots), and compares it with marts.fct_inventory_turnover_monthly.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

MART_TABLES = [
    "dim_date", "dim_product", "dim_location", "dim_supplier", "fct_sales_daily", "fct_inventory_daily",
    "fct_purchase_order_lines", "fct_purchase_receipts", "fct_inventory_turnover_monthly", "fct_days_of_supply",
    "fct_inventory_discrepancies", "data_quality_reconciliation", "data_quality_rejections",
]


def query(warehouse: Path, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).pl()


def test_every_mart_is_built_and_non_empty(small_warehouse: Path) -> None:
    for table in MART_TABLES:
        (rows,) = query(small_warehouse, f"select count(*) from marts.{table}").row(0)
        assert rows > 0, f"marts.{table} is empty"


def test_every_landed_row_is_kept_or_quarantined_with_the_injected_reasons(
    small_warehouse: Path, small_truth: Path
) -> None:
    recon = query(small_warehouse, "select * from marts.data_quality_reconciliation")
    assert recon["rows_unaccounted"].to_list() == [0] * recon.height
    assert recon.filter(pl.col("is_required"))["is_present"].all()
    # the generator injects known defects (its truth folder lists them); staging must quarantine exactly those
    defects = pl.read_csv(small_truth / "defects.csv")
    expected = dict(defects.group_by("kind").len().iter_rows())
    found = dict(query(small_warehouse, "select reject_reason, count(*) from marts.data_quality_rejections group by 1")
                 .iter_rows())
    assert found == expected
    # ... and at the rows the generator says
    rejected = query(small_warehouse, "select file, file_row from marts.data_quality_rejections")
    assert set(rejected.iter_rows()) == set(defects.select("file", "row").iter_rows())


def test_reconstructed_on_hand_equals_the_simulated_book(small_warehouse: Path, small_truth: Path) -> None:
    truth = pl.read_parquet(small_truth / "true_demand.parquet").select(
        pl.col("date").cast(pl.Date).alias("date_day"), "product_id", "location_id", "book_on_hand_close"
    )
    mart = query(small_warehouse,
                 "select date_day, product_id, location_id, on_hand_units from marts.fct_inventory_daily")
    joined = truth.join(mart, on=["date_day", "product_id", "location_id"], how="left")
    assert joined["on_hand_units"].null_count() == 0
    assert (joined["on_hand_units"] - joined["book_on_hand_close"]).abs().max() < 1e-9


# ------------------------------------------------------------------------------------------ independent turnover


def _read_all(landing: Path, system: str, entity: str) -> pl.DataFrame:
    files = sorted((landing / system).glob(f"{entity}*.csv"))
    return pl.concat([pl.read_csv(f, infer_schema=False) for f in files], how="vertical")


def _clean_sales(landing: Path, products: set[str], locations: set[str]) -> pl.DataFrame:
    sales = _read_all(landing, "sales", "sales_lines")
    sales = sales.unique(maintain_order=True, keep="first")  # exact duplicates are re-exports
    sales = sales.with_columns(
        pl.col("sold_at").str.to_date("%Y-%m-%d", strict=False).alias("day"),
        pl.col("quantity").cast(pl.Float64, strict=False),
        pl.col("line_type").fill_null("sale"),
    )
    return sales.filter(
        pl.col("day").is_not_null()
        & pl.col("quantity").is_not_null()
        & pl.col("product_id").is_in(products)
        & pl.col("location_id").is_in(locations)
        & ~((pl.col("line_type") == "sale") & (pl.col("quantity") < 0))
    ).with_columns(
        pl.when(pl.col("line_type") == "sale").then(-pl.col("quantity")).otherwise(pl.col("quantity").abs())
        .alias("movement")
    )


def independent_monthly_turnover(landing: Path, pairs: list[tuple[str, str]], months: list[date]) -> pl.DataFrame:
    products = set(_read_all(landing, "master", "products")["product_id"])
    locations = set(_read_all(landing, "master", "locations")["location_id"])
    sales = _clean_sales(landing, products, locations)

    po = _read_all(landing, "procurement", "purchase_order_lines")
    po = po.select("po_id", "po_line", "product_id", "location_id")
    receipts = (
        _read_all(landing, "procurement", "receipts")
        .join(po, on=["po_id", "po_line"], how="inner")
        .select("product_id", "location_id", pl.col("received_date").str.to_date(strict=False).alias("day"),
                pl.col("quantity_received").cast(pl.Float64).alias("movement"))
        .filter(pl.col("day").is_not_null())
    )
    transfers = _read_all(landing, "logistics", "transfers").with_columns(pl.col("quantity").cast(pl.Float64))
    transfers_out = transfers.select(
        "product_id", pl.col("from_location_id").alias("location_id"),
        pl.col("shipped_date").str.to_date().alias("day"), (-pl.col("quantity")).alias("movement"),
    )
    transfers_in = transfers.filter(pl.col("received_date").is_not_null()).select(
        "product_id", pl.col("to_location_id").alias("location_id"),
        pl.col("received_date").str.to_date().alias("day"), pl.col("quantity").alias("movement"),
    )
    counts = (
        _read_all(landing, "inventory", "cycle_counts")
        .filter(pl.col("location_id").is_in(locations))
        .select("product_id", "location_id", pl.col("count_date").str.to_date().alias("day"),
                (pl.col("counted_qty").cast(pl.Float64) - pl.col("book_qty").cast(pl.Float64)).alias("movement"))
    )
    movements = pl.concat(
        [sales.select("product_id", "location_id", "day", "movement"), receipts, transfers_out, transfers_in, counts]
    ).group_by("product_id", "location_id", "day").agg(pl.col("movement").sum())

    snapshots = _read_all(landing, "inventory", "stock_snapshots").select(
        "product_id", "location_id", pl.col("snapshot_date").str.to_date().alias("day"),
        pl.col("on_hand_qty").cast(pl.Float64),
    )
    costs = (
        _read_all(landing, "finance", "standard_costs")
        .select("product_id", pl.col("valid_from").str.to_date().alias("day"),
                pl.col("unit_cost").cast(pl.Float64, strict=False))
        .filter(pl.col("unit_cost").is_not_null())
        .sort("day")
    )
    ledger = _read_all(landing, "finance", "cogs_ledger").select(
        "product_id", "location_id", pl.col("posting_date").str.to_date().alias("day"),
        pl.col("amount").cast(pl.Float64),
    )

    rows = []
    for product_id, location_id in pairs:
        for month in months:
            last = date(month.year, month.month, calendar.monthrange(month.year, month.month)[1])
            opening = snapshots.filter(
                (pl.col("product_id") == product_id) & (pl.col("location_id") == location_id)
                & (pl.col("day") == month - timedelta(days=1))
            )["on_hand_qty"]
            days = pl.DataFrame({"day": pl.date_range(month, last, "1d", eager=True)})
            daily = (
                days.join(
                    movements.filter((pl.col("product_id") == product_id) & (pl.col("location_id") == location_id)),
                    on="day", how="left",
                )
                .with_columns(pl.col("movement").fill_null(0.0))
                .with_columns((opening[0] + pl.col("movement").cum_sum()).alias("on_hand"))
                .sort("day")
                .join_asof(costs.filter(pl.col("product_id") == product_id).drop("product_id"), on="day")
            )
            avg_value = (daily["on_hand"].clip(lower_bound=0) * daily["unit_cost"]).sum() / daily.height
            cogs = ledger.filter(
                (pl.col("product_id") == product_id) & (pl.col("location_id") == location_id)
                & pl.col("day").is_between(month, last)
            )["amount"].sum()
            rows.append({"product_id": product_id, "location_id": location_id, "month_start_date": month,
                         "expected_avg_value": avg_value, "expected_cogs": cogs,
                         "expected_turnover": cogs / avg_value if avg_value else None})
    return pl.DataFrame(rows)


def test_monthly_turnover_matches_an_independent_polars_recomputation(
    small_warehouse: Path, small_landing: Path
) -> None:
    bounds = query(small_warehouse, "select history_start_date, as_of_date from intermediate.int_calendar_bounds")
    start, as_of = bounds.row(0)
    # full months strictly inside the history, and a seeded sample of store product-locations
    months = [d.date() if hasattr(d, "date") else d for d in pl.date_range(
        date(start.year, start.month, 1), as_of, "1mo", eager=True)][1:-1]
    pairs = (
        query(small_warehouse, "select distinct product_id, location_id from marts.fct_sales_daily order by 1, 2")
        .sample(n=6, seed=3).rows()
    )
    expected = independent_monthly_turnover(small_landing, pairs, months[::3])
    mart = query(small_warehouse, """
        select product_id, location_id, month_start_date, avg_inventory_value, cogs_amount, inventory_turnover
        from marts.fct_inventory_turnover_monthly where grain = 'product_location'
    """)
    joined = expected.join(mart, on=["product_id", "location_id", "month_start_date"], how="left")
    assert joined.height == len(pairs) * len(months[::3])
    assert joined["avg_inventory_value"].null_count() == 0
    for row in joined.iter_rows(named=True):
        assert row["avg_inventory_value"] == pytest.approx(row["expected_avg_value"], rel=1e-9, abs=1e-9), row
        assert row["cogs_amount"] == pytest.approx(row["expected_cogs"], rel=1e-9, abs=1e-9), row
        if row["expected_turnover"] is not None:
            assert row["inventory_turnover"] == pytest.approx(row["expected_turnover"], rel=1e-9), row


def test_company_rollup_is_the_sum_of_its_parts(small_warehouse: Path) -> None:
    check = query(small_warehouse, """
        with parts as (
            select month_start_date, sum(avg_inventory_value) as value, sum(cogs_amount) as cogs,
                   sum(stockout_days) as stockout_days
            from marts.fct_inventory_turnover_monthly where grain = 'product_location' group by 1
        )
        select max(abs(c.avg_inventory_value - p.value)), max(abs(c.cogs_amount - p.cogs)),
               max(abs(c.stockout_days - p.stockout_days))
        from marts.fct_inventory_turnover_monthly c join parts p using (month_start_date)
        where c.grain = 'company'
    """)
    assert all(v < 1e-6 for v in check.row(0))


def test_days_of_supply_uses_the_trailing_usage(small_warehouse: Path) -> None:
    row = query(small_warehouse, """
        with as_of as (select as_of_date from intermediate.int_calendar_bounds),
        pick as (
            select product_id, location_id, on_hand_units, days_of_supply
            from marts.fct_days_of_supply
            where is_as_of_date and supply_status = 'in_stock'
            order by product_id, location_id limit 1
        ),
        usage as (
            select sum(i.units_sold + i.transfers_out_units) / 28.0 as avg_usage
            from marts.fct_inventory_daily i join pick using (product_id, location_id), as_of
            where i.date_day > as_of.as_of_date - 28 and i.date_day <= as_of.as_of_date
        )
        select pick.on_hand_units / usage.avg_usage as expected, pick.days_of_supply from pick, usage
    """)
    expected, actual = row.row(0)
    assert actual == pytest.approx(expected, rel=1e-12)


def test_supplier_lead_times_are_measured_from_receipts(small_warehouse: Path) -> None:
    row = query(small_warehouse, """
        select d.lead_time_mean_days, avg(r.received_date - r.order_date)
        from marts.dim_supplier d join marts.fct_purchase_receipts r using (supplier_id)
        group by d.supplier_id, d.lead_time_mean_days, d.receipts_observed
        order by d.receipts_observed desc limit 1
    """)
    mart_mean, recomputed = row.row(0)
    assert mart_mean == pytest.approx(recomputed)
