"""Inventory turnover and days inventory outstanding: how fast stock sells, for the company, each category and
each location, month by month against the same month a year earlier, and each location's last 12 months.

Without stock on hand, unit costs or COGS the section says what it needs and shows net sales per month instead.
"""

from __future__ import annotations

from datetime import date

import altair as alt
import duckdb
import polars as pl

from reports import theme as th
from reports.charts import MONTH, chart_title, direction, inline_data, month_axis
from reports.context import NEEDS_COGS, NEEDS_ON_HAND, NEEDS_UNIT_COSTS, Context, frame
from reports.html import NoteBlock, Section, TableBlock
from reports.sections.common import Report, chart_block, col, display_name, lacks_marts, not_available

#: Series shown one by one in small multiples; the rest are summed into "Other".
TOP_SERIES = 12
#: Appended to the name of a location whose turnover is on its shipments only (it sells nothing: a DC).
SHIPMENTS_SUFFIX = " · on shipments"


# ------------------------------------------------------------------------------------------------ queries


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


# ------------------------------------------------------------------------------------------------ charts


def _ratio_over_window(df: pl.DataFrame, numerator: str, start: date) -> dict[str, float | None]:
    """Annualised ratio numerator / average inventory per series over the months from ``start``."""
    out = (
        df.filter(pl.col("month_start_date") >= start)
        .group_by("series")
        .agg(
            (pl.col(numerator).sum() / (pl.col("avg_inventory_value") * pl.col("period_days")).sum()
             * 365.0).alias("ratio"),
            pl.col(numerator).count().alias("n"),
        )
        .filter(pl.col("n") > 0)
    )
    return {r["series"]: r["ratio"] for r in out.iter_rows(named=True)}


def _trend_long(df: pl.DataFrame, measure: str, prior: str, label: str) -> pl.DataFrame:
    keep = ["month_start_date", "series", "series_rank", "is_partial_month"]
    cur = df.select(*keep, pl.col(measure).alias("value"), pl.lit(label).alias("line"))
    prev = df.select(*keep, pl.col(prior).alias("value"), pl.lit("Same month a year earlier").alias("line"))
    return pl.concat([cur, prev]).filter(pl.col("value").is_not_null())


def _trend_layers(label: str, value_title: str, value_format: str, point_size: int = 24) -> list[alt.Chart]:
    color = alt.Color(
        "line:N",
        title=None,
        scale=alt.Scale(domain=[label, "Same month a year earlier"], range=[th.PRIMARY, th.PRIOR]),
        legend=alt.Legend(symbolType="stroke", symbolStrokeWidth=2.5, symbolSize=300),
    )
    dash = alt.StrokeDash(
        "line:N",
        title=None,
        scale=alt.Scale(domain=[label, "Same month a year earlier"], range=[[1, 0], [5, 3]]),
    )
    tooltip = [
        alt.Tooltip(MONTH, title="Month", format=th.FMT_MONTH),
        alt.Tooltip("line:N", title="Line"),
        alt.Tooltip("value:Q", title=value_title, format=value_format),
        alt.Tooltip("is_partial_month:N", title="Partial month"),
    ]
    base = alt.Chart().encode(
        x=alt.X(MONTH, axis=month_axis()),
        y=alt.Y("value:Q", title=value_title, axis=alt.Axis(format=value_format)),
        color=color,
        tooltip=tooltip,
    )
    return [base.mark_line().encode(strokeDash=dash), base.mark_point(size=point_size, opacity=0.9)]


def turnover_company_chart(df: pl.DataFrame, kpis: dict) -> alt.LayerChart:
    last, prior = kpis["last"].get("turnover"), kpis["prior"].get("turnover")
    data = _trend_long(df, "turnover", "turnover_prior_year", "Turnover")
    title = f"Inventory turns {th.turns(last)} a year over the last 12 months{direction(last, prior, th.turns)}"
    return alt.layer(*_trend_layers("Turnover", "Turns a year", th.FMT_1), data=inline_data(data)).properties(
        title=chart_title(
            title,
            "Each month: COGS ÷ average inventory at cost, annualised. Higher = stock sells faster.",
            "Dashed: the same month a year earlier.",
        ),
        width=th.CHART_WIDTH - 140,
        height=th.CHART_HEIGHT,
        description="Monthly annualised inventory turnover for the company with the prior-year line",
    )


