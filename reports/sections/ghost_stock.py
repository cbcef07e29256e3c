"""Ghost stock and count discrepancies: what cycle counts found when they compared the book with the shelf.
Shrinkage costs money; ghost stock (the book shows stock, the shelf is empty) also stops reordering, so the item
sits out of stock.
"""

from __future__ import annotations

import altair as alt
import duckdb
import polars as pl

from reports import theme as th
from reports.charts import chart_title, inline_data
from reports.context import NEEDS_COUNTS, NEEDS_UNIT_COSTS, Context, frame
from reports.html import NoteBlock, Section, TableBlock
from reports.sections.common import Report, chart_block, col, date_text, lacks_marts, not_available, with_names

# ------------------------------------------------------------------------------------------------ queries


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


# ------------------------------------------------------------------------------------------------ charts


def discrepancy_top_chart(df: pl.DataFrame, summary: dict, *, valued: bool) -> alt.LayerChart:
    """Shrinkage (left, red) and surplus (right, green) per product-location, largest first."""
    data = df.with_columns(
        pl.format("{} · {}", pl.col("product_name").fill_null(pl.col("product_id")),
                  pl.col("location_name").fill_null(pl.col("location_id"))).alias("item"),
    )
    order = data["item"].to_list()
    keep = ["item", "product_name", "product_id", "location_name", "counts", "ghost_counts", "net_units", "net_value"]
    if valued:
        long = pl.concat([
            data.select(*keep, pl.col("shrinkage_value").alias("amount"), pl.lit("Shrinkage").alias("direction")),
            data.select(*keep, pl.col("surplus_value").alias("amount"), pl.lit("Surplus").alias("direction")),
        ])
    else:
        long = data.select(*keep, pl.col("net_units").alias("amount"),
                           pl.when(pl.col("net_units") < 0).then(pl.lit("Shrinkage")).otherwise(pl.lit("Surplus"))
                           .alias("direction"))
    long = long.filter(pl.col("amount").is_not_null() & (pl.col("amount") != 0))
    shrink = abs(summary.get("shrinkage_value") or 0.0)
    if valued and data.height:
        first = data.row(0, named=True)
        title = (
            f"Counts found {th.money_short(shrink)} of shrinkage in 12 months; most at "
            f"{first['item']} ({th.money_short(abs(first['shrinkage_value'] or 0.0))})"
        )
    else:
        title = f"The {data.height} product-locations with the largest count discrepancies (units)"
    money = th.FMT_MONEY if valued else th.FMT_INT
    chart = (
        alt.Chart(inline_data(long))
        .mark_bar(height={"band": 0.7})
        .encode(
            y=alt.Y("item:N", title=None, sort=order, axis=alt.Axis(labelLimit=320)),
            x=alt.X("amount:Q", stack="zero",
                    axis=th.money_axis("Count − book, at cost") if valued else alt.Axis(title="Count − book, units")),
            color=alt.Color("direction:N", title=None,
                            scale=alt.Scale(domain=["Shrinkage", "Surplus"], range=[th.BAD, th.GOOD])),
            tooltip=[
                alt.Tooltip("product_name:N", title="Product"),
                alt.Tooltip("product_id:N", title="Product code"),
                alt.Tooltip("location_name:N", title="Location"),
                alt.Tooltip("direction:N", title="Kind"),
                alt.Tooltip("amount:Q", title="Amount", format=money),
                alt.Tooltip("net_value:Q", title="Net at cost", format=th.FMT_MONEY),
                alt.Tooltip("net_units:Q", title="Net units", format=th.FMT_INT),
                alt.Tooltip("counts:Q", title="Counts with a difference", format=th.FMT_INT),
                alt.Tooltip("ghost_counts:Q", title="Counts that found ghost stock", format=th.FMT_INT),
            ],
        )
    )
    return alt.layer(chart).properties(
        title=chart_title(title, "Last 12 months, summed over each product-location's counts at the standard cost of "
                          "the count day.", "Largest total difference first."),
        width=th.CHART_WIDTH - 160,
        height=alt.Step(20),
        description="Product-locations with the largest book-versus-count discrepancies",
    )


