"""Day-by-day inventory simulation of many product-locations at once, for replaying history under a policy.

Every series (one product at one location) is simulated over the same ``n_days``; the loop runs over days and
every step is a numpy operation across all series (no Python loop per series). Series are independent, so they
are processed in cache-sized blocks (``block_size``); results do not depend on the block size.

One simulated day ``t``, in order
---------------------------------
1. **Receipts**: orders due today arrive at the opening (a ring buffer indexed by arrival day holds the
   pipeline). In backorder mode they first fill the open backorders.
2. **Demand**: ``demand[:, t]`` is served from stock on hand: ``served = min(on_hand, demand)``. The rest is
   *short*: lost (``lost_sales=True``, the default) or backordered (``lost_sales=False``, filled from later
   receipts; only used for known-answer checks against backorder formulas).
3. **Review** (close of business): a series whose review day it is looks at its inventory position
   ``IP = on_hand + pipeline - backorders`` and, if ``IP <= s``, orders

   * rule ``"s_S"``: ``S - IP`` (order-up-to / base-stock / (R, s, S)),
   * rule ``"s_nQ"``: the smallest multiple ``n Q`` with ``IP + n Q > s`` (``Q`` itself first rounded to whole
     packs and at least the MOQ),
   * rule ``"perfect_foresight"``: see below,

   rounded up to the MOQ and to whole packs (:func:`ml.policy.inventory_math.round_to_pack`).
4. **Lead time**: each order draws its lead time ``L`` (whole days) from its series' discrete distribution
   (:class:`LeadTimeModel`) and is on the shelf at the opening of day ``t + max(L, 1)``; so ``L`` is "receipt
   date minus order date", as lead times are measured from purchase-order data. Scenario windows may scale the
   lead time of orders placed in a window, or hold back every receipt due in an outage window until the
   outage ends.
5. **Forced orders** (optional, :class:`ForcedOrders`): on the days listed, the listed series order exactly the
   quantity given (zero: no order) instead of what the rule would order; this is how a planner's decision on a
   proposal (rejected, or approved with another quantity) is replayed. The order draws its lead time like any
   other order placed that day.

With a fixed lead time ``L`` and daily review this is the discrete-time base-stock model of Snyder & Shen
(2nd ed., ch. 4) with *their* lead time ``L - 1``: an order placed at the close of day ``t`` covers the demand
of days ``t+1 .. t+L``, so the end-of-day net inventory is ``S - D_L`` with ``D_L`` the demand over ``L`` days.

No look-ahead
-------------
An order placed at the close of day ``t`` depends only on the demand of days ``<= t`` and on the policy
parameters of the plan in force (the last ``plan_days[k] <= t``). Parameters re-made at each planning date
from data up to that date (see :mod:`ml.simulation.planning`) are therefore replayed without look-ahead.
Only the ``"perfect_foresight"`` rule reads future demand (it is the bound, not a policy).

Random numbers
--------------
The lead time of an order placed by series ``i`` on day ``t`` is the inverse CDF of its distribution at
``uniforms(rng_seed, t, i)``, a counter-based hash of (seed, day, series). It depends on nothing else: two
policies ordering on the same day for the same series get the same lead time (common random numbers, so policy
differences are not sampling noise), and results do not depend on how series are split into blocks.

Perfect-foresight bound
-----------------------
Knows the future demand and the lead time every order will take. At each review day ``t`` it orders
``D[t+1 .. a_next - 1] - IP`` (rounded to MOQ/packs), where ``a_next`` is the arrival day of the order it will
place at its next review day: the position then covers exactly the demand until the next order can arrive.
With pack 1, MOQ 0, no lead-time crossing and an opening stock that covers the first lead time, it serves every
unit and every cycle ends with zero stock: the least inventory that gives full service with the same order
opportunities. With packs/MOQ the surplus is netted at the next review (a heuristic, not a lot-sizing
optimum). Under lost sales a stock-out before the first receipt makes it over-order once (the lost units were
counted as consumed). The next review day is taken from the plan in force (use one plan for the bound).

What is recorded (over the measured days ``measure_from .. n_days-1``)
----------------------------------------------------------------------
Per series: units demanded, served, short (lost), stock-out days (days with unmet demand), empty days (closing
on hand 0), replenishment cycles and cycles without a stock-out (a *cycle* runs from a receipt day up to the day
before the next receipt day; the opening stretch before the first measured receipt and the open cycle at the end
are not counted; a review without an order extends the running cycle), closing on hand summed over days
(average on hand = sum / days; holding cost is charged on the closing stock), orders placed, units ordered and
received, and the sums needed for the variance of daily and weekly order quantities and demand (bullwhip).
:mod:`ml.simulation.kpis` turns these into KPIs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from ml.policy.inventory_math import round_to_pack

__all__ = [
    "CostParams",
    "DAILY_FIELDS",
    "ForcedOrders",
    "InitialState",
    "LeadTimeDisruption",
    "LeadTimeModel",
    "PolicySchedule",
    "ReceiptOutage",
    "SimulationResult",
    "simulate",
    "uniforms",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Rule = Literal["s_S", "s_nQ", "perfect_foresight"]
RULES: tuple[str, ...] = ("s_S", "s_nQ", "perfect_foresight")

#: Per-series daily matrices :func:`simulate` can keep (``record_daily``), each (n_series, n_days) float32.
DAILY_FIELDS: tuple[str, ...] = ("on_hand", "short", "orders", "receipts")

#: Order quantities below this fraction of the order-up-to level (floating noise) are not orders.
_QTY_RTOL = 1e-9
#: Length of the bullwhip's coarser time bucket, days.
WEEK = 7


# ================================================================================================================
# inputs
# ================================================================================================================


def _per_series(x: ArrayLike | None, n: int, name: str, default: float) -> FloatArray:
    a = np.asarray(default if x is None else x, dtype=np.float64)
    if a.ndim > 1 or (a.ndim == 1 and a.size != n):
        raise ValueError(f"{name} must be a scalar or have one value per series ({n}), got shape {a.shape}")
    return np.broadcast_to(a, (n,)).astype(np.float64, copy=True)


def _per_plan(x: ArrayLike | None, n_plans: int, n: int, name: str, default: float) -> FloatArray:
    """A scalar, a (n_series,) vector (same for every plan) or a (n_plans, n_series) matrix -> (n_plans, n)."""
    a = np.asarray(default if x is None else x, dtype=np.float64)
    if a.ndim == 2 and a.shape == (n_plans, n):
        return a.astype(np.float64, copy=True)
    if a.ndim == 0 or (a.ndim == 1 and a.size == n):
        return np.broadcast_to(a, (n_plans, n)).astype(np.float64, copy=True)
    raise ValueError(f"{name} must be a scalar, (n_series,)=({n},) or (n_plans, n_series)=({n_plans}, {n}); "
                     f"got shape {a.shape}")


@dataclass(frozen=True)
class PolicySchedule:
    """Policy parameters per planning date: what the policy under test decided, as plain arrays.

    Plan ``k`` is in force on days ``plan_days[k] .. plan_days[k+1] - 1`` (simulation day indices, 0 = first
    simulated day). Matrices are (n_plans, n_series); a scalar or an (n_series,) vector given to the constructor
    is repeated for every plan.

    Attributes:
        plan_days: (n_plans,) strictly increasing ints, ``plan_days[0] == 0``.
        reorder_point: s: on a review day, order when the inventory position is ``<= s``. Not used by
            ``"perfect_foresight"`` (pass anything, e.g. 0).
        order_up_to: S for rule ``"s_S"``.
        order_quantity: Q for rule ``"s_nQ"``.
        moq: minimum order quantity (0 = none), units.
        pack_size: orders are whole multiples of this (1 = single units).
        review_period: days between reviews (1 = every day), >= 1.
        review_offset: (n_series,) the series reviews on days ``t`` with ``(t - offset) % review_period == 0``.
        rule: ``"s_S"``, ``"s_nQ"`` or ``"perfect_foresight"``.
        name: label carried into the results.
        echelon_offset: DC series only (:func:`ml.simulation.network.simulate_network`; the single-echelon engine
            ignores it): a finite value makes the series order on its **echelon** position, its own position plus
            its stores' positions minus this offset (the stores' stock its reorder point assumes); NaN or None:
            its own position (installation stock).
    """

    plan_days: IntArray
    reorder_point: FloatArray
    order_up_to: FloatArray | None = None
    order_quantity: FloatArray | None = None
    moq: FloatArray | None = None
    pack_size: FloatArray | None = None
    review_period: FloatArray | None = None
    review_offset: FloatArray | None = None
    rule: Rule = "s_S"
    name: str = ""
    echelon_offset: FloatArray | None = None

    def __post_init__(self) -> None:
        days = np.atleast_1d(np.asarray(self.plan_days)).astype(np.int64)
        if days.ndim != 1 or days.size == 0 or days[0] != 0 or np.any(np.diff(days) <= 0):
            raise ValueError("plan_days must be a non-empty, strictly increasing 1-D sequence starting at 0")
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {self.rule!r}")
        s = np.asarray(self.reorder_point, dtype=np.float64)
        n = s.shape[-1] if s.ndim else None
        for cand in (self.order_up_to, self.order_quantity):
            if n is None and cand is not None and np.ndim(cand):
                n = np.shape(cand)[-1]
        if n is None:
            raise ValueError("reorder_point (or order_up_to / order_quantity) must carry the series dimension")
        k = days.size
        set_ = object.__setattr__
        set_(self, "plan_days", days)
        set_(self, "reorder_point", _per_plan(s, k, n, "reorder_point", 0.0))
        if self.rule == "s_S":
            if self.order_up_to is None:
                raise ValueError("rule 's_S' needs order_up_to")
            set_(self, "order_up_to", _per_plan(self.order_up_to, k, n, "order_up_to", 0.0))
        elif self.order_up_to is not None:
            set_(self, "order_up_to", _per_plan(self.order_up_to, k, n, "order_up_to", 0.0))
        if self.rule == "s_nQ":
            if self.order_quantity is None:
                raise ValueError("rule 's_nQ' needs order_quantity")
            q = _per_plan(self.order_quantity, k, n, "order_quantity", 0.0)
            if np.any(~(q > 0)):
                raise ValueError("order_quantity must be > 0")
            set_(self, "order_quantity", q)
        elif self.order_quantity is not None:
            set_(self, "order_quantity", _per_plan(self.order_quantity, k, n, "order_quantity", 0.0))
        set_(self, "moq", _per_plan(self.moq, k, n, "moq", 0.0))
        set_(self, "pack_size", _per_plan(self.pack_size, k, n, "pack_size", 1.0))
        r = _per_plan(self.review_period, k, n, "review_period", 1.0)
        if np.any(~(r >= 1)) or np.any(r != np.round(r)):
            raise ValueError("review_period must be whole days >= 1")
        set_(self, "review_period", r)
        set_(self, "review_offset", _per_series(self.review_offset, n, "review_offset", 0.0))
        if self.echelon_offset is not None:
            set_(self, "echelon_offset", _per_plan(self.echelon_offset, k, n, "echelon_offset", np.nan))
        for name in ("reorder_point", "order_up_to", "order_quantity", "moq", "pack_size"):
            arr = getattr(self, name)
            if arr is not None and self.rule != "perfect_foresight" and not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be finite")

    @property
    def n_series(self) -> int:
        return int(self.reorder_point.shape[1])

    @property
    def n_plans(self) -> int:
        return int(self.plan_days.size)

    def plan_index(self, n_days: int) -> IntArray:
        """(n_days,) index of the plan in force on each day."""
        return np.searchsorted(self.plan_days, np.arange(n_days), side="right") - 1

    @classmethod
    def base_stock(cls, level: ArrayLike, *, n_series: int | None = None, review_period: ArrayLike = 1,
                   moq: ArrayLike = 0.0, pack_size: ArrayLike = 1.0, name: str = "base_stock") -> PolicySchedule:
        """Static order-up-to policy: on every review day raise the position to ``level`` (s just below S)."""
        s_level = np.asarray(level, dtype=np.float64)
        if s_level.ndim == 0:
            if n_series is None:
                raise ValueError("a scalar level needs n_series")
            s_level = np.full(n_series, float(s_level))
        s = s_level - _QTY_RTOL * np.maximum(1.0, np.abs(s_level))
        return cls(np.array([0]), s, order_up_to=s_level, moq=moq, pack_size=pack_size,
                   review_period=review_period, rule="s_S", name=name)

    @classmethod
    def perfect_foresight(cls, n_series: int, *, review_period: ArrayLike = 1, review_offset: ArrayLike | None = None,
                          moq: ArrayLike = 0.0, pack_size: ArrayLike = 1.0,
                          name: str = "perfect_foresight") -> PolicySchedule:
        """The perfect-foresight bound with the same order opportunities, MOQ and packs (see the module doc)."""
        return cls(np.array([0]), np.zeros(n_series), moq=moq, pack_size=pack_size, review_period=review_period,
                   review_offset=review_offset, rule="perfect_foresight", name=name)

    def with_name(self, name: str) -> PolicySchedule:
        return replace(self, name=name)


@dataclass(frozen=True)
class LeadTimeDisruption:
    """Orders placed on days ``start .. end-1`` by series of ``groups`` take ``rint(L * factor)`` days (>= 1)."""

    groups: tuple[str, ...]
    start: int
    end: int
    factor: float


@dataclass(frozen=True)
class ReceiptOutage:
    """Receipts of series of ``groups`` due on days ``start .. end-1`` are held back and arrive on day ``end``."""

    groups: tuple[str, ...]
    start: int
    end: int


@dataclass(frozen=True)
class LeadTimeModel:
    """Per-series discrete lead-time distributions (in whole days), shared by groups (e.g. suppliers).

    Attributes:
        pmf: (n_groups, max_days + 1) probabilities of a lead time of 0, 1, ... days; rows sum to 1. A lead time of
            0 is treated as 1 (an order placed at the close arrives for the next opening).
        group: (n_series,) row of ``pmf`` each series draws from.
        group_names: (n_groups,) names (supplier ids), used by scenarios.
        disruptions: lead-time scaling windows (scenario hooks), by order day.
        outages: receipt-blocking windows (scenario hooks), by arrival day.
    """

    pmf: FloatArray
    group: IntArray
    group_names: tuple[str, ...]
    disruptions: tuple[LeadTimeDisruption, ...] = ()
    outages: tuple[ReceiptOutage, ...] = ()

    def __post_init__(self) -> None:
        pmf = np.atleast_2d(np.asarray(self.pmf, dtype=np.float64))
        if pmf.ndim != 2 or pmf.shape[1] == 0 or np.any(~np.isfinite(pmf)) or np.any(pmf < 0):
            raise ValueError("pmf must be a finite, non-negative (n_groups, max_days + 1) matrix")
        tot = pmf.sum(axis=1)
        if np.any(np.abs(tot - 1.0) > 1e-6):
            raise ValueError(f"pmf rows must sum to 1, got {tot}")
        group = np.asarray(self.group, dtype=np.int64)
        if group.ndim != 1 or np.any(group < 0) or np.any(group >= pmf.shape[0]):
            raise ValueError("group must be (n_series,) row indices into pmf")
        names = tuple(str(g) for g in self.group_names)
        if len(names) != pmf.shape[0] or len(set(names)) != len(names):
            raise ValueError("group_names must name each pmf row once")
        object.__setattr__(self, "pmf", pmf / tot[:, None])
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "group_names", names)
        for w in (*self.disruptions, *self.outages):
            unknown = set(w.groups) - set(names)
            if unknown:
                raise ValueError(f"unknown lead-time groups {sorted(unknown)}")
            if w.end < w.start:
                raise ValueError("window end must be >= start")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def fixed(cls, n_series: int, days: int, name: str = "fixed") -> LeadTimeModel:
        """Every series has the same deterministic lead time."""
        pmf = np.zeros((1, days + 1))
        pmf[0, days] = 1.0
        return cls(pmf, np.zeros(n_series, dtype=np.int64), (name,))

    @classmethod
    def from_pmfs(cls, pmfs: Mapping[str, ArrayLike], series_group: Sequence[str] | ArrayLike) -> LeadTimeModel:
        """From one pmf (over 0, 1, ... days) per group name and each series' group name."""
        names = tuple(pmfs)
        width = max(np.asarray(p).size for p in pmfs.values())
        pmf = np.zeros((len(names), width))
        for j, name in enumerate(names):
            p = np.asarray(pmfs[name], dtype=np.float64)
            pmf[j, : p.size] = p
        return cls(pmf, _group_index(series_group, names), names)

    @classmethod
    def from_observations(cls, observations: Mapping[str, ArrayLike],
                          series_group: Sequence[str] | ArrayLike) -> LeadTimeModel:
        """Empirical pmf per group from observed lead times in days (e.g. receipt date - order date per supplier)."""
        pmfs = {}
        for name, obs in observations.items():
            o = np.rint(np.asarray(obs, dtype=np.float64)).astype(np.int64)
            if o.size == 0 or np.any(o < 0):
                raise ValueError(f"group {name!r}: need at least one non-negative lead time")
            pmfs[name] = np.bincount(o) / o.size
        return cls.from_pmfs(pmfs, series_group)

    @classmethod
    def shifted_gamma(cls, params: Mapping[str, tuple[float, float, float]], series_group: Sequence[str] | ArrayLike,
                      *, max_days: int = 240) -> LeadTimeModel:
        """Lead time ``clip(rint(shift + Gamma(shape, scale)), 1, max_days)`` per group: {name: (shift, shape,
        scale)}. This is the demo generator's true supplier lead time (truth ``lead_times.parquet``)."""
        k = np.arange(max_days + 1, dtype=np.float64)
        pmfs = {}
        for name, (shift, shape, scale) in params.items():
            cdf_hi = stats.gamma.cdf(k + 0.5 - shift, shape, scale=scale)
            cdf_lo = stats.gamma.cdf(k - 0.5 - shift, shape, scale=scale)
            p = np.clip(cdf_hi - cdf_lo, 0.0, None)
            p[1] += stats.gamma.cdf(0.5 - shift, shape, scale=scale)  # rint(...) <= 0 -> 1
            p[0] = 0.0
            p[max_days] += stats.gamma.sf(max_days + 0.5 - shift, shape, scale=scale)
            pmfs[name] = p / p.sum()
        return cls.from_pmfs(pmfs, series_group)

    # ------------------------------------------------------------------ properties
    @property
    def n_series(self) -> int:
        return int(self.group.size)

    @property
    def max_days(self) -> int:
        return int(self.pmf.shape[1] - 1)

    def mean_days(self) -> FloatArray:
        """(n_series,) mean lead time (0 counted as 1), before scenario windows."""
        k = np.maximum(np.arange(self.pmf.shape[1]), 1)
        return (self.pmf @ k)[self.group]

    def sd_days(self) -> FloatArray:
        """(n_series,) standard deviation of the lead time (0 counted as 1), before scenario windows."""
        k = np.maximum(np.arange(self.pmf.shape[1]), 1).astype(np.float64)
        m = self.pmf @ k
        return np.sqrt(np.maximum(self.pmf @ k**2 - m**2, 0.0))[self.group]

    def group_mask(self, groups: Sequence[str]) -> NDArray[np.bool_]:
        """(n_series,) True for series drawing from one of ``groups``."""
        sel = np.isin(np.array(self.group_names), list(groups))
        return sel[self.group]

    def sample(self, seed: int, day: int, series: ArrayLike | None = None) -> IntArray:
        """Lead times (arrival day - order day, scenario windows applied) :func:`simulate` with ``rng_seed=seed``
        gives orders placed on ``day`` by ``series`` (default: all)."""
        idx = np.arange(self.n_series) if series is None else np.asarray(series, dtype=np.int64)
        lt = _LeadTimes(self, slice(0, self.n_series), seed)
        return lt.arrival(day, idx) - day

    def subset(self, idx: ArrayLike) -> LeadTimeModel:
        """The model for the series ``idx`` (same groups and windows)."""
        return replace(self, group=self.group[np.asarray(idx)])


