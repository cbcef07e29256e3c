"""Service: how often shelves were empty at selling locations (stock-out days by category, last vs prior 12 months),
the fill rate and the sales that cost. Demand on stock-out days is not recorded, so it is estimated from the days
the product was in stock (:func:`prepare_lost_sales`).
"""

from __future__ import annotations

import logging
import time

import altair as alt
import duckdb
import polars as pl

from reports import theme as th
from reports.charts import MONTH, chart_title, inline_data
from reports.context import NEEDS_ON_HAND, NEEDS_SALES, Context, frame
from reports.html import NoteBlock, Section, TableBlock
from reports.sections.common import Report, chart_block, col, lacks_marts, not_available

log = logging.getLogger("stockturn.reports")

#: Half-width of the window of in-stock days that sets the usual demand of a stock-out day.
LOST_SALES_WINDOW_DAYS = 28
#: In-stock days needed in that window before a stock-out day is estimated.
LOST_SALES_MIN_DAYS = 7

LOST_SALES_TABLE = "_report_stockout_days"
#: series key = product number x SERIES_KEY_BASE + location number (fewer than a million locations)
SERIES_KEY_BASE = 1_000_000
SERVICE_BASE_TABLE = "_report_service_base"

_SERVICE_SCOPE = """
    s.is_stockout_day is not null
    and (p.discontinued_date is null or s.date_day <= p.discontinued_date)
"""


# ------------------------------------------------------------------------------------------------ queries


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


# ------------------------------------------------------------------------------------------------ charts


def stockout_by_category_chart(df: pl.DataFrame) -> alt.LayerChart:
    total_days = df["product_location_days"].sum() or 0
    rate = (df["stockout_days"].sum() / total_days) if total_days else None
    worst = df.sort("stockout_rate", descending=True).row(0, named=True) if df.height else None
    title = f"Shelves were empty on {th.pct(rate)} of product-location days"
    if worst is not None:
        title += f"; worst: {worst['category']} ({th.pct(worst['stockout_rate'])})"
    order = df.sort("stockout_rate", descending=True)["category"].to_list()
    base = alt.Chart().encode(
        y=alt.Y("category:N", title=None, sort=order),
        tooltip=[
            alt.Tooltip("category:N", title="Category"),
            alt.Tooltip("stockout_rate:Q", title="Stock-out days, last 12 months", format=th.FMT_PCT),
            alt.Tooltip("stockout_rate_prior:Q", title="Stock-out days, prior 12 months", format=th.FMT_PCT),
            alt.Tooltip("stockout_days:Q", title="Stock-out days", format=th.FMT_INT),
            alt.Tooltip("product_location_days:Q", title="Product-location days", format=th.FMT_INT),
        ],
    )
    bars = base.mark_bar(height={"band": 0.7}, color=th.BAD).encode(
        x=alt.X("stockout_rate:Q", title="Share of product-location days out of stock",
                axis=alt.Axis(format=".0%"))
    )
    ticks = base.mark_tick(color=th.INK, thickness=2, size=16).encode(x="stockout_rate_prior:Q")
    labels = base.mark_text(align="left", dx=6).transform_calculate(
        label_x="max(datum.stockout_rate, isValid(datum.stockout_rate_prior) ? datum.stockout_rate_prior : 0)"
    ).encode(x="label_x:Q", text=alt.Text("stockout_rate:Q", format=th.FMT_PCT))
    return alt.layer(bars, ticks, labels, data=inline_data(df)).properties(
        title=chart_title(title, "Selling locations, last 12 months (bars); black tick: prior 12 months."),
        width=th.CHART_WIDTH - 120,
        height=alt.Step(22),
        description="Stock-out rate by category",
    )


def fill_rate_by_category_chart(df: pl.DataFrame) -> alt.LayerChart:
    sold, lost = df["units_sold"].sum() or 0.0, df["lost_units"].sum() or 0.0
    volume = sold / (sold + lost) if sold + lost else None
    title = f"Estimated fill rate: {th.pct(volume)} of demand served from the shelf (by volume)"
    long = pl.concat([
        df.select("category", pl.col("fill_rate_volume").alias("fill_rate"), pl.lit("By volume").alias("measure")),
        df.select("category", pl.col("fill_rate_item_avg").alias("fill_rate"),
                  pl.lit("Average item").alias("measure")),
    ]).filter(pl.col("fill_rate").is_not_null())
    order = df.sort("fill_rate_volume")["category"].to_list()
    chart = (
        alt.Chart(inline_data(long))
        .mark_point(filled=True, size=90)
        .encode(
            y=alt.Y("category:N", title=None, sort=order),
            x=alt.X("fill_rate:Q", title="Units sold ÷ estimated demand",
                    scale=alt.Scale(zero=False, nice=False, domainMax=1, padding=12),
                    axis=alt.Axis(format=".1~%")),
            color=alt.Color("measure:N", title=None, scale=alt.Scale(domain=["By volume", "Average item"],
                                                                      range=[th.PRIMARY, th.WARN])),
            shape=alt.Shape("measure:N", title=None, scale=alt.Scale(domain=["By volume", "Average item"],
                                                                      range=["circle", "diamond"])),
            tooltip=[
                alt.Tooltip("category:N", title="Category"),
                alt.Tooltip("measure:N", title="Measure"),
                alt.Tooltip("fill_rate:Q", title="Fill rate", format=th.FMT_PCT),
            ],
        )
    )
    return alt.layer(chart).properties(
        title=chart_title(
            title,
            "Last 12 months, selling locations. Demand on stock-out days is estimated (see Definitions).",
            "A gap between the two marks means service is weaker on slow or small items than volume suggests.",
        ),
        width=th.CHART_WIDTH - 120,
        height=alt.Step(22),
        description="Estimated fill rate by category, volume-weighted and item average",
    )


