"""What the policy reads from the warehouse, all bounded by ``as_of`` (no look-ahead).

Every query joins the series being planned (the lead-time-demand keys, registered as a DuckDB relation with a row
index ``_i``) so only their rows are scanned, and returns one row per series (``_i``) or per table row. Demand
history is *usage*: units sold plus units shipped to other locations (``marts.fct_inventory_daily``), as in
``marts.fct_days_of_supply``, so a distribution centre's demand is what it ships to the stores.

Master data (``marts.dim_product``, ``marts.dim_location``) has no history: supplier, MOQ, pack size, nominal lead
time, ordering cost and holding rate are taken as they are now. Prices and costs, which do have history, are taken
as valid on ``as_of``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from ml.policy.config import PolicyConfig
from ml.warehouse import read_frame

log = logging.getLogger("stockturn.policy")

KEYS_RELATION = "__policy_keys"


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Like ml.warehouse.table_exists, but fetches the whole result: with DuckDB 2 a ``fetchone()`` leaves the
    result open and the next ``con.sql()`` / ``register()`` on the connection fails (ResourceInUseException)."""
    rows = con.execute("select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                       [schema, table]).fetchall()
    return rows[0][0] > 0


@contextmanager
def registered_keys(con: duckdb.DuckDBPyConnection, keys: pl.DataFrame) -> Iterator[str]:
    """Register ``keys`` (product_id, location_id, _i) as a relation for the duration of the block."""
    # DuckDB 2 refuses register() while an earlier execute() result is unfinished (e.g. after a fetchone() by the
    # caller); a trivial fully-fetched query closes it.
    con.execute("select 1").fetchall()
    con.register(KEYS_RELATION, keys.select("_i", "product_id", "location_id").to_arrow())
    try:
        yield KEYS_RELATION
    finally:
        con.unregister(KEYS_RELATION)


def read_unplanned_products(con: duckdb.DuckDBPyConnection, keys: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Active stock products on ``as_of`` (launched, not discontinued) with no series among ``keys``: nothing
    forecasts or plans them (product_id)."""
    with registered_keys(con, keys) as rel:
        return read_frame(con, f"""
            select product_id from marts.dim_product
            where coalesce(product_type, 'stock') = 'stock' and (launch_date is null or launch_date <= $as_of::date)
              and (discontinued_date is null or discontinued_date > $as_of::date)
            except select distinct product_id from {rel}
            order by 1""", {"as_of": as_of})


def read_unforecast_locations(con: duckdb.DuckDBPyConnection, keys: pl.DataFrame, as_of: date,
                              window_days: int) -> pl.DataFrame:
    """Product-locations of active stock products that sold or shipped in the ``window_days`` up to ``as_of`` and
    have no series among ``keys`` (product_id, location_id, units, value_at_cost): a plan made after its forecast
    (the nightly re-plan) has no draws for a product that began to sell at a location since the forecast was made.
    ``units``: sales plus transfers out in the window; ``value_at_cost``: the same at the day's unit cost."""
    with registered_keys(con, keys) as rel:
        return read_frame(con, f"""
            with recent as (
                select product_id, location_id,
                       sum(coalesce(units_sold, 0) + coalesce(transfers_out_units, 0)) as units,
                       sum((coalesce(units_sold, 0) + coalesce(transfers_out_units, 0))
                           * coalesce(unit_cost, 0)) as value_at_cost
                from marts.fct_inventory_daily
                where date_day <= $as_of::date and date_day > $as_of::date - $window::integer
                group by all
                having sum(coalesce(units_sold, 0) + coalesce(transfers_out_units, 0)) > 0
            )
            select r.product_id, r.location_id, r.units::double as units, r.value_at_cost::double as value_at_cost
            from recent as r
            inner join marts.dim_product as p on r.product_id = p.product_id
            where coalesce(p.product_type, 'stock') = 'stock'
              and (p.discontinued_date is null or p.discontinued_date > $as_of::date)
              and not exists (select 1 from {rel} as k
                              where k.product_id = r.product_id and k.location_id = r.location_id)
            order by r.value_at_cost desc, r.product_id, r.location_id""",
            {"as_of": as_of, "window": window_days})


def latest_history_date(con: duckdb.DuckDBPyConnection) -> date | None:
    return con.execute("select max(date_day) from marts.fct_inventory_daily").fetchall()[0][0]


#: EOQ cost columns of marts.dim_product (contract columns products/suppliers.ordering_cost, annual_holding_rate),
#: read as master_<name>; a dim_product built before they existed reads as nulls (the planning settings apply).
_MASTER_COST_COLUMNS: dict[str, str] = {
    "ordering_cost": "double", "ordering_cost_basis": "varchar",
    "annual_holding_rate": "double", "holding_rate_basis": "varchar",
}


def read_master(con: duckdb.DuckDBPyConnection, config: PolicyConfig) -> pl.DataFrame:
    """Product and location master data per series (nulls for codes missing from the masters).

    The item's EOQ costs come as ``master_ordering_cost``, ``master_annual_holding_rate`` and their bases
    (``master_ordering_cost_basis``, ``master_holding_rate_basis``: 'product' or 'supplier', see dim_product);
    null where the master gives none."""
    rows = con.execute("select column_name from information_schema.columns where table_schema = 'marts' "
                       "and table_name = 'dim_product'").fetchall()
    have = {r[0] for r in rows}
    costs = ", ".join(f"p.{c}::{t} as master_{c}" if c in have else f"null::{t} as master_{c}"
                      for c, t in _MASTER_COST_COLUMNS.items())
    return read_frame(
        con,
        f"""
        select k._i,
               p.product_id is not null as in_product_master,
               p.product_type, p.supplier_id, p.min_order_qty, p.pack_size,
               p.nominal_lead_time_days::double as nominal_lead_time_days,
               p.launch_date, p.discontinued_date, p.current_list_price, {costs},
               l.location_type, l.replenished_from,
               coalesce(l.replenishment_source,
                        case when l.replenished_from is null then 'supplier' else 'transfer' end)
                   as replenishment_source
        from {KEYS_RELATION} k
        left join marts.dim_product p on p.product_id = k.product_id
        left join marts.dim_location l on l.location_id = k.location_id
        """,
    )


def read_history(con: duckdb.DuckDBPyConnection, as_of: date, config: PolicyConfig) -> pl.DataFrame:
    """Per series: demand statistics over the trailing window (as_of - history_window_days, as_of].

    - hist_days, hist_units, hist_mean, hist_std: days present in the window, total usage, mean and sample
      standard deviation of daily usage (days before a series' first row do not count).
    - sale_days: days with usage > 0; weeks_n / week_mean / week_std: complete 7-day buckets ending at as_of
      (the XYZ coefficient of variation).
    - recent_days, recent_units, recent_stockout_days: the last ``forecast_window_days`` days.
    - last_usage_date and last_unit_cost (latest positive standard cost), within the window.

    One scan of the window: daily rows are grouped into (series, week) buckets first, then per series.
    """
    params = {"as_of": as_of, "window": config.history_window_days, "recent": config.forecast_window_days}
    frame = read_frame(
        con,
        f"""
        with d as (
            select product_id, location_id, date_day,
                   coalesce(units_sold, 0) + coalesce(transfers_out_units, 0) as usage, unit_cost,
                   coalesce(is_stockout_day, false) as is_stockout_day
            from marts.fct_inventory_daily
            where date_day <= $as_of::date and date_day > $as_of::date - $window::integer
        ),
        w as (
            select product_id, location_id, ($as_of::date - date_day) // 7 as wk,
                   count(*) as n, sum(usage) as u, sum(usage * usage) as u2,
                   count(*) filter (where usage > 0) as sd,
                   sum(usage) filter (where date_day > $as_of::date - $recent::integer) as ru,
                   count(*) filter (where date_day > $as_of::date - $recent::integer) as rd,
                   count(*) filter (where date_day > $as_of::date - $recent::integer and is_stockout_day) as rso,
                   max(date_day) filter (where usage > 0) as lu,
                   arg_max(unit_cost, date_day) filter (where unit_cost > 0) as lc,
                   max(date_day) filter (where unit_cost > 0) as lcd
            from d group by all
        )
        select k._i, sum(n) as hist_days, sum(u) as hist_units, sum(u2) as hist_u2, sum(sd) as sale_days,
               coalesce(sum(rd), 0) as recent_days, coalesce(sum(ru), 0) as recent_units,
               coalesce(sum(rso), 0) as recent_stockout_days, max(lu) as last_usage_date,
               arg_max(lc, lcd) as last_unit_cost,
               count(*) filter (where n = 7) as weeks_n, sum(u) filter (where n = 7) as week_u,
               sum(u * u) filter (where n = 7) as week_u2
        from w join {KEYS_RELATION} k on k.product_id = w.product_id and k.location_id = w.location_id
        group by k._i
        """,
        params,
    )
    # standard deviations from sums (exact, so order-independent, for whole-unit demand) rather than DuckDB's
    # streaming stddev, whose last bits depend on the parallel aggregation order
    n, w = pl.col("hist_days").cast(pl.Float64), pl.col("weeks_n").cast(pl.Float64)
    var = ((pl.col("hist_u2") - pl.col("hist_units") ** 2 / n) / (n - 1)).clip(lower_bound=0.0)
    week_var = ((pl.col("week_u2") - pl.col("week_u") ** 2 / w) / (w - 1)).clip(lower_bound=0.0)
    return frame.with_columns(
        pl.col("hist_units", "hist_u2", "week_u", "week_u2", "last_unit_cost", "recent_units").cast(pl.Float64),
        pl.col("hist_days", "sale_days", "recent_days", "recent_stockout_days", "weeks_n").cast(pl.Int64),
    ).with_columns(
        pl.when(n > 0).then(pl.col("hist_units") / n).otherwise(None).alias("hist_mean"),
        pl.when(n > 1).then(var.sqrt()).otherwise(0.0).alias("hist_std"),
        pl.when(w > 0).then(pl.col("week_u") / w).otherwise(None).alias("week_mean"),
        pl.when(w > 1).then(week_var.sqrt()).otherwise(None).alias("week_std"),
    ).drop("hist_u2", "week_u", "week_u2")


def read_silence(con: duckdb.DuckDBPyConnection, candidates: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Days with book stock above zero after the last usage, for the ghost-stock candidates only
    (candidates: _i, product_id, location_id, last_usage_date)."""
    schema = {"_i": pl.UInt32, "days_in_stock_since_last_usage": pl.Int64}
    if candidates.height == 0:
        return pl.DataFrame(schema=schema)
    con.execute("select 1").fetchall()
    con.register("__policy_silence", candidates.select("_i", "product_id", "location_id", "last_usage_date"
                                                       ).to_arrow())
    try:
        frame = read_frame(con, """
            select c._i, count(*) filter (where f.on_hand_units > 0) as days_in_stock_since_last_usage
            from marts.fct_inventory_daily f
            join __policy_silence c on c.product_id = f.product_id and c.location_id = f.location_id
            where f.date_day > c.last_usage_date and f.date_day <= $as_of::date
            group by c._i
        """, {"as_of": as_of})
    finally:
        con.unregister("__policy_silence")
    return frame.cast(schema) if frame.height else pl.DataFrame(schema=schema)


def read_position(con: duckdb.DuckDBPyConnection, as_of: date) -> pl.DataFrame:
    """Book stock and open supply on ``as_of`` per series, and the replenishing location's on hand (transfers)."""
    return read_frame(
        con,
        f"""
        select k._i, f.on_hand_units, f.on_order_units, f.in_transit_units, f.is_negative_book, f.on_hand_basis,
               f.unit_cost as unit_cost_as_of, src.on_hand_units as source_on_hand_units
        from {KEYS_RELATION} k
        join marts.fct_inventory_daily f
          on f.product_id = k.product_id and f.location_id = k.location_id and f.date_day = $as_of::date
        left join marts.dim_location l on l.location_id = k.location_id
        left join marts.fct_inventory_daily src
          on src.product_id = k.product_id and src.location_id = l.replenished_from and src.date_day = $as_of::date
        """,
        {"as_of": as_of},
    )


def read_prices(con: duckdb.DuckDBPyConnection, as_of: date, config: PolicyConfig) -> pl.DataFrame:
    """Latest positive list price within the history window up to ``as_of``: at the series' own location, and
    the product's latest anywhere (for locations that do not sell, such as a distribution centre)."""
    if not table_exists(con, "marts", "fct_sales_daily"):
        return pl.DataFrame(schema={"_i": pl.UInt32, "price_location": pl.Float64, "price_product": pl.Float64})
    return read_frame(
        con,
        f"""
        with s as (
            select product_id, location_id, date_day, list_price
            from marts.fct_sales_daily
            where date_day <= $as_of::date and date_day > $as_of::date - $window::integer and list_price > 0
              and product_id in (select product_id from {KEYS_RELATION})
        ),
        by_loc as (select product_id, location_id, arg_max(list_price, date_day) as price_location
                   from s group by all),
        by_product as (select product_id, arg_max(list_price, date_day) as price_product from s group by all)
        select k._i, l.price_location, p.price_product
        from {KEYS_RELATION} k
        left join by_loc l on l.product_id = k.product_id and l.location_id = k.location_id
        left join by_product p on p.product_id = k.product_id
        """,
        {"as_of": as_of, "window": config.history_window_days},
    )


def read_counts(con: duckdb.DuckDBPyConnection, as_of: date, config: PolicyConfig) -> pl.DataFrame:
    """Cycle-count evidence per series within the lookback (count_date in (as_of - lookback, as_of])."""
    empty = pl.DataFrame(schema={
        "_i": pl.UInt32, "counts_n": pl.Int64, "ghost_counts": pl.Int64, "shrink_counts": pl.Int64,
        "last_count_date": pl.Date, "last_count_ghost": pl.Boolean, "last_count_discrepancy": pl.Float64,
        "last_ghost_date": pl.Date,
    })
    if not table_exists(con, "marts", "fct_inventory_discrepancies"):
        return empty
    return read_frame(
        con,
        f"""
        select k._i, count(*) as counts_n,
               count(*) filter (where d.is_ghost_stock) as ghost_counts,
               count(*) filter (where d.discrepancy_units < 0) as shrink_counts,
               max(d.count_date) as last_count_date,
               arg_max(d.is_ghost_stock, d.count_date) as last_count_ghost,
               arg_max(d.discrepancy_units, d.count_date) as last_count_discrepancy,
               max(d.count_date) filter (where d.is_ghost_stock) as last_ghost_date
        from marts.fct_inventory_discrepancies d
        join {KEYS_RELATION} k on k.product_id = d.product_id and k.location_id = d.location_id
        where d.count_date <= $as_of::date and d.count_date > $as_of::date - $lookback::integer
        group by k._i
        """,
        {"as_of": as_of, "lookback": config.ghost_count_lookback_days},
    )


def read_previous_policy(con: duckdb.DuckDBPyConnection, as_of: date) -> pl.DataFrame | None:
    """The previous run's ml.inventory_policy (reorder point per series) if it exists and is not from after as_of."""
    if not table_exists(con, "ml", "inventory_policy"):
        return None
    cols = set(read_frame(con, "select column_name from information_schema.columns where table_schema = 'ml' "
                               "and table_name = 'inventory_policy'")["column_name"].to_list())
    if not {"product_id", "location_id", "reorder_point", "as_of_date"} <= cols:
        log.warning("ml.inventory_policy has an unexpected layout; previous-run comparison skipped")
        return None
    prev = read_frame(
        con,
        f"""
        select k._i, p.reorder_point as previous_reorder_point, p.as_of_date as previous_as_of_date
        from ml.inventory_policy p
        join {KEYS_RELATION} k on k.product_id = p.product_id and k.location_id = p.location_id
        where p.as_of_date <= $as_of::date
        """,
        {"as_of": as_of},
    )
    return prev


def read_seed_table(
    con: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...], seeds_dir: Path
) -> pl.DataFrame | None:
    """``planning.<table>`` with every column as text (in file order), else ``<seeds_dir>/<table>.csv`` (logged),
    else None. Missing optional columns come back as nulls."""
    if table_exists(con, "planning", table):
        have = set(read_frame(con, "select column_name from information_schema.columns where table_schema = "
                                   "'planning' and table_name = ?", [table])["column_name"].to_list())
        select = ", ".join(f"cast({c} as varchar) as {c}" if c in have else f"null::varchar as {c}" for c in columns)
        frame = read_frame(con, f"select {select} from planning.{table}")
        source = f"planning.{table}"
    else:
        path = seeds_dir / f"{table}.csv"
        if not path.exists():
            log.warning("planning.%s is not in the warehouse and %s does not exist", table, path)
            return None
        log.warning("planning.%s is not in the warehouse (dbt seed not run?): reading %s directly", table, path)
        raw = pl.read_csv(path, infer_schema=False)
        frame = raw.select([pl.col(c) if c in raw.columns else pl.lit(None, dtype=pl.String).alias(c)
                            for c in columns])
        source = str(path)
    frame = frame.with_columns([pl.col(c).cast(pl.String).str.strip_chars() for c in columns])
    return frame.with_row_index("seed_row", offset=1).with_columns(pl.lit(source).alias("seed_source"))
