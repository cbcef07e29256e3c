"""Day-by-day simulation of a two-echelon network: suppliers feed DCs, DCs feed stores by transfer.

The network is one *store series* per product at a store (``n_store``) and one *DC series* per product at a DC
(``n_dc``); ``parent[i]`` is the DC series that replenishes store series ``i`` (the landing zone's
``replenished_from``, same product). Stores sell to customers; a DC's only customers are its stores. The loop runs
over days; every step is a numpy operation across all series (store requests are grouped by DC series with
``np.bincount``; no Python loop per series). A DC series and its stores interact, different DC series do not, so
the network is processed in blocks of whole DC series with their stores (``block_size`` store series per block,
roughly); results do not depend on the block size.

One simulated day ``t``, in order
---------------------------------
1. **Receipts** at both echelons at the opening: supplier orders due today reach the DC; transfers due today reach
   the stores (ring buffers indexed by arrival day). A store in backorder mode (``store_lost_sales=False``, for
   known-answer checks only) first fills its open customer backorders.
2. **Store demand**: ``served = min(on_hand, demand)``; the rest is lost (default) or backordered.
3. **Store review** (close of business): a store series whose review day it is looks at its inventory position
   ``IP = on_hand + in transit from the DC + owed to it by the DC (backordered at the DC) - customer backorders``
   and orders exactly as :func:`ml.simulation.engine.simulate` does (rules ``"s_S"`` and ``"s_nQ"``, MOQ and
   packs, review period and offset, the plan in force). Its order is a *request* to its DC.
4. **DC shipping**: a DC ships only what it holds at that moment (on hand after today's receipts). It serves, in
   this priority,

   a. the units it still owes from earlier days (backorders), then
   b. today's requests.

   Within each class, if the DC's on hand covers the class's total need, every store gets all it needs. If not,
   the stock is split by **fair share by need** (proportional allocation, :func:`allocate_fair_share`): store
   ``i`` with need ``n_i`` gets ``floor(A n_i / N)`` (``A`` = DC on hand, ``N`` = the class's total need at that
   DC series), and the ``floor(A) - sum floor(...)`` units left over go one each to the stores with the largest
   fractional parts ``A n_i / N - floor(A n_i / N)`` (ties: lower store-series index first; largest-remainder
   rounding). So allocation is in whole units, never exceeds a store's need, and leaves the DC with less than
   one unit (only a fractional remainder) whenever it could not serve a class in full. What is not shipped stays
   *owed* (backordered at the DC) and counts in the store's position, so the store does not re-order it; the
   store waits. Among owed units the rule is proportional to the amount owed, not first-in-first-out by age:
   all backorders of a DC series form one class that is served before any new request (between days this is
   FIFO; within the backlog it is pooled).

   Each store receiving a shipment on day ``t`` gets it at the opening of day ``t + max(L, 1)``, ``L`` its
   transfer lead time drawn for (day ``t``, store series), the same convention as the engine's orders.
5. **DC review**: a DC series whose review day it is looks at its position ``IP = on_hand + supplier pipeline -
   units owed to its stores`` and orders from the supplier by its own schedule (same rules, MOQ and packs); the
   supplier lead time is drawn for (day, DC series). A DC series whose schedule has an ``echelon_offset`` looks at
   its **echelon** position instead: that ``IP`` plus its stores' positions (on hand + in transit + owed -
   customer backorders; the owed units cancel) minus the offset, the stores' stock its plan assumes (Clark and
   Scarf's echelon stock): a DC whose stores are running low orders before their requests reach it.

With an infinitely stocked DC, every request ships the day it is made and step 3-4 is exactly the engine's
order placed with the transfer lead time: the stores then reproduce :func:`~ml.simulation.engine.simulate`.

No look-ahead
-------------
A store's request on day ``t`` depends only on its demand up to day ``t``, its shipments so far and the plan in
force; the DC's shipments and its supplier order on day ``t`` depend only on requests and receipts up to day
``t``. Schedules re-made at planning dates from data up to that date are replayed without look-ahead. The
perfect-foresight rule is not supported here (it is a single-echelon bound; use the engine).

Random numbers
--------------
Common random numbers, as in the engine: the transfer lead time of a shipment to store series ``i`` on day ``t``
is the inverse CDF of its distribution at ``uniforms(rng_seed, t, i)``; the supplier lead time of an order placed
by DC series ``j`` on day ``t`` uses ``uniforms(dc_rng_seed(rng_seed), t, j)`` (a separate stream, so store and
DC draws are not the same numbers). Two policies run with the same seed see the same lead time for the same
(day, series), and results do not depend on how the network is split into blocks. Store draws are the ones
:meth:`LeadTimeModel.sample` gives with ``rng_seed``; DC draws those with ``dc_rng_seed(rng_seed)``.

What is recorded (over the measured days ``measure_from .. n_days-1``)
----------------------------------------------------------------------
Two :class:`~ml.simulation.engine.SimulationResult` with the engine's counters, so :mod:`ml.simulation.kpis`
and :mod:`ml.simulation.matching` work on either echelon unchanged:

- ``stores``: demand, served, short are customer demand; orders / units ordered are the requests to the DC;
  units received are the transfers received; ``end_pipeline`` = in transit + still owed by the DC.
- ``dc``: its *demand* is the stores' requests (per day, summed over the DC series' stores); *served* is what it
  shipped the day it was requested; *short* what it could not ship that day (backordered, ``lost_sales=False``);
  stock-out days are days with an unmet request; orders and units ordered are supplier orders; on hand is the
  closing DC stock; ``end_backorders`` the units owed at the end.

Plus, in :class:`NetworkResult`: units shipped per store series and per DC series (to requests of the day and
to backorders), units owed summed over days (mean wait at the DC by Little's law), and the sums of the daily and
weekly *customer* demand of each DC series' stores, so the bullwhip ratio can be reported per echelon: store
orders over store demand (``stores.bullwhip``) and DC supplier orders over the customer demand its stores face
(:attr:`NetworkResult.dc_bullwhip`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ml.policy.echelon import ordering_position
from ml.policy.inventory_math import round_to_pack
from ml.simulation.engine import (
    _QTY_RTOL,
    _SERIES_F,
    _SERIES_I,
    _TOTALS,
    DAILY_FIELDS,
    DEFAULT_BLOCK,
    WEEK,
    CostParams,
    InitialState,
    LeadTimeModel,
    PolicySchedule,
    SimulationResult,
    _LeadTimes,
    _round_packs,
)

__all__ = [
    "NETWORK_DAILY_FIELDS",
    "NetworkResult",
    "allocate_fair_share",
    "dc_rng_seed",
    "simulate_network",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Per-series daily matrices :func:`simulate_network` can keep at each echelon, (n_series, n_days) float32. Beyond
#: the engine's: ``shipped`` (stores: units shipped to the store that day; DC: units it shipped) and ``owed``
#: (units owed by the DC at the close: to the store / in total).
NETWORK_DAILY_FIELDS: tuple[str, ...] = (*DAILY_FIELDS, "shipped", "owed")

_DC_STREAM = 0x5DC0_0D15_7A1B_0001
_EXTRA_STORE = ("shipped", "owed_sum", "end_owed", "end_in_transit")
_EXTRA_DC = ("shipped", "owed_sum", "cust_sum", "cust_sumsq", "week_cust_sum", "week_cust_sumsq")


def dc_rng_seed(rng_seed: int) -> int:
    """The seed of the DC series' supplier lead-time draws in a run with ``rng_seed`` (a separate stream)."""
    return (int(rng_seed) + _DC_STREAM) & 0x7FFF_FFFF_FFFF_FFFF


