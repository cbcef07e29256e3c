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

**Rejected and changed proposals** (``ml.proposal_decisions``; the latest decision per proposal, by a person: a
rule's approval changes nothing). A proposal decided on day D is replayed *forward*, on the demand of the days
after D as they land (D .. D + ``days`` - 1, or up to the last day of history), twice from the same state:

- the stock on hand when D opened, and the orders open on D arriving when they actually arrived (purchase-order
  receipts and transfers ordered by D and received after it);
- on D the policy arm orders the quantity proposed, the planner arm the quantity the planner approved; the lead
  time of that order is the same draw in both arms;
- a rejection holds, as it does in practice, until the item's next approved proposal (by a planner or a rule; the
  end of the replay when there is none): the planner arm orders nothing before that day (``held_days``);
- otherwise both arms follow the policy in force on D, kept with the decision (reorder point, order quantity, MOQ,
  pack, review period), so the difference is the decision's alone. Decisions on the same item are measured one
  at a time.

A decision with fewer than :data:`MIN_DAYS_AFTER` days of demand after it is listed as not measured yet, and is
measured by a later run. Decisions recorded before stockturn kept the policy with them, and proposals at
locations the replay does not cover (distribution centres), are listed as not measured with the reason.

Plain Python (no Dagster): ``stockturn decision-value`` and the report call it; results go to
``ml.planner_decision_value``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from ml.simulation.engine import ForcedOrders, InitialState, LeadTimeModel, PolicySchedule, simulate
from ml.simulation.scenarios import SimulationInputs

log = logging.getLogger("stockturn.simulation")

TABLE = "planner_decision_value"
#: a decision moves total cost (holding + lost margin) by more than this share of the larger policy's cost to count
NEUTRAL_SHARE = 0.01
#: days of history before the replayed window the replay needs (trailing levels, measured lead times)
MIN_HISTORY_DAYS = 56
#: days of demand after a proposal's decision before it is measured (fewer: measured by a later run)
MIN_DAYS_AFTER = 14
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
    "decision_kind": pl.String(), "proposal_id": pl.String(), "decision_date": pl.Date(),
    "quantity_proposed": pl.Float64(), "quantity_decided": pl.Float64(), "held_days": pl.Int64(),
}
#: decision_kind values
OVERRIDE, REJECTED, CHANGED = "override", "rejected_proposal", "changed_proposal"


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
                     rng_seed: int = 20240601, forced_policy: ForcedOrders | None = None,
                     forced_planner: ForcedOrders | None = None) -> pl.DataFrame:
    """Replay ``inputs.demand`` under the policy's and the planner's (s, nQ) per series (same opening stock, same
    lead-time draws); one row per series with the comparison columns of the module docstring.

    ``forced_policy`` / ``forced_planner``: orders each arm places whatever its rule says (a proposal as proposed,
    and as the planner decided it: 0 for a rejection, on every day it holds)."""
    out = {}
    for who, r, q, forced in (
            ("policy", decisions.reorder_point_policy, decisions.order_quantity_policy, forced_policy),
            ("planner", decisions.reorder_point_planner, decisions.order_quantity_planner, forced_planner)):
        schedule = PolicySchedule(plan_days=np.array([0]), reorder_point=np.asarray(r, dtype=np.float64),
                                  order_quantity=np.maximum(np.asarray(q, dtype=np.float64), 1.0),
                                  moq=decisions.moq, pack_size=decisions.pack_size,
                                  review_period=decisions.review_period, rule="s_nQ", name=who)
        res = simulate(inputs.demand, schedule, inputs.lead_times, inputs.initial, costs=inputs.costs,
                       rng_seed=rng_seed, forced_orders=forced)
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


