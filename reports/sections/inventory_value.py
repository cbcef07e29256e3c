"""Inventory value at cost and GMROI: where the money sits (average inventory at cost by category, month by month)
and what each category earns on it (gross margin a year per unit of inventory at cost, last vs prior 12 months).
"""

from __future__ import annotations

from datetime import date

import altair as alt
import duckdb
import polars as pl

from reports import theme as th
from reports.charts import MONTH, chart_title, inline_data, month_axis
from reports.context import NEEDS_COGS, NEEDS_ON_HAND, NEEDS_UNIT_COSTS, Context, frame
from reports.html import NoteBlock, Section, TableBlock
from reports.sections.common import Report, chart_block, col, lacks_marts, not_available

# ------------------------------------------------------------------------------------------------ queries


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


# ------------------------------------------------------------------------------------------------ charts


def inventory_value_by_category_chart(df: pl.DataFrame, *, start: date) -> alt.Chart:
    recent = df.filter(pl.col("month_start_date") >= start)
    months = recent["month_start_date"].n_unique() or 1
    by_cat = recent.group_by("category").agg(pl.col("avg_inventory_value").sum() / months).sort(
        "avg_inventory_value", descending=True
    )
    total = by_cat["avg_inventory_value"].sum()
    if by_cat.height and total:
        top = by_cat.row(0, named=True)
        title = (
            f"Inventory at cost averaged {th.money_short(total)} over the last 12 months; "
            f"{top['category']} holds the most ({th.pct(top['avg_inventory_value'] / total, 0)})"
        )
    else:
        title = "Inventory at cost by category"
    order = df.group_by("category").agg(pl.col("category_rank").min()).sort("category_rank")["category"].to_list()
    return (
        alt.Chart(inline_data(df))
        .mark_area(opacity=0.9, line={"strokeWidth": 0.5, "color": "white"})
        .encode(
            x=alt.X(MONTH, axis=month_axis()),
            y=alt.Y("avg_inventory_value:Q", stack="zero", axis=th.money_axis("Average inventory at cost")),
            color=alt.Color("category:N", title=None, sort=order),
            order=alt.Order("category_rank:Q", sort="ascending"),
            tooltip=[
                alt.Tooltip(MONTH, title="Month", format=th.FMT_MONTH),
                alt.Tooltip("category:N", title="Category"),
                alt.Tooltip("avg_inventory_value:Q", title="Average inventory at cost", format=th.FMT_MONEY),
            ],
        )
        .properties(
            title=chart_title(title,
                              "Average of daily closing stock at standard cost, per month, stacked by category."),
            width=th.CHART_WIDTH,
            height=th.CHART_HEIGHT,
            description="Monthly average inventory value at cost by category",
        )
    )