def _group_index(series_group: Sequence[str] | ArrayLike, names: tuple[str, ...]) -> IntArray:
    lookup = {n: i for i, n in enumerate(names)}
    uniq, inverse = np.unique(np.asarray(series_group).astype(str), return_inverse=True)
    missing = [u for u in uniq if u not in lookup]
    if missing:
        raise ValueError(f"series groups {missing[:5]} have no lead-time distribution")
    return np.array([lookup[u] for u in uniq], dtype=np.int64)[inverse.reshape(-1)]


@dataclass(frozen=True)
class InitialState:
    """Stock at the opening of day 0.

    Attributes:
        on_hand: (n_series,) units on the shelf.
        in_transit: optional (n_series, k) units arriving at the opening of day j (column j, j < k); column 0
            arrives on day 0 before any demand.
        backorders: (n_series,) open backorders (backorder mode only).
    """

    on_hand: FloatArray
    in_transit: FloatArray | None = None
    backorders: FloatArray | None = None

    def __post_init__(self) -> None:
        oh = np.atleast_1d(np.asarray(self.on_hand, dtype=np.float64))
        if oh.ndim != 1 or np.any(~np.isfinite(oh)) or np.any(oh < 0):
            raise ValueError("on_hand must be (n_series,) finite and >= 0")
        object.__setattr__(self, "on_hand", oh)
        if self.in_transit is not None:
            it = np.asarray(self.in_transit, dtype=np.float64)
            if it.ndim != 2 or it.shape[0] != oh.size or np.any(~np.isfinite(it)) or np.any(it < 0):
                raise ValueError("in_transit must be (n_series, k) finite and >= 0")
            object.__setattr__(self, "in_transit", it)
        object.__setattr__(self, "backorders", _per_series(self.backorders, oh.size, "backorders", 0.0))

    @classmethod
    def at_level(cls, level: ArrayLike, n_series: int | None = None) -> InitialState:
        lv = np.asarray(level, dtype=np.float64)
        if lv.ndim == 0:
            if n_series is None:
                raise ValueError("a scalar level needs n_series")
            lv = np.full(n_series, float(lv))
        return cls(np.maximum(lv, 0.0))

    def subset(self, idx: ArrayLike) -> InitialState:
        i = np.asarray(idx)
        return InitialState(self.on_hand[i], None if self.in_transit is None else self.in_transit[i],
                            self.backorders[i])


