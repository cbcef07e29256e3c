"""Test helpers for ml.policy: crafted marts in a DuckDB file, and a naive lead-time-demand estimate.

``naive_lead_time_demand`` is a deliberately simple stand-in for the production forecaster (ml.forecasting): it
bootstraps days of recent usage, so policy tests do not depend on the forecasting module. Never use it to plan.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import polars as pl

from ml.demand_distribution import LeadTimeDemand
from ml.warehouse import read_frame

DIM_PRODUCT = {
    "product_id": pl.String, "product_type": pl.String, "supplier_id": pl.String, "min_order_qty": pl.Float64,
    "pack_size": pl.Float64, "nominal_lead_time_days": pl.Int64, "launch_date": pl.Date,
    "discontinued_date": pl.Date, "current_unit_cost": pl.Float64, "current_list_price": pl.Float64,
    "ordering_cost": pl.Float64, "ordering_cost_basis": pl.String, "annual_holding_rate": pl.Float64,
    "holding_rate_basis": pl.String,
}
DIM_LOCATION = {
    "location_id": pl.String, "location_type": pl.String, "replenished_from": pl.String,
    "replenishment_source": pl.String,
}
INVENTORY_DAILY = {
    "date_day": pl.Date, "product_id": pl.String, "location_id": pl.String, "units_sold": pl.Float64,
    "transfers_out_units": pl.Float64, "on_hand_units": pl.Float64, "on_order_units": pl.Float64,
    "in_transit_units": pl.Float64, "unit_cost": pl.Float64, "is_negative_book": pl.Boolean,
    "is_stockout_day": pl.Boolean, "on_hand_basis": pl.String,
}
SALES_DAILY = {"date_day": pl.Date, "product_id": pl.String, "location_id": pl.String, "list_price": pl.Float64}
DISCREPANCIES = {
    "count_id": pl.String, "count_date": pl.Date, "product_id": pl.String, "location_id": pl.String,
    "discrepancy_units": pl.Float64, "is_ghost_stock": pl.Boolean,
}


def _conform(rows: list[dict] | pl.DataFrame | None, schema: dict) -> pl.DataFrame:
    frame = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(rows or [], schema_overrides=None)
    return frame.select([
        (pl.col(c) if c in frame.columns else pl.lit(None)).cast(t).alias(c) for c, t in schema.items()])


def create_marts(
    con: duckdb.DuckDBPyConnection,
    *,
    products: list[dict] | pl.DataFrame,
    locations: list[dict] | pl.DataFrame,
    inventory_daily: pl.DataFrame,
    sales_daily: pl.DataFrame | None = None,
    discrepancies: list[dict] | pl.DataFrame | None = None,
) -> None:
    """Create the marts tables run_policy reads, with the columns it uses (others omitted)."""
    con.execute("create schema if not exists marts")
    tables = {
        "dim_product": _conform(products, DIM_PRODUCT),
        "dim_location": _conform(locations, DIM_LOCATION),
        "fct_inventory_daily": _conform(inventory_daily, INVENTORY_DAILY),
        "fct_sales_daily": _conform(sales_daily, SALES_DAILY),
        "fct_inventory_discrepancies": _conform(discrepancies, DISCREPANCIES),
    }
    for name, frame in tables.items():
        con.register("__t", frame.to_arrow())
        con.execute(f"create or replace table marts.{name} as select * from __t")
        con.unregister("__t")


def series_days(
    product_id: str,
    location_id: str,
    usage: np.ndarray | list[float],
    as_of: date,
    *,
    on_hand: float | np.ndarray | None = 10.0,
    on_order: float = 0.0,
    in_transit: float = 0.0,
    unit_cost: float | None = 1.0,
    transfers_out: np.ndarray | None = None,
    stockout: np.ndarray | None = None,
) -> pl.DataFrame:
    """Daily rows of one series ending at ``as_of`` (``usage`` = units sold per day, oldest first). The on-hand
    is constant unless an array is given; on order and in transit are set on every day."""
    u = np.asarray(usage, dtype=np.float64)
    n = u.size
    days = [as_of - timedelta(days=n - 1 - i) for i in range(n)]
    oh = np.broadcast_to(np.asarray(np.nan if on_hand is None else on_hand, dtype=np.float64), (n,))
    return pl.DataFrame({
        "date_day": days, "product_id": [product_id] * n, "location_id": [location_id] * n, "units_sold": u,
        "transfers_out_units": np.zeros(n) if transfers_out is None else np.asarray(transfers_out, dtype=np.float64),
        "on_hand_units": oh, "on_order_units": np.full(n, float(on_order)),
        "in_transit_units": np.full(n, float(in_transit)),
        "unit_cost": np.full(n, np.nan if unit_cost is None else unit_cost),
        "is_negative_book": oh < 0, "is_stockout_day": np.zeros(n, dtype=bool) if stockout is None else stockout,
        "on_hand_basis": ["reconstructed"] * n,
    }, schema_overrides={"date_day": pl.Date}).with_columns(pl.col(pl.Float64).fill_nan(None))


def make_ltd(
    keys: list[tuple[str, str]],
    samples: np.ndarray,
    *,
    daily_mean: np.ndarray | float,
    lead_time: np.ndarray | float,
    review: np.ndarray | float = 0.0,
    source: str = "test",
) -> LeadTimeDemand:
    n = len(keys)

    def vec(x: np.ndarray | float) -> np.ndarray:
        return np.broadcast_to(np.asarray(x, dtype=np.float64), (n,)).copy()

    return LeadTimeDemand(
        keys=pl.DataFrame(keys, schema={"product_id": pl.String, "location_id": pl.String}, orient="row"),
        samples=np.asarray(samples, dtype=np.float64), daily_demand_mean=vec(daily_mean),
        lead_time_mean_days=vec(lead_time), lead_time_p90_days=vec(lead_time), review_period_days=vec(review),
        lead_time_source=np.array([source] * n, dtype=object))


def naive_lead_time_demand(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    *,
    n_samples: int = 200,
    window_days: int = 182,
    review_days_supplier: float = 7.0,
    review_days_transfer: float = 1.0,
    transfer_lead_days: float = 2.0,
    seed: int = 0,
) -> LeadTimeDemand:
    """NOT the production forecaster: bootstrap sums of recent daily usage over lead time + review period.

    Series: every product-location with a row on ``as_of``. Lead time: mean receipt lead time per product before
    as_of for supplier-fed locations (else the nominal one), ``transfer_lead_days`` for stores.
    """
    series = read_frame(con, """
        select f.product_id, f.location_id,
               coalesce(l.replenishment_source, 'supplier') = 'supplier' as is_supplier,
               coalesce(r.lt, p.nominal_lead_time_days, 7)::double as supplier_lt
        from marts.fct_inventory_daily f
        left join marts.dim_location l using (location_id)
        left join marts.dim_product p using (product_id)
        left join (select product_id, avg(lead_time_days) as lt from marts.fct_purchase_receipts
                   where received_date <= $as_of::date group by 1) r using (product_id)
        where f.date_day = $as_of::date and coalesce(p.product_type, 'stock') = 'stock'
        order by 1, 2
    """, {"as_of": as_of})
    n = series.height
    usage = read_frame(con, """
        select f.product_id, f.location_id, ($as_of::date - f.date_day)::integer as back,
               coalesce(f.units_sold, 0) + coalesce(f.transfers_out_units, 0) as usage
        from marts.fct_inventory_daily f
        where f.date_day > $as_of::date - $w::integer and f.date_day <= $as_of::date
    """, {"as_of": as_of, "w": window_days})
    idx = series.select("product_id", "location_id").with_row_index("i")
    usage = usage.join(idx, on=["product_id", "location_id"])
    matrix = np.zeros((n, window_days))
    matrix[usage["i"].to_numpy(), window_days - 1 - usage["back"].to_numpy()] = usage["usage"].to_numpy()
    is_supplier = series["is_supplier"].to_numpy()
    lead = np.where(is_supplier, series["supplier_lt"].to_numpy(), transfer_lead_days)
    review = np.where(is_supplier, review_days_supplier, review_days_transfer)
    horizon = np.maximum(np.rint(lead + review).astype(np.int64), 1)
    rng = np.random.default_rng(seed)
    samples = np.zeros((n, n_samples))
    for t in np.unique(horizon):  # a few distinct horizons, not series
        rows = np.flatnonzero(horizon == t)
        picks = rng.integers(0, window_days, size=(rows.size, n_samples, int(t)))
        samples[rows] = np.take_along_axis(matrix[rows][:, None, :], picks.reshape(rows.size, 1, -1), axis=2
                                           ).reshape(rows.size, n_samples, int(t)).sum(axis=2)
    return LeadTimeDemand(
        keys=series.select("product_id", "location_id"), samples=samples, daily_demand_mean=matrix.mean(axis=1),
        lead_time_mean_days=lead, lead_time_p90_days=lead * 1.3, review_period_days=review.astype(np.float64),
        lead_time_source=np.array(["naive_test_helper"] * n, dtype=object))


def synthetic_ltd(keys: pl.DataFrame, n_samples: int, seed: int = 0) -> LeadTimeDemand:
    """Gamma-Poisson lead-time demand for scale tests: means spread over four orders of magnitude."""
    n = keys.height
    rng = np.random.default_rng(seed)
    daily = np.exp(rng.normal(-0.5, 1.3, n))
    lead = rng.choice([2.0, 5.0, 9.0, 30.0, 45.0], n)
    review = rng.choice([1.0, 7.0], n)
    mean = daily * (lead + review)
    shape = rng.uniform(0.5, 10.0, n)
    lam = rng.gamma(shape[:, None], (mean / shape)[:, None], size=(n, n_samples))
    samples = rng.poisson(lam).astype(np.float64)
    return LeadTimeDemand(keys=keys.select("product_id", "location_id"), samples=samples, daily_demand_mean=daily,
                          lead_time_mean_days=lead, lead_time_p90_days=lead * 1.4, review_period_days=review,
                          lead_time_source=np.array(["synthetic"] * n, dtype=object))


def build_scale_warehouse(con: duckdb.DuckDBPyConnection, *, n_products: int, n_stores: int, days: int,
                          as_of: date, seed: int = 1) -> pl.DataFrame:
    """Crafted marts at scale, generated inside DuckDB: one DC buying from suppliers and ``n_stores`` stores fed
    by it, ``n_products`` products everywhere ((n_stores + 1) x n_products series), ``days`` of Poisson-ish
    usage. Returns the series keys."""
    con.execute(f"select setseed({1 / (seed + 1)})")
    con.execute("create schema if not exists marts")
    con.execute("""create or replace table marts.dim_location as
        select 'DC01' as location_id, 'dc' as location_type, null::varchar as replenished_from,
               'supplier' as replenishment_source
        union all
        select printf('S%03d', i), 'store', 'DC01', 'transfer' from range(1, $s + 1) t(i)""", {"s": n_stores})
    con.execute("""create or replace table marts.dim_product as
        select printf('P%06d', i) as product_id, 'stock' as product_type, printf('SUP%02d', i % 7) as supplier_id,
               [1, 6, 12, 24, 48][1 + i % 5]::double as min_order_qty,
               [1, 6, 12, 12, 24][1 + i % 5]::double as pack_size,
               [4, 7, 9, 28, 42][1 + i % 5]::bigint as nominal_lead_time_days, null::date as launch_date,
               null::date as discontinued_date, round(exp(random() * 4), 2) as current_unit_cost,
               null::double as current_list_price
        from range($n) t(i)""", {"n": n_products})
    con.execute("""create or replace table marts.fct_inventory_daily as
        with series as (
            select p.product_id, l.location_id, p.current_unit_cost as unit_cost,
                   exp(random() * 5 - 3) * (case when l.location_id = 'DC01' then $s else 1 end) as rate
            from marts.dim_product p cross join marts.dim_location l)
        select ($as_of::date - d.i::integer) as date_day, s.product_id, s.location_id,
               case when l.location_id = 'DC01' then 0 else floor(-ln(random()) * s.rate) end::double as units_sold,
               case when l.location_id = 'DC01' then floor(-ln(random()) * s.rate) else 0 end::double
                   as transfers_out_units,
               floor(random() * 40 * s.rate + 1)::double as on_hand_units, 0::double as on_order_units,
               0::double as in_transit_units, s.unit_cost, false as is_negative_book,
               random() < 0.02 as is_stockout_day, 'reconstructed' as on_hand_basis
        from series s join marts.dim_location l using (location_id) cross join range($days) d(i)""",
                {"s": n_stores, "as_of": as_of, "days": days})
    con.execute("""create or replace table marts.fct_sales_daily as
        select date_day, product_id, location_id, unit_cost * 1.6 as list_price from marts.fct_inventory_daily
        where location_id <> 'DC01' and date_day > $as_of::date - 30""", {"as_of": as_of})
    con.execute("""create or replace table marts.fct_inventory_discrepancies as
        select printf('C%08d', row_number() over ()) as count_id, date_day as count_date, product_id, location_id,
               -1.0::double as discrepancy_units, random() < 0.3 as is_ghost_stock
        from marts.fct_inventory_daily where random() < 0.003""")
    return read_frame(con, "select product_id, location_id from marts.dim_product cross join marts.dim_location "
                           "order by 1, 2")
