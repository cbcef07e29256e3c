"""What the planners' decisions change, measured by replay (issue 12, section 3).

A planner override of a reorder point or an order quantity (``seeds/planner_overrides.csv``) replaces what the
policy computed; ``ml.inventory_policy`` keeps both (``reorder_point`` / ``order_quantity`` as used, and
``*_before_override``). ``decision_value`` replays the same recent demand twice per overridden series, with the
planner's numbers and with the policy's own, from the same opening stock and with the same lead-time draws, and
compares:

- average inventory value at cost (what the decision ties up);
- fill rate (share of the units demanded that were served);
- lost margin (units short x (price - cost));
- the net value of the decision: the lost margin it saved minus the extra holding cost of the inventory it added
  (annual holding rate x the change in average inventory value, over the replayed days). Positive = the planner
  added value; the verdict is ``gain`` / ``loss`` beyond 1% of the two policies' larger total cost, else
  ``neutral``.

The demand replayed is what ``stockturn backtest`` replays on the same warehouse: the demo's true demand when a
``<landing>_truth`` folder is given, else the recorded sales with stock-out days imputed, over the last ``days``
days, starting from the stock on hand then; lead times are those measured from the goods receipts before. It is a
retrospective what-if: how the planner's number would have done on the demand that just happened, against the
policy's, not a forecast. Only the selling locations the backtest replays (single echelon) are measured; an
override at a distribution centre, and overrides of facts (MOQ, pack size, lead time) or of a service target (the
policy keeps no reorder point for the class target beside it), are listed as not measured with the reason.
Rejected proposals are not measured: replaying a rejection needs the policy that was in force on the day it was
rejected, and the warehouse keeps only the latest plan (``ml.proposal_decisions`` keeps the decisions).

Plain Python (no Dagster): ``stockturn decision-value`` and the report call it; results go to
``ml.planner_decision_value``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from ml.simulation.engine import PolicySchedule, simulate
from ml.simulation.scenarios import SimulationInputs

log = logging.getLogger("stockturn.simulation")

TABLE = "planner_decision_value"
#: a decision moves total cost (holding + lost margin) by more than this share of the larger policy's cost to count
NEUTRAL_SHARE = 0.01
#: days of history before the replayed window the replay needs (trailing levels, measured lead times)
MIN_HISTORY_DAYS = 56
SCHEMA: dict[str, pl.DataType] = {
    "product_id": pl.String(), "location_id": pl.String(), "author": pl.String(), "reason": pl.String(),
    "fields": pl.String(), "measured": pl.Boolean(), "not_measured_reason": pl.String(),
    "reorder_point_planner": pl.Float64(), "reorder_point_policy": pl.Float64(),
    "order_quantity_planner": pl.Float64(), "order_quantity_policy": pl.Float64(),
    "avg_inventory_value_planner": pl.Float64(), "avg_inventory_value_policy": pl.Float64(),
    "fill_rate_planner": pl.Float64(), "fill_rate_policy": pl.Float64(),
    "lost_margin_planner": pl.Float64(), "lost_margin_policy": pl.Float64(),
    "extra_holding_cost": pl.Float64(), "lost_margin_saved": pl.Float64(), "net_value": pl.Float64(),
    "verdict": pl.String(), "replay_start": pl.Date(), "replay_days": pl.Int64(), "demand_basis": pl.String(),
}


@dataclass(frozen=True)
class Decisions:
    """Per replayed series: the policy's and the planner's (r, Q), and the item's order terms."""

    reorder_point_policy: np.ndarray
    order_quantity_policy: np.ndarray
    reorder_point_planner: np.ndarray
    order_quantity_planner: np.ndarray
    moq: np.ndarray
    pack_size: np.ndarray
    review_period: np.ndarray