@dataclass(frozen=True)
class ForcedOrders:
    """Orders fixed in advance: series ``series[j]`` orders exactly ``quantity[j]`` units (0 = nothing) on day
    ``day[j]``, whatever its rule says. At most one entry per (series, day)."""

    series: IntArray
    day: IntArray
    quantity: FloatArray

    def __post_init__(self) -> None:
        s = np.atleast_1d(np.asarray(self.series, dtype=np.int64))
        d = np.atleast_1d(np.asarray(self.day, dtype=np.int64))
        q = np.atleast_1d(np.asarray(self.quantity, dtype=np.float64))
        if not (s.shape == d.shape == q.shape) or s.ndim != 1:
            raise ValueError("forced orders: series, day and quantity must be 1-d and of the same length")
        if np.any(~np.isfinite(q)) or np.any(q < 0) or np.any(s < 0) or np.any(d < 0):
            raise ValueError("forced orders: series and day must be >= 0, quantities finite and >= 0")
        if np.unique(s * (int(d.max(initial=0)) + 1) + d).size != s.size:
            raise ValueError("forced orders: at most one order per series and day")
        object.__setattr__(self, "series", s)
        object.__setattr__(self, "day", d)
        object.__setattr__(self, "quantity", q)

    def for_block(self, sl: slice) -> dict[int, tuple[IntArray, FloatArray]]:
        """day -> (block-local series, quantity) for the series in ``sl``."""
        inside = (self.series >= sl.start) & (self.series < sl.stop)
        out: dict[int, tuple[IntArray, FloatArray]] = {}
        for t in np.unique(self.day[inside]):
            m = inside & (self.day == t)
            out[int(t)] = (self.series[m] - sl.start, self.quantity[m])
        return out


