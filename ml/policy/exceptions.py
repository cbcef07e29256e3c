"""Exceptions: the few product-locations that need a planner's judgement, ranked by money at stake.

Types (thresholds in :class:`PolicyConfig`), and how money at stake is valued:

- ``stockout_risk``: the inventory position will not cover demand until an order placed now can arrive: the
  mean demand over the lead time exceeds the position, or P(demand over the lead time > position) from the
  samples is above ``stockout_probability_threshold``. Money: expected units short x money per unit short
  (lost margin for the lost share, backorder cost for the rest).
- ``excess_stock``: on hand lasts more than ``excess_days_of_supply`` days at the forecast rate. Money: the units
  above max(order-up-to level, that many days of demand), at cost.
- ``forecast_vs_actual``: forecast daily demand (first ``forecast_window_days`` days of the forecast) over the
  actual of the same trailing window is outside [forecast_ratio_low, forecast_ratio_high], for items where
  either amounts to ``forecast_check_min_units``. Money: |forecast - actual| per day x (lead time + review
  period) x unit cost, the stock the reorder point carries for the difference.
- ``policy_change_vs_classical`` / ``policy_change_vs_previous``: the reorder point moved by more than
  ``policy_change_threshold`` relative to the classical baseline / the previous run. Money: the change in expected
  average inventory value / the reorder-point change at cost, at least ``policy_change_min_value``.
- ``ghost_stock``: the book shows stock but nothing was sold (or shipped) for more than ``ghost_silence_multiple``
  x the item's usual interval between sale days (and at least ``ghost_min_silence_days`` in stock); recent cycle
  counts that found ghost stock or shrinkage are cited. Money: the book stock at cost (it may not exist, and it
  stops replenishment) plus the margin of the demand expected over one lead time.
- ``safety_stock_guard`` / ``reorder_point_above_references``: the guards of ``ml.policy.guards`` (a safety
  stock capped to the evidence; a reorder point far above both references). Money: the safety stock removed /
  the reorder point's excess over the larger reference, at cost.
- ``position_unavailable``: no stock snapshot or count anchors the on-hand, so no proposal can be made. Money: one
  protection interval of demand at cost.
- ``no_forecast``: an active stock product (launched, not discontinued) with no sales history at any location,
  so no series, forecast or reorder point exists for it. Money: none (ranked last, with the override issues).
  With a location: a product that sold or shipped there in the last ``forecast_window_days`` but has no series
  there, typically a plan made after its forecast (the nightly re-plan) for a product that began to sell at the
  location since; it is planned on its own usage since its first sale (``ml.forecasting.cold_start``) unless
  ``plan_cold_start`` is off. Money: that window's sales and shipments at cost.
- ``override_issue``: a planner override that could not be applied (unknown product or field, invalid value,
  superseded). Money: none (ranked last).

Excluded series (planner override ``exclude``) raise no exceptions. ``rank`` orders all exceptions by money at
stake, largest first.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from ml.policy.config import PolicyConfig
from ml.policy.text import dec, money, pct, stable_id, units

EXCEPTION_SCHEMA: dict[str, pl.DataType] = {
    "exception_id": pl.String(), "rank": pl.Int64(), "exception_type": pl.String(), "product_id": pl.String(),
    "location_id": pl.String(), "abc_class": pl.String(), "xyz_class": pl.String(), "money_at_stake": pl.Float64(),
    "money_basis": pl.String(), "metric_value": pl.Float64(), "threshold": pl.Float64(), "reason": pl.String(),
    "proposal_id": pl.String(),
}
_COMMON = ["product_id", "location_id", "abc_class", "xyz_class", "proposal_id"]


def _select(frame: pl.DataFrame, kind: str, metric: pl.Expr, threshold: float | None, money_expr: pl.Expr,
            basis: str, reason: pl.Expr) -> pl.DataFrame:
    return frame.select(
        pl.lit(kind).alias("exception_type"), *_COMMON, money_expr.cast(pl.Float64).alias("money_at_stake"),
        pl.lit(basis).alias("money_basis"), metric.cast(pl.Float64).alias("metric_value"),
        pl.lit(threshold, dtype=pl.Float64).alias("threshold"), reason.alias("reason"),
    )


def build_exceptions(pf: pl.DataFrame, issues: pl.DataFrame, as_of: date, config: PolicyConfig,
                     unplanned: pl.DataFrame | None = None,
                     unforecast_locations: pl.DataFrame | None = None, *,
                     unforecast_planned: bool = False) -> pl.DataFrame:
    """All exceptions, ranked. ``pf`` is the internal policy frame built by run_policy; ``issues`` the override
    issues; ``unplanned`` the active stock products without any forecast series (product_id);
    ``unforecast_locations`` the product-locations selling without a series (``inputs.read_unforecast_locations``:
    product_id, location_id, units, value_at_cost) and ``unforecast_planned`` whether the plan covers them (the
    cold start)."""
    c = config
    live = pf.filter(~pl.col("is_excluded"))
    margin = (pl.col("unit_price") - pl.col("unit_cost")).clip(lower_bound=0.0)
    per_short_unit = c.lost_sales_share * margin + (1 - c.lost_sales_share) * (
        c.backorder_cost_fraction_of_price * pl.col("unit_price"))
    parts: list[pl.DataFrame] = []

    # stock-out risk before the next possible receipt
    lt_mean = pl.col("daily_demand_forecast") * pl.col("lead_time_effective_days")
    s = live.filter(
        pl.col("inventory_position_units").is_not_null() & (pl.col("ltd_mean") > 0) & ~pl.col("is_discontinued")
        & (((pl.col("inventory_position_units") - lt_mean) < 0)
           | (pl.col("p_stockout_lt") > c.stockout_probability_threshold)))
    parts.append(_select(
        s, "stockout_risk", pl.col("p_stockout_lt"), c.stockout_probability_threshold,
        pl.col("expected_short_lt") * per_short_unit, "expected units short x margin per unit short",
        pl.concat_str([
            pl.format("position {} vs {} expected demand over the {}-day lead time: P(stock-out before an order "
                      "placed now arrives) {}, expected short {} units",
                      units(pl.col("inventory_position_units")), units(lt_mean.round(1)),
                      units(pl.col("lead_time_effective_days").round(1)), pct(pl.col("p_stockout_lt")),
                      units(pl.col("expected_short_lt").round(1))),
            pl.when(pl.col("needs_order")).then(pl.lit("; order proposed, consider expediting"))
            .otherwise(pl.lit("")),
        ])))

    # excess stock
    fc = pl.col("forecast_daily_near")
    keep = pl.max_horizontal(pl.col("order_up_to_level"), fc * c.excess_days_of_supply)
    excess = (pl.col("on_hand_units") - keep).clip(lower_bound=0.0)
    dos = pl.when(fc > 0).then(pl.col("on_hand_units") / fc).otherwise(float("inf"))
    e = live.filter((pl.col("on_hand_units") > 0) & (dos > c.excess_days_of_supply) & (excess > 0))
    parts.append(_select(
        e, "excess_stock", pl.when(dos.is_infinite()).then(None).otherwise(dos), c.excess_days_of_supply,
        excess * pl.col("unit_cost"), "units above max(order-up-to, threshold days of demand) at cost",
        pl.concat_str([
            pl.when(fc > 0).then(pl.format("on hand {} lasts {} days at {}/day (threshold {})",
                                           units(pl.col("on_hand_units")), units(dos.round(0)), dec(fc, 2),
                                           pl.lit(f"{c.excess_days_of_supply:g}")))
            .otherwise(pl.format("on hand {} and no forecast demand", units(pl.col("on_hand_units")))),
            pl.format("; {} units above the {} worth keeping (max of order-up-to level and {} days of demand)",
                      units(excess.round(0)), units(keep.round(0)), pl.lit(f"{c.excess_days_of_supply:g}")),
            pl.when(pl.col("is_discontinued")).then(pl.lit("; discontinued")).otherwise(pl.lit("")),
        ])))

    # forecast far from recent actuals
    actual = pl.when(pl.col("recent_days") > 0).then(pl.col("recent_units") / pl.col("recent_days")).otherwise(None)
    ratio = pl.when(actual > 0).then(fc / actual).when(fc > 0).then(float("inf")).otherwise(None)
    material = pl.max_horizontal(fc, actual) * c.forecast_window_days >= c.forecast_check_min_units
    f = live.filter(
        (pl.col("recent_days") >= max(1, c.forecast_window_days // 2)) & material & ratio.is_not_null()
        & ((ratio < c.forecast_ratio_low) | (ratio > c.forecast_ratio_high)))
    parts.append(_select(
        f, "forecast_vs_actual", pl.when(ratio.is_infinite()).then(None).otherwise(ratio), c.forecast_ratio_high,
        (fc - actual).abs() * (pl.col("lead_time_effective_days") + pl.col("review_period_days"))
        * pl.col("unit_cost"), "|forecast - actual| per day x (lead time + review period) at cost",
        pl.concat_str([
            pl.format("forecast {}/day vs {}/day actual over the last {} days (ratio {}, expected {}-{})",
                      dec(fc, 2), dec(actual, 2), units(pl.col("recent_days").cast(pl.Float64)), dec(ratio, 2),
                      pl.lit(f"{c.forecast_ratio_low:g}"), pl.lit(f"{c.forecast_ratio_high:g}")),
            pl.when(pl.col("recent_stockout_days") > 0)
            .then(pl.format("; {} of those days out of stock: actuals understate demand",
                            pl.col("recent_stockout_days")))
            .otherwise(pl.lit("")),
        ])))

    # policy change vs classical
    r, r_cl = pl.col("reorder_point"), pl.col("classical_reorder_point")
    rel = (r - r_cl).abs() / pl.max_horizontal(r, r_cl, pl.lit(1.0))
    dv = pl.col("delta_expected_avg_inventory_value")
    pc = live.filter((rel > c.policy_change_threshold) & (dv.abs() >= c.policy_change_min_value))
    parts.append(_select(
        pc, "policy_change_vs_classical", rel, c.policy_change_threshold, dv.abs(),
        "|change in expected average inventory value| vs classical",
        pl.concat_str([
            pl.format("reorder point {} vs classical {}, order quantity {} vs {}; expected average inventory {} vs "
                      "{} at cost", units(r), units(r_cl), units(pl.col("order_quantity")),
                      units(pl.col("classical_order_quantity")), money(pl.col("expected_avg_inventory_value")),
                      money(pl.col("classical_expected_avg_inventory_value"))),
            pl.format("; demand {}/day forecast vs {}/day history, lead time {} vs {} days",
                      dec(pl.col("daily_demand_forecast"), 2), dec(pl.col("daily_demand_hist_mean"), 2),
                      units(pl.col("lead_time_effective_days").round(1)),
                      units(pl.col("classical_lead_time_days").round(1))),
            pl.when(pl.col("reorder_point_basis") == "override").then(pl.lit(" (reorder point overridden)"))
            .otherwise(pl.lit("")),
        ])))

    # policy change vs the previous run
    if "previous_reorder_point" in pf.columns:
        rp = pl.col("previous_reorder_point")
        relp = (r - rp).abs() / pl.max_horizontal(r, rp, pl.lit(1.0))
        dvp = (r - rp).abs() * pl.col("unit_cost")
        pp = live.filter(rp.is_not_null() & (relp > c.policy_change_threshold) & (dvp >= c.policy_change_min_value))
        parts.append(_select(
            pp, "policy_change_vs_previous", relp, c.policy_change_threshold, dvp,
            "|reorder point change| at cost",
            pl.format("reorder point {} vs {} in the run of {} ({} at cost)", units(r), units(rp),
                      pl.col("previous_as_of_date").cast(pl.String), money(dvp))))

    # guards (ml.policy.guards): a buffer capped to the evidence, a reorder point far above it
    gs = live.filter(pl.col("is_safety_stock_guarded"))
    removed = (pl.col("reorder_point_before_guard") - pl.col("reorder_point")).clip(lower_bound=0.0)
    parts.append(_select(
        gs, "safety_stock_guard", pl.col("reorder_point_before_guard") - pl.col("ltd_mean"), c.guard_factor,
        removed * pl.col("unit_cost"), "safety stock removed by the guard, at cost",
        pl.format("the forecast's distribution asked for a safety stock of {} units (reorder point {}), more than {}x "
                  "the larger of the classical ({}) and the item's own history ({}): capped to {} (reorder point "
                  "{}). Check the forecast and the demand history", units(pl.col("reorder_point_before_guard")
                                                                          - pl.col("ltd_mean")),
                  units(pl.col("reorder_point_before_guard")), dec(pl.lit(c.guard_factor), 1),
                  units(pl.col("classical_safety_stock")), units(pl.col("empirical_safety_stock")),
                  units(pl.col("guard_reference_safety_stock")), units(pl.col("reorder_point")))))
    ga = live.filter(pl.col("is_above_references"))
    excess = (pl.col("reorder_point") - pl.col("guard_reference_reorder_point")).clip(lower_bound=0.0)
    parts.append(_select(
        ga, "reorder_point_above_references", pl.col("reorder_point") / pl.col("guard_reference_reorder_point"),
        c.guard_factor, excess * pl.col("unit_cost"), "reorder point above the larger reference, at cost",
        pl.format("reorder point {} is more than {}x the larger of the classical ({}) and the item's own history "
                  "({}): the forecast level ({} a day) is far above the history ({} a day). Confirm it",
                  units(pl.col("reorder_point")), dec(pl.lit(c.guard_factor), 1),
                  units(pl.col("classical_reorder_point")), units(pl.col("empirical_reorder_point")),
                  dec(pl.col("daily_demand_forecast"), 2), dec(pl.col("daily_demand_hist_mean"), 2))))

    # suspected ghost stock
    interval = pl.col("hist_days") / pl.col("sale_days")
    silence = pl.col("days_in_stock_since_last_usage").cast(pl.Float64)
    limit = pl.max_horizontal(c.ghost_silence_multiple * interval, pl.lit(float(c.ghost_min_silence_days)))
    evidence = (pl.col("ghost_counts").fill_null(0) > 0) | (pl.col("shrink_counts").fill_null(0) > 0)
    g_filter = (pl.col("on_hand_units") > 0) & (pl.col("sale_days") >= c.ghost_min_sale_days) & (silence > limit)
    if c.ghost_require_count_evidence:
        g_filter = g_filter & evidence
    g = live.filter(g_filter)
    counts_text = (
        pl.when(pl.col("last_ghost_date").is_not_null())
        .then(pl.format("; cycle count of {} found ghost stock ({} ghost counts in the last {} days)",
                        pl.col("last_ghost_date").cast(pl.String), pl.col("ghost_counts"),
                        pl.lit(str(c.ghost_count_lookback_days))))
        .when(pl.col("shrink_counts").fill_null(0) > 0)
        .then(pl.format("; {} of {} counts in the last {} days found less than the book (last count {}: {} units "
                        "vs book)", pl.col("shrink_counts"), pl.col("counts_n"),
                        pl.lit(str(c.ghost_count_lookback_days)), pl.col("last_count_date").cast(pl.String),
                        units(pl.col("last_count_discrepancy"))))
        .when(pl.col("last_count_date").is_not_null())
        .then(pl.format("; last count {} matched the book", pl.col("last_count_date").cast(pl.String)))
        .otherwise(pl.format("; not counted in the last {} days: count it", pl.lit(str(c.ghost_count_lookback_days))))
    )
    parts.append(_select(
        g, "ghost_stock", silence / interval, c.ghost_silence_multiple,
        pl.col("on_hand_units") * pl.col("unit_cost")
        + pl.col("daily_demand_forecast") * pl.col("lead_time_effective_days") * margin,
        "book stock at cost + margin of one lead time of demand",
        pl.concat_str([
            pl.format("book shows {} on hand but nothing sold or shipped for {} days in stock (last on {}; usually a "
                      "sale every {} days, limit {})", units(pl.col("on_hand_units")), units(silence),
                      pl.col("last_usage_date").cast(pl.String).fill_null("never"), dec(interval, 1),
                      units(limit.round(0))),
            counts_text,
        ])))

    # no inventory position: cannot propose
    u = live.filter(pl.col("inventory_position_units").is_null() & (pl.col("ltd_mean") > 0)
                    & ~pl.col("is_discontinued"))
    parts.append(_select(
        u, "position_unavailable", pl.lit(None, dtype=pl.Float64), None, pl.col("ltd_mean") * pl.col("unit_cost"),
        "one protection interval of demand at cost",
        pl.format("no on-hand for this product-location on {} (no stock snapshot or count anchors it, or it has "
                  "no inventory rows): no proposal can be made; count the item or supply a snapshot",
                  pl.lit(as_of.isoformat()))))

    # active stock products nobody forecasts (no sales history yet)
    if unplanned is not None and unplanned.height:
        parts.append(unplanned.select(
            pl.lit("no_forecast").alias("exception_type"), pl.col("product_id").cast(pl.String),
            pl.lit(None, dtype=pl.String).alias("location_id"), pl.lit(None, dtype=pl.String).alias("abc_class"),
            pl.lit(None, dtype=pl.String).alias("xyz_class"), pl.lit(None, dtype=pl.String).alias("proposal_id"),
            pl.lit(None, dtype=pl.Float64).alias("money_at_stake"), pl.lit("none").alias("money_basis"),
            pl.lit(None, dtype=pl.Float64).alias("metric_value"), pl.lit(None, dtype=pl.Float64).alias("threshold"),
            pl.format("active stock product with no sales up to {}: no forecast, no reorder point and no proposal "
                      "anywhere; it is planned once it sells. Until then its stock is the planner's call",
                      pl.lit(as_of.isoformat())).alias("reason"),
        ))

    # product-locations that sell but have no series (they began to sell after the forecast was made)
    if unforecast_locations is not None and unforecast_locations.height:
        parts.append(unforecast_locations.select(
            pl.lit("no_forecast").alias("exception_type"), pl.col("product_id").cast(pl.String),
            pl.col("location_id").cast(pl.String), pl.lit(None, dtype=pl.String).alias("abc_class"),
            pl.lit(None, dtype=pl.String).alias("xyz_class"), pl.lit(None, dtype=pl.String).alias("proposal_id"),
            pl.col("value_at_cost").cast(pl.Float64).alias("money_at_stake"),
            pl.lit(f"the last {c.forecast_window_days} days' sales and shipments at cost").alias("money_basis"),
            pl.col("units").cast(pl.Float64).alias("metric_value"), pl.lit(None, dtype=pl.Float64).alias("threshold"),
            pl.format("sold or shipped {} units here in the {} days to {} but has no forecast at this location (it "
                      "began to sell here after the forecast this plan uses was made): {}",
                      units(pl.col("units")), pl.lit(c.forecast_window_days), pl.lit(as_of.isoformat()),
                      pl.lit("planned on its own usage since its first sale until the next forecast (order "
                             "demand basis 'own_usage_since_first_sale'); check its reorder point"
                             if unforecast_planned else
                             "no reorder point and no proposal until the next forecast; until then its stock is "
                             "the planner's call, or re-run the forecast")).alias("reason"),
        ))

    # override rows that could not be applied
    if issues.height:
        parts.append(issues.select(
            pl.lit("override_issue").alias("exception_type"), "product_id", "location_id",
            pl.lit(None, dtype=pl.String).alias("abc_class"), pl.lit(None, dtype=pl.String).alias("xyz_class"),
            pl.lit(None, dtype=pl.String).alias("proposal_id"), pl.lit(None, dtype=pl.Float64).alias("money_at_stake"),
            pl.lit("none").alias("money_basis"), pl.col("seed_row").cast(pl.Float64).alias("metric_value"),
            pl.lit(None, dtype=pl.Float64).alias("threshold"),
            pl.format("override row {} ({} = {}, by {}): {}", pl.col("seed_row"), pl.col("field").fill_null(""),
                      pl.col("value").fill_null(""), pl.col("override_author").fill_null("unknown"),
                      pl.col("problem")).alias("reason"),
        ))

    out = pl.concat([p.select(parts[0].columns) for p in parts], how="vertical_relaxed")
    if c.max_exceptions_per_type is not None:
        out = out.sort(["exception_type", "money_at_stake"], descending=[False, True], nulls_last=True).group_by(
            "exception_type", maintain_order=True).head(c.max_exceptions_per_type)
    out = out.sort(["money_at_stake", "exception_type", "product_id", "location_id"],
                   descending=[True, False, False, False], nulls_last=True)
    extra = out.select(pl.when(pl.col("exception_type") == "override_issue")
                       .then(pl.col("metric_value").cast(pl.Int64).cast(pl.String)).otherwise(pl.lit("")))
    ids = stable_id(zip(out["exception_type"], out["product_id"], out["location_id"], [as_of] * out.height,
                        extra.to_series(), strict=True))
    out = out.with_columns(pl.Series("exception_id", ids, dtype=pl.String),
                           pl.int_range(1, out.height + 1, dtype=pl.Int64).alias("rank"))
    return out.select([pl.col(k).cast(t) for k, t in EXCEPTION_SCHEMA.items()])