def dio_company_chart(df: pl.DataFrame, kpis: dict) -> alt.LayerChart:
    last, prior = kpis["last"].get("dio"), kpis["prior"].get("dio")
    data = _trend_long(df, "dio", "dio_prior_year", "Days inventory outstanding")
    title = f"Stock lasts {th.days(last)} on average (DIO){direction(last, prior, th.days)}"
    return alt.layer(
        *_trend_layers("Days inventory outstanding", "Days", th.FMT_INT), data=inline_data(data)
    ).properties(
        title=chart_title(
            title,
            "Each month: average inventory at cost ÷ COGS × days. Lower = less cash tied up.",
            "Dashed: the same month a year earlier.",
        ),
        width=th.CHART_WIDTH - 140,
        height=th.CHART_HEIGHT,
        description="Monthly days inventory outstanding for the company with the prior-year line",
    )


def turnover_small_multiples_chart(df: pl.DataFrame, *, start: date, what: str) -> alt.FacetChart:
    """Turnover per category or location over the last 12 months, dashed the same month a year earlier."""
    ratios = _ratio_over_window(df, "usage_at_cost", start)
    ratios = {k: v for k, v in ratios.items() if v is not None}
    recent = df.filter(pl.col("month_start_date") >= start)
    data = _trend_long(recent, "turnover", "turnover_prior_year", "Turnover")
    bases = set(df["basis"].to_list())

    def named(series: str) -> tuple[str, str]:
        """(name, " on shipments" or "") for the title: a location that sells nothing turns on its shipments."""
        if series.endswith(SHIPMENTS_SUFFIX):
            return series.removesuffix(SHIPMENTS_SUFFIX), " on shipments"
        return series, ""

    if ratios:
        fastest, slowest = max(ratios, key=ratios.get), min(ratios, key=ratios.get)
        (f_name, f_on), (s_name, s_on) = named(fastest), named(slowest)
        title = (
            f"Turnover by {what}: {f_name} turns fastest ({th.turns(ratios[fastest])}{f_on}), "
            f"{s_name} slowest ({th.turns(ratios[slowest])}{s_on})"
        )
    else:
        title = f"Turnover by {what}"
    if bases - {"cogs"}:
        # a location's turnover counts what leaves it: sales and shipments to other locations, at cost
        subtitle = [
            "Turnover (sales + transfers out at cost): turns a year, month by month over the last 12 months; "
            "dashed: a year earlier.",
            "A location turns on COGS + transfers out to other locations at cost; the company on COGS only "
            "(transfers between locations cancel out).",
        ]
        if "shipments" in bases:
            subtitle.append("On shipments: a location that sells nothing (a distribution centre) turns on what it "
                            "ships to stores.")
    else:
        subtitle = ["Turns a year, month by month over the last 12 months; dashed: the same month a year earlier."]
    layers = _trend_layers("Turnover", "Turns a year", th.FMT_1, point_size=14)
    return (
        alt.layer(*layers, data=inline_data(data))
        .properties(width=th.SMALL_WIDTH, height=th.SMALL_HEIGHT)
        .facet(
            facet=alt.Facet(
                "series:N", title=None, sort=alt.EncodingSortField(field="series_rank", op="min", order="ascending"),
                # "Central Distribution Centre (DC01) · on shipments" on two lines
                header=alt.Header(labelExpr="split(datum.label, ' · ')"),
            ),
            columns=4,
        )
        .properties(title=chart_title(title, *subtitle),
                    description=f"Monthly turnover by {what} with prior-year lines")
    )


def sales_monthly_chart(df: pl.DataFrame, *, start: date) -> alt.Chart:
    last = df.filter(pl.col("month_start_date") >= start)["net_sales_amount"].sum()
    return (
        alt.Chart(inline_data(df))
        .mark_bar()
        .encode(
            x=alt.X(MONTH, axis=month_axis()),
            y=alt.Y("net_sales_amount:Q", axis=th.money_axis("Net sales")),
            tooltip=[
                alt.Tooltip(MONTH, title="Month", format=th.FMT_MONTH),
                alt.Tooltip("net_sales_amount:Q", title="Net sales", format=th.FMT_MONEY),
                alt.Tooltip("net_units_sold:Q", title="Net units", format=th.FMT_INT),
                alt.Tooltip("is_partial_month:N", title="Partial month"),
            ],
        )
        .properties(
            title=chart_title(
                f"Net sales by month: {th.money_short(last)} over the last 12 months",
                "What sales-only data supports; turnover needs stock on hand and costs.",
            ),
            width=th.CHART_WIDTH,
            height=th.CHART_HEIGHT,
            description="Net sales per month",
        )
    )