# ================================================================================================================
# allocation
# ================================================================================================================


def allocate_fair_share(need: ArrayLike, group: ArrayLike, available: ArrayLike) -> FloatArray:
    """Split each group's available stock over its entries' needs: fair share by need, in whole units.

    Args:
        need: (m,) units each entry (a store's request) needs, >= 0.
        group: (m,) group (DC series) of each entry, ints in ``[0, n_groups)``.
        available: (n_groups,) stock each group can ship.

    Returns:
        (m,) units shipped. Where a group's total need ``N <= A`` (available), every entry gets its need. Otherwise
        entry ``i`` gets ``floor(A n_i / N)``, and the ``floor(A) - sum_i floor(A n_i / N)`` units left go one each
        to the entries with the largest fractional parts (ties: the earlier entry first); never more than
        ``n_i``. The result is ``0 <= shipped <= need``, ``sum shipped <= A`` per group, and within one unit of
        the exact proportional share.
    """
    need = np.asarray(need, dtype=np.float64)
    grp = np.asarray(group, dtype=np.int64)
    avail = np.maximum(np.asarray(available, dtype=np.float64), 0.0)
    n_g = avail.size
    total = np.bincount(grp, weights=need, minlength=n_g)
    short = total - avail > _QTY_RTOL * np.maximum(1.0, total)
    ship = need.copy()
    e = np.flatnonzero(short[grp] & (need > 0))
    if e.size == 0:
        return ship
    g = grp[e]
    quota = need[e] * (avail[g] / total[g])
    base = np.minimum(np.floor(quota + 1e-9), need[e])
    frac = quota - base
    left = np.floor(avail + 1e-9) - np.bincount(g, weights=base, minlength=n_g)
    order = np.lexsort((e, -frac, g))  # by group, then largest fractional part, then position
    gs = g[order]
    rank = np.arange(order.size) - np.searchsorted(gs, gs, side="left")
    bonus = np.empty(order.size)
    bonus[order] = rank < left[gs]
    ship[e] = np.minimum(base + bonus, need[e])
    return ship


