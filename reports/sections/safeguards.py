"""The recommendations' safeguards: what each guard of the planning run caught, and the plan's safety stock against
the classical policy and the evidence (docs/plan-safeguards.md).
"""

from __future__ import annotations

import duckdb

from reports import theme as th
from reports.context import Context, columns, frame
from reports.html import NoteBlock, Section, TableBlock
from reports.sections.common import Report, col, plural

#: ml.inventory_policy columns the safeguards block reads (written since the guards of ml.policy.guards, issue 8)
GUARD_COLUMNS = (
    "is_safety_stock_guarded", "is_above_references", "reorder_point_before_guard", "guard_reference_reorder_point",
    "guard_reference_safety_stock", "reorder_point", "unit_cost", "safety_stock_value", "classical_safety_stock_value",
)
GUARD_EXCEPTIONS = ("safety_stock_guard", "reorder_point_above_references")


# ------------------------------------------------------------------------------------------------ query


def safeguards(con: duckdb.DuckDBPyConnection, ctx: Context) -> dict | None:
    """What each guard of the planning run caught (docs/plan-safeguards.md), aggregated in DuckDB; None when
    ml.inventory_policy predates the guards (it lacks one of :data:`GUARD_COLUMNS`).

    - ``safety_stock_guarded`` / ``safety_stock_removed_value``: items whose safety stock was capped to
      max(classical, empirical) safety stock, and the buffer removed at cost (reorder point before the guard minus
      the guarded one; a planner override of the reorder point does not change it, while the
      ``safety_stock_guard`` exception measures to the final, overridden reorder point);
    - ``above_references`` / ``above_references_excess_value``: reorder points kept although above ``guard_factor``
      x the larger reference, and their excess over that reference at cost;
    - ``plan_safety_stock_value``, ``classical_safety_stock_value``, ``evidence_safety_stock_value``: the plan's
      total safety stock at cost, the classical total (as the ``safety_stock_vs_classical`` asset check sums them)
      and sum(guard_reference_safety_stock x unit cost), the evidence the guard caps to;
    - ``level_guard_series`` / ``forecast_series``: distinct product-locations of ml.demand_forecast whose model
      is 'level_guard', of all (None without that table or its model column);
    - ``no_forecast``: ``no_forecast`` exceptions of a product (no location; None without ml.exceptions);
      ``no_forecast_locations`` / ``no_forecast_locations_value``: those of a product-location selling without a
      series, and their money at stake; ``guard_factor``: the threshold the guard exceptions carry (None when
      none was raised).
    """
    cols = set(columns(con, "ml", "inventory_policy"))
    if not set(GUARD_COLUMNS) <= cols:
        return None
    guarded_r = ("coalesce(reorder_point_before_override, reorder_point)"
                 if "reorder_point_before_override" in cols else "reorder_point")
    out = frame(
        con,
        f"""
        select
            count(*) as product_locations,
            count(*) filter (where is_safety_stock_guarded) as safety_stock_guarded,
            coalesce(sum(greatest(reorder_point_before_guard - {guarded_r}, 0) * unit_cost)
                     filter (where is_safety_stock_guarded), 0)::double as safety_stock_removed_value,
            count(*) filter (where is_above_references) as above_references,
            coalesce(sum(greatest({guarded_r} - guard_reference_reorder_point, 0) * unit_cost)
                     filter (where is_above_references), 0)::double as above_references_excess_value,
            coalesce(sum(safety_stock_value), 0)::double as plan_safety_stock_value,
            coalesce(sum(classical_safety_stock_value), 0)::double as classical_safety_stock_value,
            coalesce(sum(guard_reference_safety_stock * unit_cost), 0)::double as evidence_safety_stock_value
        from ml.inventory_policy
        """,
    ).row(0, named=True)
    out |= {"level_guard_series": None, "forecast_series": None, "no_forecast": None, "no_forecast_locations": None,
            "no_forecast_locations_value": None, "guard_factor": None}
    if "demand_forecast" in ctx.ml_tables and {"model", "product_id", "location_id"} <= set(
            columns(con, "ml", "demand_forecast")):
        out |= frame(
            con,
            """
            select count(*) filter (where guarded) as level_guard_series, count(*) as forecast_series
            from (
                select product_id, location_id, bool_or(model = 'level_guard') as guarded
                from ml.demand_forecast
                group by all
            )
            """,
        ).row(0, named=True)
    if "exceptions" in ctx.ml_tables:
        guard_types = ", ".join(f"'{t}'" for t in GUARD_EXCEPTIONS)
        factor = (f"max(threshold) filter (where exception_type in ({guard_types}))::double"
                  if "threshold" in columns(con, "ml", "exceptions") else "null::double")
        out |= frame(
            con,
            f"""
            select count(*) filter (where exception_type = 'no_forecast' and location_id is null) as no_forecast,
                   count(*) filter (where exception_type = 'no_forecast' and location_id is not null)
                       as no_forecast_locations,
                   sum(money_at_stake) filter (where exception_type = 'no_forecast' and location_id is not null)
                       as no_forecast_locations_value,
                   {factor} as guard_factor
            from ml.exceptions
            """,
        ).row(0, named=True)
    return out


