"""The report's SQL: every query aggregates inside DuckDB and returns a few hundred rows at most.

All functions take an open (read-only) connection and return polars frames or small dataclasses. Windows:
"last 12 months" are the 12 calendar months up to and including the as-of month (the last may be partial),
"prior 12 months" the 12 before them. Ratios over a window are ratios of sums (COGS over the window divided by
the day-weighted average inventory), the same way fct_inventory_turnover_monthly rolls products up.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date

import duckdb
import polars as pl

log = logging.getLogger("stockturn.reports")

#: Days of supply above which stock counts as excess in the report (about three months).
EXCESS_DAYS = 91
#: Half-width of the window of in-stock days that sets the usual demand of a stock-out day.
LOST_SALES_WINDOW_DAYS = 28
#: In-stock days needed in that window before a stock-out day is estimated.
LOST_SALES_MIN_DAYS = 7
#: Series shown one by one in small multiples; the rest are summed into "Other".
TOP_SERIES = 12
#: Appended to the name of a location whose turnover is on its shipments only (it sells nothing: a DC).
SHIPMENTS_SUFFIX = " · on shipments"

NEEDS_ON_HAND = "stock on hand (inventory/stock_snapshots or inventory/cycle_counts)"
NEEDS_UNIT_COSTS = "unit costs (finance/standard_costs)"
NEEDS_COGS = "cost of goods sold (finance/cogs_ledger or finance/standard_costs)"
NEEDS_COUNTS = "cycle counts (inventory/cycle_counts)"
NEEDS_SALES = "sales lines (sales/sales_lines)"

#: Without these there is no report at all; every other mart only gates the sections that read it.
REQUIRED_MARTS = ("dim_date", "dim_product", "dim_location")
ML_TABLES = ("demand_forecast", "forecast_backtest", "lead_time_demand", "inventory_policy", "purchase_proposals")


class WarehouseNotBuiltError(RuntimeError):
    """The warehouse lacks the marts the report reads."""


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    return con.sql(sql, params=params or None).pl()


def _exists(con: duckdb.DuckDBPyConnection, sql: str, table: str | None = None,
            tables: frozenset[str] = frozenset()) -> bool:
    if table is not None and table not in tables:
        return False
    return con.execute(f"select count(*) from ({sql} limit 1)").fetchall()[0][0] > 0


# ------------------------------------------------------------------------------------------------ context


@dataclass(frozen=True)
class Context:
    """What the warehouse covers and which sources it had."""

    as_of_date: date
    history_start: date
    last12_start: date  # first month of the last-12-months window
    prior12_start: date
    products: int
    locations: int
    selling_locations: int
    has_sales: bool
    has_on_hand: bool
    has_unit_costs: bool
    has_cogs: bool
    has_stockout_flags: bool
    has_counts: bool
    ml_tables: frozenset[str] = field(default_factory=frozenset)
    marts: frozenset[str] = field(default_factory=frozenset)

    @property
    def has_valued_inventory(self) -> bool:
        return self.has_on_hand and self.has_unit_costs

    def missing_marts(self, *names: str) -> list[str]:
        """The marts among ``names`` the warehouse lacks (a build that stopped part-way)."""
        return [n for n in names if n not in self.marts]

    def missing(self, *needs: str) -> list[str]:
        """The sources among ``needs`` (the NEEDS_* phrases) this warehouse lacks."""
        have = {
            NEEDS_ON_HAND: self.has_on_hand,
            NEEDS_UNIT_COSTS: self.has_unit_costs,
            NEEDS_COGS: self.has_cogs,
            NEEDS_COUNTS: self.has_counts,
            NEEDS_SALES: self.has_sales,
        }
        return [need for need in needs if not have[need]]


def context(con: duckdb.DuckDBPyConnection) -> Context:
    marts = frozenset(
        name for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'"
        ).fetchall()
    )
    missing = [t for t in REQUIRED_MARTS if t not in marts]
    if missing:
        raise WarehouseNotBuiltError(
            f"the warehouse has no marts.{', marts.'.join(missing)}: run `stockturn build` (or `stockturn demo`) first"
        )
    ml_tables = frozenset(
        name for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'ml'"
        ).fetchall()
    )
    as_of, start = con.execute(
        "select max(date_day) filter (where not is_future), min(date_day) from marts.dim_date"
    ).fetchall()[0]
    if as_of is None:
        raise WarehouseNotBuiltError("marts.dim_date is empty: the landing zone had no history")
    last12, prior12 = con.execute(
        "select cast(date_trunc('month', ?::date) - interval 11 month as date), "
        "cast(date_trunc('month', ?::date) - interval 23 month as date)",
        [as_of, as_of],
    ).fetchall()[0]
    products, locations, selling = con.execute(
        "select (select count(*) from marts.dim_product), (select count(*) from marts.dim_location), "
        "(select count(*) from marts.dim_location where is_selling_location)"
    ).fetchall()[0]
    return Context(
        as_of_date=as_of,
        history_start=start,
        last12_start=last12,
        prior12_start=prior12,
        products=products,
        locations=locations,
        selling_locations=selling,
        has_sales=_exists(con, "select 1 from marts.fct_sales_daily where units_sold > 0", "fct_sales_daily", marts),
        has_on_hand=_exists(con, "select 1 from marts.fct_inventory_daily where on_hand_basis <> 'unavailable'",
                            "fct_inventory_daily", marts),
        has_unit_costs=_exists(con, "select 1 from marts.fct_inventory_daily where valuation_basis = 'standard_cost'",
                               "fct_inventory_daily", marts),
        has_cogs=_exists(con, "select 1 from marts.fct_sales_daily where cogs_basis <> 'unavailable'",
                         "fct_sales_daily", marts),
        has_stockout_flags=_exists(con, "select 1 from marts.fct_sales_daily where is_stockout_day is not null",
                                   "fct_sales_daily", marts),
        has_counts=_exists(con, "select 1 from marts.fct_inventory_discrepancies", "fct_inventory_discrepancies",
                           marts),
        ml_tables=ml_tables,
        marts=marts,
    )


# ------------------------------------------------------------------------------------------------ headline KPIs


def company_kpis(con: duckdb.DuckDBPyConnection, ctx: Context) -> dict[str, dict[str, float | None]]:
    """Company KPIs for the last and the prior 12 months: {"last": {...}, "prior": {...}}."""
    if ctx.missing_marts("fct_inventory_turnover_monthly"):
        return {"last": {}, "prior": {}}
    rows = frame(
        con,
        """
        with m as (
            select
                case when month_start_date >= ?::date then 'last' else 'prior' end as period,
                *
            from marts.fct_inventory_turnover_monthly
            where grain = 'company' and month_start_date >= ?::date
        ),
        s as (
            select
                period,
                sum(period_days)::integer as days,
                sum(net_sales_amount) as net_sales,
                sum(cogs_amount) as cogs,
                sum(gross_margin) as gross_margin,
                sum(avg_inventory_value * period_days) / nullif(sum(period_days), 0) as avg_inventory_value,
                sum(stockout_days)::double / nullif(sum(product_location_days), 0) as stockout_rate_all_locations
            from m
            group by period
        )
        select
            *,
            cogs / nullif(avg_inventory_value, 0) * 365.0 / days as turnover,
            case when cogs > 0 then avg_inventory_value / cogs * days end as dio,
            gross_margin / nullif(avg_inventory_value, 0) * 365.0 / days as gmroi
        from s
        """,
        [ctx.last12_start, ctx.prior12_start],
    )
    out: dict[str, dict[str, float | None]] = {"last": {}, "prior": {}}
    for row in rows.iter_rows(named=True):
        out[row.pop("period")] = row
    return out


# ------------------------------------------------------------------------------------------------ turnover


def _series_expr(grain: str) -> tuple[str, str]:
    """(label expression, join) for the series of a turnover grain."""
    if grain == "company":
        return "'Company'", ""
    if grain == "category":
        return "t.category", ""
    if grain == "location":
        return (
            "case when l.location_name is null or l.location_name = t.location_id then t.location_id "
            "else l.location_name || ' (' || t.location_id || ')' end",
            "left join marts.dim_location l on l.location_id = t.location_id",
        )
    raise ValueError(f"unknown grain {grain!r}")


def turnover_trend(con: duckdb.DuckDBPyConnection, ctx: Context, grain: str, top: int = TOP_SERIES) -> pl.DataFrame:
    """Monthly annualised turnover and DIO per series (company, category or location), with the same month a
    year earlier. Series beyond the ``top`` largest by inventory value over the last 12 months become "Other".

    Turnover is the mart's outflow at cost over average inventory at cost: COGS for the company and a category
    (transfers between own locations cancel out), COGS + transfers out at cost for a location, so a distribution
    centre turns on its shipments to stores. ``basis`` says which: 'cogs' (company, category), 'sales_and_transfers'
    (a location that sells) or 'shipments' (a location whose outflow is only transfers out: its series label
    ends with SHIPMENTS_SUFFIX).
    """
    label, join = _series_expr(grain)
    return frame(
        con,
        f"""
        with base as (
            select
                t.month_start_date,
                {label} as series_key,
                t.period_days,
                t.is_partial_month,
                t.cogs_amount,
                t.transfers_out_cost,
                t.outflow_at_cost,
                t.avg_inventory_value
            from marts.fct_inventory_turnover_monthly t
            {join}
            where t.grain = ?
        ),
        ranked as (
            select series_key, row_number() over (order by sum(avg_inventory_value) desc nulls last, series_key) as rnk
            from base
            where month_start_date >= ?::date
            group by series_key
        ),
        grouped as (
            select
                b.month_start_date,
                case when coalesce(r.rnk, 1e9) <= ? then b.series_key else 'Other' end as series,
                min(coalesce(r.rnk, 1e9)) as series_rank,
                any_value(b.period_days) as period_days,
                bool_or(b.is_partial_month) as is_partial_month,
                sum(b.cogs_amount) as cogs,
                sum(b.transfers_out_cost) as transfers_out_cost,
                sum(b.outflow_at_cost) as usage_at_cost,
                sum(b.avg_inventory_value) as avg_inventory_value
            from base b
            left join ranked r using (series_key)
            group by all
        ),
        basis as (
            select
                series,
                case
                    when ? <> 'location' then 'cogs'
                    when count(*) filter (where cogs <> 0) = 0 and sum(transfers_out_cost) > 0
                        then 'shipments'
                    else 'sales_and_transfers'
                end as basis
            from grouped group by series
        ),
        measured as (
            select
                g.* exclude (series),
                case when b.basis = 'shipments' then g.series || ? else g.series end as series,
                b.basis
            from grouped g join basis b using (series)
        ),
        ratios as (
            select
                *,
                usage_at_cost / nullif(avg_inventory_value, 0) * 365.0 / period_days as turnover,
                case when usage_at_cost > 0 then avg_inventory_value / usage_at_cost * period_days end as dio
            from measured
        )
        select
            cur.month_start_date,
            cur.series,
            cur.series_rank,
            cur.basis,
            cur.is_partial_month,
            cur.period_days,
            cur.avg_inventory_value,
            cur.usage_at_cost,
            cur.turnover,
            cur.dio,
            prev.turnover as turnover_prior_year,
            prev.dio as dio_prior_year
        from ratios cur
        left join ratios prev
            on prev.series = cur.series and prev.month_start_date = cast(cur.month_start_date - interval 1 year as date)
        order by cur.series_rank, cur.month_start_date
        """,
        [grain, ctx.last12_start, top, grain, SHIPMENTS_SUFFIX],
    )


def window_by_location(con: duckdb.DuckDBPyConnection, ctx: Context) -> pl.DataFrame:
    """Per location over the last 12 months, and the company (``is_total``): average inventory at cost, COGS,
    transfers out at cost, the outflow the turnover uses, annualised turnover and DIO, and the basis ('sales',
    'shipments', 'sales_and_transfers'; 'company' for the total, which counts COGS only)."""
    return frame(
        con,
        """
        with base as (
            select t.grain, t.location_id, t.period_days, t.cogs_amount, t.transfers_out_cost, t.outflow_at_cost,
                   t.avg_inventory_value
            from marts.fct_inventory_turnover_monthly t
            where t.grain in ('location', 'company') and t.month_start_date >= ?::date
        ),
        summed as (
            select
                grain = 'company' as is_total,
                location_id,
                sum(period_days)::integer as days,
                sum(avg_inventory_value * period_days) / nullif(sum(period_days), 0) as avg_inventory_value,
                sum(cogs_amount) as cogs,
                sum(transfers_out_cost) as transfers_out_cost,
                sum(outflow_at_cost) as outflow_at_cost
            from base
            group by all
        )
        select
            s.is_total,
            s.location_id,
            case when s.is_total then 'Company' else coalesce(l.location_name, s.location_id) end as location_name,
            s.days,
            s.avg_inventory_value,
            s.cogs,
            s.transfers_out_cost,
            s.outflow_at_cost,
            case
                when s.is_total then 'company'
                when coalesce(s.transfers_out_cost, 0) = 0 then 'sales'
                when coalesce(s.cogs, 0) = 0 then 'shipments'
                else 'sales_and_transfers'
            end as basis,
            s.outflow_at_cost / nullif(s.avg_inventory_value, 0) * 365.0 / s.days as turnover,
            case when s.outflow_at_cost > 0 then s.avg_inventory_value / s.outflow_at_cost * s.days end as dio
        from summed s
        left join marts.dim_location l on l.location_id = s.location_id
        order by s.is_total, s.avg_inventory_value desc nulls last, s.location_id
        """,
        [ctx.last12_start],
    )


def window_by_category(con: duckdb.DuckDBPyConnection, ctx: Context, top: int = 15) -> pl.DataFrame:
    """Per category (top ``top`` by inventory value, rest "Other") for the last and prior 12 months: average
    inventory at cost, COGS, gross margin, annualised turnover and GMROI."""
    return frame(
        con,
        """
        with base as (
            select
                case when month_start_date >= ?::date then 'last' else 'prior' end as period,
                category, period_days, cogs_amount, gross_margin, avg_inventory_value
            from marts.fct_inventory_turnover_monthly
            where grain = 'category' and month_start_date >= ?::date
        ),
        ranked as (
            select category, row_number() over (order by sum(avg_inventory_value) desc nulls last, category) as rnk
            from base where period = 'last' group by category
        ),
        days as (
            select case when month_start_date >= ?::date then 'last' else 'prior' end as period,
                   sum(period_days)::integer as days
            from marts.fct_inventory_turnover_monthly
            where grain = 'company' and month_start_date >= ?::date
            group by all
        ),
        grouped as (
            select
                b.period,
                case when coalesce(r.rnk, 1e9) <= ? then b.category else 'Other' end as category,
                min(coalesce(r.rnk, 1e9)) as category_rank,
                sum(b.cogs_amount) as cogs,
                sum(b.gross_margin) as gross_margin,
                sum(b.avg_inventory_value * b.period_days) as inventory_value_days
            from base b left join ranked r using (category)
            group by all
        )
        select
            g.period, g.category, g.category_rank, d.days,
            g.inventory_value_days / d.days as avg_inventory_value,
            g.cogs,
            g.gross_margin,
            g.cogs / nullif(g.inventory_value_days / d.days, 0) * 365.0 / d.days as turnover,
            g.gross_margin / nullif(g.inventory_value_days / d.days, 0) * 365.0 / d.days as gmroi
        from grouped g join days d using (period)
        order by g.period, g.category_rank
        """,
        [ctx.last12_start, ctx.prior12_start, ctx.last12_start, ctx.prior12_start, top],
    )


def inventory_value_by_category(con: duckdb.DuckDBPyConnection, ctx: Context, top: int = 8) -> pl.DataFrame:
    """Monthly average inventory at cost per category (top ``top`` by value over the last 12 months)."""
    return frame(
        con,
        """
        with ranked as (
            select category, row_number() over (order by sum(avg_inventory_value) desc nulls last, category) as rnk
            from marts.fct_inventory_turnover_monthly
            where grain = 'category' and month_start_date >= ?::date
            group by category
        )
        select
            t.month_start_date,
            case when coalesce(r.rnk, 1e9) <= ? then t.category else 'Other' end as category,
            min(coalesce(r.rnk, 1e9)) as category_rank,
            sum(t.avg_inventory_value) as avg_inventory_value
        from marts.fct_inventory_turnover_monthly t left join ranked r using (category)
        where t.grain = 'category'
        group by all
        order by 1, 3
        """,
        [ctx.last12_start, top],
    )


def sales_monthly(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Company net sales and units per month (what sales-only data can show)."""
    return frame(
        con,
        """
        select month_start_date, is_partial_month, net_sales_amount, net_units_sold, units_sold
        from marts.fct_inventory_turnover_monthly
        where grain = 'company'
        order by month_start_date
        """,
    )


