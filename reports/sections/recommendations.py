"""Recommendations and purchase proposals: stockturn's replenishment policy beside the classical textbook policy at
the same service targets (safety stock, reorder points, the inventory value each frees or adds, the expected
turnover), then what the plan's safeguards caught, the orders proposed now, the exceptions for planners and what
the planners' past decisions changed (one module each).
"""

from __future__ import annotations

import altair as alt
import duckdb
import polars as pl

from reports import theme as th
from reports.charts import chart_title, dumbbell, inline_data
from reports.context import RECOMMENDATIONS, frame
from reports.html import NoteBlock, Section, TableBlock
from reports.sections.common import (
    Report,
    arrow,
    chart_block,
    col,
    plan_gate,
    plan_note,
    signed_money,
    with_names,
)
from reports.sections.planner_decisions import add_planner_decisions
from reports.sections.planner_exceptions import add_exceptions
from reports.sections.proposals import add_proposals
from reports.sections.safeguards import add_safeguards

#: Categories shown one by one in the recommendation charts; the rest are summed into "Other".
TOP_CATEGORIES = 12


# ------------------------------------------------------------------------------------------------ queries


def recommendation_by_category(con: duckdb.DuckDBPyConnection, top: int = TOP_CATEGORIES) -> pl.DataFrame:
    """Per category (top ``top`` by expected inventory value, the rest "Other") and for all categories
    (``is_total``): classical vs recommended safety stock and expected average inventory at cost, the value the
    recommendation frees and adds, expected fill rates and expected turnover.

    Expected turnover here is on a COGS basis, comparable with the turnover of the last 12 months: forecast
    annual demand at selling locations at cost ÷ expected average inventory at cost at all locations (stores and
    distribution centres), so a distribution centre's orders, which are the stores' demand again, are not
    counted twice.
    """
    return frame(
        con,
        f"""
        with r as (
            select
                r.*, coalesce(r.category, '(no category)') as cat,
                coalesce(l.is_selling_location, r.location_type = 'store', true) as selling
            from marts.{RECOMMENDATIONS} r
            left join marts.dim_location l using (location_id)
        ),
        ranked as (
            select cat, row_number() over (
                order by sum(coalesce(classical_expected_avg_inventory_value, 0)
                             + coalesce(recommended_expected_avg_inventory_value, 0)) desc, cat) as rnk
            from r group by cat
        ),
        g as (
            select
                case when k.rnk <= ? then r.cat else 'Other' end as category,
                k.rnk, r.*
            from r join ranked k using (cat)
        )
        select
            grouping(category) = 1 as is_total,
            coalesce(category, 'All categories') as category,
            min(rnk) as category_rank,
            count(*) as product_locations,
            sum(classical_safety_stock * unit_cost) as classical_safety_stock_value,
            sum(recommended_safety_stock * unit_cost) as recommended_safety_stock_value,
            sum(classical_expected_avg_inventory_value) as classical_value,
            sum(recommended_expected_avg_inventory_value) as recommended_value,
            coalesce(-sum(inventory_value_change) filter (where inventory_value_change < 0), 0) as freed_value,
            coalesce(sum(inventory_value_change) filter (where inventory_value_change > 0), 0) as added_value,
            coalesce(sum(inventory_value_change), 0) as net_change,
            count(*) filter (where inventory_value_change < 0) as items_freeing,
            count(*) filter (where inventory_value_change > 0) as items_adding,
            sum(daily_demand_forecast * 365 * unit_cost) filter (where selling) as annual_demand_at_cost,
            sum(daily_demand_forecast * 365 * unit_cost) filter (where selling)
                / nullif(sum(classical_expected_avg_inventory_value), 0) as classical_turnover,
            sum(daily_demand_forecast * 365 * unit_cost) filter (where selling)
                / nullif(sum(recommended_expected_avg_inventory_value), 0) as recommended_turnover,
            sum(classical_expected_fill_rate * daily_demand_forecast)
                / nullif(sum(daily_demand_forecast) filter (where classical_expected_fill_rate is not null), 0)
                as classical_fill_rate,
            sum(recommended_expected_fill_rate * daily_demand_forecast)
                / nullif(sum(daily_demand_forecast) filter (where recommended_expected_fill_rate is not null), 0)
                as recommended_fill_rate,
            avg(classical_expected_fill_rate) as classical_fill_rate_item_avg,
            avg(recommended_expected_fill_rate) as recommended_fill_rate_item_avg
        from g
        group by grouping sets ((category), ())
        order by is_total desc, category_rank
        """,
        [top],
    )