# ================================================================================================================
# result
# ================================================================================================================


@dataclass(frozen=True)
class NetworkResult:
    """What one network simulation recorded (per-series arrays over the measured days).

    Attributes:
        stores: the store echelon (customer demand; orders = requests to the DC); see the module doc.
        dc: the DC echelon (demand = the stores' requests; served = shipped the day requested).
        parent: (n_store,) DC series of each store series.
        store_shipped: (n_store,) units the DC shipped to the store.
        store_owed_sum: (n_store,) units owed to the store by its DC at the close, summed over days.
        store_end_owed, store_end_in_transit: (n_store,) owed by the DC / in transit after the last day.
        dc_shipped: (n_dc,) units shipped, to the day's requests and to backorders.
        dc_owed_sum: (n_dc,) units owed to stores at the close, summed over days.
        dc_customer_demand_sum, dc_customer_demand_sumsq: (n_dc,) sums of the daily customer demand of the DC
            series' stores (summed over its stores each day) and of its square.
        dc_week_customer_demand_sum, dc_week_customer_demand_sumsq: the same on whole 7-day buckets
            (``stores.n_weeks`` of them).
    """

    stores: SimulationResult
    dc: SimulationResult
    parent: IntArray
    store_shipped: FloatArray
    store_owed_sum: FloatArray
    store_end_owed: FloatArray
    store_end_in_transit: FloatArray
    dc_shipped: FloatArray
    dc_owed_sum: FloatArray
    dc_customer_demand_sum: FloatArray
    dc_customer_demand_sumsq: FloatArray
    dc_week_customer_demand_sum: FloatArray
    dc_week_customer_demand_sumsq: FloatArray

    @property
    def dc_customer_demand_variance(self) -> FloatArray:
        """(n_dc,) variance (ddof 0) of the daily customer demand summed over the DC series' stores."""
        return SimulationResult._var(self.dc_customer_demand_sum, self.dc_customer_demand_sumsq,
                                     self.dc.measured_days)

    @property
    def dc_bullwhip(self) -> FloatArray:
        """(n_dc,) Var(daily DC supplier orders) / Var(daily customer demand of its stores) (NaN if constant)."""
        dv = self.dc_customer_demand_variance
        with np.errstate(all="ignore"):
            return np.where(dv > 0, self.dc.order_variance / dv, np.nan)

    @property
    def dc_bullwhip_weekly(self) -> FloatArray:
        """The same ratio on weekly totals."""
        n = self.dc.n_weeks
        qv = SimulationResult._var(self.dc.week_order_sum, self.dc.week_order_sumsq, n)
        dv = SimulationResult._var(self.dc_week_customer_demand_sum, self.dc_week_customer_demand_sumsq, n)
        with np.errstate(all="ignore"):
            return np.where(dv > 0, qv / dv, np.nan)

    @property
    def store_bullwhip(self) -> FloatArray:
        """(n_store,) Var(daily store requests) / Var(daily customer demand)."""
        return self.stores.bullwhip

    @property
    def dc_mean_wait(self) -> FloatArray:
        """(n_dc,) mean days a requested unit waits at the DC (Little's law: owed-unit-days / units requested)."""
        with np.errstate(all="ignore"):
            return np.where(self.dc.demanded > 0, self.dc_owed_sum / self.dc.demanded, np.nan)

    @property
    def store_mean_wait(self) -> FloatArray:
        """(n_store,) mean days a unit requested by the store waits at the DC."""
        with np.errstate(all="ignore"):
            return np.where(self.stores.units_ordered > 0, self.store_owed_sum / self.stores.units_ordered, np.nan)

    def bullwhip_pooled(self) -> dict[str, float]:
        """Pooled bullwhip per echelon: sum of order variances / sum of demand variances (daily and weekly).

        ``store``: store requests over customer demand; ``dc``: DC supplier orders over the customer demand of its
        stores (aggregated per DC series); ``dc_vs_requests``: DC supplier orders over the requests it receives.
        """
        s, d = self.stores, self.dc
        nw = d.n_weeks

        def ratio(num: FloatArray, den: FloatArray) -> float:
            den_s = float(np.nansum(den))
            return float(np.nansum(num)) / den_s if den_s > 0 else float("nan")

        wq = SimulationResult._var(d.week_order_sum, d.week_order_sumsq, nw)
        return {
            "store": ratio(s.order_variance, s.demand_variance),
            "dc": ratio(d.order_variance, self.dc_customer_demand_variance),
            "dc_vs_requests": ratio(d.order_variance, d.demand_variance),
            "store_weekly": ratio(SimulationResult._var(s.week_order_sum, s.week_order_sumsq, s.n_weeks),
                                  SimulationResult._var(s.week_demand_sum, s.week_demand_sumsq, s.n_weeks)),
            "dc_weekly": ratio(wq, SimulationResult._var(self.dc_week_customer_demand_sum,
                                                         self.dc_week_customer_demand_sumsq, nw)),
        }