@dataclass(frozen=True)
class CostParams:
    """Costs per series (scalars broadcast). Purchase cost itself is not a cost here (it is COGS).

    Attributes:
        unit_cost: value of one unit at cost (inventory valuation, COGS).
        holding_rate: annual holding cost as a fraction of unit cost (0.25 = 25 % a year), charged per day on the
            closing stock: unit_cost * holding_rate / 365 per unit-day.
        ordering_cost: fixed cost per order placed.
        shortage_cost: cost per unit of unmet demand; default: the unit margin ``unit_price - unit_cost``
            (floored at 0) when ``unit_price`` is given, else 0.
        unit_price: selling price (lost margin = lost units x (price - cost)); optional.
    """

    unit_cost: FloatArray
    holding_rate: FloatArray | float = 0.25
    ordering_cost: FloatArray | float = 0.0
    shortage_cost: FloatArray | float | None = None
    unit_price: FloatArray | None = None

    def __post_init__(self) -> None:
        uc = np.atleast_1d(np.asarray(self.unit_cost, dtype=np.float64))
        if uc.ndim != 1 or np.any(~np.isfinite(uc)) or np.any(uc < 0):
            raise ValueError("unit_cost must be (n_series,) finite and >= 0")
        n = uc.size
        set_ = object.__setattr__
        set_(self, "unit_cost", uc)
        set_(self, "holding_rate", _per_series(self.holding_rate, n, "holding_rate", 0.25))
        set_(self, "ordering_cost", _per_series(self.ordering_cost, n, "ordering_cost", 0.0))
        if self.unit_price is not None:
            set_(self, "unit_price", _per_series(self.unit_price, n, "unit_price", 0.0))
        if self.shortage_cost is None:
            default = np.maximum(self.unit_price - uc, 0.0) if self.unit_price is not None else np.zeros(n)
            set_(self, "shortage_cost", default)
        else:
            set_(self, "shortage_cost", _per_series(self.shortage_cost, n, "shortage_cost", 0.0))

    @property
    def n_series(self) -> int:
        return int(self.unit_cost.size)

    @property
    def unit_margin(self) -> FloatArray:
        """Margin lost per unit short: price - cost when prices are known, else the shortage cost."""
        if self.unit_price is not None:
            return np.maximum(self.unit_price - self.unit_cost, 0.0)
        return np.asarray(self.shortage_cost)

    def subset(self, idx: ArrayLike) -> CostParams:
        i = np.asarray(idx)
        return CostParams(self.unit_cost[i], np.asarray(self.holding_rate)[i], np.asarray(self.ordering_cost)[i],
                          np.asarray(self.shortage_cost)[i],
                          None if self.unit_price is None else self.unit_price[i])