def replay_decisions(inputs: SimulationInputs, decisions: Decisions, *, holding_rate: float | np.ndarray,
                     rng_seed: int = 20240601) -> pl.DataFrame:
    """Replay ``inputs.demand`` under the policy's and the planner's (s, nQ) per series (same opening stock, same
    lead-time draws); one row per series with the comparison columns of the module docstring."""
    out = {}
    for who, r, q in (("policy", decisions.reorder_point_policy, decisions.order_quantity_policy),
                      ("planner", decisions.reorder_point_planner, decisions.order_quantity_planner)):
        schedule = PolicySchedule(plan_days=np.array([0]), reorder_point=np.asarray(r, dtype=np.float64),
                                  order_quantity=np.maximum(np.asarray(q, dtype=np.float64), 1.0),
                                  moq=decisions.moq, pack_size=decisions.pack_size,
                                  review_period=decisions.review_period, rule="s_nQ", name=who)
        res = simulate(inputs.demand, schedule, inputs.lead_times, inputs.initial, costs=inputs.costs,
                       rng_seed=rng_seed)
        days = res.n_days - res.measure_from
        inv_value = res.on_hand_sum / days * inputs.costs.unit_cost
        with np.errstate(invalid="ignore", divide="ignore"):
            fill = np.where(res.demanded > 0, res.served / np.where(res.demanded > 0, res.demanded, 1.0), np.nan)
        out[who] = (inv_value, fill, res.short * inputs.costs.unit_margin, days)
    inv_p, fill_p, lost_p, days = out["policy"]
    inv_h, fill_h, lost_h, _ = out["planner"]
    rate = np.broadcast_to(np.asarray(holding_rate, dtype=np.float64), inv_p.shape)
    extra_holding = rate * (inv_h - inv_p) * days / 365.0
    saved = lost_p - lost_h
    net = saved - extra_holding
    scale = np.maximum(rate * np.maximum(inv_h, inv_p) * days / 365.0 + np.maximum(lost_h, lost_p), 1e-9)
    verdict = np.where(net > NEUTRAL_SHARE * scale, "gain", np.where(net < -NEUTRAL_SHARE * scale, "loss", "neutral"))
    return pl.DataFrame({
        "avg_inventory_value_planner": inv_h, "avg_inventory_value_policy": inv_p,
        "fill_rate_planner": fill_h, "fill_rate_policy": fill_p,
        "lost_margin_planner": lost_h, "lost_margin_policy": lost_p,
        "extra_holding_cost": extra_holding, "lost_margin_saved": saved, "net_value": net, "verdict": verdict,
    })


def _not_measured(rows: pl.DataFrame, reason: str) -> pl.DataFrame:
    return rows.with_columns(pl.lit(False).alias("measured"), pl.lit(reason).alias("not_measured_reason"))