# ------------------------------------------------------------------------------------------------ section


def build(report: Report) -> Section:
    ctx = report.ctx
    section = Section("ghost-stock", "Ghost stock and count discrepancies", "ok",
                      intro="Cycle counts compare the book with the shelf. Shrinkage costs money; ghost stock "
                      "(the book shows stock, the shelf is empty) also stops reordering, so the item sits "
                      "out of stock.")
    if lacks_marts(ctx, section, "fct_inventory_discrepancies"):
        return section
    missing = ctx.missing(NEEDS_COUNTS)
    if missing:
        section.status = "not_available"
        section.detail = not_available(missing)
        section.blocks.append(NoteBlock(section.detail, "unavailable"))
        return section
    summary = discrepancy_summary(report.con, ctx)
    report.kpi_values["shrinkage_value_12m"] = summary.get("shrinkage_value")
    if not summary["counts"]:
        section.status = "partial"
        section.detail = "no cycle counts in the last 12 months"
        section.blocks.append(NoteBlock("No cycle counts in the last 12 months.", "info"))
        return section
    valued = ctx.has_unit_costs
    section.blocks.append(NoteBlock(
        f"{summary['counts']:,} counts in the last 12 months, {summary['counts_off']:,} with a difference: "
        f"shrinkage {th.money(summary['shrinkage_value'])}, surplus {th.money(summary['surplus_value'])}, "
        f"net {th.money(summary['net_value'])}; {summary['ghost_counts']:,} counts found ghost stock "
        f"({th.money(summary['ghost_value'])} at cost).", "info"))
    top = discrepancy_by_product_location(report.con, ctx)
    if top.height:
        section.blocks.append(chart_block("discrepancy_top", top,
                                          lambda d: discrepancy_top_chart(d, summary, valued=valued),
                                          "Largest book-versus-count discrepancies"))
    largest = largest_discrepancies(report.con, ctx, limit=12)
    if largest.height:
        section.blocks.append(TableBlock(
            "Largest single count discrepancies, last 12 months",
            [
                col("count_date", "Count date", date_text, nowrap=True),
                col("product", "Product"), col("category", "Category"), col("location", "Location"),
                col("book_qty", "Book", th.number, True),
                col("counted_qty", "Counted", th.number, True),
                col("discrepancy_units", "Difference (units)", lambda v: th.number(v) if v is None
                    else f"{v:+,.0f}", True),
                col("discrepancy_value", "Difference at cost", th.money, True),
                col("kind", "Kind"),
                col("days_since_last_sale", "Days since last sale", th.number, True),
            ],
            [with_names(r) | {"kind": "ghost stock" if r["is_ghost_stock"] else r["discrepancy_type"]}
             for r in largest.to_dicts()],
        ))
    ghosts = largest_discrepancies(report.con, ctx, limit=10, ghost_only=True)
    if ghosts.height:
        section.blocks.append(TableBlock(
            "Largest ghost stock found: the book showed stock, the shelf was empty",
            [
                col("count_date", "Count date", date_text, nowrap=True),
                col("product", "Product"), col("location", "Location"),
                col("book_qty", "Book (units)", th.number, True),
                col("discrepancy_value", "Written off at cost", th.money, True),
                col("days_since_last_sale", "Days since last sale", th.number, True),
            ],
            [with_names(r) for r in ghosts.to_dicts()],
            note="A long time since the last sale before the count suggests the shelf was empty for that long "
            "while the system saw stock and did not reorder.",
        ))
    if not valued:
        section.status = "partial"
        section.detail = "values " + not_available([NEEDS_UNIT_COSTS]).lower()
    return section