def lost_sales_monthly_chart(df: pl.DataFrame) -> alt.Chart:
    value, units = df["lost_sales_value"].sum() or 0.0, df["lost_units"].sum() or 0.0
    title = (
        f"Stock-outs cost an estimated {th.money_short(value)} of sales in the last 12 months "
        f"({th.number(units)} units)"
    )
    return (
        alt.Chart(inline_data(df))
        .mark_bar(color=th.BAD)
        .encode(
            x=alt.X(MONTH, axis=alt.Axis(title=None, format="%b %y", labelAngle=0)),
            y=alt.Y("lost_sales_value:Q", axis=th.money_axis("Estimated lost sales")),
            tooltip=[
                alt.Tooltip(MONTH, title="Month", format=th.FMT_MONTH),
                alt.Tooltip("lost_sales_value:Q", title="Estimated lost sales", format=th.FMT_MONEY),
                alt.Tooltip("lost_units:Q", title="Estimated lost units", format=th.FMT_INT),
                alt.Tooltip("units_sold:Q", title="Units sold", format=th.FMT_INT),
                alt.Tooltip("stockout_days:Q", title="Stock-out days", format=th.FMT_INT),
            ],
        )
        .properties(
            title=chart_title(title, "Lost units × the day's selling price, on days the shelf was empty."),
            width=th.CHART_WIDTH,
            height=th.CHART_HEIGHT - 40,
            description="Estimated lost sales per month",
        )
    )


# ------------------------------------------------------------------------------------------------ section


def build(report: Report) -> Section:
    ctx = report.ctx
    section = Section("service", "Service: stock-outs, fill rate and lost sales", "ok",
                      intro="How often shelves were empty at selling locations, and the sales that cost. Demand "
                      "on stock-out days is not recorded, so it is estimated from the days the product was "
                      "in stock (see Definitions).")
    if lacks_marts(ctx, section, "fct_sales_daily"):
        return section
    missing = ctx.missing(NEEDS_SALES, NEEDS_ON_HAND)
    if missing or not ctx.has_stockout_flags:
        section.status = "not_available"
        section.detail = not_available(missing or [NEEDS_ON_HAND])
        section.blocks.append(NoteBlock(section.detail, "unavailable"))
        return section
    prepare_lost_sales(report.con, ctx)
    service = service_by_category(report.con, ctx)
    monthly = lost_sales_monthly(report.con)
    report.service = service
    section.blocks += [
        chart_block("stockout_by_category", service, stockout_by_category_chart, "Stock-out rate by category"),
        chart_block("fill_rate_by_category", service, fill_rate_by_category_chart, "Estimated fill rate by category"),
        chart_block("lost_sales_monthly", monthly, lost_sales_monthly_chart, "Estimated lost sales per month"),
    ]
    unestimated = int(service["unestimated_days"].sum() or 0)
    if service.height:
        section.blocks.append(service_table(service, unestimated))
    return section


def service_table(service: pl.DataFrame, unestimated: int) -> TableBlock:
    return TableBlock(
        "Service by category, last 12 months (selling locations)",
        [
            col("category", "Category"),
            col("stockout_rate", "Stock-out days", th.pct, True),
            col("stockout_rate_prior", "Prior 12 months", th.pct, True),
            col("fill_rate_volume", "Fill rate (volume)", th.pct, True),
            col("fill_rate_item_avg", "Fill rate (average item)", th.pct, True),
            col("units_sold", "Units sold", th.number, True),
            col("lost_units", "Est. lost units", th.number, True),
            col("lost_sales_value", "Est. lost sales", th.money, True),
        ],
        service.to_dicts(),
        note=((f"{unestimated:,} stock-out days had too few in-stock days around them to estimate demand and "
               "count as no loss. ") if unestimated else "")
             + "Lost sales while the book wrongly shows stock (ghost stock) are not included: read the "
             "estimate as a floor.",
    )
