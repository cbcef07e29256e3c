"""Days of supply: how long today's stock lasts, backward-looking at the recent pace of sales (value by band, the
most excess stock, what is out of stock now) and forward-looking against the demand forecast of the planning run
(product-locations by band and supply status, the most under- and over-stocked).
"""

from __future__ import annotations

from datetime import date

import altair as alt
import duckdb
import polars as pl

from reports import theme as th
from reports.charts import chart_title, inline_data
from reports.context import DOS_FORECAST, NEEDS_ON_HAND, PRODUCT_LOCATION_NAMES, RECOMMENDATIONS, Context, frame
from reports.html import NoteBlock, Section, TableBlock
from reports.sections.common import (
    STOCKTURN_RUN_HINT,
    Report,
    chart_block,
    col,
    date_text,
    label,
    lacks_marts,
    long_days,
    not_available,
    plan_gate,
    with_names,
)
from reports.sections.proposals import PROPOSAL_TYPES

#: Days of supply above which stock counts as excess in the report (about three months).
EXCESS_DAYS = 91

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

#: Forward days-of-supply bands (index = band_order in :func:`forward_dos_bands`): the backward-looking bands'
#: day ranges, the last one for product-locations without forecast demand.
FORWARD_DOS_BANDS = (*DOS_BANDS[:-1], "No forecast demand")
#: supply_status of marts.fct_days_of_supply_forecast -> words, in the order the charts stack them.
SUPPLY_STATUS = {
    "out_of_stock": "Out of stock",
    "stockout_before_receipt": "Runs out before an order can arrive",
    "in_stock": "In stock",
    "excess": "Over 180 days of forecast demand",
    "no_forecast_demand": "Stock but no forecast demand",
}

#: Colours of the forward supply status (marts.fct_days_of_supply_forecast.supply_status, in words).
SUPPLY_COLORS = {
    "Out of stock": th.BAD,
    "Runs out before an order can arrive": th.WARN,
    "In stock": th.PRIMARY,
    "Over 180 days of forecast demand": "#7b5ea7",
    "Stock but no forecast demand": th.PRIOR,
}


# ------------------------------------------------------------------------------------------------ queries, backward


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


# ------------------------------------------------------------------------------------------------ queries, forward