# ================================================================================================================
# result
# ================================================================================================================


@dataclass(frozen=True)
class SimulationResult:
    """What one simulation recorded. Per-series arrays are (n_series,) over the measured days.

    Attributes:
        policy: the schedule's name.
        n_days: simulated days; measure_from: first measured day; measured_days = n_days - measure_from.
        lost_sales: True if unmet demand was lost, False if backordered.
        demanded, served, short: units; short = demanded - served (lost units under lost sales).
        stockout_days: days with unmet demand; empty_days: days closing with nothing on hand.
        first_stockout_day: first measured day with unmet demand (-1 = none).
        cycles, cycles_ok: completed replenishment cycles and those without a stock-out (see module doc).
        on_hand_sum: closing on-hand units summed over the measured days.
        orders, units_ordered, units_received: orders placed, units ordered, units received.
        order_sum, order_sumsq, demand_sum, demand_sumsq: sums of daily order quantity / demand and squares.
        n_weeks, week_order_sum, week_order_sumsq, week_demand_sum, week_demand_sumsq: the same over whole 7-day
            buckets from measure_from (the incomplete last bucket is left out).
        end_on_hand, end_pipeline, end_backorders: state after the last day (pipeline includes orders due after
            the horizon).
        unit_cost, holding_cost, ordering_cost, shortage_cost, lost_margin: per series, money.
        daily_totals: {name: (n_days,)} sums over series per day: demand, served, short, on_hand_units,
            on_hand_value, orders, units_ordered, receipts (all days, measured or not).
        daily: {name: (n_series, n_days) float32} per-series daily matrices requested with ``record_daily``.
    """

    policy: str
    n_days: int
    measure_from: int
    lost_sales: bool
    demanded: FloatArray
    served: FloatArray
    short: FloatArray
    stockout_days: IntArray
    empty_days: IntArray
    first_stockout_day: IntArray
    cycles: IntArray
    cycles_ok: IntArray
    on_hand_sum: FloatArray
    orders: IntArray
    units_ordered: FloatArray
    units_received: FloatArray
    order_sum: FloatArray
    order_sumsq: FloatArray
    demand_sum: FloatArray
    demand_sumsq: FloatArray
    n_weeks: int
    week_order_sum: FloatArray
    week_order_sumsq: FloatArray
    week_demand_sum: FloatArray
    week_demand_sumsq: FloatArray
    end_on_hand: FloatArray
    end_pipeline: FloatArray
    end_backorders: FloatArray
    unit_cost: FloatArray
    holding_cost: FloatArray
    ordering_cost: FloatArray
    shortage_cost: FloatArray
    lost_margin: FloatArray
    daily_totals: dict[str, FloatArray] = field(default_factory=dict)
    daily: dict[str, NDArray[np.float32]] = field(default_factory=dict)

    @property
    def n_series(self) -> int:
        return int(self.demanded.size)

    @property
    def measured_days(self) -> int:
        return self.n_days - self.measure_from

    @property
    def fill_rate(self) -> FloatArray:
        """Per series units served / units demanded (NaN without demand)."""
        with np.errstate(all="ignore"):
            return np.where(self.demanded > 0, self.served / self.demanded, np.nan)

    @property
    def cycle_service_level(self) -> FloatArray:
        """Per series share of completed replenishment cycles without a stock-out (NaN without a cycle)."""
        with np.errstate(all="ignore"):
            return np.where(self.cycles > 0, self.cycles_ok / self.cycles, np.nan)

    @property
    def avg_on_hand(self) -> FloatArray:
        return self.on_hand_sum / max(self.measured_days, 1)

    @property
    def avg_inventory_value(self) -> FloatArray:
        return self.avg_on_hand * self.unit_cost

    @property
    def cogs(self) -> FloatArray:
        return self.served * self.unit_cost

    @staticmethod
    def _var(s: FloatArray, ss: FloatArray, n: int) -> FloatArray:
        if n <= 0:
            return np.full(s.shape, np.nan)
        m = s / n
        return np.maximum(ss / n - m * m, 0.0)

    @property
    def order_variance(self) -> FloatArray:
        """Variance (ddof 0) of the daily ordered quantity (0 on days without an order)."""
        return self._var(self.order_sum, self.order_sumsq, self.measured_days)

    @property
    def demand_variance(self) -> FloatArray:
        return self._var(self.demand_sum, self.demand_sumsq, self.measured_days)

    @property
    def bullwhip(self) -> FloatArray:
        """Var(daily order quantity) / Var(daily demand) per series (NaN when demand does not vary)."""
        with np.errstate(all="ignore"):
            dv = self.demand_variance
            return np.where(dv > 0, self.order_variance / dv, np.nan)

    @property
    def bullwhip_weekly(self) -> FloatArray:
        """The same ratio on weekly totals (fair to policies that review weekly)."""
        qv = self._var(self.week_order_sum, self.week_order_sumsq, self.n_weeks)
        dv = self._var(self.week_demand_sum, self.week_demand_sumsq, self.n_weeks)
        with np.errstate(all="ignore"):
            return np.where(dv > 0, qv / dv, np.nan)

    @property
    def total_cost(self) -> FloatArray:
        return self.holding_cost + self.ordering_cost + self.shortage_cost