# ================================================================================================================
# engine
# ================================================================================================================


def simulate_network(
    store_demand: ArrayLike,
    parent: ArrayLike,
    store_policy: PolicySchedule,
    dc_policy: PolicySchedule,
    transfer_lead_times: LeadTimeModel,
    supplier_lead_times: LeadTimeModel,
    store_initial: InitialState,
    dc_initial: InitialState,
    *,
    store_costs: CostParams,
    dc_costs: CostParams,
    rng_seed: int,
    store_lost_sales: bool = True,
    measure_from: int = 0,
    record_daily: bool | Sequence[str] = False,
    block_size: int = DEFAULT_BLOCK,
) -> NetworkResult:
    """Replay ``store_demand`` (n_store, n_days) through the DC -> store network; see the module doc.

    Args:
        store_demand: (n_store, n_days) customer demand per store series and day, >= 0.
        parent: (n_store,) index of each store series' DC series, in ``[0, n_dc)``.
        store_policy: (n_store series) the stores' schedule; rule ``"s_S"`` or ``"s_nQ"``.
        dc_policy: (n_dc series) the DC's schedule; rule ``"s_S"`` or ``"s_nQ"``.
        transfer_lead_times: (n_store series) DC -> store transfer lead times (ship day -> receipt day).
        supplier_lead_times: (n_dc series) supplier -> DC lead times (order day -> receipt day).
        store_initial: opening stock of the stores; ``in_transit`` = transfers already shipped. ``backorders``
            (customer backorders) only with ``store_lost_sales=False``.
        dc_initial: opening stock of the DC; ``in_transit`` = open supplier orders. No opening backorders.
        store_costs, dc_costs: per-series costs of each echelon.
        rng_seed: seed of the lead-time draws (common across policies; see the module doc).
        store_lost_sales: True (default): unmet customer demand is lost. False: backordered (known-answer checks).
        measure_from: first day counted in the results.
        record_daily: True or a subset of :data:`NETWORK_DAILY_FIELDS`, kept at both echelons.
        block_size: store series per block (whole DC series per block; results do not depend on it).
    """
    dem = np.asarray(store_demand)
    if dem.ndim != 2:
        raise ValueError(f"store_demand must be (n_store, n_days), got shape {dem.shape}")
    n_s, n_days = dem.shape
    par = np.asarray(parent)
    if par.shape != (n_s,) or not np.issubdtype(par.dtype, np.integer):
        raise ValueError(f"parent must be ({n_s},) integers")
    par = par.astype(np.int64)
    n_d = dc_policy.n_series
    if n_s == 0 or n_days == 0 or n_d == 0:
        raise ValueError("need at least one store series, one DC series and one day")
    if np.any(par < 0) or np.any(par >= n_d):
        raise ValueError(f"parent must index the {n_d} DC series")
    for what, m, want in (("store_policy", store_policy.n_series, n_s), ("store_initial", store_initial.on_hand.size,
                          n_s), ("store_costs", store_costs.n_series, n_s),
                          ("transfer_lead_times", transfer_lead_times.n_series, n_s),
                          ("dc_initial", dc_initial.on_hand.size, n_d), ("dc_costs", dc_costs.n_series, n_d),
                          ("supplier_lead_times", supplier_lead_times.n_series, n_d)):
        if m != want:
            raise ValueError(f"{what} has {m} series, expected {want}")
    for pol in (store_policy, dc_policy):
        if pol.rule not in ("s_S", "s_nQ"):
            raise ValueError(f"simulate_network supports rules 's_S' and 's_nQ', got {pol.rule!r}")
    if not 0 <= measure_from < n_days:
        raise ValueError("measure_from must be in [0, n_days)")
    if not (np.all(np.isfinite(dem)) and np.all(dem >= 0)):
        raise ValueError("store_demand must be finite and non-negative")
    if np.any(dc_initial.backorders != 0):
        raise ValueError("dc_initial.backorders must be 0 (opening DC backorders are not modelled)")
    if store_lost_sales and np.any(store_initial.backorders != 0):
        raise ValueError("store_initial.backorders need store_lost_sales=False")
    keep = set(NETWORK_DAILY_FIELDS) if record_daily is True else set(record_daily or ())
    if keep - set(NETWORK_DAILY_FIELDS):
        raise ValueError(f"record_daily: unknown fields {sorted(keep - set(NETWORK_DAILY_FIELDS))}")
    if block_size < 1:
        raise ValueError("block_size must be >= 1")

    # blocks of whole DC series: DC j goes to block (stores before j) // block_size; stores ordered by (DC, index)
    counts = np.bincount(par, minlength=n_d)
    start = np.concatenate([[0], np.cumsum(counts)])
    block_of_dc = start[:-1] // block_size
    cuts = np.flatnonzero(np.diff(block_of_dc)) + 1
    dc_bounds = np.concatenate([[0], cuts, [n_d]])
    store_order = np.argsort(par, kind="stable")

    lt_s = _LeadTimes(transfer_lead_times, slice(0, n_s), rng_seed)
    lt_d = _LeadTimes(supplier_lead_times, slice(0, n_d), dc_rng_seed(rng_seed))
    acc_s = _new_acc(n_s, n_days, keep, _EXTRA_STORE)
    acc_d = _new_acc(n_d, n_days, keep, _EXTRA_DC)
    n_weeks = 0
    for b in range(dc_bounds.size - 1):
        d0, d1 = int(dc_bounds[b]), int(dc_bounds[b + 1])
        gd = np.arange(d0, d1)
        gs = store_order[start[d0]: start[d1]]
        n_weeks = _run_block(dem, par, gs, gd, store_policy, dc_policy, lt_s, lt_d, store_initial, dc_initial,
                             store_costs, dc_costs, acc_s, acc_d, store_lost_sales=store_lost_sales,
                             measure_from=measure_from, keep=keep)

    stores = _result(store_policy.name, acc_s, store_costs, n_days, measure_from, n_weeks, store_lost_sales)
    dc = _result(dc_policy.name, acc_d, dc_costs, n_days, measure_from, n_weeks, False)
    return NetworkResult(
        stores=stores,
        dc=dc,
        parent=par,
        store_shipped=acc_s["shipped"],
        store_owed_sum=acc_s["owed_sum"],
        store_end_owed=acc_s["end_owed"],
        store_end_in_transit=acc_s["end_in_transit"],
        dc_shipped=acc_d["shipped"],
        dc_owed_sum=acc_d["owed_sum"],
        dc_customer_demand_sum=acc_d["cust_sum"],
        dc_customer_demand_sumsq=acc_d["cust_sumsq"],
        dc_week_customer_demand_sum=acc_d["week_cust_sum"],
        dc_week_customer_demand_sumsq=acc_d["week_cust_sumsq"],
    )