def forward_dos_bands(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Product-locations with a known stock position by forward days-of-supply band and supply status: count,
    units and value on hand at cost, and the value above the recommended order-up-to level."""
    df = frame(
        con,
        f"""
        with d as (
            select
                case
                    when supply_status = 'out_of_stock' then 0
                    when supply_status = 'no_forecast_demand' or forward_days_of_supply is null then 9
                    when forward_days_of_supply < 7 then 1
                    when forward_days_of_supply < 14 then 2
                    when forward_days_of_supply < 28 then 3
                    when forward_days_of_supply < 56 then 4
                    when forward_days_of_supply < 91 then 5
                    when forward_days_of_supply < 182 then 6
                    when forward_days_of_supply < 365 then 7
                    else 8
                end as band_order,
                supply_status, on_hand_units, on_hand_value, excess_value_at_cost
            from marts.{DOS_FORECAST}
            where supply_status <> 'unavailable'
        )
        select
            band_order, supply_status,
            count(*) as product_locations,
            sum(greatest(on_hand_units, 0)) as on_hand_units,
            coalesce(sum(on_hand_value), 0) as on_hand_value,
            coalesce(sum(excess_value_at_cost), 0) as excess_value
        from d
        group by all
        order by band_order, supply_status
        """,
    )
    return df.with_columns(
        pl.col("band_order").map_elements(lambda i: FORWARD_DOS_BANDS[i], return_dtype=pl.String).alias("band"),
        pl.col("supply_status").map_elements(lambda s: label(SUPPLY_STATUS, s), return_dtype=pl.String)
        .alias("status"),
    )


def forward_dos_summary(con: duckdb.DuckDBPyConnection) -> dict:
    return frame(
        con,
        f"""
        select
            max(as_of_date) as as_of_date,
            count(*) as product_locations,
            count(*) filter (where supply_status = 'unavailable') as unavailable,
            count(*) filter (where supply_status = 'out_of_stock') as out_of_stock,
            count(*) filter (where supply_status = 'stockout_before_receipt') as stockout_before_receipt,
            count(*) filter (where supply_status = 'excess') as excess,
            count(*) filter (where supply_status = 'no_forecast_demand') as no_forecast_demand,
            coalesce(sum(on_hand_value), 0) as on_hand_value,
            coalesce(sum(excess_value_at_cost), 0) as excess_value_at_cost,
            count(*) filter (where excess_value_at_cost > 0) as excess_items,
            coalesce(sum(on_hand_value) filter (where supply_status = 'excess'), 0) as excess_status_value,
            coalesce(sum(shortfall_units * unit_cost), 0) as shortfall_value
        from marts.{DOS_FORECAST}
        """,
    ).row(0, named=True)


def forward_overstock(con: duckdb.DuckDBPyConnection, limit: int = 10) -> pl.DataFrame:
    """Product-locations holding the most value above the recommended order-up-to level."""
    return frame(
        con,
        f"""
        select
            d.product_id, p.product_name, p.category, d.location_id, l.location_name,
            d.on_hand_units, d.on_hand_value, d.forecast_daily_units, d.forward_days_of_supply,
            d.target_days_of_supply, d.order_up_to_level, d.excess_units, d.excess_value_at_cost, d.supply_status
        from marts.{DOS_FORECAST} d
        {PRODUCT_LOCATION_NAMES}
        where d.excess_value_at_cost > 0
        order by d.excess_value_at_cost desc, d.product_id, d.location_id
        limit ?
        """,
        [limit],
    )


def forward_understock(con: duckdb.DuckDBPyConnection, ctx: Context, limit: int = 10) -> pl.DataFrame:
    """Product-locations out of stock or running out before an order placed today can arrive, by the forecast
    demand at cost they are expected to miss per day; with the order proposed for them, if any."""
    proposal = "null::varchar as proposal_type, null::double as proposed_quantity, null::varchar as proposal_status"
    join = ""
    if RECOMMENDATIONS in ctx.marts:
        proposal = "r.proposal_type, r.proposed_quantity, r.proposal_status"
        join = (f"left join marts.{RECOMMENDATIONS} r "
                "on r.product_id = d.product_id and r.location_id = d.location_id")
    return frame(
        con,
        f"""
        select
            d.product_id, p.product_name, p.category, d.location_id, l.location_name, d.supply_status,
            d.on_hand_units, d.inventory_position_units, d.forecast_daily_units,
            d.forecast_daily_units * d.unit_cost as daily_demand_at_cost,
            d.forward_days_of_supply, d.projected_stockout_date, d.lead_time_days, d.reorder_point,
            d.shortfall_units, {proposal}
        from marts.{DOS_FORECAST} d
        {PRODUCT_LOCATION_NAMES}
        {join}
        where d.supply_status in ('out_of_stock', 'stockout_before_receipt')
        order by daily_demand_at_cost desc nulls last, d.forecast_daily_units desc nulls last, d.product_id,
                 d.location_id
        limit ?
        """,
        [limit],
    )


# ------------------------------------------------------------------------------------------------ charts


def days_of_supply_distribution_chart(df: pl.DataFrame, *, as_of: date, excess_days: int, bands: tuple[str, ...],
                                      excess_from: int) -> alt.LayerChart:
    """On-hand value by days-of-supply band on the as-of date; bands from ``excess_from`` on are excess."""
    data = df.with_columns(
        pl.when(pl.col("band_order") == 0).then(pl.lit("Out of stock"))
        .when(pl.col("band_order") >= excess_from).then(pl.lit(f"Over {excess_days} days or no recent sales"))
        .otherwise(pl.lit(f"Up to {excess_days} days")).alias("status"),
        pl.format("{} items", pl.col("product_locations")).alias("label"),
    )
    total = data["on_hand_value"].sum() or 0.0
    excess = data.filter(pl.col("band_order") >= excess_from)["on_hand_value"].sum() or 0.0
    window = int(data["window_days"].max() or 28) if data.height else 28
    title = (
        f"{th.money_short(excess)} ({th.pct(excess / total if total else None, 0)}) of stock at cost covers more "
        f"than {excess_days} days of sales, or is not selling"
    )
    status_scale = alt.Scale(
        domain=["Out of stock", f"Up to {excess_days} days", f"Over {excess_days} days or no recent sales"],
        range=[th.BAD, th.PRIMARY, th.WARN],
    )
    base = alt.Chart().encode(
        x=alt.X("band:N", title=None, sort=list(bands), axis=alt.Axis(labelAngle=-30, labelLimit=140)),
        tooltip=[
            alt.Tooltip("band:N", title="Days of supply"),
            alt.Tooltip("product_locations:Q", title="Product-locations", format=th.FMT_INT),
            alt.Tooltip("on_hand_units:Q", title="Units on hand", format=th.FMT_INT),
            alt.Tooltip("on_hand_value:Q", title="Value at cost", format=th.FMT_MONEY),
        ],
    )
    bars = base.mark_bar().encode(
        y=alt.Y("on_hand_value:Q", axis=th.money_axis("On hand at cost")),
        color=alt.Color("status:N", title=None, scale=status_scale),
    )
    labels = base.mark_text(dy=-6, fontSize=10, color=th.MUTED).encode(y="on_hand_value:Q", text="label:N")
    return alt.layer(bars, labels, data=inline_data(data)).properties(
        title=chart_title(
            title,
            f"On hand at cost on {as_of:%d %b %Y}, by days of supply = units on hand ÷ average daily use",
            f"over the last {window} days (sales and transfers out). Labels: number of product-locations.",
        ),
        width=th.CHART_WIDTH,
        height=th.CHART_HEIGHT,
        description="Inventory value by days-of-supply band on the as-of date",
    )


def forward_days_of_supply_chart(df: pl.DataFrame, summary: dict, *, bands: tuple[str, ...]) -> alt.LayerChart:
    """Product-locations by forward days-of-supply band, coloured by supply status; labels: value on hand."""
    short = (summary.get("out_of_stock") or 0) + (summary.get("stockout_before_receipt") or 0)
    title = (
        f"{short:,} product-locations are out of stock or run out before an order can arrive; "
        f"{th.money_short(summary.get('excess_value_at_cost'))} of stock sits above the recommended order-up-to "
        "level"
    )
    totals = df.group_by("band", "band_order").agg(
        pl.col("product_locations").sum(), pl.col("on_hand_value").sum()
    ).with_columns(
        pl.col("on_hand_value").map_elements(th.money_short, return_dtype=pl.String).alias("label")
    )
    statuses = [s for s in SUPPLY_COLORS if s in set(df["status"].to_list())]
    x = alt.X("band:N", title=None, sort=list(bands), axis=alt.Axis(labelAngle=-30, labelLimit=140))
    bars = alt.Chart(inline_data(df)).mark_bar().encode(
        x=x,
        y=alt.Y("product_locations:Q", title="Product-locations", stack="zero",
                axis=alt.Axis(format=th.FMT_INT, tickMinStep=1)),
        color=alt.Color("status:N", title=None, sort=statuses,
                        scale=alt.Scale(domain=statuses, range=[SUPPLY_COLORS[s] for s in statuses]),
                        legend=alt.Legend(columns=3, labelLimit=260)),
        tooltip=[
            alt.Tooltip("band:N", title="Forward days of supply"),
            alt.Tooltip("status:N", title="Status"),
            alt.Tooltip("product_locations:Q", title="Product-locations", format=th.FMT_INT),
            alt.Tooltip("on_hand_units:Q", title="Units on hand", format=th.FMT_INT),
            alt.Tooltip("on_hand_value:Q", title="On hand at cost", format=th.FMT_MONEY),
            alt.Tooltip("excess_value:Q", title="Above order-up-to level, at cost", format=th.FMT_MONEY),
        ],
    )
    labels = alt.Chart(inline_data(totals)).mark_text(dy=-6, fontSize=10, color=th.MUTED).encode(
        x=x, y="product_locations:Q", text="label:N")
    return alt.layer(bars, labels).properties(
        title=chart_title(
            title,
            "Forward days of supply = stock on hand ÷ forecast daily demand, for every planned product-location.",
            "Labels: stock on hand at cost in the band.",
        ),
        width=th.CHART_WIDTH,
        height=th.CHART_HEIGHT,
        description="Product-locations by forward days of supply against the demand forecast",
    )


# ------------------------------------------------------------------------------------------------ section


def build(report: Report) -> Section:
    ctx = report.ctx
    section = Section("days-of-supply", "Days of supply", "ok",
                      intro="How long today's stock lasts at the recent pace of sales (backward-looking). "
                      "The forward-looking view against the demand forecast follows below.")
    missing = ctx.missing(NEEDS_ON_HAND)
    if lacks_marts(ctx, section, "fct_days_of_supply", "fct_inventory_daily"):
        pass
    elif missing:
        section.status = "not_available"
        section.detail = not_available(missing)
        section.blocks.append(NoteBlock(section.detail, "unavailable"))
    else:
        bands = days_of_supply_bands(report.con)
        excess_from = DOS_BANDS.index("3-6 months")
        section.blocks.append(chart_block(
            "days_of_supply_distribution", bands,
            lambda d: days_of_supply_distribution_chart(d, as_of=ctx.as_of_date, excess_days=EXCESS_DAYS,
                                                        bands=DOS_BANDS, excess_from=excess_from),
            "Inventory value by days of supply"))
        unavailable = days_of_supply_unavailable(report.con)
        if unavailable:
            section.blocks.append(NoteBlock(
                f"{unavailable:,} product-locations have no known stock on the as-of date and are left out.",
                "info"))
        excess = excess_stock(report.con, limit=10)
        if excess.height:
            section.blocks.append(TableBlock(
                f"Most value beyond {EXCESS_DAYS} days of supply on {ctx.as_of_date:%d %b %Y}",
                [
                    col("product", "Product"), col("category", "Category"), col("location", "Location"),
                    col("on_hand_units", "Units on hand", th.number, True),
                    col("on_hand_value", "On hand at cost", th.money, True),
                    col("avg_daily_usage_units", "Daily use (units)", th.rate, True),
                    col("days_of_supply", "Days of supply",
                        lambda v: "no recent sales" if v is None else th.number(v), True),
                    col("excess_value", f"Value beyond {EXCESS_DAYS} days", th.money, True),
                ],
                [with_names(r) for r in excess.to_dicts()],
                note="Backward-looking: today's stock against the last weeks' use. Seasonal items may be "
                "building up ahead of their season.",
            ))
        oos = out_of_stock_now(report.con, limit=10)
        if oos.height:
            section.blocks.append(TableBlock(
                f"Out of stock on {ctx.as_of_date:%d %b %Y}, by the sales their usual daily use is worth",
                [
                    col("product", "Product"), col("category", "Category"), col("location", "Location"),
                    col("avg_daily_usage_units", "Daily use (units)", th.rate, True),
                    col("daily_usage_at_price", "Daily use at list price", th.money, True),
                    col("days_out", "Days out of stock", lambda v: "over 365" if v is None else th.number(v),
                        True),
                ],
                [with_names(r) for r in oos.to_dicts()],
            ))
    _add_forward_view(report, section)
    return section


def _add_forward_view(report: Report, section: Section) -> None:
    """The forward-looking half: stock on hand against the planning run's demand forecast. The section keeps the
    backward-looking half's status when that one is not ok."""
    backward_status, backward_detail = section.status, section.detail
    section.status, section.detail = "ok", ""
    blocks_before = len(section.blocks)
    if not plan_gate(report, section, "Forward-looking days of supply", ("demand_forecast",), (DOS_FORECAST,)):
        if backward_status != "ok":
            section.status, section.detail = backward_status, backward_detail
        elif section.status == "pending":
            section.status = "partial"
            section.detail = "forward-looking view: " + STOCKTURN_RUN_HINT[0].lower() + STOCKTURN_RUN_HINT[1:]
        return
    summary = forward_dos_summary(report.con)
    if not summary["product_locations"] or summary["product_locations"] == summary["unavailable"]:
        section.blocks.append(NoteBlock("Forward-looking days of supply: the planning run has no product-location "
                                        "with a known stock position.", "info"))
        section.status = backward_status if backward_status != "ok" else "partial"
        section.detail = backward_detail or "no forward-looking days of supply"
        return
    section.blocks.insert(blocks_before, NoteBlock(
        f"Forward-looking, as of {date_text(summary['as_of_date'])}: stock on hand against the demand forecast for the "
        f"{summary['product_locations']:,} planned product-locations.", "info"))
    bands = forward_dos_bands(report.con)
    section.blocks.append(chart_block(
        "forward_days_of_supply", bands,
        lambda d: forward_days_of_supply_chart(d, summary, bands=FORWARD_DOS_BANDS),
        "Product-locations by forward days of supply"))
    if summary["unavailable"]:
        section.blocks.append(NoteBlock(
            f"{summary['unavailable']:,} planned product-locations have no known stock position and are left out.",
            "info"))
    under = forward_understock(report.con, report.ctx, limit=10)
    if under.height:
        section.blocks.append(TableBlock(
            "Most under-stocked: out of stock or running out before an order placed today can arrive, by the "
            "forecast demand at cost they miss per day",
            [
                col("product", "Product"), col("category", "Category"), col("location", "Location"),
                col("status", "Status"),
                col("on_hand_units", "On hand", th.number, True),
                col("inventory_position_units", "On hand + on order", th.number, True),
                col("forecast_daily_units", "Forecast a day (units)", th.rate, True),
                col("daily_demand_at_cost", "Forecast a day at cost", lambda v: th.money(v, digits=2), True),
                col("forward_days_of_supply", "Days of supply", th.number, True),
                col("lead_time_days", "Lead time (days)", th.number, True),
                col("proposal", "Proposed now"),
            ],
            [with_names(r) | {
                "status": label(SUPPLY_STATUS, r["supply_status"]),
                "proposal": (f"{label(PROPOSAL_TYPES, r['proposal_type']).lower()} of "
                             f"{th.number(r['proposed_quantity'])} ({r['proposal_status'] or 'proposed'})"
                             if r["proposal_type"] else "none"),
            } for r in under.to_dicts()],
        ))
    over = forward_overstock(report.con, limit=10)
    if over.height:
        section.blocks.append(TableBlock(
            "Most over-stocked: value above the recommended order-up-to level",
            [
                col("product", "Product"), col("category", "Category"), col("location", "Location"),
                col("on_hand_units", "On hand", th.number, True),
                col("on_hand_value", "On hand at cost", th.money, True),
                col("forecast_daily_units", "Forecast a day (units)", th.rate, True),
                col("forward_days_of_supply", "Days of supply", long_days, True),
                col("target_days_of_supply", "Target days", long_days, True),
                col("excess_units", "Units above target", th.number, True),
                col("excess_value_at_cost", "Value above target", th.money, True),
            ],
            [with_names(r) for r in over.to_dicts()],
            note="Target = the recommended order-up-to level (reorder point + order quantity) of stockturn's "
            "policy. Stock above it is cash the forecast says will not be needed before the next order.",
        ))
    report.kpi_values["forward_excess_value"] = summary["excess_value_at_cost"]
    report.kpi_values["forward_short_items"] = summary["out_of_stock"] + summary["stockout_before_receipt"]
    if backward_status != "ok":
        section.status, section.detail = backward_status, backward_detail
