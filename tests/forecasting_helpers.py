"""Synthetic warehouses for the forecasting tests: just the mart/staging tables ``ml.forecasting`` reads, filled
from a known demand panel, so a test controls the truth (stock-outs, grain, lead times) and runs in seconds."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

TABLES = """
create schema if not exists marts;
create schema if not exists staging;
create schema if not exists intermediate;
create or replace table marts.dim_location (location_id varchar, location_type varchar, replenished_from varchar);
create or replace table marts.dim_supplier (supplier_id varchar, nominal_lead_time_days bigint);
create or replace table marts.dim_product (
    product_id varchar, category varchar, supplier_id varchar, product_type varchar, discontinued_date date,
    nominal_lead_time_days bigint, is_active boolean);
create or replace table marts.fct_purchase_receipts (
    product_id varchar, supplier_id varchar, location_id varchar, lead_time_days integer, quantity_received double,
    order_date date, received_date date, po_id varchar, po_line integer);
create or replace table staging.stg_logistics__transfers (
    product_id varchar, from_location_id varchar, to_location_id varchar, ordered_date date, received_date date,
    quantity double);
create or replace table staging.stg_sales__prices (
    product_id varchar, location_id varchar, valid_from date, list_price double);
create or replace table staging.stg_sales__promotions (promotion_id varchar, start_date date);
create or replace table intermediate.int_promotion_days (
    date_day date, product_id varchar, location_id varchar, promotion_id varchar, discount_pct double);
"""


def write_warehouse(
    path: Path,
    sales: np.ndarray,
    *,
    start: date = date(2023, 1, 2),
    stockout: np.ndarray | None = None,
    locations: list[str] | None = None,
    products: list[str] | None = None,
    dc: str | None = None,
    fill_days: bool = True,
    receipts: pl.DataFrame | None = None,
    nominal_lead_time: int | None = None,
    category: list[str] | None = None,
) -> Path:
    """A warehouse whose ``fct_sales_daily`` holds ``sales`` (n_products * n_locations, n_days), series ordered
    location-major (series = location index * n_products + product index).

    ``fill_days`` writes every day (zeros between sales, as the mart does); ``dc`` adds a distribution centre that
    replenishes every location; ``stockout`` flags days (None = no inventory information, flags null).
    """
    n_series, n_days = sales.shape
    locations = locations or ["S01"]
    n_products = n_series // len(locations)
    products = products or [f"P{i:04d}" for i in range(n_products)]
    category = category or [f"C{i % 3}" for i in range(n_products)]
    prod = np.tile(np.arange(n_products), len(locations))
    loc = np.repeat(np.arange(len(locations)), n_products)
    days = np.datetime64(start, "D") + np.arange(n_days)
    i, t = np.nonzero(np.ones_like(sales, dtype=bool) if fill_days else sales > 0)
    frame = pl.DataFrame({
        "date_day": days[t],
        "product_id": np.array(products, dtype=object)[prod[i]],
        "location_id": np.array(locations, dtype=object)[loc[i]],
        "units_sold": sales[i, t].astype(np.float64),
        "is_stockout_day": None if stockout is None else stockout[i, t],
        "list_price": np.full(len(i), 10.0),
    }).with_columns(pl.col("date_day").cast(pl.Date), pl.col("is_stockout_day").cast(pl.Boolean))
    con = duckdb.connect(str(path))
    try:
        con.execute(TABLES)
        con.register("f", frame.to_arrow())
        con.execute("create or replace table marts.fct_sales_daily as select * from f")
        con.unregister("f")
        locs = pl.DataFrame({"location_id": locations, "location_type": ["store"] * len(locations),
                             "replenished_from": [dc] * len(locations)})
        if dc:
            locs = pl.concat([locs, pl.DataFrame({"location_id": [dc], "location_type": ["dc"],
                                                  "replenished_from": [None]}, schema=locs.schema)])
        con.register("l", locs.to_arrow())
        con.execute("insert into marts.dim_location select * from l")
        con.unregister("l")
        prods = pl.DataFrame({
            "product_id": products, "category": category, "supplier_id": ["SUP1"] * n_products,
            "product_type": ["stock"] * n_products, "discontinued_date": [None] * n_products,
            "nominal_lead_time_days": [nominal_lead_time] * n_products, "is_active": [True] * n_products,
        }, schema_overrides={"discontinued_date": pl.Date, "nominal_lead_time_days": pl.Int64})
        con.register("p", prods.to_arrow())
        con.execute("insert into marts.dim_product select * from p")
        con.unregister("p")
        con.execute("insert into marts.dim_supplier values ('SUP1', null)")
        if receipts is not None:
            con.register("r", receipts.to_arrow())
            con.execute("insert into marts.fct_purchase_receipts by name select * from r")
            con.unregister("r")
    finally:
        con.close()
    return path


def negative_binomial_panel(n_series: int, n_days: int, *, seed: int = 0, mean: float | np.ndarray = 3.0,
                            size: float = 5.0, weekly: bool = True) -> np.ndarray:
    """Known-demand panel: negative binomial around a per-series mean with a weekly profile."""
    rng = np.random.default_rng(seed)
    mu = np.broadcast_to(np.asarray(mean, dtype=np.float64), (n_series,))[:, None] * np.ones((1, n_days))
    if weekly:
        profile = np.array([0.9, 0.85, 0.9, 0.95, 1.1, 1.3, 1.0])
        mu = mu * (profile / profile.mean())[np.arange(n_days) % 7][None, :]
    rate = rng.gamma(size, mu / size)
    return rng.poisson(rate).astype(np.float64)


def days_after(start: date, n: int) -> date:
    return start + timedelta(days=n)