# ================================================================================================================
# engine
# ================================================================================================================


def _round_packs(raw: FloatArray, moq: FloatArray, pack: FloatArray, idx: IntArray, simple: bool) -> FloatArray:
    """Round order needs up to the MOQ and whole packs: ``round_to_pack(raw, moq[idx], pack[idx])``, same rule."""
    if simple:
        return np.ceil(raw - _QTY_RTOL * np.maximum(1.0, raw))
    return np.asarray(round_to_pack(raw, moq[idx], pack[idx]))


class _LeadTimes:
    """The lead-time model of a block of series, compiled for fast inverse-CDF draws."""

    def __init__(self, model: LeadTimeModel, sl: slice, seed: int) -> None:
        self.seed = seed
        self.first = sl.start
        self.width = model.pmf.shape[1]
        cdf = np.cumsum(model.pmf, axis=1)
        cdf[:, -1] = 1.0
        # rows stacked with an offset of the row index: one searchsorted serves every group
        self.flat = (cdf + np.arange(cdf.shape[0])[:, None]).ravel()
        point = model.pmf.max(axis=1) >= 1.0 - 1e-12
        self.fixed = np.maximum(model.pmf.argmax(axis=1), 1) if bool(np.all(point)) else None  # deterministic
        self.group_int = model.group[sl]
        self.group = self.group_int.astype(np.float64)
        names = np.array(model.group_names)
        self.disruptions = [(np.isin(names, w.groups), w.start, w.end, w.factor) for w in model.disruptions]
        self.outages = sorted(((np.isin(names, w.groups), w.start, w.end) for w in model.outages),
                              key=lambda x: x[1])

    def arrival(self, t: int | IntArray, idx: IntArray) -> IntArray:
        """Arrival days of orders placed on days ``t`` by the block's series ``idx``."""
        g_int = self.group_int[idx]
        if self.fixed is not None:
            lt = self.fixed[g_int]
        else:
            u = uniforms(self.seed, t, self.first + idx)
            lt = np.searchsorted(self.flat, self.group[idx] + u, side="right") - g_int * self.width
            lt = np.clip(lt, 1, self.width - 1).astype(np.int64)
        t = np.asarray(t, dtype=np.int64)
        for sel, start, end, factor in self.disruptions:
            hit = sel[g_int] & (t >= start) & (t < end)
            if np.any(hit):
                lt = np.where(hit, np.maximum(np.rint(lt * factor), 1).astype(np.int64), lt)
        a = t + lt
        for sel, start, end in self.outages:
            hit = sel[g_int] & (a >= start) & (a < end)
            a = np.where(hit, end, a)
        return a

    def max_offset(self, n_days: int) -> int:
        """Largest possible arrival day - order day (capped at the horizon + 1): the ring buffer's length."""
        lmax = self.width - 1
        f = max([1.0, *(d[3] for d in self.disruptions)])
        bound = math.ceil(max(lmax, 1) * f) + sum(max(o[2] - o[1], 0) for o in self.outages) + 1
        return min(bound, n_days + 1)


