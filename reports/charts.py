"""One function per chart: an aggregated frame in, an Altair chart out, titled with what to look at.

Charts carry their data inline (a few hundred rows at most: the SQL in reports.queries aggregates). Months are
encoded with UTC time units so a reader's time zone never shifts January to December. Text (product and
location names) reaches Vega as data and is drawn as SVG text, never parsed as HTML; tooltips go through
vega-tooltip's escaping.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import altair as alt
import polars as pl

from reports import theme as th
from reports.queries import SHIPMENTS_SUFFIX

MONTH = "utcyearmonth(month_start_date):T"


#: Longest text a chart carries (a name, a label): a product name of a megabyte (a broken export) would otherwise
#: make the SVG/PNG export measure it for minutes; the tables beside the charts keep the full text.
MAX_TEXT = 120


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def clip_spec_text(spec: Any) -> Any:
    """The spec with the text of its data (inline ``values`` and ``datasets``) and of its ``sort`` and ``domain``
    lists clipped to ``MAX_TEXT`` (consistently: a sort order still names the clipped values); expressions, titles
    and the rest are left as they are."""
    def records(rows: Any) -> Any:
        if not isinstance(rows, list):
            return rows
        return [{k: _clip(v) if isinstance(v, str) else v for k, v in r.items()} if isinstance(r, dict) else
                (_clip(r) if isinstance(r, str) else r) for r in rows]

    if isinstance(spec, dict):
        out = {}
        for key, value in spec.items():
            if key in ("values", "sort", "domain") and isinstance(value, list):
                out[key] = records(value)
            elif key == "datasets" and isinstance(value, dict):
                out[key] = {name: records(rows) for name, rows in value.items()}
            else:
                out[key] = clip_spec_text(value)
        return out
    if isinstance(spec, list):
        return [clip_spec_text(v) for v in spec]
    return spec


def _values(df: pl.DataFrame) -> alt.Data:
    """Inline data with ISO dates, no NaN (Vega-Lite wants null) and text clipped to ``MAX_TEXT`` characters."""
    rows = []
    for row in df.iter_rows(named=True):
        clean = {}
        for key, value in row.items():
            if isinstance(value, datetime | date):
                clean[key] = value.isoformat()
            elif isinstance(value, float) and math.isnan(value):
                clean[key] = None
            elif isinstance(value, str):
                clean[key] = _clip(value)
            else:
                clean[key] = value
        rows.append(clean)
    return alt.Data(values=rows)


def _title(text: str, *subtitle: str) -> alt.TitleParams:
    return alt.TitleParams(text=text, subtitle=list(subtitle) if subtitle else alt.Undefined)


def _month_axis() -> alt.Axis:
    return alt.Axis(title=None, format=th.FMT_MONTH, labelAngle=0, tickCount={"interval": "month", "step": 3})


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


def _direction(current: float | None, previous: float | None, fmt, *, up: str = "up", down: str = "down") -> str:
    """"up from 6.7x" / "down from 6.7x" / "" when there is nothing to compare."""
    if current is None or previous is None:
        return ""
    if round(current, 1) == round(previous, 1):
        return f", level with {fmt(previous)} the year before"
    return f", {up if current > previous else down} from {fmt(previous)} the year before"


# ------------------------------------------------------------------------------------------------ turnover


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
        x=alt.X(MONTH, axis=_month_axis()),
        y=alt.Y("value:Q", title=value_title, axis=alt.Axis(format=value_format)),
        color=color,
        tooltip=tooltip,
    )
    return [base.mark_line().encode(strokeDash=dash), base.mark_point(size=point_size, opacity=0.9)]


def turnover_company(df: pl.DataFrame, kpis: dict) -> alt.LayerChart:
    last, prior = kpis["last"].get("turnover"), kpis["prior"].get("turnover")
    data = _trend_long(df, "turnover", "turnover_prior_year", "Turnover")
    title = f"Inventory turns {th.turns(last)} a year over the last 12 months{_direction(last, prior, th.turns)}"
    return alt.layer(*_trend_layers("Turnover", "Turns a year", th.FMT_1), data=_values(data)).properties(
        title=_title(
            title,
            "Each month: COGS ÷ average inventory at cost, annualised. Higher = stock sells faster.",
            "Dashed: the same month a year earlier.",
        ),
        width=th.CHART_WIDTH - 140,
        height=th.CHART_HEIGHT,
        description="Monthly annualised inventory turnover for the company with the prior-year line",
    )


def dio_company(df: pl.DataFrame, kpis: dict) -> alt.LayerChart:
    last, prior = kpis["last"].get("dio"), kpis["prior"].get("dio")
    data = _trend_long(df, "dio", "dio_prior_year", "Days inventory outstanding")
    title = f"Stock lasts {th.days(last)} on average (DIO){_direction(last, prior, th.days)}"
    return alt.layer(
        *_trend_layers("Days inventory outstanding", "Days", th.FMT_INT), data=_values(data)
    ).properties(
        title=_title(
            title,
            "Each month: average inventory at cost ÷ COGS × days. Lower = less cash tied up.",
            "Dashed: the same month a year earlier.",
        ),
        width=th.CHART_WIDTH - 140,
        height=th.CHART_HEIGHT,
        description="Monthly days inventory outstanding for the company with the prior-year line",
    )


def turnover_small_multiples(df: pl.DataFrame, *, start: date, what: str) -> alt.FacetChart:
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
        alt.layer(*layers, data=_values(data))
        .properties(width=th.SMALL_WIDTH, height=th.SMALL_HEIGHT)
        .facet(
            facet=alt.Facet(
                "series:N", title=None, sort=alt.EncodingSortField(field="series_rank", op="min", order="ascending"),
                # "Central Distribution Centre (DC01) · on shipments" on two lines
                header=alt.Header(labelExpr="split(datum.label, ' · ')"),
            ),
            columns=4,
        )
        .properties(title=_title(title, *subtitle), description=f"Monthly turnover by {what} with prior-year lines")
    )


def sales_monthly(df: pl.DataFrame, *, start: date) -> alt.Chart:
    last = df.filter(pl.col("month_start_date") >= start)["net_sales_amount"].sum()
    return (
        alt.Chart(_values(df))
        .mark_bar()
        .encode(
            x=alt.X(MONTH, axis=_month_axis()),
            y=alt.Y("net_sales_amount:Q", axis=th.money_axis("Net sales")),
            tooltip=[
                alt.Tooltip(MONTH, title="Month", format=th.FMT_MONTH),
                alt.Tooltip("net_sales_amount:Q", title="Net sales", format=th.FMT_MONEY),
                alt.Tooltip("net_units_sold:Q", title="Net units", format=th.FMT_INT),
                alt.Tooltip("is_partial_month:N", title="Partial month"),
            ],
        )
        .properties(
            title=_title(
                f"Net sales by month: {th.money_short(last)} over the last 12 months",
                "What sales-only data supports; turnover needs stock on hand and costs.",
            ),
            width=th.CHART_WIDTH,
            height=th.CHART_HEIGHT,
            description="Net sales per month",
        )
    )


# ------------------------------------------------------------------------------------------------ value and GMROI


def inventory_value_by_category(df: pl.DataFrame, *, start: date) -> alt.Chart:
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
        alt.Chart(_values(df))
        .mark_area(opacity=0.9, line={"strokeWidth": 0.5, "color": "white"})
        .encode(
            x=alt.X(MONTH, axis=_month_axis()),
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
            title=_title(title, "Average of daily closing stock at standard cost, per month, stacked by category."),
            width=th.CHART_WIDTH,
            height=th.CHART_HEIGHT,
            description="Monthly average inventory value at cost by category",
        )
    )


def gmroi_by_category(df: pl.DataFrame, company_gmroi: float | None) -> alt.LayerChart:
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
    return alt.layer(*layers, data=_values(data)).properties(
        title=_title(
            title,
            "Bars: last 12 months (gross margin ÷ average inventory at cost, annualised). Black tick: prior 12 "
            "months. Dashed: company.",
        ),
        width=th.CHART_WIDTH - 80,
        height=alt.Step(22),
        description="GMROI by category, last 12 months vs prior 12 months",
    )


# ------------------------------------------------------------------------------------------------ days of supply


def days_of_supply_distribution(df: pl.DataFrame, *, as_of: date, excess_days: int, bands: tuple[str, ...],
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
    return alt.layer(bars, labels, data=_values(data)).properties(
        title=_title(
            title,
            f"On hand at cost on {as_of:%d %b %Y}, by days of supply = units on hand ÷ average daily use",
            f"over the last {window} days (sales and transfers out). Labels: number of product-locations.",
        ),
        width=th.CHART_WIDTH,
        height=th.CHART_HEIGHT,
        description="Inventory value by days-of-supply band on the as-of date",
    )


# ------------------------------------------------------------------------------------------------ service


def stockout_by_category(df: pl.DataFrame) -> alt.LayerChart:
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
    return alt.layer(bars, ticks, labels, data=_values(df)).properties(
        title=_title(title, "Selling locations, last 12 months (bars); black tick: prior 12 months."),
        width=th.CHART_WIDTH - 120,
        height=alt.Step(22),
        description="Stock-out rate by category",
    )


def fill_rate_by_category(df: pl.DataFrame) -> alt.LayerChart:
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
        alt.Chart(_values(long))
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
        title=_title(
            title,
            "Last 12 months, selling locations. Demand on stock-out days is estimated (see Definitions).",
            "A gap between the two marks means service is weaker on slow or small items than volume suggests.",
        ),
        width=th.CHART_WIDTH - 120,
        height=alt.Step(22),
        description="Estimated fill rate by category, volume-weighted and item average",
    )


def lost_sales_monthly(df: pl.DataFrame) -> alt.Chart:
    value, units = df["lost_sales_value"].sum() or 0.0, df["lost_units"].sum() or 0.0
    title = (
        f"Stock-outs cost an estimated {th.money_short(value)} of sales in the last 12 months "
        f"({th.number(units)} units)"
    )
    return (
        alt.Chart(_values(df))
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
            title=_title(title, "Lost units × the day's selling price, on days the shelf was empty."),
            width=th.CHART_WIDTH,
            height=th.CHART_HEIGHT - 40,
            description="Estimated lost sales per month",
        )
    )


# ------------------------------------------------------------------------------------------------ ghost stock


def discrepancy_top(df: pl.DataFrame, summary: dict, *, valued: bool) -> alt.LayerChart:
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
        alt.Chart(_values(long))
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
        title=_title(title, "Last 12 months, summed over each product-location's counts at the standard cost of "
                     "the count day.", "Largest total difference first."),
        width=th.CHART_WIDTH - 160,
        height=alt.Step(20),
        description="Product-locations with the largest book-versus-count discrepancies",
    )


# ------------------------------------------------------------------------------------------------ planning

#: Colours of the forward supply status (marts.fct_days_of_supply_forecast.supply_status, in words).
SUPPLY_COLORS = {
    "Out of stock": th.BAD,
    "Runs out before an order can arrive": th.WARN,
    "In stock": th.PRIMARY,
    "Over 180 days of forecast demand": "#7b5ea7",
    "Stock but no forecast demand": th.PRIOR,
}


def forward_days_of_supply(df: pl.DataFrame, summary: dict, *, bands: tuple[str, ...]) -> alt.LayerChart:
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
    bars = alt.Chart(_values(df)).mark_bar().encode(
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
    labels = alt.Chart(_values(totals)).mark_text(dy=-6, fontSize=10, color=th.MUTED).encode(
        x=x, y="product_locations:Q", text="label:N")
    return alt.layer(bars, labels).properties(
        title=_title(
            title,
            "Forward days of supply = stock on hand ÷ forecast daily demand, for every planned product-location.",
            "Labels: stock on hand at cost in the band.",
        ),
        width=th.CHART_WIDTH,
        height=th.CHART_HEIGHT,
        description="Product-locations by forward days of supply against the demand forecast",
    )


def _dumbbell(df: pl.DataFrame, *, y: str, order: list[str], before: str, after: str, labels: tuple[str, str],
              x_title: str, x_axis: alt.Axis, tooltip_format: str, extra_tooltip: list | None = None) -> list:
    """Layers of a dumbbell: a grey rule from ``before`` to ``after`` per row, a dot for each end."""
    long = pl.concat([
        df.select(y, pl.col(before).alias("value"), pl.lit(labels[0]).alias("which")),
        df.select(y, pl.col(after).alias("value"), pl.lit(labels[1]).alias("which")),
    ]).filter(pl.col("value").is_not_null())
    y_enc = alt.Y(f"{y}:N", title=None, sort=order)
    rule = alt.Chart(_values(df)).mark_rule(color=th.PRIOR, strokeWidth=2).encode(
        y=y_enc, x=alt.X(f"{before}:Q"), x2=f"{after}:Q")
    dots = alt.Chart(_values(long)).mark_point(filled=True, size=90, opacity=1).encode(
        y=y_enc,
        x=alt.X("value:Q", title=x_title, axis=x_axis),
        color=alt.Color("which:N", title=None, scale=alt.Scale(domain=list(labels), range=[th.PRIOR, th.PRIMARY])),
        tooltip=[alt.Tooltip(f"{y}:N", title=y.replace("_", " ").capitalize()), alt.Tooltip("which:N", title=" "),
                 alt.Tooltip("value:Q", title=x_title, format=tooltip_format), *(extra_tooltip or [])],
    )
    return [rule, dots]


def forecast_accuracy(df: pl.DataFrame) -> alt.LayerChart:
    """MASE of the selected model against seasonal naive, overall and per demand segment."""
    df = df.filter(pl.col("segment").ne_missing(pl.lit("zero")))  # nothing to scale by: MASE means little
    wide = df.pivot(on="model", index="segment_label", values="mase", aggregate_function="first") \
        if df.height else pl.DataFrame(schema={"segment_label": pl.String})
    for model in ("selected", "seasonal_naive"):
        if model not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(model))
    wide = wide.filter(pl.col("selected").is_not_null() | pl.col("seasonal_naive").is_not_null())
    overall = wide.filter(pl.col("segment_label") == "All series")
    title = "Forecast error against the seasonal-naive baseline (MASE, lower is better)"
    if overall.height and overall["selected"][0] is not None and overall["seasonal_naive"][0]:
        sel, naive = overall["selected"][0], overall["seasonal_naive"][0]
        gain = 1 - sel / naive
        title = (f"The forecast's error is {th.pct(abs(gain), 0)} {'below' if gain >= 0 else 'above'} the "
                 f"seasonal-naive baseline (MASE {th.number(sel, 2)} vs {th.number(naive, 2)})")
    order = ["All series", *sorted(s for s in wide["segment_label"].to_list() if s != "All series")]
    layers = _dumbbell(
        wide, y="segment_label", order=order, before="seasonal_naive", after="selected",
        labels=("Seasonal naive", "stockturn forecast"), x_title="MASE (error ÷ in-sample naive error)",
        x_axis=alt.Axis(format=th.FMT_2), tooltip_format=th.FMT_2,
    )
    one = alt.Chart().mark_rule(strokeDash=[4, 3], color=th.MUTED).encode(x=alt.datum(1))
    return alt.layer(*layers, one).properties(
        title=_title(title, "Held-out backtest origins; every demand segment uses the model chosen for it on earlier "
                     "origins.", "Dashed: the in-sample error of a naive forecast (MASE 1). Series without recent "
                     "demand: see the table."),
        width=th.CHART_WIDTH - 120,
        height=alt.Step(26),
        description="Forecast accuracy against the seasonal-naive baseline by demand segment",
    )


def forecast_bias(df: pl.DataFrame) -> alt.LayerChart:
    """Bias (sum of errors ÷ sum of actuals) of the selected model and seasonal naive, per segment."""
    data = df.filter(pl.col("bias").is_not_null() & pl.col("model").is_in(["selected", "seasonal_naive"])
                     & pl.col("segment").ne_missing(pl.lit("zero")))
    data = data.with_columns(
        pl.when(pl.col("model") == "selected").then(pl.lit("stockturn forecast"))
        .otherwise(pl.lit("Seasonal naive")).alias("which"))
    overall = data.filter((pl.col("segment_label") == "All series") & (pl.col("model") == "selected"))
    title = "Forecast bias by demand segment"
    if overall.height:
        b = overall["bias"][0]
        title = (f"Forecasts run {th.pct(abs(b))} {'above' if b > 0 else 'below'} actual sales overall "
                 "(bias; 0 = unbiased)")
    order = ["All series", *sorted({s for s in data["segment_label"].to_list() if s != "All series"})]
    chart = alt.Chart(_values(data)).mark_bar(height={"band": 0.8}).encode(
        y=alt.Y("segment_label:N", title=None, sort=order),
        yOffset=alt.YOffset("which:N", sort=["stockturn forecast", "Seasonal naive"]),
        x=alt.X("bias:Q", title="Sum of errors ÷ sum of actual sales (> 0: forecast too high)",
                axis=alt.Axis(format=".0%")),
        color=alt.Color("which:N", title=None, scale=alt.Scale(domain=["stockturn forecast", "Seasonal naive"],
                                                               range=[th.PRIMARY, th.PRIOR])),
        tooltip=[alt.Tooltip("segment_label:N", title="Segment"), alt.Tooltip("which:N", title="Model"),
                 alt.Tooltip("bias:Q", title="Bias", format=th.FMT_PCT),
                 alt.Tooltip("n_series:Q", title="Series scored", format=th.FMT_INT)],
    )
    zero = alt.Chart().mark_rule(color=th.INK).encode(x=alt.datum(0))
    return alt.layer(chart, zero).properties(
        title=_title(title, "Held-out backtest origins; stock-out days are not scored (their sales understate "
                     "demand).", "Series without recent demand are left out (any sale is a 100% miss)."),
        width=th.CHART_WIDTH - 120,
        height=alt.Step(14),
        description="Forecast bias by demand segment",
    )


def interval_coverage(df: pl.DataFrame, *, tolerance) -> alt.LayerChart:
    """Achieved vs nominal coverage of the forecast intervals and lead-time-demand quantiles (all series)."""
    data = df.with_columns(
        pl.when(pl.col("kind").str.starts_with("Forecast"))
        .then(pl.format("Daily forecast, {}% interval", (pl.col("nominal") * 100).round(0).cast(pl.Int64)))
        .otherwise(pl.format("Lead-time demand, p{}", (pl.col("nominal") * 100).round(0).cast(pl.Int64)))
        .alias("item"),
    )
    data = data.with_columns(
        pl.struct("achieved", "nominal").map_elements(
            lambda r: "On target" if abs(r["achieved"] - r["nominal"]) <= tolerance(r["nominal"])
            else ("Too wide (safe side)" if r["achieved"] > r["nominal"] else "Too narrow"),
            return_dtype=pl.String).alias("verdict"),
    )
    on = data.filter(pl.col("verdict") == "On target").height
    worst = data.with_columns((pl.col("achieved") - pl.col("nominal")).abs().alias("gap")).sort(
        "gap", descending=True)
    title = f"{on} of {data.height} uncertainty bands hold the share of actuals they promise"
    if worst.height and worst["verdict"][0] != "On target":
        w = worst.row(0, named=True)
        title += f"; furthest off: {w['item']} ({th.pct(w['achieved'])} vs {th.pct(w['nominal'], 0)})"
    order = data.sort("kind", "nominal")["item"].to_list()
    verdicts = ["On target", "Too wide (safe side)", "Too narrow"]
    y = alt.Y("item:N", title=None, sort=order)
    base = alt.Chart(_values(data)).encode(
        y=y,
        tooltip=[alt.Tooltip("item:N", title="Band"), alt.Tooltip("nominal:Q", title="Promised", format=".0%"),
                 alt.Tooltip("achieved:Q", title="Achieved", format=th.FMT_PCT),
                 alt.Tooltip("verdict:N", title="Verdict")],
    )
    nominal = base.mark_tick(color=th.INK, thickness=2, size=18).encode(x="nominal:Q")
    achieved = base.mark_point(filled=True, size=100, opacity=1).encode(
        x=alt.X("achieved:Q", title="Share of actual demand inside the band",
                scale=alt.Scale(zero=False, domainMax=1, nice=False, padding=10), axis=alt.Axis(format=".0%")),
        color=alt.Color("verdict:N", title=None, scale=alt.Scale(domain=verdicts,
                                                                 range=[th.GOOD, th.WARN, th.BAD])),
    )
    return alt.layer(nominal, achieved).properties(
        title=_title(title, "Dots: achieved on held-out backtest origins, all series; black tick: what the band "
                     "promises.", "Lead-time demand quantiles set the reorder points: below the tick means more "
                     "stock-outs than planned."),
        width=th.CHART_WIDTH - 120,
        height=alt.Step(22),
        description="Interval coverage of the demand forecast and lead-time demand quantiles",
    )


def recommendation_value(df: pl.DataFrame, total: dict) -> alt.LayerChart:
    """Expected average inventory at cost freed (left) and added (right) by the recommendation, per category."""
    data = df.filter(~pl.col("is_total"))
    long = pl.concat([
        data.select("category", (-pl.col("freed_value")).alias("amount"), pl.lit("Frees inventory").alias("effect"),
                    pl.col("items_freeing").alias("items")),
        data.select("category", pl.col("added_value").alias("amount"), pl.lit("Adds inventory").alias("effect"),
                    pl.col("items_adding").alias("items")),
    ]).filter(pl.col("amount") != 0)
    net = total.get("net_change") or 0.0
    title = (
        f"Moving from the classical policy to stockturn's frees {th.money_short(total.get('freed_value'))} and adds "
        f"{th.money_short(total.get('added_value'))} of average inventory at cost: net "
        f"{'+' if net > 0 else ''}{th.money_short(net)}"
    )
    order = data.sort("category_rank")["category"].to_list()
    y = alt.Y("category:N", title=None, sort=order)
    bars = alt.Chart(_values(long)).mark_bar(height={"band": 0.7}).encode(
        y=y,
        x=alt.X("amount:Q", stack="zero", axis=th.money_axis("Change in expected average inventory at cost")),
        color=alt.Color("effect:N", title=None, scale=alt.Scale(domain=["Frees inventory", "Adds inventory"],
                                                                range=[th.GOOD, th.WARN])),
        tooltip=[alt.Tooltip("category:N", title="Category"), alt.Tooltip("effect:N", title="Effect"),
                 alt.Tooltip("amount:Q", title="Change at cost", format=th.FMT_MONEY),
                 alt.Tooltip("items:Q", title="Product-locations", format=th.FMT_INT)],
    )
    nets = alt.Chart(_values(data)).mark_tick(color=th.INK, thickness=2, size=16).encode(
        y=y, x="net_change:Q",
        tooltip=[alt.Tooltip("category:N", title="Category"),
                 alt.Tooltip("net_change:Q", title="Net change at cost", format=th.FMT_MONEY)])
    zero = alt.Chart().mark_rule(color=th.MUTED).encode(x=alt.datum(0))
    return alt.layer(bars, nets, zero).properties(
        title=_title(title, "Expected average inventory = safety stock + half an order quantity, at cost, per "
                     "product-location. Black tick: net change of the category."),
        width=th.CHART_WIDTH - 100,
        height=alt.Step(22),
        description="Inventory value the recommended policy frees or adds, by category",
    )


def safety_stock_by_category(df: pl.DataFrame, total: dict) -> alt.LayerChart:
    data = df.filter(~pl.col("is_total"))
    title = (
        f"Safety stock at cost: {th.money_short(total.get('classical_safety_stock_value'))} under the classical "
        f"policy, {th.money_short(total.get('recommended_safety_stock_value'))} recommended"
    )
    order = data.sort("category_rank")["category"].to_list()
    layers = _dumbbell(
        data, y="category", order=order, before="classical_safety_stock_value",
        after="recommended_safety_stock_value", labels=("Classical", "Recommended"),
        x_title="Safety stock at cost", x_axis=th.money_axis("Safety stock at cost"), tooltip_format=th.FMT_MONEY,
    )
    return alt.layer(*layers).properties(
        title=_title(title, "Grey: classical (last year's daily mean and spread, normal over a fixed lead time, "
                     "textbook safety factor).", "Blue: stockturn's, from the forecast's lead-time-demand "
                     "distribution."),
        width=th.CHART_WIDTH - 100,
        height=alt.Step(22),
        description="Safety stock at cost, classical vs recommended, by category",
    )


def expected_turnover_by_category(df: pl.DataFrame, total: dict) -> alt.LayerChart:
    data = df.filter(~pl.col("is_total"))
    title = (
        f"Expected turnover {th.turns(total.get('classical_turnover'))} under the classical policy, "
        f"{th.turns(total.get('recommended_turnover'))} recommended; expected fill rate "
        f"{th.pct(total.get('classical_fill_rate'))} → {th.pct(total.get('recommended_fill_rate'))}"
    )
    order = data.sort("category_rank")["category"].to_list()
    layers = _dumbbell(
        data, y="category", order=order, before="classical_turnover", after="recommended_turnover",
        labels=("Classical", "Recommended"), x_title="Expected turns a year", x_axis=alt.Axis(format=th.FMT_1),
        tooltip_format=th.FMT_1,
        extra_tooltip=[],
    )
    return alt.layer(*layers).properties(
        title=_title(title, "Forecast annual demand at cost (selling locations) ÷ expected average inventory at "
                     "cost (all locations)."),
        width=th.CHART_WIDTH - 100,
        height=alt.Step(22),
        description="Expected turnover, classical vs recommended, by category",
    )


def backtest_tradeoff(policies: pl.DataFrame, comparison: dict | None) -> alt.LayerChart:
    """Each policy of the main study: average inventory at cost against fill rate (up and left is better)."""
    title = "Policy backtest: fill rate against the inventory it takes"
    if comparison and comparison.get("inventory_reduction_pct") is not None:
        red = comparison["inventory_reduction_pct"] / 100
        low, high = comparison.get("reduction_ci_low_pct"), comparison.get("reduction_ci_high_pct")
        ci = (f" (95% interval {th.pct(low / 100, 0)} to {th.pct(high / 100, 0)})"
              if low is not None and high is not None else "")
        title = (f"At the same fill rate ({th.pct(comparison.get('stockturn_fill_volume'))}), stockturn holds "
                 f"{th.pct(abs(red), 0)} {'less' if red >= 0 else 'more'} inventory than the classical policy{ci}")
    order = policies.sort("policy_rank")["policy_label"].to_list()
    base = alt.Chart(_values(policies)).encode(
        x=alt.X("avg_inventory_value:Q", axis=th.money_axis("Average inventory at cost"),
                scale=alt.Scale(zero=False, padding=30)),
        y=alt.Y("fill_rate_volume:Q", title="Fill rate (volume)", axis=alt.Axis(format=".1%"),
                scale=alt.Scale(zero=False, padding=20)),
        tooltip=[
            alt.Tooltip("policy_label:N", title="Policy"),
            alt.Tooltip("fill_rate_volume:Q", title="Fill rate (volume)", format=th.FMT_PCT),
            alt.Tooltip("fill_rate_item_avg:Q", title="Fill rate (average item)", format=th.FMT_PCT),
            alt.Tooltip("avg_inventory_value:Q", title="Average inventory at cost", format=th.FMT_MONEY),
            alt.Tooltip("turnover:Q", title="Turns a year", format=th.FMT_1),
            alt.Tooltip("stockout_days:Q", title="Stock-out days", format=th.FMT_INT),
            alt.Tooltip("total_cost:Q", title="Holding + ordering + shortage cost", format=th.FMT_MONEY),
        ],
    )
    points = base.mark_point(filled=True, size=140, opacity=1).encode(
        color=alt.Color("policy_label:N", title=None, sort=order, legend=None))
    labels = base.mark_text(align="left", dx=10, fontSize=11).encode(text="policy_label:N")
    return alt.layer(points, labels).properties(
        title=_title(title, "Each policy replayed day by day on the same demand history. Up and to the left is "
                     "better: more demand served with less stock."),
        width=th.CHART_WIDTH,
        height=th.CHART_HEIGHT,
        description="Policy backtest: fill rate against average inventory per policy",
    )


def backtest_reduction(comparison: pl.DataFrame) -> alt.LayerChart:
    """Inventory reduction at matched fill rate with its bootstrap interval, per study."""
    data = comparison.filter(pl.col("inventory_reduction_pct").is_not_null()).with_columns(
        (pl.col("inventory_reduction_pct") / 100).alias("reduction"),
        (pl.col("reduction_ci_low_pct") / 100).alias("ci_low"),
        (pl.col("reduction_ci_high_pct") / 100).alias("ci_high"),
    )
    better = data.filter(pl.col("reduction") > 0).height
    title = f"stockturn needs less inventory for the same fill rate in {better} of {data.height} studies"
    order = data["study_label"].to_list()
    y = alt.Y("study_label:N", title=None, sort=order, axis=alt.Axis(labelLimit=260))
    tooltip = [
        alt.Tooltip("study_label:N", title="Study"),
        alt.Tooltip("reduction:Q", title="Inventory reduction", format=th.FMT_PCT),
        alt.Tooltip("ci_low:Q", title="95% interval from", format=th.FMT_PCT),
        alt.Tooltip("ci_high:Q", title="95% interval to", format=th.FMT_PCT),
        alt.Tooltip("stockturn_fill_volume:Q", title="Fill rate, stockturn", format=th.FMT_PCT),
        alt.Tooltip("baseline_fill_volume:Q", title="Fill rate, classical", format=th.FMT_PCT),
        alt.Tooltip("stockturn_inventory_value:Q", title="Inventory, stockturn", format=th.FMT_MONEY),
        alt.Tooltip("baseline_inventory_value:Q", title="Inventory, classical", format=th.FMT_MONEY),
    ]
    bars = alt.Chart(_values(data)).mark_bar(height={"band": 0.6}).encode(
        y=y, x=alt.X("reduction:Q", title="Less average inventory than the classical policy",
                     axis=alt.Axis(format=".0%")),
        color=alt.condition("datum.reduction >= 0", alt.value(th.GOOD), alt.value(th.BAD)),
        tooltip=tooltip,
    )
    ci = alt.Chart(_values(data.filter(pl.col("ci_low").is_not_null()))).mark_rule(
        color=th.INK, strokeWidth=1.5).encode(y=y, x="ci_low:Q", x2="ci_high:Q", tooltip=tooltip)
    zero = alt.Chart().mark_rule(color=th.MUTED).encode(x=alt.datum(0))
    return alt.layer(bars, ci, zero).properties(
        title=_title(title, "Main study: classical matched to stockturn's fill rate; black line: 95% bootstrap "
                     "interval over product-locations.", "Scenarios: both plans replayed under the stress; read their "
                     "fill rates in the table below."),
        width=th.CHART_WIDTH - 100,
        height=alt.Step(24),
        description="Inventory reduction at matched fill rate per backtest study",
    )