def read_proposal_decisions(con) -> pl.DataFrame:
    """The latest decision per proposal that a person took and that changed the order: a rejection, or an approval
    of another quantity than the one proposed (empty when none). Columns: the decision, the proposal's quantities
    and the policy kept with the decision (``ml.policy.proposals.SNAPSHOT_COLUMNS``; null on older rows)."""
    from ml.policy.approval import RULE_AUTHOR_PREFIX
    from ml.policy.proposals import DECISIONS_TABLE, SNAPSHOT_COLUMNS
    from ml.warehouse import ML_SCHEMA, read_frame, table_columns

    have = table_columns(con, ML_SCHEMA, DECISIONS_TABLE)
    if not have:
        return pl.DataFrame()
    snap = ", ".join(f"arg_max({c}, decision_seq) as {c}" if c in have else f"null::{t} as {c}"
                     for c, t in SNAPSHOT_COLUMNS.items())
    latest = read_frame(con, f"""
        select proposal_id, arg_max(status, decision_seq) as status, arg_max(author, decision_seq) as author,
               arg_max(reason, decision_seq) as reason, arg_max(decided_at, decision_seq) as decided_at,
               arg_max(product_id, decision_seq) as product_id, arg_max(location_id, decision_seq) as location_id,
               arg_max(proposal_as_of_date, decision_seq) as decision_date,
               arg_max(quantity, decision_seq) as quantity_proposed, {snap}
        from {ML_SCHEMA}.{DECISIONS_TABLE} group by proposal_id""")
    decided = pl.when(pl.col("status") == "rejected").then(0.0).otherwise(
        pl.coalesce("decided_quantity", "quantity_proposed"))
    # a rejection holds until the item's next approved proposal (a planner's or a rule's): nothing is ordered before
    approved = latest.filter(pl.col("status") == "approved").select(
        "product_id", "location_id", pl.col("decision_date").alias("approved_on"))
    next_approval = latest.select("proposal_id", "product_id", "location_id", "decision_date").join(
        approved, on=["product_id", "location_id"]).filter(pl.col("approved_on") > pl.col("decision_date")).group_by(
        "proposal_id").agg(pl.col("approved_on").min().alias("next_approval_date"))
    latest = latest.join(next_approval, on="proposal_id", how="left")
    return latest.with_columns(decided.alias("quantity_decided")).filter(
        ~pl.col("author").str.starts_with(RULE_AUTHOR_PREFIX)
        & ((pl.col("status") == "rejected")
           | ((pl.col("status") == "approved")
              & ((pl.col("quantity_decided") - pl.col("quantity_proposed")).abs() > 1e-9)))
    ).with_columns(
        pl.when(pl.col("status") == "rejected").then(pl.lit(REJECTED)).otherwise(pl.lit(CHANGED))
        .alias("decision_kind"),
        pl.lit("quantity").alias("fields"),
    ).sort("decision_date", "product_id", "location_id")


def _open_orders(con, keys: pl.DataFrame, day, width: int) -> np.ndarray:
    """(n, width) units ordered by ``day`` and received on day + j (column j >= 1): purchase-order receipts and
    transfers, as they actually arrived."""
    from ml.warehouse import read_frame, table_exists

    out = np.zeros((keys.height, max(width, 1)))
    parts, params = [], [day]
    if table_exists(con, "marts", "fct_purchase_receipts"):
        parts.append("select product_id, location_id, received_date, quantity_received as q "
                     "from marts.fct_purchase_receipts where order_date <= ? and received_date > ?")
        params += [day, day]
    if table_exists(con, "staging", "stg_logistics__transfers"):
        parts.append("select product_id, to_location_id as location_id, received_date, quantity as q "
                     "from staging.stg_logistics__transfers where ordered_date <= ? and received_date > ? "
                     "and quantity > 0")
        params += [day, day]
    if not parts:
        return out
    arrivals = read_frame(con, f"""
        select product_id, location_id, (received_date - ?::date)::bigint as j, sum(q)::double as q
        from ({" union all ".join(parts)}) group by all""", params)
    if arrivals.is_empty():
        return out
    found = arrivals.join(keys.with_row_index("i"), on=["product_id", "location_id"]).filter(pl.col("j") < width)
    np.add.at(out, (found["i"].to_numpy().astype(np.int64), found["j"].to_numpy().astype(np.int64)),
              found["q"].to_numpy())
    return out


def _lead_times_for(con, keys: pl.DataFrame, supplier: LeadTimeModel, start) -> LeadTimeModel:
    """``supplier`` (the replay's supplier lead times of the series ``keys``), except that a store replenished by a
    DC gets the transfer lead times of its lane."""
    from ml.simulation.network_inputs import transfer_lead_times
    from ml.warehouse import read_frame

    loc = read_frame(con, "select location_id, replenished_from from marts.dim_location")
    keys = keys.join(loc, on="location_id", how="left", maintain_order="left")
    fed = keys["replenished_from"].is_not_null().to_numpy()
    if not fed.any():
        return supplier
    lanes = keys.with_columns(pl.concat_str("replenished_from", pl.lit(">"), "location_id").alias("lane"))
    lane_model = transfer_lead_times(con, lanes.filter(pl.col("replenished_from").is_not_null()), start)
    sup = supplier
    pmfs = {f"supplier:{g}": sup.pmf[j] for j, g in enumerate(sup.group_names)}
    pmfs.update({f"lane:{g}": lane_model.pmf[j] for j, g in enumerate(lane_model.group_names)})
    groups = [f"lane:{lane}" if f else f"supplier:{sup.group_names[g]}"
              for f, lane, g in zip(fed, lanes["lane"].to_list(), sup.group, strict=True)]
    return LeadTimeModel.from_pmfs(pmfs, groups)