def _new_acc(n: int, n_days: int, keep: set[str], extra: tuple[str, ...]) -> dict:
    acc: dict = {name: np.zeros(n) for name in (*_SERIES_F, *extra)}
    acc.update({name: np.zeros(n, dtype=np.int64) for name in _SERIES_I})
    acc["totals"] = {k: np.zeros(n_days) for k in (*_TOTALS, "shipped", "owed")}
    acc["daily"] = {k: np.zeros((n, n_days), dtype=np.float32) for k in keep}
    return acc


def _result(name: str, acc: dict, costs: CostParams, n_days: int, measure_from: int, n_weeks: int,
            lost_sales: bool) -> SimulationResult:
    unit_cost = costs.unit_cost.copy()
    short = acc["short"]
    return SimulationResult(
        policy=name,
        n_days=n_days,
        measure_from=measure_from,
        lost_sales=lost_sales,
        demand_sum=acc["demanded"].copy(),
        order_sum=acc["units_ordered"].copy(),
        n_weeks=n_weeks,
        unit_cost=unit_cost,
        holding_cost=acc["on_hand_sum"] * unit_cost * np.asarray(costs.holding_rate) / 365.0,
        ordering_cost=acc["orders"] * np.asarray(costs.ordering_cost),
        shortage_cost=short * np.asarray(costs.shortage_cost),
        lost_margin=short * costs.unit_margin if lost_sales else np.zeros(short.size),
        daily_totals=acc["totals"],
        daily=acc["daily"],
        **{k: acc[k] for k in (*_SERIES_F, *_SERIES_I)},
    )