_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def uniforms(seed: int, day: int | ArrayLike, series: ArrayLike) -> FloatArray:
    """Counter-based uniforms in [0, 1): a splitmix64 hash of (seed, day, global series index).

    The lead time of the order series ``i`` places on day ``t`` is the inverse CDF of its distribution at
    ``uniforms(seed, t, i)``: the same for every policy (common random numbers), for any block size, and
    available for any (day, series) without drawing a stream in order (the perfect-foresight bound reads the
    next order's lead time).
    """
    with np.errstate(over="ignore"):
        key = np.uint64((int(seed) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & 0xFFFFFFFFFFFFFFFF)
        z = (np.asarray(day, dtype=np.uint64) << np.uint64(32)) + np.asarray(series, dtype=np.uint64)
        z = z ^ key
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


_TOTALS = ("demand", "served", "short", "on_hand_units", "on_hand_value", "orders", "units_ordered", "receipts")
_SERIES_F = ("demanded", "served", "short", "on_hand_sum", "units_ordered", "units_received", "order_sumsq",
             "demand_sumsq", "week_order_sum", "week_order_sumsq", "week_demand_sum", "week_demand_sumsq",
             "end_on_hand", "end_pipeline", "end_backorders")
_SERIES_I = ("stockout_days", "empty_days", "orders", "cycles", "cycles_ok", "first_stockout_day")

#: Series simulated together: blocks this size keep the day's working set in the CPU caches.
DEFAULT_BLOCK = 4096


def simulate(
    demand: ArrayLike,
    policy: PolicySchedule,
    lead_times: LeadTimeModel,
    initial: InitialState,
    *,
    costs: CostParams,
    rng_seed: int,
    lost_sales: bool = True,
    measure_from: int = 0,
    record_daily: bool | Sequence[str] = False,
    block_size: int = DEFAULT_BLOCK,
    forced_orders: ForcedOrders | None = None,
) -> SimulationResult:
    """Replay ``demand`` (n_series, n_days) day by day under ``policy``; see the module doc for the day's steps.

    Args:
        demand: (n_series, n_days) non-negative units demanded per day (on the demo: the true, uncensored demand).
        policy: parameters per planning date (:class:`PolicySchedule`).
        lead_times: per-series lead-time distributions and scenario windows (:class:`LeadTimeModel`).
        initial: opening stock and pipeline (:class:`InitialState`).
        costs: unit cost, holding rate, ordering and shortage costs (:class:`CostParams`).
        rng_seed: seed of the lead-time draws (same seed -> same result; common across policies).
        lost_sales: True (default): unmet demand is lost. False: backordered (for known-answer checks).
        measure_from: first day counted in the results (earlier days are warm-up).
        record_daily: True, or a subset of :data:`DAILY_FIELDS`: keep those per-series daily matrices.
        block_size: series simulated together (results do not depend on it; it only trades loop overhead for
            cache locality).
        forced_orders: orders fixed in advance (:class:`ForcedOrders`), replacing the rule's on their days.
    """
    dem = np.asarray(demand)
    if dem.ndim != 2:
        raise ValueError(f"demand must be (n_series, n_days), got shape {dem.shape}")
    n, n_days = dem.shape
    for what, m in (("policy", policy.n_series), ("initial", initial.on_hand.size), ("costs", costs.n_series),
                    ("lead_times", lead_times.n_series)):
        if m != n:
            raise ValueError(f"{what} has {m} series, demand has {n}")
    if n == 0 or n_days == 0:
        raise ValueError("demand must have at least one series and one day")
    if not 0 <= measure_from < n_days:
        raise ValueError("measure_from must be in [0, n_days)")
    if not (np.all(np.isfinite(dem)) and np.all(dem >= 0)):
        raise ValueError("demand must be finite and non-negative")
    keep = set(DAILY_FIELDS) if record_daily is True else set(record_daily or ())
    if keep - set(DAILY_FIELDS):
        raise ValueError(f"record_daily: unknown fields {sorted(keep - set(DAILY_FIELDS))}")
    if block_size < 1:
        raise ValueError("block_size must be >= 1")
    if forced_orders is not None and forced_orders.series.size and (
            forced_orders.series.max() >= n or forced_orders.day.max() >= n_days):
        raise ValueError(f"forced orders outside the {n} series x {n_days} days simulated")

    parts = [
        _run_block(dem, policy, lead_times, initial, costs, slice(i, min(i + block_size, n)), rng_seed=rng_seed,
                   lost_sales=lost_sales, measure_from=measure_from, keep=keep,
                   forced={} if forced_orders is None else forced_orders.for_block(slice(i, min(i + block_size, n))))
        for i in range(0, n, block_size)
    ]
    cat = {name: np.concatenate([p[name] for p in parts]) for name in (*_SERIES_F, *_SERIES_I)}
    totals = {k: np.sum([p["totals"][k] for p in parts], axis=0) for k in _TOTALS}
    daily = {k: np.concatenate([p["daily"][k] for p in parts]) for k in keep}
    unit_cost = costs.unit_cost.copy()
    short = cat["short"]
    return SimulationResult(
        policy=policy.name,
        n_days=n_days,
        measure_from=measure_from,
        lost_sales=lost_sales,
        demand_sum=cat["demanded"].copy(),
        order_sum=cat["units_ordered"].copy(),
        n_weeks=parts[0]["n_weeks"] if parts else 0,
        unit_cost=unit_cost,
        holding_cost=cat["on_hand_sum"] * unit_cost * np.asarray(costs.holding_rate) / 365.0,
        ordering_cost=cat["orders"] * np.asarray(costs.ordering_cost),
        shortage_cost=short * np.asarray(costs.shortage_cost),
        lost_margin=short * costs.unit_margin if lost_sales else np.zeros(n),
        daily_totals=totals,
        daily=daily,
        **cat,
    )


def _run_block(
    dem_all: NDArray,
    policy: PolicySchedule,
    lead_model: LeadTimeModel,
    initial: InitialState,
    costs: CostParams,
    sl: slice,
    *,
    rng_seed: int,
    lost_sales: bool,
    measure_from: int,
    keep: set[str],
    forced: dict[int, tuple[IntArray, FloatArray]] | None = None,
) -> dict:
    """The day loop for the series ``sl``; returns the per-series accumulators and the block's daily totals."""
    dem_t = np.ascontiguousarray(dem_all[sl].T, dtype=np.float64)  # (n_days, n): day rows are contiguous
    n_days, n = dem_t.shape
    lt = _LeadTimes(lead_model, sl, rng_seed)
    width = lt.max_offset(n_days)
    in_transit = None if initial.in_transit is None else initial.in_transit[sl]
    if in_transit is not None:
        width = max(width, min(in_transit.shape[1], n_days))
    ring = np.zeros((width, n))
    if in_transit is not None:
        it = in_transit[:, :width]  # beyond the horizon: never arrives, stays in the pipeline
        ring[: it.shape[1]] = it.T
    ring_flat = ring.reshape(-1)
    on_hand = initial.on_hand[sl].copy()
    backlog = initial.backorders[sl].copy() if not lost_sales else np.zeros(n)
    pipeline = ring.sum(axis=0) if in_transit is None else in_transit.sum(axis=1)

    oracle = policy.rule == "perfect_foresight"
    if oracle:
        cum = np.zeros((n_days + 1, n))
        np.cumsum(dem_t, axis=0, out=cum[1:])

    # per-series accumulators over the measured days
    acc = {name: np.zeros(n) for name in _SERIES_F}
    acc.update({name: np.zeros(n, dtype=np.int64) for name in _SERIES_I})
    acc["first_stockout_day"].fill(-1)
    demanded, served_s, short_s, on_hand_sum = acc["demanded"], acc["served"], acc["short"], acc["on_hand_sum"]
    units_ordered, units_received = acc["units_ordered"], acc["units_received"]
    order_sumsq, demand_sumsq = acc["order_sumsq"], acc["demand_sumsq"]
    stockout_days, empty_days, orders = acc["stockout_days"], acc["empty_days"], acc["orders"]
    cycles, cycles_ok, first_so = acc["cycles"], acc["cycles_ok"], acc["first_stockout_day"]
    wk_q, wk_d = np.zeros(n), np.zeros(n)
    n_weeks = 0
    in_cycle = np.zeros(n, dtype=bool)
    cycle_short = np.zeros(n, dtype=bool)
    daily = {k: np.zeros((n_days, n), dtype=np.float32) for k in keep}
    totals = {k: np.zeros(n_days) for k in _TOTALS}
    unit_cost = costs.unit_cost[sl]

    plan_of_day = policy.plan_index(n_days)
    offset = policy.review_offset[sl].astype(np.int64)
    simple_packs = bool(np.all(policy.pack_size[:, sl] == 1.0) and np.all(policy.moq[:, sl] <= 0.0))
    cur_plan = -1
    q_today = np.zeros(n)

    for t in range(n_days):
        # ---------------------------------------------------------------- 1. receipts
        slot = t % width
        arr = ring[slot].copy()
        ring[slot] = 0.0
        got = arr > 0
        any_got = bool(got.any())
        if any_got:
            on_hand += arr
            pipeline -= arr
            if not lost_sales:
                fill = np.minimum(on_hand, backlog)
                on_hand -= fill
                backlog -= fill
        # ---------------------------------------------------------------- 2. demand
        d = dem_t[t]
        served = np.minimum(on_hand, d)
        on_hand -= served
        short = d - served
        if not lost_sales:
            backlog += short
        has_short = short > 0
        # ---------------------------------------------------------------- 3. review and order
        k = plan_of_day[t]
        if k != cur_plan:
            cur_plan = k
            p_s = policy.reorder_point[k, sl]
            p_big = policy.order_up_to[k, sl] if policy.order_up_to is not None else None
            p_moq, p_pack = policy.moq[k, sl], policy.pack_size[k, sl]
            p_r = policy.review_period[k, sl].astype(np.int64)
            next_review = t + (offset - t) % p_r  # first day >= t with (day - offset) % R == 0
            if policy.rule == "s_nQ":
                p_qeff = np.asarray(round_to_pack(policy.order_quantity[k, sl], p_moq, p_pack))
        q_today.fill(0.0)
        review = np.flatnonzero(next_review == t)
        if review.size:
            next_review[review] += p_r[review]
            ip = on_hand[review] + pipeline[review] - backlog[review]
            if oracle:
                idx = review
                a = lt.arrival(t, idx)
                t_next = next_review[idx]
                a_next = np.where(t_next < n_days, lt.arrival(np.minimum(t_next, n_days - 1), idx), n_days)
                hi = np.clip(a_next, t + 1, n_days)
                need_units = cum[hi, idx] - cum[t + 1, idx]
                raw = need_units - ip
                ok = raw > _QTY_RTOL * np.maximum(1.0, need_units)
                idx, raw, a = idx[ok], raw[ok], a[ok]
                qty = _round_packs(raw, p_moq, p_pack, idx, simple_packs)
            else:
                trig = ip <= p_s[review]
                idx, ip = review[trig], ip[trig]
                if policy.rule == "s_S":
                    raw = p_big[idx] - ip
                    ok = raw > _QTY_RTOL * np.maximum(1.0, np.abs(p_big[idx]))
                    idx, raw = idx[ok], raw[ok]
                    qty = _round_packs(raw, p_moq, p_pack, idx, simple_packs)
                else:
                    qe = p_qeff[idx]
                    qty = qe * (np.floor((p_s[idx] - ip) / qe) + 1.0)
                a = lt.arrival(t, idx)
        else:
            idx, qty, a = np.empty(0, dtype=np.int64), np.empty(0), np.empty(0, dtype=np.int64)
        if forced and t in forced:  # a planner's decision replaces the rule's order of the day
            f_idx, f_qty = forced[t]
            keep_rule = ~np.isin(idx, f_idx)
            idx, qty, a = idx[keep_rule], qty[keep_rule], a[keep_rule]
            placed = f_qty > 0
            f_idx, f_qty = f_idx[placed], f_qty[placed]
            if f_idx.size:
                idx = np.concatenate([idx, f_idx])
                qty = np.concatenate([qty, f_qty])
                a = np.concatenate([a, lt.arrival(t, f_idx)])
        if idx.size:
            q_today[idx] = qty
            pipeline[idx] += qty
            due = a < n_days
            ring_flat[(a[due] % width) * n + idx[due]] += qty[due]  # (slot, series) pairs are unique
        # ---------------------------------------------------------------- 4. record
        if keep:
            if "on_hand" in keep:
                daily["on_hand"][t] = on_hand
            if "short" in keep:
                daily["short"][t] = short
            if "orders" in keep:
                daily["orders"][t] = q_today
            if "receipts" in keep:
                daily["receipts"][t] = arr
        totals["demand"][t] = d.sum()
        totals["served"][t] = served.sum()
        totals["short"][t] = short.sum()
        totals["on_hand_units"][t] = on_hand.sum()
        totals["on_hand_value"][t] = on_hand @ unit_cost
        totals["units_ordered"][t] = q_today.sum()
        totals["orders"][t] = np.count_nonzero(q_today)
        totals["receipts"][t] = arr.sum()
        if t < measure_from:
            continue
        demanded += d
        served_s += served
        short_s += short
        demand_sumsq += d * d
        on_hand_sum += on_hand
        stockout_days += has_short
        empty_days += on_hand <= 0
        np.copyto(first_so, t, where=has_short & (first_so < 0))
        orders += q_today > 0
        units_ordered += q_today
        order_sumsq += q_today * q_today
        units_received += arr
        # cycles: a receipt day closes the running cycle (if one was open) and opens a new one
        if any_got:
            closes = got & in_cycle
            cycles += closes
            cycles_ok += closes & ~cycle_short
            cycle_short[got] = False
            in_cycle |= got
        cycle_short |= has_short & in_cycle
        wk_q += q_today
        wk_d += d
        if (t - measure_from) % WEEK == WEEK - 1:
            n_weeks += 1
            acc["week_order_sum"] += wk_q
            acc["week_order_sumsq"] += wk_q * wk_q
            acc["week_demand_sum"] += wk_d
            acc["week_demand_sumsq"] += wk_d * wk_d
            wk_q.fill(0.0)
            wk_d.fill(0.0)

    acc["end_on_hand"][:] = on_hand
    acc["end_pipeline"][:] = pipeline
    acc["end_backorders"][:] = backlog
    acc["n_weeks"] = n_weeks
    acc["totals"] = totals
    acc["daily"] = {k: np.ascontiguousarray(v.T) for k, v in daily.items()}
    return acc