def proposal_decision_value(con, *, landing: Path | None = None, days: int = 91, history_days: int = 365,
                            policy_config=None) -> pl.DataFrame:
    """One row per rejected or changed proposal (module docstring), measured forward from its decision day."""
    from ml.policy.config import PolicyConfig
    from ml.simulation.backtest import BacktestConfig, replay_inputs
    from ml.warehouse import read_frame

    pc = policy_config or PolicyConfig()
    rows = read_proposal_decisions(con)
    if rows.is_empty():
        return pl.DataFrame(schema=SCHEMA)
    no_snapshot = rows.filter(pl.col("reorder_point").is_null() | pl.col("order_quantity").is_null())
    out = [_not_measured(no_snapshot, "decided before stockturn kept the policy in force with each decision "
                                      "(nothing to replay it against)")] if no_snapshot.height else []
    rows = rows.filter(pl.col("reorder_point").is_not_null() & pl.col("order_quantity").is_not_null())
    first, last = read_frame(con, "select min(date_day) as a, max(date_day) as b from marts.fct_inventory_daily"
                             ).row(0)
    for (day,), group in rows.group_by("decision_date", maintain_order=True):
        after = (last - day).days if last is not None and day is not None else 0
        if after < MIN_DAYS_AFTER:
            out.append(_not_measured(group, f"not measured yet: {after:,} days of demand after the decision "
                                            f"({day}) have landed; measured once {MIN_DAYS_AFTER} have (a later run)"))
            continue
        n_days = min(days, after + 1)
        history = min(history_days, (day - first).days)
        if history < MIN_HISTORY_DAYS:
            out.append(_not_measured(group, f"not replayed: {history:,} days of history before {day}, the replay "
                                            f"needs {MIN_HISTORY_DAYS}"))
            continue
        try:
            rep = replay_inputs(con, landing, BacktestConfig(days=n_days, history_days=history, start=day, n_boot=0),
                                holding_rate=pc.annual_holding_rate, ordering_cost=pc.ordering_cost_per_line)
        except ValueError as exc:
            out.append(_not_measured(group, f"not replayed: {exc}"))
            continue
        inp = rep.inputs
        found = group.join(inp.keys.select("product_id", "location_id").with_row_index("i"),
                           on=["product_id", "location_id"], how="left", maintain_order="left")
        missing = found.filter(pl.col("i").is_null()).drop("i")
        if missing.height:
            out.append(_not_measured(missing, "not replayed: the replay covers the selling locations (a proposal "
                                              "at a distribution centre, or an item without sales before it)"))
        found = found.filter(pl.col("i").is_not_null())
        if found.is_empty():
            continue
        i = found["i"].to_numpy().astype(np.int64)
        keys = inp.keys[i]
        lead = _lead_times_for(con, keys, inp.lead_times.subset(i), day)
        initial = InitialState(inp.initial.on_hand[i], _open_orders(con, keys, day, n_days))
        sub = SimulationInputs(inp.demand[i], keys, lead, initial, inp.costs.subset(i), None, day)

        def col(name: str, default: float, frame: pl.DataFrame = found) -> np.ndarray:
            return frame[name].fill_null(default).to_numpy().astype(np.float64)

        r, q = col("reorder_point", 0.0), np.maximum(col("order_quantity", 1.0), 1.0)
        dec = Decisions(r, q, r, q, col("min_order_qty", 0.0), np.maximum(col("pack_size", 1.0), 1.0),
                        np.maximum(np.rint(col("review_period_days", 1.0)), 1.0))
        m = found.height
        until_approval = found.select((pl.col("next_approval_date") - pl.col("decision_date")).dt.total_days()
                                      .fill_null(n_days).alias("d"))["d"].to_numpy()
        held = np.where(found["status"].to_numpy() == "rejected", np.minimum(until_approval, n_days), 1
                        ).astype(np.int64)
        planner_series = np.repeat(np.arange(m), held)
        planner_days = np.concatenate([np.arange(h) for h in held])
        planner_qty = np.where(planner_days == 0, col("quantity_decided", 0.0)[planner_series], 0.0)
        values = replay_decisions(
            sub, dec, holding_rate=pc.annual_holding_rate,
            forced_policy=ForcedOrders(np.arange(m), np.zeros(m, dtype=np.int64), col("quantity_proposed", 0.0)),
            forced_planner=ForcedOrders(planner_series, planner_days, planner_qty))
        out.append(pl.concat([found.drop("i"), values], how="horizontal").with_columns(
            pl.lit(True).alias("measured"), pl.lit(None, pl.String).alias("not_measured_reason"),
            pl.lit(day).cast(pl.Date).alias("replay_start"), pl.lit(n_days).cast(pl.Int64).alias("replay_days"),
            pl.lit(rep.demand_basis).alias("demand_basis"), pl.Series("held_days", held, dtype=pl.Int64),
            pl.col("reorder_point").alias("reorder_point_policy"),
            pl.col("reorder_point").alias("reorder_point_planner"),
            pl.col("order_quantity").alias("order_quantity_policy"),
            pl.col("order_quantity").alias("order_quantity_planner")))
    frame = pl.concat(out, how="diagonal_relaxed") if out else pl.DataFrame(schema=SCHEMA)
    return frame.select([pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c)
                         for c, t in SCHEMA.items()])