class _Orders:
    """The ordering rule of one echelon's block: the engine's review step (rules s_S and s_nQ), same arithmetic."""

    def __init__(self, policy: PolicySchedule, gidx: IntArray, n_days: int) -> None:
        self.policy = policy
        self.gidx = gidx
        self.plan_of_day = policy.plan_index(n_days)
        self.offset = policy.review_offset[gidx].astype(np.int64)
        self.simple = bool(np.all(policy.pack_size[:, gidx] == 1.0) and np.all(policy.moq[:, gidx] <= 0.0))
        self.cur = -1
        self.empty = (np.zeros(0, dtype=np.int64), np.zeros(0))

    def review(self, t: int, plus: tuple[FloatArray, ...], minus: FloatArray) -> tuple[IntArray, FloatArray]:
        """(local series, quantity) of the orders placed at the close of day ``t``; the inventory position is
        ``sum(plus) - minus``."""
        pol, g = self.policy, self.gidx
        k = self.plan_of_day[t]
        if k != self.cur:
            self.cur = k
            self.p_s = pol.reorder_point[k, g]
            self.p_big = pol.order_up_to[k, g] if pol.order_up_to is not None else None
            self.p_moq, self.p_pack = pol.moq[k, g], pol.pack_size[k, g]
            self.p_r = pol.review_period[k, g].astype(np.int64)
            self.next_review = t + (self.offset - t) % self.p_r
            if pol.rule == "s_nQ":
                self.p_qeff = np.asarray(round_to_pack(pol.order_quantity[k, g], self.p_moq, self.p_pack))
        review = np.flatnonzero(self.next_review == t)
        if review.size == 0:
            return self.empty
        self.next_review[review] += self.p_r[review]
        ip = plus[0][review]
        for p in plus[1:]:
            ip = ip + p[review]
        ip = ip - minus[review]
        trig = ip <= self.p_s[review]
        idx, ip = review[trig], ip[trig]
        if pol.rule == "s_S":
            raw = self.p_big[idx] - ip
            ok = raw > _QTY_RTOL * np.maximum(1.0, np.abs(self.p_big[idx]))
            idx, raw = idx[ok], raw[ok]
            qty = _round_packs(raw, self.p_moq, self.p_pack, idx, self.simple)
        else:
            qe = self.p_qeff[idx]
            qty = qe * (np.floor((self.p_s[idx] - ip) / qe) + 1.0)
        return idx, qty


class _Recorder:
    """The engine's per-series accumulators (demand, service, stock, cycles, orders, weekly sums) for one block."""

    def __init__(self, n: int, keep: set[str]) -> None:
        self.n = n
        self.acc = {name: np.zeros(n) for name in _SERIES_F}
        self.acc.update({name: np.zeros(n, dtype=np.int64) for name in _SERIES_I})
        self.acc["first_stockout_day"].fill(-1)
        self.wk_q, self.wk_d = np.zeros(n), np.zeros(n)
        self.in_cycle = np.zeros(n, dtype=bool)
        self.cycle_short = np.zeros(n, dtype=bool)
        self.keep = keep

    def day(self, t: int, d: FloatArray, served: FloatArray, short: FloatArray, on_hand: FloatArray,
            q: FloatArray, arr: FloatArray, got: NDArray[np.bool_], any_got: bool, week_end: bool) -> None:
        a = self.acc
        has_short = short > 0
        a["demanded"] += d
        a["served"] += served
        a["short"] += short
        a["demand_sumsq"] += d * d
        a["on_hand_sum"] += on_hand
        a["stockout_days"] += has_short
        a["empty_days"] += on_hand <= 0
        np.copyto(a["first_stockout_day"], t, where=has_short & (a["first_stockout_day"] < 0))
        a["orders"] += q > 0
        a["units_ordered"] += q
        a["order_sumsq"] += q * q
        a["units_received"] += arr
        if any_got:
            closes = got & self.in_cycle
            a["cycles"] += closes
            a["cycles_ok"] += closes & ~self.cycle_short
            self.cycle_short[got] = False
            self.in_cycle |= got
        self.cycle_short |= has_short & self.in_cycle
        self.wk_q += q
        self.wk_d += d
        if week_end:
            a["week_order_sum"] += self.wk_q
            a["week_order_sumsq"] += self.wk_q * self.wk_q
            a["week_demand_sum"] += self.wk_d
            a["week_demand_sumsq"] += self.wk_d * self.wk_d
            self.wk_q.fill(0.0)
            self.wk_d.fill(0.0)


def _ring(lt: _LeadTimes, initial: InitialState, gidx: IntArray, n_days: int) -> tuple[FloatArray, FloatArray, int]:
    """Pipeline ring buffer (width, n) from the opening in-transit stock, the pipeline totals and the width."""
    width = lt.max_offset(n_days)
    it = None if initial.in_transit is None else initial.in_transit[gidx]
    if it is not None:
        width = max(width, min(it.shape[1], n_days))
    ring = np.zeros((width, gidx.size))
    if it is not None:
        part = it[:, :width]  # beyond the horizon: never arrives, stays in the pipeline
        ring[: part.shape[1]] = part.T
    pipeline = ring.sum(axis=0) if it is None else it.sum(axis=1)
    return ring, pipeline, width