def gmroi_by_category_chart(df: pl.DataFrame, company_gmroi: float | None) -> alt.LayerChart:
    last = df.filter(pl.col("period") == "last").select("category", "category_rank", "gmroi", "avg_inventory_value",
                                                         "gross_margin", "turnover")
    prior = df.filter(pl.col("period") == "prior").select("category", pl.col("gmroi").alias("gmroi_prior"))
    data = last.join(prior, on="category", how="left").filter(pl.col("gmroi").is_not_null())
    if data.height:
        low = data.sort("gmroi").row(0, named=True)
        title = (
            f"GMROI: {th.money(company_gmroi, digits=2)} of gross margin a year per {th.money(1)} of inventory "
            f"at cost; {low['category']} earns least ({th.money(low['gmroi'], digits=2)})"
        )
    else:
        title = "GMROI by category"
    order = data.sort("gmroi", descending=True)["category"].to_list()
    y = alt.Y("category:N", title=None, sort=order)
    tooltip = [
        alt.Tooltip("category:N", title="Category"),
        alt.Tooltip("gmroi:Q", title="GMROI, last 12 months", format=th.FMT_2),
        alt.Tooltip("gmroi_prior:Q", title="GMROI, prior 12 months", format=th.FMT_2),
        alt.Tooltip("gross_margin:Q", title="Gross margin, last 12 months", format=th.FMT_MONEY),
        alt.Tooltip("avg_inventory_value:Q", title="Average inventory at cost", format=th.FMT_MONEY),
        alt.Tooltip("turnover:Q", title="Turns a year", format=th.FMT_1),
    ]
    base = alt.Chart().encode(y=y, tooltip=tooltip)
    bars = base.mark_bar(height={"band": 0.7}).encode(
        x=alt.X("gmroi:Q", title=f"Gross margin a year per {th.money(1)} of inventory at cost",
                axis=alt.Axis(format=th.FMT_1))
    )
    ticks = base.mark_tick(color=th.INK, thickness=2, size=16).encode(x="gmroi_prior:Q")
    labels = base.mark_text(align="left", dx=6).transform_calculate(
        label_x="max(datum.gmroi, isValid(datum.gmroi_prior) ? datum.gmroi_prior : 0)"
    ).encode(x="label_x:Q", text=alt.Text("gmroi:Q", format=th.FMT_2))
    layers = [bars, ticks, labels]
    if company_gmroi is not None:
        layers.append(
            alt.Chart().mark_rule(strokeDash=[4, 3], color=th.WARN).encode(x=alt.datum(company_gmroi))
        )
    return alt.layer(*layers, data=inline_data(data)).properties(
        title=chart_title(
            title,
            "Bars: last 12 months (gross margin ÷ average inventory at cost, annualised). Black tick: prior 12 "
            "months. Dashed: company.",
        ),
        width=th.CHART_WIDTH - 80,
        height=alt.Step(22),
        description="GMROI by category, last 12 months vs prior 12 months",
    )


# ------------------------------------------------------------------------------------------------ section


def build(report: Report) -> Section:
    ctx = report.ctx
    section = Section("value", "Inventory value at cost and GMROI", "ok",
                      intro="Where the money sits, and what each category earns on it.")
    if lacks_marts(ctx, section, "fct_inventory_turnover_monthly"):
        return section
    missing = ctx.missing(NEEDS_ON_HAND, NEEDS_UNIT_COSTS)
    if missing:
        section.status = "not_available"
        section.detail = not_available(missing + ctx.missing(NEEDS_COGS))
        section.blocks.append(NoteBlock(section.detail, "unavailable"))
        return section
    value = inventory_value_by_category(report.con, ctx)
    section.blocks.append(chart_block("inventory_value_by_category", value,
                                      lambda d: inventory_value_by_category_chart(d, start=ctx.last12_start),
                                      "Inventory value at cost by category"))
    if ctx.missing(NEEDS_COGS):
        section.status = "partial"
        section.detail = "GMROI " + not_available(ctx.missing(NEEDS_COGS)).lower()
        section.blocks.append(NoteBlock("GMROI: " + not_available(ctx.missing(NEEDS_COGS)), "unavailable"))
        return section
    window = window_by_category(report.con, ctx)
    section.blocks.append(chart_block("gmroi_by_category", window.filter(pl.col("gmroi").is_not_null()),
                                      lambda d: gmroi_by_category_chart(d, report.kpis["last"].get("gmroi")),
                                      "GMROI by category"))
    last = window.filter(pl.col("period") == "last")
    prior = window.filter(pl.col("period") == "prior").select("category", pl.col("turnover").alias("t_prior"),
                                                               pl.col("gmroi").alias("g_prior"))
    rows = last.join(prior, on="category", how="left").sort("avg_inventory_value", descending=True)
    section.blocks.append(TableBlock(
        "Categories over the last 12 months",
        [
            col("category", "Category"),
            col("avg_inventory_value", "Average inventory at cost", th.money, True),
            col("cogs", "COGS", th.money, True),
            col("gross_margin", "Gross margin", th.money, True),
            col("turnover", "Turns a year", th.turns, True),
            col("t_prior", "Turns, prior 12 months", th.turns, True),
            col("gmroi", "GMROI", lambda v: th.number(v, 2), True),
            col("g_prior", "GMROI, prior 12 months", lambda v: th.number(v, 2), True),
        ],
        rows.to_dicts(),
    ))
    return section