def decision_value(con, *, landing: Path | None = None, days: int = 91, history_days: int = 365,
                   policy_config=None) -> pl.DataFrame:
    """One row per planner decision (module docstring): every overridden series of the current
    ``ml.inventory_policy`` (``decision_kind`` 'override', replayed on the last ``days`` days) and every rejected
    or changed proposal (replayed on up to ``days`` days after it); empty when there is none."""
    overrides = override_decision_value(con, landing=landing, days=days, history_days=history_days,
                                        policy_config=policy_config)
    proposals = proposal_decision_value(con, landing=landing, days=days, history_days=history_days,
                                        policy_config=policy_config)
    out = pl.concat([f for f in (overrides, proposals) if f.height], how="vertical_relaxed") \
        if overrides.height or proposals.height else pl.DataFrame(schema=SCHEMA)
    if proposals.height:
        m = proposals.filter(pl.col("measured"))
        log.info("planner decisions on proposals: %s rejected or changed, %s replayed forward (%s gain, %s loss)",
                 proposals.height, m.height, int((m["verdict"] == "gain").sum()), int((m["verdict"] == "loss").sum()))
    return out.sort("measured", "net_value", descending=[True, False], nulls_last=True)


def override_decision_value(con, *, landing: Path | None = None, days: int = 91, history_days: int = 365,
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
        pl.lit(basis).cast(pl.String).alias("demand_basis"), pl.lit(OVERRIDE).alias("decision_kind"))
    out = out.select([pl.col(c).cast(t) if c in out.columns else pl.lit(None, t).alias(c) for c, t in SCHEMA.items()])
    n = int(out["measured"].sum())
    log.info("planner decisions: %s overridden series, %s replayed over %s days (%s gain, %s loss)", out.height, n,
             days, int((out["verdict"] == "gain").sum()), int((out["verdict"] == "loss").sum()))
    return out.sort("measured", "net_value", descending=[True, False], nulls_last=True)


def summarise(values: pl.DataFrame) -> pl.DataFrame:
    """Per planner, kind of decision and reason: decisions measured, gains, losses, net value, inventory and lost
    margin changed."""
    m = values.filter(pl.col("measured"))
    return m.group_by(pl.col("author").fill_null("?"), pl.col("decision_kind").fill_null(OVERRIDE),
                      pl.col("reason").fill_null("")).agg(
        pl.len().alias("decisions"), (pl.col("verdict") == "gain").sum().alias("gains"),
        (pl.col("verdict") == "loss").sum().alias("losses"), pl.col("net_value").sum(),
        (pl.col("avg_inventory_value_planner") - pl.col("avg_inventory_value_policy")).sum()
        .alias("inventory_value_change"), pl.col("lost_margin_saved").sum(),
    ).sort("net_value")


def write_decision_value(con, values: pl.DataFrame) -> None:
    """Replace ``ml.planner_decision_value`` (one transaction)."""
    from ml.warehouse import write_tables_atomically

    write_tables_atomically(con, {TABLE: values})