def _run_block(
    dem_all: NDArray,
    par_all: IntArray,
    gs: IntArray,
    gd: IntArray,
    store_policy: PolicySchedule,
    dc_policy: PolicySchedule,
    lt_s: _LeadTimes,
    lt_d: _LeadTimes,
    store_initial: InitialState,
    dc_initial: InitialState,
    store_costs: CostParams,
    dc_costs: CostParams,
    acc_s: dict,
    acc_d: dict,
    *,
    store_lost_sales: bool,
    measure_from: int,
    keep: set[str],
) -> int:
    """The day loop for the DC series ``gd`` and their store series ``gs`` (global indices); writes into acc_*."""
    dem_t = np.ascontiguousarray(dem_all[gs].T, dtype=np.float64)  # (n_days, n_s): day rows are contiguous
    n_days, n_s = dem_t.shape
    n_d = gd.size
    par = par_all[gs] - gd[0]  # local DC index of each local store
    lost = store_lost_sales

    ring_s, s_transit, w_s = _ring(lt_s, store_initial, gs, n_days)
    ring_d, d_pipe, w_d = _ring(lt_d, dc_initial, gd, n_days)
    ring_s_flat, ring_d_flat = ring_s.reshape(-1), ring_d.reshape(-1)
    s_on = store_initial.on_hand[gs].copy()
    backlog = store_initial.backorders[gs].copy() if not lost else np.zeros(n_s)
    s_owed = np.zeros(n_s)
    d_on = dc_initial.on_hand[gd].copy()
    d_owed = np.zeros(n_d)

    orders_s = _Orders(store_policy, gs, n_days)
    orders_d = _Orders(dc_policy, gd, n_days)
    echelon = None if dc_policy.echelon_offset is None else dc_policy.echelon_offset[:, gd]
    rec_s, rec_d = _Recorder(n_s, keep), _Recorder(n_d, keep)
    ex_s = {k: np.zeros(n_s) for k in ("shipped", "owed_sum")}
    ex_d = {k: np.zeros(n_d) for k in ("shipped", "owed_sum", "cust_sum", "cust_sumsq", "week_cust_sum",
                                        "week_cust_sumsq")}
    wk_c = np.zeros(n_d)
    daily_s = {k: np.zeros((n_days, n_s), dtype=np.float32) for k in keep}
    daily_d = {k: np.zeros((n_days, n_d), dtype=np.float32) for k in keep}
    tot_s, tot_d = acc_s["totals"], acc_d["totals"]
    uc_s, uc_d = store_costs.unit_cost[gs], dc_costs.unit_cost[gd]
    q_s, q_d, ship = np.zeros(n_s), np.zeros(n_d), np.zeros(n_s)
    zeros_d = np.zeros(n_d)
    n_weeks = 0

    for t in range(n_days):
        # ---------------------------------------------------------------- 1. receipts (both echelons)
        slot = t % w_s
        arr_s = ring_s[slot].copy()
        ring_s[slot] = 0.0
        got_s = arr_s > 0
        any_s = bool(got_s.any())
        if any_s:
            s_on += arr_s
            s_transit -= arr_s
            if not lost:
                fill = np.minimum(s_on, backlog)
                s_on -= fill
                backlog -= fill
        slot = t % w_d
        arr_d = ring_d[slot].copy()
        ring_d[slot] = 0.0
        got_d = arr_d > 0
        any_d = bool(got_d.any())
        if any_d:
            d_on += arr_d
            d_pipe -= arr_d
        # ---------------------------------------------------------------- 2. store demand
        d = dem_t[t]
        served = np.minimum(s_on, d)
        s_on -= served
        short = d - served
        if not lost:
            backlog += short
        # ---------------------------------------------------------------- 3. store review -> requests
        q_s.fill(0.0)
        idx, qty = orders_s.review(t, (s_on, s_transit, s_owed), backlog)
        # ---------------------------------------------------------------- 4. DC ships: backorders, then requests
        ship.fill(0.0)
        shipped_bo = zeros_d
        owing = np.flatnonzero(s_owed > 0)
        if owing.size:
            g = par[owing]
            sh = allocate_fair_share(s_owed[owing], g, d_on)
            shipped_bo = np.bincount(g, weights=sh, minlength=n_d)
            d_on -= shipped_bo
            d_owed -= shipped_bo
            s_owed[owing] -= sh
            ship[owing] += sh
        req_d, served_d = zeros_d, zeros_d
        if idx.size:
            q_s[idx] = qty
            g = par[idx]
            sh = allocate_fair_share(qty, g, d_on)
            req_d = np.bincount(g, weights=qty, minlength=n_d)
            served_d = np.bincount(g, weights=sh, minlength=n_d)
            d_on -= served_d
            d_owed += req_d - served_d
            s_owed[idx] += qty - sh
            ship[idx] += sh
        short_d = req_d - served_d
        sent = np.flatnonzero(ship > 0)
        if sent.size:
            q = ship[sent]
            a = lt_s.arrival(t, gs[sent])
            s_transit[sent] += q
            due = a < n_days
            ring_s_flat[(a[due] % w_s) * n_s + sent[due]] += q[due]  # one shipment per store and day: unique
        # ---------------------------------------------------------------- 5. DC review -> supplier orders
        q_d.fill(0.0)
        if echelon is None:
            didx, dqty = orders_d.review(t, (d_on, d_pipe), d_owed)
        else:
            # echelon position: the DC's own plus its stores' (owed units cancel), less the stores' planned stock
            stores = np.bincount(par, weights=s_on + s_transit + s_owed - backlog, minlength=n_d)
            off = echelon[orders_d.plan_of_day[t]]
            # the pipeline's rule (a DC with nothing of its own, owing at least what it has on hand and on order,
            # reads the lower of its own and its echelon position), added to the own position the review reads
            own = d_on + d_pipe - d_owed
            extra = ordering_position(own, own + stores - off) - own
            didx, dqty = orders_d.review(t, (d_on, d_pipe, np.where(np.isnan(off), 0.0, extra)), d_owed)
        if didx.size:
            q_d[didx] = dqty
            d_pipe[didx] += dqty
            a = lt_d.arrival(t, gd[didx])
            due = a < n_days
            ring_d_flat[(a[due] % w_d) * n_d + didx[due]] += dqty[due]
        # ---------------------------------------------------------------- 6. record
        shipped_d = shipped_bo + served_d
        if keep:
            for dly, vals in ((daily_s, (s_on, short, q_s, arr_s, ship, s_owed)),
                              (daily_d, (d_on, short_d, q_d, arr_d, shipped_d, d_owed))):
                for name, v in zip(NETWORK_DAILY_FIELDS, vals, strict=True):
                    if name in keep:
                        dly[name][t] = v
        for tot, vals, uc in ((tot_s, (d, served, short, s_on, q_s, arr_s, ship, s_owed), uc_s),
                              (tot_d, (req_d, served_d, short_d, d_on, q_d, arr_d, shipped_d, d_owed), uc_d)):
            dd, sv, sh_, oh, qq, ar, sp, ow = vals
            tot["demand"][t] += dd.sum()
            tot["served"][t] += sv.sum()
            tot["short"][t] += sh_.sum()
            tot["on_hand_units"][t] += oh.sum()
            tot["on_hand_value"][t] += oh @ uc
            tot["units_ordered"][t] += qq.sum()
            tot["orders"][t] += np.count_nonzero(qq)
            tot["receipts"][t] += ar.sum()
            tot["shipped"][t] += sp.sum()
            tot["owed"][t] += ow.sum()
        if t < measure_from:
            continue
        week_end = (t - measure_from) % WEEK == WEEK - 1
        rec_s.day(t, d, served, short, s_on, q_s, arr_s, got_s, any_s, week_end)
        rec_d.day(t, req_d, served_d, short_d, d_on, q_d, arr_d, got_d, any_d, week_end)
        ex_s["shipped"] += ship
        ex_s["owed_sum"] += s_owed
        ex_d["shipped"] += shipped_d
        ex_d["owed_sum"] += d_owed
        cust = np.bincount(par, weights=d, minlength=n_d)
        ex_d["cust_sum"] += cust
        ex_d["cust_sumsq"] += cust * cust
        wk_c += cust
        if week_end:
            n_weeks += 1
            ex_d["week_cust_sum"] += wk_c
            ex_d["week_cust_sumsq"] += wk_c * wk_c
            wk_c.fill(0.0)

    # write the block back into the network-wide accumulators
    for acc, rec, ex, gidx, daily in ((acc_s, rec_s, ex_s, gs, daily_s), (acc_d, rec_d, ex_d, gd, daily_d)):
        for name, v in (*rec.acc.items(), *ex.items()):
            acc[name][gidx] = v
        for name, v in daily.items():
            acc["daily"][name][gidx] = v.T
    acc_s["end_on_hand"][gs] = s_on
    acc_s["end_pipeline"][gs] = s_transit + s_owed
    acc_s["end_backorders"][gs] = backlog
    acc_s["end_owed"][gs] = s_owed
    acc_s["end_in_transit"][gs] = s_transit
    acc_d["end_on_hand"][gd] = d_on
    acc_d["end_pipeline"][gd] = d_pipe
    acc_d["end_backorders"][gd] = d_owed
    return n_weeks