# ------------------------------------------------------------------------------------------------ block


def add_safeguards(report: Report, section: Section) -> None:
    """What each guard of the planning run caught, and the plan's safety stock against the classical policy
    and the evidence (docs/plan-safeguards.md); "not available" for a plan made before the guards."""
    g = safeguards(report.con, report.ctx)
    if g is None:
        section.blocks.append(NoteBlock(
            "Safeguards: not available for this plan: it was made before the guards existed (ml.inventory_policy "
            "has no guard columns). Run `stockturn run` again to see what each guard caught.", "unavailable"))
        if section.status == "ok":
            section.status, section.detail = "partial", "safeguards not available for this plan"
        return
    items = int(g["product_locations"] or 0)
    if items == 0 and not g["no_forecast"] and not g["no_forecast_locations"]:
        return
    plan, classical, evidence = (g["plan_safety_stock_value"], g["classical_safety_stock_value"],
                                 g["evidence_safety_stock_value"])
    report.kpi_values |= {"safety_stock_vs_classical": plan / classical if classical else None,
                          "safety_stock_vs_evidence": plan / evidence if evidence else None}
    if items:
        def times(base: float) -> str:
            return f"{plan / base:,.2f}x " if base > 0 else ""

        section.blocks.append(NoteBlock(
            f"Safeguards: the plan holds {th.money(plan)} of safety stock at cost, {times(classical)}the "
            f"classical policy's {th.money(classical)} and {times(evidence)}the {th.money(evidence)} the evidence "
            "supports (per item the larger of the classical and the item's own-history safety stock, the "
            "reference the safety-stock guard caps to).", "info"))
    factor = g["guard_factor"]
    above = f"more than {factor:g}x" if factor else "far above"
    unavailable = "Not available for this plan: "
    rows = [
        {"guard": "Safety stock capped to the evidence", "items": g["safety_stock_guarded"],
         "money": g["safety_stock_removed_value"],
         "meaning": f"The forecast asked for a buffer {above} the larger of the classical and the item's "
                    "own-history safety stock; it was cut back to that reference. Money: the safety stock "
                    "removed."},
        {"guard": "Reorder point above both references (kept, flagged)", "items": g["above_references"],
         "money": g["above_references_excess_value"],
         "meaning": f"The reorder point is {above} the larger of the classical and the own-history reorder "
                    "point: kept (a launch or a ramp-up can be right) but flagged for a planner. Money: the "
                    "excess over that reference."},
        {"guard": "Forecast level guard", "items": g["level_guard_series"], "money": None,
         "meaning": "A forecast that collapsed far below the series' recent sales was replaced by a robust "
                    "local method (Croston SBA or moving average); counted per product-location."
         if g["level_guard_series"] is not None
         else unavailable + "ml.demand_forecast is missing or has no model column."},
        {"guard": "Products with no forecast", "items": g["no_forecast"], "money": None,
         "meaning": "Active stock products with no sales yet: no forecast, reorder point or proposal; their "
                    "stock is the planner's call until they sell."
         if g["no_forecast"] is not None else unavailable + "the run wrote no ml.exceptions."},
        {"guard": "Product-locations selling without a forecast", "items": g["no_forecast_locations"],
         "money": g["no_forecast_locations_value"],
         "meaning": "Sold or shipped in the last weeks at a location where the forecast has no series (they began "
                    "to sell there after the forecast this plan uses was made): no reorder point or proposal "
                    "until the next forecast. Money: those weeks' sales and shipments at cost."
         if g["no_forecast_locations"] is not None else unavailable + "the run wrote no ml.exceptions."},
    ]
    section.blocks.append(TableBlock(
        f"Safeguards: what each guard caught among {plural(items, 'planned product-location')}",
        [
            col("guard", "Guard"), col("items", "Items caught", th.number, True),
            col("money", "Money at stake (at cost)", lambda v: "not valued" if v is None else th.money(v), True),
            col("meaning", "What it means"),
        ],
        rows,
        note="Money at cost, before planner overrides. The items the first two caught are also in the "
        "exceptions for planners, one by one (unless a planner excluded them). See Safeguards in the "
        "definitions.",
    ))