# ------------------------------------------------------------------------------------------------ days of supply

DOS_BANDS = (
    "Out of stock",
    "Under 1 week",
    "1-2 weeks",
    "2-4 weeks",
    "1-2 months",
    "2-3 months",
    "3-6 months",
    "6-12 months",
    "Over 1 year",
    "Stock, no recent sales",
)


def days_of_supply_bands(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Product-locations on the as-of date by days-of-supply band: count, units and value at cost."""
    return frame(
        con,
        """
        with d as (
            select
                case
                    when supply_status = 'out_of_stock' then 0
                    when supply_status = 'no_recent_usage' then 9
                    when days_of_supply < 7 then 1
                    when days_of_supply < 14 then 2
                    when days_of_supply < 28 then 3
                    when days_of_supply < 56 then 4
                    when days_of_supply < 91 then 5
                    when days_of_supply < 182 then 6
                    when days_of_supply < 365 then 7
                    else 8
                end as band_order,
                on_hand_units, on_hand_value, window_days
            from marts.fct_days_of_supply
            where is_as_of_date and supply_status <> 'unavailable'
        )
        select
            band_order,
            count(*) as product_locations,
            sum(greatest(on_hand_units, 0)) as on_hand_units,
            sum(on_hand_value) as on_hand_value,
            max(window_days) as window_days
        from d
        group by band_order
        order by band_order
        """,
    ).with_columns(pl.col("band_order").map_elements(lambda i: DOS_BANDS[i], return_dtype=pl.String).alias("band"))


def days_of_supply_unavailable(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute(
        "select count(*) from marts.fct_days_of_supply where is_as_of_date and supply_status = 'unavailable'"
    ).fetchall()[0][0]


def excess_stock(con: duckdb.DuckDBPyConnection, limit: int = 15, excess_days: int = EXCESS_DAYS) -> pl.DataFrame:
    """Product-locations holding the most value beyond ``excess_days`` of supply on the as-of date (all of it when
    nothing sold recently)."""
    return frame(
        con,
        """
        select
            d.product_id, p.product_name, p.category, d.location_id, l.location_name,
            d.on_hand_units, d.on_hand_value, d.avg_daily_usage_units, d.days_of_supply, d.supply_status,
            case
                when d.supply_status = 'no_recent_usage' then d.on_hand_value
                else d.on_hand_value * greatest(0, 1 - ?::double / d.days_of_supply)
            end as excess_value
        from marts.fct_days_of_supply d
        join marts.dim_product p using (product_id)
        left join marts.dim_location l using (location_id)
        where d.is_as_of_date and d.on_hand_value > 0
          and (d.supply_status = 'no_recent_usage' or (d.supply_status = 'in_stock' and d.days_of_supply > ?))
        order by excess_value desc, d.product_id, d.location_id
        limit ?
        """,
        [excess_days, excess_days, limit],
    )


def out_of_stock_now(con: duckdb.DuckDBPyConnection, limit: int = 15) -> pl.DataFrame:
    """Product-locations out of stock on the as-of date, by the sales value of their usual daily usage."""
    return frame(
        con,
        """
        with oos as (
            select d.product_id, d.location_id, d.avg_daily_usage_units
            from marts.fct_days_of_supply d
            where d.is_as_of_date and d.supply_status = 'out_of_stock' and d.avg_daily_usage_units > 0
        ),
        run as (
            -- consecutive days out of stock up to the as-of date, looking back at most a year
            select
                i.product_id, i.location_id,
                date_diff('day', max(i.date_day) filter (where not i.is_stockout_day), max(i.date_day)) as days_out
            from marts.fct_inventory_daily i
            semi join oos using (product_id, location_id)
            where i.date_day > (select max(date_day) from marts.fct_days_of_supply where is_as_of_date) - 366
            group by all
        )
        select
            o.product_id, p.product_name, p.category, o.location_id, l.location_name,
            o.avg_daily_usage_units,
            o.avg_daily_usage_units * p.current_list_price as daily_usage_at_price,
            r.days_out
        from oos o
        join marts.dim_product p using (product_id)
        left join marts.dim_location l using (location_id)
        left join run r using (product_id, location_id)
        order by daily_usage_at_price desc nulls last, o.avg_daily_usage_units desc, o.product_id, o.location_id
        limit ?
        """,
        [limit],
    )


# ------------------------------------------------------------------------------------------------ service

LOST_SALES_TABLE = "_report_stockout_days"
#: series key = product number x SERIES_KEY_BASE + location number (fewer than a million locations)
SERIES_KEY_BASE = 1_000_000
SERVICE_BASE_TABLE = "_report_service_base"

_SERVICE_SCOPE = """
    s.is_stockout_day is not null
    and (p.discontinued_date is null or s.date_day <= p.discontinued_date)
"""


def prepare_lost_sales(con: duckdb.DuckDBPyConnection, ctx: Context) -> None:
    """Estimate the demand lost on the stock-out days of the last 12 months, into two small temp tables.

    Scope: product-location days with a known stock position (selling locations: fct_sales_daily) up to the
    product's discontinuation. ``_report_service_base`` holds days, stock-out days and units sold per
    product-location and month; ``_report_stockout_days`` one row per stock-out day with its estimate.

    Method (censored demand):
    1. Baseline: the product's average daily units sold at that location on its in-stock, non-promotion days
       within LOST_SALES_WINDOW_DAYS days either side (at least LOST_SALES_MIN_DAYS such days, else no estimate).
    2. Expected demand = baseline x a day-of-week and promotion factor of its category, measured on in-stock days
       as units sold / baseline.
    3. A day that opened with nothing on the shelf: lost = expected demand - units sold, if positive.
       A day that opened with stock and sold out: demand was at least the units sold; lost = the expected excess
       E[D - sold | D >= sold] for Poisson demand D with the expected mean.
    4. Value: lost units x that day's selling price (list price less any promotion discount).
    """
    w, min_days = LOST_SALES_WINDOW_DAYS, LOST_SALES_MIN_DAYS
    t0 = time.perf_counter()
    con.execute(
        f"""
        create or replace temp table {SERVICE_BASE_TABLE} as
        select
            p.category, s.product_id, s.location_id,
            cast(date_trunc('month', s.date_day) as date) as month_start_date,
            count(*) as days,
            count(*) filter (where s.is_stockout_day) as stockout_days,
            sum(s.units_sold) as units_sold
        from marts.fct_sales_daily s
        join marts.dim_product p using (product_id)
        where s.date_day >= ?::date and {_SERVICE_SCOPE}
        group by all
        """,
        [ctx.last12_start],
    )
    t1 = time.perf_counter()
    con.execute(
        f"""
        create or replace temp table {LOST_SALES_TABLE} as
        with products as (
            select product_id, category, discontinued_date, current_list_price,
                   row_number() over (order by product_id) as product_key,
                   dense_rank() over (order by category) as category_key
            from marts.dim_product
        ),
        locations as (
            select location_id, row_number() over (order by location_id) as location_key from marts.dim_location
        ),
        s as (
            -- one integer key per product-location: the window then sorts narrow rows without strings
            -- (3x faster at M5 size than partitioning by the two codes)
            select
                p.product_key * {SERIES_KEY_BASE} + l.location_key as series_key, p.category_key,
                s.date_day, s.units_sold, s.is_stockout_day, s.on_hand_units,
                coalesce(s.is_on_promotion, false) as on_promotion,
                coalesce(s.list_price, p.current_list_price) * (1 - coalesce(s.promotion_discount_pct, 0))
                    as unit_price
            from marts.fct_sales_daily s
            join products p using (product_id)
            join locations l using (location_id)
            where s.date_day >= cast(?::date - interval {w + 1} day as date) and {_SERVICE_SCOPE}
        ),
        w as (
            select
                series_key, category_key, date_day, units_sold, is_stockout_day, on_promotion, unit_price,
                lag(on_hand_units) over (partition by series_key order by date_day) as opening_units,
                sum(units_sold) filter (where not is_stockout_day and not on_promotion) over win as base_units,
                count(*) filter (where not is_stockout_day and not on_promotion) over win as base_days
            from s
            window win as (partition by series_key order by date_day rows between {w} preceding and {w} following)
        ),
        r as (
            select
                series_key, category_key, date_day, units_sold, is_stockout_day, on_promotion,
                isodow(date_day) as day_of_week, opening_units, unit_price,
                case when base_days >= {min_days} then base_units / base_days end as baseline
            from w
            where date_day >= ?::date
        ),
        f as (
            select category_key, day_of_week, on_promotion, sum(units_sold) / nullif(sum(baseline), 0) as factor
            from r
            where not is_stockout_day and baseline is not null
            group by all
        )
        select
            r.date_day, p.product_id, l.location_id, p.category, r.units_sold,
            coalesce(r.opening_units > 0 and r.units_sold > 0, false) as sold_out_during_day,
            r.unit_price,
            r.baseline * coalesce(f.factor, 1) as expected_units,
            cast(null as double) as lost_units
        from r
        join products p on p.product_key = r.series_key // {SERIES_KEY_BASE}
        join locations l on l.location_key = r.series_key % {SERIES_KEY_BASE}
        left join f
            on f.category_key = r.category_key and f.day_of_week = r.day_of_week and f.on_promotion = r.on_promotion
        where r.is_stockout_day
        """,
        [ctx.last12_start, ctx.last12_start],
    )
    t2 = time.perf_counter()
    # Sold-out days: E[D - s | D >= s] for D ~ Poisson(expected), summing the tail from s directly (no 1 - cdf
    # cancellation); the few terms needed are generated per row.
    con.execute(
        f"""
        update {LOST_SALES_TABLE} d
        set lost_units = case
            when d.expected_units is null then null
            when d.sold_out_during_day then coalesce(t.excess, 0)
            else greatest(d.expected_units - d.units_sold, 0)
        end
        from (
            select d2.date_day, d2.product_id, d2.location_id, t2.excess
            from {LOST_SALES_TABLE} d2
            left join (
                select date_day, product_id, location_id, sum((k - s) * pk) / nullif(sum(pk), 0) as excess
                from (
                    select so.date_day, so.product_id, so.location_id, so.s, g.k,
                           exp(-so.lam + g.k * ln(so.lam) - lgamma(g.k + 1)) as pk
                    from (
                        select date_day, product_id, location_id, expected_units as lam, units_sold as s
                        from {LOST_SALES_TABLE}
                        where sold_out_during_day and expected_units > 0
                    ) so, lateral (
                        select unnest(generate_series(
                            cast(ceil(so.s) as bigint),
                            cast(ceil(so.s + so.lam + 10 * sqrt(so.lam) + 20) as bigint))) as k
                    ) g
                )
                group by all
            ) t2 using (date_day, product_id, location_id)
        ) t
        where t.date_day = d.date_day and t.product_id = d.product_id and t.location_id = d.location_id
        """
    )
    log.debug("lost sales: service base %.1f s, stock-out days %.1f s, sold-out excess %.1f s",
              t1 - t0, t2 - t1, time.perf_counter() - t2)


def service_by_category(con: duckdb.DuckDBPyConnection, ctx: Context) -> pl.DataFrame:
    """Per category, last 12 months at selling locations: stock-out rate, estimated lost units and sales, unit
    fill rate by volume and averaged over items; plus the stock-out rate of the prior 12 months."""
    return frame(
        con,
        f"""
        with lost as (
            select product_id, location_id,
                   count(*) filter (where lost_units is null) as unestimated_days,
                   sum(lost_units) as lost_units,
                   sum(lost_units * unit_price) as lost_sales_value
            from {LOST_SALES_TABLE}
            group by all
        ),
        item as (
            select b.category, b.product_id, b.location_id,
                   sum(b.days) as days, sum(b.stockout_days) as stockout_days, sum(b.units_sold) as units_sold,
                   any_value(l.unestimated_days) as unestimated_days,
                   any_value(l.lost_units) as lost_units,
                   any_value(l.lost_sales_value) as lost_sales_value
            from {SERVICE_BASE_TABLE} b
            left join lost l using (product_id, location_id)
            group by all
        ),
        prior as (
            select p.category, count(*) filter (where s.is_stockout_day)::double / count(*) as stockout_rate_prior
            from marts.fct_sales_daily s join marts.dim_product p using (product_id)
            where s.date_day >= ?::date and s.date_day < ?::date and {_SERVICE_SCOPE}
            group by all
        )
        select
            i.category,
            sum(i.days)::bigint as product_location_days,
            sum(i.stockout_days)::bigint as stockout_days,
            sum(i.stockout_days)::double / sum(i.days) as stockout_rate,
            any_value(pr.stockout_rate_prior) as stockout_rate_prior,
            coalesce(sum(i.unestimated_days), 0)::bigint as unestimated_days,
            sum(i.units_sold) as units_sold,
            coalesce(sum(i.lost_units), 0) as lost_units,
            coalesce(sum(i.lost_sales_value), 0) as lost_sales_value,
            sum(i.units_sold) / nullif(sum(i.units_sold) + coalesce(sum(i.lost_units), 0), 0) as fill_rate_volume,
            avg(i.units_sold / nullif(i.units_sold + coalesce(i.lost_units, 0), 0)) as fill_rate_item_avg
        from item i left join prior pr using (category)
        group by i.category
        order by stockout_rate desc, i.category
        """,
        [ctx.prior12_start, ctx.last12_start],
    )


def lost_sales_monthly(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Estimated lost units and sales per month of the last 12 months."""
    return frame(
        con,
        f"""
        with base as (
            select month_start_date, sum(days)::bigint as product_location_days,
                   sum(stockout_days)::bigint as stockout_days, sum(units_sold) as units_sold
            from {SERVICE_BASE_TABLE} group by all
        ),
        lost as (
            select cast(date_trunc('month', date_day) as date) as month_start_date,
                   sum(lost_units) as lost_units, sum(lost_units * unit_price) as lost_sales_value
            from {LOST_SALES_TABLE} group by all
        )
        select
            b.month_start_date, b.stockout_days, b.product_location_days, b.units_sold,
            coalesce(l.lost_units, 0) as lost_units,
            coalesce(l.lost_sales_value, 0) as lost_sales_value
        from base b left join lost l using (month_start_date)
        order by 1
        """,
    )


# ------------------------------------------------------------------------------------------------ ghost stock


def discrepancy_summary(con: duckdb.DuckDBPyConnection, ctx: Context) -> dict[str, float | int | None]:
    """Cycle counts of the last 12 months: how many, and the value of shrinkage, surplus and ghost stock."""
    return frame(
        con,
        """
        select
            count(*) as counts,
            count(*) filter (where discrepancy_type <> 'match') as counts_off,
            count(*) filter (where discrepancy_type = 'shrinkage') as shrinkage_counts,
            sum(discrepancy_value) filter (where discrepancy_type = 'shrinkage') as shrinkage_value,
            sum(discrepancy_value) filter (where discrepancy_type = 'surplus') as surplus_value,
            sum(discrepancy_value) as net_value,
            count(*) filter (where is_ghost_stock) as ghost_counts,
            sum(abs_discrepancy_value) filter (where is_ghost_stock) as ghost_value,
            sum(abs(discrepancy_units)) as abs_units
        from marts.fct_inventory_discrepancies
        where count_date >= ?::date
        """,
        [ctx.last12_start],
    ).row(0, named=True)


def discrepancy_by_product_location(con: duckdb.DuckDBPyConnection, ctx: Context, limit: int = 15) -> pl.DataFrame:
    """Product-locations with the largest count discrepancies over the last 12 months (by absolute value, by
    units when unvalued)."""
    return frame(
        con,
        """
        select
            d.product_id, p.product_name, p.category, d.location_id, l.location_name,
            count(*) as counts,
            count(*) filter (where d.is_ghost_stock) as ghost_counts,
            sum(d.discrepancy_units) as net_units,
            sum(d.discrepancy_value) as net_value,
            sum(d.discrepancy_value) filter (where d.discrepancy_type = 'shrinkage') as shrinkage_value,
            sum(d.discrepancy_value) filter (where d.discrepancy_type = 'surplus') as surplus_value,
            sum(d.abs_discrepancy_value) as abs_value,
            sum(abs(d.discrepancy_units)) as abs_units
        from marts.fct_inventory_discrepancies d
        left join marts.dim_product p using (product_id)
        left join marts.dim_location l using (location_id)
        where d.count_date >= ?::date and d.discrepancy_type <> 'match'
        group by all
        order by abs_value desc nulls last, abs_units desc, d.product_id, d.location_id
        limit ?
        """,
        [ctx.last12_start, limit],
    )


def largest_discrepancies(con: duckdb.DuckDBPyConnection, ctx: Context, limit: int = 20, *,
                          ghost_only: bool = False) -> pl.DataFrame:
    """The individual counts of the last 12 months with the largest book-vs-count difference (``ghost_only``: only
    the counts that found an empty shelf while the book showed stock)."""
    return frame(
        con,
        f"""
        select
            d.count_date, d.product_id, p.product_name, p.category, d.location_id, l.location_name,
            d.book_qty, d.counted_qty, d.discrepancy_units, d.unit_cost, d.discrepancy_value,
            d.discrepancy_type, d.is_ghost_stock, d.days_since_last_sale
        from marts.fct_inventory_discrepancies d
        left join marts.dim_product p using (product_id)
        left join marts.dim_location l using (location_id)
        where d.count_date >= ?::date and d.discrepancy_type <> 'match' {"and d.is_ghost_stock" if ghost_only else ""}
        order by d.abs_discrepancy_value desc nulls last, abs(d.discrepancy_units) desc, d.count_id
        limit ?
        """,
        [ctx.last12_start, limit],
    )


# ------------------------------------------------------------------------------------------------ data quality


def reconciliation(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Rows landed, kept and quarantined per landing entity, with the quarantine reasons."""
    return frame(
        con,
        """
        with r as (
            select
                source_system, entity,
                bool_or(is_required) as is_required,
                bool_or(is_present) as is_present,
                count(file) as files,
                coalesce(sum(rows_in), 0)::bigint as rows_in,
                coalesce(sum(rows_kept), 0)::bigint as rows_kept,
                coalesce(sum(rows_quarantined), 0)::bigint as rows_quarantined,
                coalesce(sum(rows_unaccounted), 0)::bigint as rows_unaccounted
            from marts.data_quality_reconciliation
            group by all
        ),
        reasons as (
            select source_system, entity,
                   string_agg(reject_reason || ': ' || format('{:,}', n), '; ' order by n desc, reject_reason)
                       as quarantine_reasons
            from (
                select source_system, entity, reject_reason, count(*) as n
                from marts.data_quality_rejections group by all
            )
            group by all
        )
        select r.*, reasons.quarantine_reasons
        from r left join reasons using (source_system, entity)
        order by not r.is_present, not r.is_required, r.source_system, r.entity
        """,
    )


def data_checks(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The last build's data tests that did not pass (audit.dbt_test_results), warnings first; empty when the
    warehouse has no record (built before the record existed)."""
    ((exists,),) = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'audit' and table_name = 'dbt_test_results'"
    ).fetchall()
    if not exists:
        return pl.DataFrame()
    return frame(
        con,
        """
        select test_name, model, severity, status, failing_rows, failing_rows_relation, severity_reason, tested_at
        from audit.dbt_test_results
        where status not in ('pass', 'skipped', 'success')
        order by status = 'warn', failing_rows desc nulls last, test_name
        """,
    )


# ------------------------------------------------------------------------------------------------ ml write-back


def ml_table_summary(con: duckdb.DuckDBPyConnection, ctx: Context) -> pl.DataFrame:
    """Rows, run and as-of date of each ml write-back table present."""
    parts = []
    for name in sorted(ctx.ml_tables):
        cols = {
            c for (c,) in con.execute(
                "select column_name from information_schema.columns where table_schema = 'ml' and table_name = ?",
                [name],
            ).fetchall()
        }
        run = "any_value(run_id)" if "run_id" in cols else "null"
        as_of = "max(as_of_date)" if "as_of_date" in cols else "null"
        quoted = name.replace('"', '""')
        parts.append(
            f"select ? as table_name, count(*) as rows, {run}::varchar as run_id, {as_of}::date as as_of_date "
            f'from ml."{quoted}"'
        )
    if not parts:
        return pl.DataFrame(schema={"table_name": pl.String, "rows": pl.Int64, "run_id": pl.String,
                                    "as_of_date": pl.Date})
    return frame(con, " union all ".join(parts), sorted(ctx.ml_tables))