# ------------------------------------------------------------------------------------------------ section


def build(report: Report) -> Section:
    ctx = report.ctx
    section = Section("turnover", "Inventory turnover and days inventory outstanding", "ok",
                      intro="How fast stock sells, for the company, each category and each location. "
                      "Solid lines: each month, annualised; dashed: the same month a year earlier.")
    if lacks_marts(ctx, section, "fct_inventory_turnover_monthly"):
        return section
    missing = ctx.missing(NEEDS_ON_HAND, NEEDS_UNIT_COSTS, NEEDS_COGS)
    if missing:
        section.status = "not_available"
        section.detail = not_available(missing)
        section.blocks.append(NoteBlock(section.detail, "unavailable"))
        if ctx.has_sales:
            sales = sales_monthly(report.con)
            section.blocks.append(chart_block("sales_monthly", sales,
                                              lambda d: sales_monthly_chart(d, start=ctx.last12_start),
                                              "Net sales per month"))
        return section
    company = turnover_trend(report.con, ctx, "company")
    section.blocks += [
        chart_block("turnover_company", company, lambda d: turnover_company_chart(d, report.kpis),
                    "Company inventory turnover"),
        chart_block("dio_company", company, lambda d: dio_company_chart(d, report.kpis),
                    "Company days inventory outstanding"),
    ]
    category = turnover_trend(report.con, ctx, "category")
    section.blocks.append(chart_block(
        "turnover_by_category", category,
        lambda d: turnover_small_multiples_chart(d, start=ctx.last12_start, what="category"),
        "Turnover by category",
    ))
    location = turnover_trend(report.con, ctx, "location")
    empty = (
        location.group_by("series").agg(pl.col("turnover").count().alias("n")).filter(pl.col("n") == 0)
    )["series"].to_list()
    location = location.filter(~pl.col("series").is_in(empty))
    if location.height:
        section.blocks.append(chart_block(
            "turnover_by_location", location,
            lambda d: turnover_small_multiples_chart(d, start=ctx.last12_start, what="location"),
            "Turnover by location",
        ))
    by_location = window_by_location(report.con, ctx)
    if by_location.filter(~pl.col("is_total")).height:
        section.blocks.append(location_table(by_location))
    if empty:
        section.blocks.append(NoteBlock(
            "No turnover for " + ", ".join(sorted(empty)) + ": these locations have neither sales nor valued "
            "transfers out to other locations in the marts.", "info"))
        section.status = "partial"
        section.detail = "no turnover for " + ", ".join(sorted(empty))
    return section


_TURNOVER_BASIS = {
    "sales": "sales",
    "shipments": "shipments to other locations",
    "sales_and_transfers": "sales + transfers out",
    "company": "sales only (transfers between locations cancel out)",
}

def location_table(rows: pl.DataFrame) -> TableBlock:
    """Each location's turnover over the last 12 months on what leaves it, and the company's on COGS."""
    data = [
        {**row, "location": "Company" if row["is_total"] else display_name(row, "location_name", "location_id"),
         "basis": _TURNOVER_BASIS.get(row["basis"], row["basis"])}
        for row in rows.iter_rows(named=True)
    ]
    return TableBlock(
        "Locations over the last 12 months: turnover (sales + transfers out at cost)",
        [
            col("location", "Location"),
            col("avg_inventory_value", "Average inventory at cost", th.money, True),
            col("cogs", "COGS (sales)", th.money, True),
            col("transfers_out_cost", "Transfers out at cost", th.money, True),
            col("turnover", "Turns a year", th.turns, True),
            col("dio", "Days inventory outstanding", th.days, True),
            col("basis", "Turnover on"),
        ],
        data,
        note="A location's turnover = (COGS + transfers out to other locations at cost) ÷ its average "
             "inventory at cost, so a distribution centre turns on its shipments to stores. The company row "
             "counts COGS only: a transfer between two own locations does not leave the company, and the "
             "company's transfers-out figure is that internal flow.",
    )