def decision_value(con, *, landing: Path | None = None, days: int = 91, history_days: int = 365,
                   policy_config=None) -> pl.DataFrame:
    """One row per overridden series of the current ``ml.inventory_policy`` (module docstring); empty when
    nothing is overridden."""
    from ml.policy.config import PolicyConfig
    from ml.simulation.backtest import BacktestConfig, replay_inputs
    from ml.warehouse import read_frame, table_exists

    pc = policy_config or PolicyConfig()
    if not table_exists(con, "ml", "inventory_policy"):
        raise ValueError("ml.inventory_policy does not exist: run the plan first")
    have = set(read_frame(con, "select column_name from information_schema.columns where table_schema = 'ml' and "
                               "table_name = 'inventory_policy'")["column_name"].to_list())
    if not {"overridden_fields", "reorder_point_before_override", "order_quantity_before_override"} <= have:
        log.warning("ml.inventory_policy has no override columns (written by an older stockturn): no planner "
                    "decisions to measure")
        return pl.DataFrame(schema=SCHEMA)
    rows = read_frame(con, """
        select product_id, location_id, override_authors as author, override_reasons as reason,
               overridden_fields as fields, reorder_point as reorder_point_planner,
               coalesce(reorder_point_before_override, reorder_point) as reorder_point_policy,
               order_quantity as order_quantity_planner,
               coalesce(order_quantity_before_override, order_quantity) as order_quantity_policy,
               min_order_qty, pack_size, review_period_days, holding_rate,
               reorder_point_before_override is not null or order_quantity_before_override is not null as decides
        from ml.inventory_policy where overridden_fields is not null and overridden_fields <> ''
        order by product_id, location_id""")
    if rows.is_empty():
        return pl.DataFrame(schema=SCHEMA)
    decides = rows.filter(pl.col("decides"))
    others = _not_measured(rows.filter(~pl.col("decides")),
                           "not a reorder-point or order-quantity decision (a fact about the item, or a service "
                           "target: the policy keeps no reorder point for the class target beside it)")
    measured = pl.DataFrame()
    start = basis = None
    rep = None
    if decides.height:
        first, last = con.execute("select min(date_day), max(date_day) from marts.fct_inventory_daily").fetchall()[0]
        span = (last - first).days + 1 if first is not None else 0
        history = min(history_days, span - days)
        if history < MIN_HISTORY_DAYS:
            others = pl.concat([others, _not_measured(
                decides, f"not replayed: {span:,} days of history, the replay needs {days} days plus "
                         f"{MIN_HISTORY_DAYS} before them")], how="diagonal_relaxed")
        else:
            try:
                rep = replay_inputs(con, landing, BacktestConfig(days=days, history_days=history, n_boot=0),
                                    holding_rate=pc.annual_holding_rate, ordering_cost=pc.ordering_cost_per_line)
            except ValueError as exc:  # e.g. no selling location with sales before the replay start
                others = pl.concat([others, _not_measured(decides, f"not replayed: {exc}")], how="diagonal_relaxed")
    if rep is not None:
        inp = rep.inputs
        start, basis = inp.start, rep.demand_basis
        idx = inp.keys.select("product_id", "location_id").with_row_index("i")
        found = decides.join(idx, on=["product_id", "location_id"], how="left")
        others = pl.concat([others, _not_measured(
            found.filter(pl.col("i").is_null()).drop("i"),
            "not replayed: the backtest replays the selling locations (an override at a distribution centre, or "
            "an item without sales in the replay window)")], how="diagonal_relaxed")
        found = found.filter(pl.col("i").is_not_null())
        if found.height:
            i = found["i"].to_numpy().astype(np.int64)
            sub = SimulationInputs(inp.demand[i], inp.keys[i], inp.lead_times.subset(i), inp.initial.subset(i),
                                   inp.costs.subset(i), None, inp.start)

            def col(name: str, default: float) -> np.ndarray:
                return found[name].fill_null(default).to_numpy().astype(np.float64)

            dec = Decisions(col("reorder_point_policy", 0.0), col("order_quantity_policy", 1.0),
                            col("reorder_point_planner", 0.0), col("order_quantity_planner", 1.0),
                            col("min_order_qty", 0.0), col("pack_size", 1.0),
                            np.maximum(col("review_period_days", 1.0), 1.0))
            values = replay_decisions(sub, dec, holding_rate=col("holding_rate", pc.annual_holding_rate))
            measured = pl.concat([found.drop("i"), values], how="horizontal").with_columns(
                pl.lit(True).alias("measured"), pl.lit(None, pl.String).alias("not_measured_reason"))
    out = pl.concat([f for f in (measured, others) if f.height], how="diagonal_relaxed").with_columns(
        pl.lit(start).cast(pl.Date).alias("replay_start"), pl.lit(days).cast(pl.Int64).alias("replay_days"),
        pl.lit(basis).cast(pl.String).alias("demand_basis"))
    out = out.select([pl.col(c).cast(t) if c in out.columns else pl.lit(None, t).alias(c) for c, t in SCHEMA.items()])
    n = int(out["measured"].sum())
    log.info("planner decisions: %s overridden series, %s replayed over %s days (%s gain, %s loss)", out.height, n,
             days, int((out["verdict"] == "gain").sum()), int((out["verdict"] == "loss").sum()))
    return out.sort("measured", "net_value", descending=[True, False], nulls_last=True)


def summarise(values: pl.DataFrame) -> pl.DataFrame:
    """Per planner and reason: decisions measured, gains, losses, net value, inventory and lost margin changed."""
    m = values.filter(pl.col("measured"))
    return m.group_by(pl.col("author").fill_null("?"), pl.col("reason").fill_null("")).agg(
        pl.len().alias("decisions"), (pl.col("verdict") == "gain").sum().alias("gains"),
        (pl.col("verdict") == "loss").sum().alias("losses"), pl.col("net_value").sum(),
        (pl.col("avg_inventory_value_planner") - pl.col("avg_inventory_value_policy")).sum()
        .alias("inventory_value_change"), pl.col("lost_margin_saved").sum(),
    ).sort("net_value")


def write_decision_value(con, values: pl.DataFrame) -> None:
    """Replace ``ml.planner_decision_value`` (one transaction)."""
    from ml.warehouse import write_tables_atomically

    write_tables_atomically(con, {TABLE: values})