def placement_by_echelon(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Where the plan puts the protection between each distribution centre and its stores
    (``ml.policy.echelon``): per echelon and category (and per echelon over all categories, ``is_total``), the
    reorder points at cost as placed and as each location would set them on its own target. A reorder point is
    what average stock moves with (order quantities and demand are the same either way), so the difference is
    what the placement moves or saves. Planner overrides are left out of both. Empty when the plan placed
    nothing (no DC-fed stores, or the placement is off)."""
    return frame(
        con,
        """
        with p as (
            select
                case when p.location_type = 'dc' then 'Distribution centre' else 'Stores' end as echelon,
                coalesce(d.category, '(no category)') as category,
                p.unit_cost,
                coalesce(p.reorder_point_before_override, p.reorder_point) as placed,
                coalesce(p.reorder_point_before_placement, p.reorder_point_before_override, p.reorder_point)
                    as on_its_own
            from ml.inventory_policy p
            left join marts.dim_product d using (product_id)
            where exists (select 1 from ml.inventory_policy w where w.echelon_wait_days is not null)
        )
        select
            grouping(category) = 1 as is_total,
            echelon,
            coalesce(category, 'All categories') as category,
            count(*) as product_locations,
            sum(on_its_own * unit_cost) as on_its_own_value,
            sum(placed * unit_cost) as placed_value,
            sum((placed - on_its_own) * unit_cost) as change_value
        from p
        group by grouping sets ((echelon, category), (echelon))
        order by echelon, is_total desc, category
        """,
    )


def recommendation_changes(con: duckdb.DuckDBPyConnection, limit: int = 10) -> pl.DataFrame:
    """The product-locations whose expected average inventory changes most (either way)."""
    return frame(
        con,
        f"""
        select
            product_id, product_name, category, location_id, location_name, abc_class, xyz_class,
            service_metric, service_target, daily_demand_forecast, lead_time_days,
            classical_safety_stock, recommended_safety_stock,
            classical_reorder_point, recommended_reorder_point,
            classical_order_quantity, recommended_order_quantity,
            classical_expected_avg_inventory_value, recommended_expected_avg_inventory_value,
            inventory_value_change, inventory_value_effect,
            classical_expected_fill_rate, recommended_expected_fill_rate, overridden_fields
        from marts.{RECOMMENDATIONS}
        where inventory_value_change <> 0
        order by abs(inventory_value_change) desc, product_id, location_id
        limit ?
        """,
        [limit],
    )


# ------------------------------------------------------------------------------------------------ charts


def recommendation_value_chart(df: pl.DataFrame, total: dict) -> alt.LayerChart:
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
    bars = alt.Chart(inline_data(long)).mark_bar(height={"band": 0.7}).encode(
        y=y,
        x=alt.X("amount:Q", stack="zero", axis=th.money_axis("Change in expected average inventory at cost")),
        color=alt.Color("effect:N", title=None, scale=alt.Scale(domain=["Frees inventory", "Adds inventory"],
                                                                range=[th.GOOD, th.WARN])),
        tooltip=[alt.Tooltip("category:N", title="Category"), alt.Tooltip("effect:N", title="Effect"),
                 alt.Tooltip("amount:Q", title="Change at cost", format=th.FMT_MONEY),
                 alt.Tooltip("items:Q", title="Product-locations", format=th.FMT_INT)],
    )
    nets = alt.Chart(inline_data(data)).mark_tick(color=th.INK, thickness=2, size=16).encode(
        y=y, x="net_change:Q",
        tooltip=[alt.Tooltip("category:N", title="Category"),
                 alt.Tooltip("net_change:Q", title="Net change at cost", format=th.FMT_MONEY)])
    zero = alt.Chart().mark_rule(color=th.MUTED).encode(x=alt.datum(0))
    return alt.layer(bars, nets, zero).properties(
        title=chart_title(title, "Expected average inventory = safety stock + half an order quantity, at cost, per "
                          "product-location. Black tick: net change of the category."),
        width=th.CHART_WIDTH - 100,
        height=alt.Step(22),
        description="Inventory value the recommended policy frees or adds, by category",
    )


def safety_stock_by_category_chart(df: pl.DataFrame, total: dict) -> alt.LayerChart:
    data = df.filter(~pl.col("is_total"))
    title = (
        f"Safety stock at cost: {th.money_short(total.get('classical_safety_stock_value'))} under the classical "
        f"policy, {th.money_short(total.get('recommended_safety_stock_value'))} recommended"
    )
    order = data.sort("category_rank")["category"].to_list()
    layers = dumbbell(
        data, y="category", order=order, before="classical_safety_stock_value",
        after="recommended_safety_stock_value", labels=("Classical", "Recommended"),
        x_title="Safety stock at cost", x_axis=th.money_axis("Safety stock at cost"), tooltip_format=th.FMT_MONEY,
    )
    return alt.layer(*layers).properties(
        title=chart_title(title, "Grey: classical (last year's daily mean and spread, normal over a fixed lead time, "
                          "textbook safety factor).", "Blue: stockturn's, from the forecast's lead-time-demand "
                          "distribution."),
        width=th.CHART_WIDTH - 100,
        height=alt.Step(22),
        description="Safety stock at cost, classical vs recommended, by category",
    )


def expected_turnover_by_category_chart(df: pl.DataFrame, total: dict) -> alt.LayerChart:
    data = df.filter(~pl.col("is_total"))
    title = (
        f"Expected turnover {th.turns(total.get('classical_turnover'))} under the classical policy, "
        f"{th.turns(total.get('recommended_turnover'))} recommended; expected fill rate "
        f"{th.pct(total.get('classical_fill_rate'))} → {th.pct(total.get('recommended_fill_rate'))}"
    )
    order = data.sort("category_rank")["category"].to_list()
    layers = dumbbell(
        data, y="category", order=order, before="classical_turnover", after="recommended_turnover",
        labels=("Classical", "Recommended"), x_title="Expected turns a year", x_axis=alt.Axis(format=th.FMT_1),
        tooltip_format=th.FMT_1,
        extra_tooltip=[],
    )
    return alt.layer(*layers).properties(
        title=chart_title(title, "Forecast annual demand at cost (selling locations) ÷ expected average inventory at "
                          "cost (all locations)."),
        width=th.CHART_WIDTH - 100,
        height=alt.Step(22),
        description="Expected turnover, classical vs recommended, by category",
    )


# ------------------------------------------------------------------------------------------------ section


def _add_placement(report: Report, section: Section) -> None:
    """Where the protection sits, DC vs stores, and what moving it saved (only when the plan placed it)."""
    if "inventory_policy" not in report.ctx.ml_tables:
        return
    placed = placement_by_echelon(report.con)
    if placed.height == 0:
        return
    totals = placed.filter(pl.col("is_total"))
    saved = -float(totals["change_value"].sum())
    section.blocks.append(TableBlock(
        "Where the protection sits: distribution centre vs stores (reorder points at cost)",
        [
            col("echelon", "Echelon"), col("category", "Category"),
            col("product_locations", "Items", th.number, True),
            col("on_its_own_value", "Each on its own target", th.money, True),
            col("placed_value", "As placed", th.money, True),
            col("change_value", "Change", signed_money, True),
        ],
        placed.to_dicts(),
        note=f"The plan sets each distribution centre's reorder point where the stores' service targets are met "
        f"at the least holding cost across both echelons (METRIC, judged at the busiest four weeks the DC's lead "
        f"time reaches); its stores then cover the expected wait at the DC. Against each location planned on "
        f"its own target this {'saves' if saved >= 0 else 'adds'} {th.money(abs(saved))} of reorder-point value "
        f"at cost, which average stock follows one for one. The policy backtest below replays both echelons "
        f"to check it.",
    ))


def build(report: Report) -> Section:
    section = Section("recommendations", "Recommendations and purchase proposals", "ok",
                      intro="stockturn's replenishment policy beside the classical textbook policy at the same "
                      "service targets: safety stock, reorder points, the inventory value each frees or adds, "
                      "the expected turnover, and the orders proposed now for a planner to approve.")
    if plan_gate(report, section, "Recommendations", ("inventory_policy",), (RECOMMENDATIONS,)):
        plan_note(report, section)
        _add_policy_changes(report, section)
    if "inventory_policy" in report.ctx.ml_tables:
        add_safeguards(report, section)
    if "purchase_proposals" in report.ctx.ml_tables:
        add_proposals(report, section)
    if "exceptions" in report.ctx.ml_tables:
        add_exceptions(report, section)
    if "planner_decision_value" in report.ctx.ml_tables:
        add_planner_decisions(report, section)
    return section


def _add_policy_changes(report: Report, section: Section) -> None:
    """Classical vs recommended policy: the value freed and added, by category, and the largest changes."""
    by_cat = recommendation_by_category(report.con)
    if by_cat.filter(~pl.col("is_total")).height == 0:
        section.blocks.append(NoteBlock("The planning run recommends no policy: no product-location had enough "
                                        "history to plan.", "info"))
        section.status, section.detail = "partial", "no product-location planned"
        return
    total = by_cat.filter(pl.col("is_total")).row(0, named=True)
    report.kpi_values |= {
        "recommended_inventory_change": total["net_change"],
        "classical_expected_turnover": total["classical_turnover"],
        "recommended_expected_turnover": total["recommended_turnover"],
    }
    section.blocks.append(NoteBlock(
        f"Across {total['product_locations']:,} product-locations the recommendation frees "
        f"{th.money(total['freed_value'])} of expected average inventory at cost on {total['items_freeing']:,} "
        f"and adds {th.money(total['added_value'])} on {total['items_adding']:,}: net "
        f"{'+' if (total['net_change'] or 0) > 0 else ''}{th.money(total['net_change'])}. Expected turnover "
        f"{th.turns(total['classical_turnover'])} → {th.turns(total['recommended_turnover'])}; expected fill rate "
        f"{th.pct(total['classical_fill_rate'])} → {th.pct(total['recommended_fill_rate'])} (by volume).",
        "info"))
    section.blocks += [
        chart_block("recommendation_value", by_cat, lambda d: recommendation_value_chart(d, total),
                    "Inventory value the recommendation frees or adds"),
        chart_block("safety_stock_by_category", by_cat, lambda d: safety_stock_by_category_chart(d, total),
                    "Safety stock, classical vs recommended"),
        chart_block("expected_turnover_by_category", by_cat.filter(pl.col("classical_turnover").is_not_null()
                                                                   | pl.col("recommended_turnover").is_not_null()),
                    lambda d: expected_turnover_by_category_chart(d, total),
                    "Expected turnover, classical vs recommended"),
    ]
    section.blocks.append(TableBlock(
        "Classical vs recommended policy by category (expected values at cost)",
        [
            col("category", "Category"), col("product_locations", "Items", th.number, True),
            col("classical_safety_stock_value", "Safety stock, classical", th.money, True),
            col("recommended_safety_stock_value", "Safety stock, recommended", th.money, True),
            col("classical_value", "Avg inventory, classical", th.money, True),
            col("recommended_value", "Avg inventory, recommended", th.money, True),
            col("net_change", "Change", signed_money, True),
            col("classical_turnover", "Turns, classical", th.turns, True),
            col("recommended_turnover", "Turns, recommended", th.turns, True),
            col("classical_fill_rate", "Fill rate, classical", th.pct, True),
            col("recommended_fill_rate", "Fill rate, recommended", th.pct, True),
        ],
        by_cat.to_dicts(),
        note="Expected values come from the policy arithmetic on the forecast's lead-time-demand distribution, "
        "not from history: the policy backtest below checks them by replaying the past.",
    ))
    _add_placement(report, section)
    changes = recommendation_changes(report.con, limit=10)
    if changes.height:
        section.blocks.append(TableBlock(
            "Largest changes: current (classical) → recommended safety stock and reorder point, in units",
            [
                col("product", "Product"), col("location", "Location"), col("abc_xyz", "Class"),
                col("target", "Service target"),
                col("daily_demand_forecast", "Forecast a day", th.rate, True),
                col("lead_time_days", "Lead time (days)", th.number, True),
                col("safety_stock", "Safety stock", numeric=True, nowrap=True),
                col("reorder_point", "Reorder point", numeric=True, nowrap=True),
                col("inventory_value_change", "Avg inventory at cost", signed_money, True),
                col("overridden_fields", "Planner override"),
            ],
            [with_names(r) | {
                "abc_xyz": f"{r['abc_class'] or ''}{r['xyz_class'] or ''}",
                "target": (f"{th.pct(r['service_target'])} "
                           f"{'fill rate' if r['service_metric'] == 'fill_rate' else 'cycle service'}"
                           if r["service_target"] is not None else ""),
                "safety_stock": arrow(r["classical_safety_stock"], r["recommended_safety_stock"]),
                "reorder_point": arrow(r["classical_reorder_point"], r["recommended_reorder_point"]),
            } for r in changes.to_dicts()],
            note="Safety stock = reorder point − expected demand over lead time and review period. Largest "
            "change in expected average inventory at cost first, either way.",
        ))
