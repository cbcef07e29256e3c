"""Inputs of the two-echelon replay: the store series of a backtest plus the DCs that feed them, as the warehouse
describes the network.

The store echelon comes from :func:`ml.simulation.backtest.replay_inputs` (the demo's true demand, or the recorded
sales with stock-out days imputed). This module adds what the landing zone says about the rest of the network:

- **DC series**: one per product at each DC that replenishes a selling location (``dim_location.replenished_from``);
  ``parent[i]`` is the DC series of store series ``i`` (same product, the store's replenishing DC).
- **transfer lead times** (DC -> store): ``received_date - ordered_date`` of the transfers on each lane
  (``staging.stg_logistics__transfers``) received before the replay start, as an empirical distribution per lane;
  a lane without transfers takes the pooled distribution of all lanes, and 1 day when there are none at all.
- **supplier lead times** (supplier -> DC): the store inputs' supplier distribution of the product (the demo's true
  distribution on the demo, the receipts measured before the start elsewhere).
- **the DC's recorded demand**: its shipments to stores (``fct_inventory_daily.transfers_out_units``), history and
  replay period: what an ERP at the DC sees and plans from.
- **opening stock**: the DC's book on hand at the close of the day before the start; its open purchase orders
  (``on_order_units`` that day) arrive on day ``round(mean supplier lead time / 2)`` (the mean residual lead time of
  orders placed evenly over one lead time: the warehouse records what is on order, not when it is due). Stores open
  with the store inputs' on hand; transfers in transit that day (``in_transit_units``) arrive on day 0.
- **terms**: DC orders carry the supplier's MOQ and pack size and the supplier ordering cost; store orders are
  transfers (``PolicyConfig.transfer_min_order_qty`` / ``transfer_pack_size``, ``transfer_cost_per_line``).

A network is replayable when every selling location is replenished by a DC that buys from its suppliers (one DC
level). :func:`network_shape` says whether that holds and why not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from ml.simulation.engine import CostParams, InitialState, LeadTimeModel
from ml.simulation.scenarios import SimulationInputs

log = logging.getLogger("stockturn.simulation")

__all__ = ["NetworkReplayInputs", "network_inputs", "network_shape"]


@dataclass(frozen=True)
class NetworkReplayInputs:
    """Both echelons of the replay.

    Attributes:
        stores: store series (demand = customer demand to replay; lead_times = transfer lead times per lane;
            costs with the transfer ordering cost; keys' supplier_moq / supplier_pack_size = the transfer terms).
        store_observed: (n_store, history + days) recorded sales the planners see.
        dc: DC series (demand = zeros: a DC's demand is its stores' requests, made in the replay; lead_times =
            supplier lead times; history = its recorded shipments before the start).
        dc_observed: (n_dc, history + days) recorded shipments to stores.
        parent: (n_store,) DC series of each store series.
        demand_basis: where the store demand came from.
    """

    stores: SimulationInputs
    store_observed: np.ndarray
    dc: SimulationInputs
    dc_observed: np.ndarray
    parent: np.ndarray
    demand_basis: str

    @property
    def n_store(self) -> int:
        return self.stores.n_series

    @property
    def n_dc(self) -> int:
        return self.dc.n_series


def network_shape(con) -> tuple[bool, str]:
    """(replayable as one DC level feeding the selling locations, why not)."""
    from ml.warehouse import read_frame

    loc = read_frame(con, "select location_id, replenished_from, is_selling_location from marts.dim_location")
    selling = loc.filter(pl.col("is_selling_location"))
    fed = selling.filter(pl.col("replenished_from").is_not_null())
    if fed.is_empty():
        return False, "no selling location is replenished from a DC"
    if fed.height < selling.height:
        direct = selling.filter(pl.col("replenished_from").is_null())["location_id"].to_list()
        return False, (f"selling locations {direct[:5]} buy from suppliers while others are fed by a DC: mixed "
                       "networks are not replayed as one system yet")
    dcs = fed["replenished_from"].unique().to_list()
    upstream = loc.filter(pl.col("location_id").is_in(dcs) & pl.col("replenished_from").is_not_null())
    if upstream.height:
        return False, (f"DCs {upstream['location_id'].to_list()[:5]} are themselves replenished by transfer: only "
                       "one DC level is replayed")
    return True, ""


def transfer_lead_times(con, keys: pl.DataFrame, start: date) -> LeadTimeModel:
    """Transfer lead times received before ``start``, per lane (``keys['lane']`` = 'DC>store'; module doc)."""
    from ml.warehouse import read_frame

    obs = read_frame(con, """
        select from_location_id || '>' || to_location_id as lane,
               greatest((received_date - ordered_date), 0)::bigint as lt
        from staging.stg_logistics__transfers
        where received_date < ? and ordered_date is not null and received_date >= ordered_date""", [start])
    lanes = keys["lane"].to_list()
    pooled = obs["lt"].to_numpy()
    pmfs: dict[str, np.ndarray] = {}
    for lane in sorted(set(lanes)):
        o = obs.filter(pl.col("lane") == lane)["lt"].to_numpy()
        o = o if o.size else (pooled if pooled.size else np.array([1]))
        pmfs[lane] = np.bincount(o.astype(np.int64)) / o.size
    return LeadTimeModel.from_pmfs(pmfs, lanes)


def network_inputs(con, stores: SimulationInputs, store_observed: np.ndarray, demand_basis: str, *,
                   policy_config) -> NetworkReplayInputs:
    """The replay network around the store series ``stores`` (see the module doc)."""
    from ml.warehouse import read_frame

    ok, why = network_shape(con)
    if not ok:
        raise ValueError(f"the network cannot be replayed as one system: {why}")
    start = stores.start
    n_hist, n_days = stores.n_history, stores.n_days
    first, end = start - timedelta(days=n_hist), start + timedelta(days=n_days)
    loc = read_frame(con, "select location_id, replenished_from from marts.dim_location")
    skeys = stores.keys.with_row_index("_i").join(loc, on="location_id", how="left", maintain_order="left")
    if skeys["replenished_from"].null_count():
        bad = skeys.filter(pl.col("replenished_from").is_null())["location_id"].unique().to_list()
        raise ValueError(f"store series at {bad[:5]} have no replenishing DC in marts.dim_location")
    skeys = skeys.with_columns(pl.concat_str("replenished_from", pl.lit(">"), "location_id").alias("lane"))

    # ------------------------------------------------------------------ DC series: one per product x DC
    dkeys = (skeys.group_by("product_id", "replenished_from", maintain_order=True)
             .agg(pl.col("_i").first().alias("_first"), pl.col("category").first(), pl.col("supplier_id").first(),
                  pl.col("supplier_moq").first(), pl.col("supplier_pack_size").first())
             .rename({"replenished_from": "location_id"}).sort("location_id", "product_id"))
    dindex = dkeys.select("product_id", "location_id").with_row_index("_d")
    parent = (skeys.join(dindex.rename({"location_id": "replenished_from"}), on=["product_id", "replenished_from"],
                         how="left", maintain_order="left")["_d"].to_numpy().astype(np.int64))
    first_store = dkeys["_first"].to_numpy().astype(np.int64)
    n_dc = dkeys.height

    # ------------------------------------------------------------------ recorded DC shipments and opening stock
    con.register("__net_dc", dindex.to_arrow())
    try:
        panel = read_frame(con, """
            select k._d, datediff('day', ?::date, f.date_day) as t,
                   greatest(coalesce(f.transfers_out_units, 0), 0)::double as shipped,
                   f.on_hand_units::double as on_hand, coalesce(f.on_order_units, 0)::double as on_order
            from marts.fct_inventory_daily f join __net_dc k using (product_id, location_id)
            where f.date_day >= ? and f.date_day < ?""", [first, first - timedelta(days=1), end])
        sopen = read_frame(con, """
            select product_id, location_id, coalesce(in_transit_units, 0)::double as in_transit
            from marts.fct_inventory_daily where date_day = ?""", [start - timedelta(days=1)])
    finally:
        con.unregister("__net_dc")
    shipped = np.zeros((n_dc, n_hist + n_days))
    d_i, t = panel["_d"].to_numpy().astype(np.int64), panel["t"].to_numpy().astype(np.int64)
    inside = t >= 0
    shipped[d_i[inside], t[inside]] = panel["shipped"].to_numpy()[inside]
    at_open = panel.filter(pl.col("t") == n_hist - 1)
    dc_on_hand, dc_on_order = np.zeros(n_dc), np.zeros(n_dc)
    rows = at_open["_d"].to_numpy().astype(np.int64)
    dc_on_hand[rows] = np.maximum(np.nan_to_num(at_open["on_hand"].to_numpy(), nan=0.0), 0.0)
    dc_on_order[rows] = np.maximum(at_open["on_order"].to_numpy(), 0.0)

    supplier_lt = stores.lead_times.subset(first_store)
    arrive = np.rint(supplier_lt.mean_days() / 2.0).astype(np.int64)
    dc_transit = np.zeros((n_dc, int(arrive.max(initial=0)) + 1))
    dc_transit[np.arange(n_dc), arrive] = dc_on_order
    st_transit = (stores.keys.select("product_id", "location_id")
                  .join(sopen, on=["product_id", "location_id"], how="left", maintain_order="left")
                  ["in_transit"].fill_null(0.0).to_numpy())

    pc = policy_config
    unit_cost = stores.costs.unit_cost[first_store]
    price = stores.costs.unit_price[first_store] if stores.costs.unit_price is not None else None
    hold = np.broadcast_to(np.asarray(stores.costs.holding_rate, dtype=np.float64), (stores.n_series,))[first_store]
    dc_inputs = SimulationInputs(
        demand=np.zeros((n_dc, n_days)),
        keys=dkeys.select("product_id", "location_id", "category", "supplier_id", "supplier_moq",
                          "supplier_pack_size"),
        lead_times=supplier_lt,
        initial=InitialState(dc_on_hand, in_transit=dc_transit),
        costs=CostParams(unit_cost, holding_rate=hold, ordering_cost=pc.ordering_cost_per_line,
                         unit_price=price),
        history=shipped[:, :n_hist],
        start=start,
    )
    store_keys = stores.keys.with_columns(pl.lit(float(pc.transfer_min_order_qty)).alias("supplier_moq"),
                                          pl.lit(float(pc.transfer_pack_size)).alias("supplier_pack_size"))
    store_inputs = SimulationInputs(
        demand=stores.demand, keys=store_keys, lead_times=transfer_lead_times(con, skeys, start),
        initial=InitialState(stores.initial.on_hand, in_transit=st_transit[:, None]),
        costs=CostParams(stores.costs.unit_cost, holding_rate=stores.costs.holding_rate,
                         ordering_cost=pc.transfer_cost_per_line, unit_price=stores.costs.unit_price),
        history=stores.history, start=start)
    log.info("backtest network: %d store series fed by %d DC series at %d DC(s); transfer lead time %.1f days on "
             "average, supplier %.1f", store_inputs.n_series, n_dc, dkeys["location_id"].n_unique(),
             float(store_inputs.lead_times.mean_days().mean()), float(supplier_lt.mean_days().mean()))
    return NetworkReplayInputs(store_inputs, store_observed, dc_inputs, shipped, parent, demand_basis)
