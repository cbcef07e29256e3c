"""Safety stock across the DC-to-store network: how much protection the DC holds and how much its stores hold.

Each location's reorder point is first set on its own (its lead-time demand samples, its service target). For a
store the target is the customer's; for a DC it is only a means: a DC stock-out does not lose a sale, it delays
the stores' replenishment, which their own stock then has to cover. The placement below chooses the DC's reorder
point per product to meet the stores' targets at the least holding cost, with the **METRIC** approximation
[Sherbrooke 1968; Axsater, *Inventory Control*, 3rd ed., ch. 10]:

1. For each candidate DC reorder point ``r`` (the DC's lead-time-demand quantiles at ``candidate_levels`` not
   below ``min_level``, plus the reorder point it has on its own), the DC's expected backorders under its
   (r, Q) policy, from its own samples, with the inventory position uniform on (r, r + Q]:
   ``E[B](r) = 1/Q sum_{y=r+1}^{r+Q} E[(D - y)+]`` (evaluated at 8 evenly spaced y); the mean wait of a store
   request is ``W = E[B] / lambda`` (Little's law; ``lambda`` = the DC's daily demand forecast).
2. **At the coming peak.** METRIC is a stationary model: its mean wait is the wait of a DC whose demand stays as
   it is. A seasonal item whose season peaks within the DC's lead time runs out for weeks at the peak, far beyond
   that mean (measured: the placement without this step moved ~117k of DC stock into ~41k of store stock on the
   demo, and the DC then ran dry through the peaks). So each DC's backorders and wait are evaluated at
   ``peak_ratio`` x its demand: the busiest 4 weeks (``PEAK_WINDOW_DAYS``) of its forecast that start within its
   protection interval, over the interval's rate, at least 1 (``ml.policy.run._peak_ratio``): the demand the
   orders the DC places before the next plans can arrive have to meet. Flat demand: ratio 1, plain METRIC.
3. Each store fed by that DC sees its replenishment lead time grow from ``P`` to ``P + W``. Its lead-time
   demand samples are stretched to ``(P + W) / P`` intervals (``inventory_math.stretched_interval``: the added
   days drawn as whole independent intervals of its own draws, before the arrival, so a customer order keeps
   its size) and its reorder point re-set at its own target. Without the demand before arrival
   (``lead_samples``) the samples are scaled by the factor instead.
4. The DC's ``r`` minimises ``h_dc r + sum_stores h_s r_s(W(r))`` (holding cost per unit at each location:
   unit cost x holding rate), with a store's reorder point over the stretched interval estimated as
   ``mu f + (r_s - mu) sqrt(f)`` (``mu`` its mean demand over its interval, ``f = (P + W) / P``): the mean grows
   with the interval, the safety stock with its square root. Through policy-1.7 it was ``r_s f``, which for a
   slow store item (one unit of stock for a sale a month, a reorder point that stays one unit over a week's wait)
   counted seven units for a week's wait and made DCs keep their top quantile, up to a year of a $300 spare
   part's demand on the default demo. Ties go to the larger DC reorder point.

On by default (``PolicyConfig.multi_echelon``), with the DC never below the 0.9 quantile of its lead-time
demand (``echelon_min_dc_level``: METRIC's mean wait leaves out the wait's spread), and the DC's samples read as
its stores' whole order lots (:func:`with_store_order_lots`, ``dc_demand_in_store_lots``). Measured in the network
replay (docs/backtest.md, 2026-12-06), against the textbook matched on both fill measures: the default demo 1.3%
less with each location on its own target, 12.3% less with the placement (stores 117.5k, DC 334.1k; fill 0.991 /
0.992 against 0.992 / 0.987 promised); the second demo company 8.9% less without, 8.4% less with it (0.989 /
0.990 against 0.992 / 0.989).

**How a DC orders** (``PolicyConfig.echelon_dc_ordering``, on by default; :func:`echelon_ordering_terms`): on its
**echelon** inventory position [Clark and Scarf 1960; Axsater, *Inventory Control*, 3rd ed., ch. 5], its own
position plus its stores' stock (on hand and in transit), compared with its reorder point after the stock its
stores' plans hold on average (``echelon_store_target_units``: each store's ``r + Q / 2``, the midpoint of its
(s, S) cycle) is taken off. Its reorder point and order-up-to level are the ones placed above; what changes is the
position they are read against. A DC on its own position sees its stores only when they order: after a season, a
launch or a depleted start, stores run low together and empty the DC before its next order arrives. On the
echelon position the DC orders as soon as its stores fall below their planned stock. A DC with nothing on hand or
on order reads the lower of its own and its echelon position (:func:`ordering_position`, policy-1.13): its stores'
surplus cannot serve the store that is short. Written to
``ml.inventory_policy`` as ``echelon_position_units`` and ``ordering_position_units`` (the position the rule
reads; the DC's own is still ``inventory_position_units``); the purchase proposal tops ``ordering_position_units``
up to the order-up-to level, and its reason says so. The network replay reads the same column
(``PolicySchedule.echelon_offset``).

Stores keep their targets, so the customer service promised is unchanged; what moves is where the stock sits.
The promise each store row then reports (``expected_fill_rate``) is evaluated on the stretched samples, so it
includes the wait at the DC. The stretch and the wait are written to ``ml.inventory_policy``
(``echelon_wait_days``) and the DC rows' reorder point before placement is kept
(``reorder_point_before_placement``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ml.policy import inventory_math as im

__all__ = ["Placement", "echelon_ordering_terms", "expected_backorders_from_samples", "ordering_position",
           "place_safety_stock"]

FloatArray = NDArray[np.float64]

#: DC lead-time-demand quantiles tried as its reorder point (plus its own reorder point)
CANDIDATE_LEVELS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99)
#: the window (days) of a DC's busiest forecast demand its backorders are evaluated at (``peak_ratio``)
PEAK_WINDOW_DAYS = 28
BASIS_PLACEMENT = "multi_echelon"


@dataclass(frozen=True)
class Placement:
    """Result per policy row.

    Attributes:
        reorder_point: the placed reorder point (rows not in a DC-store pair: unchanged).
        stretch: factor applied to the row's lead-time-demand samples (stores: (P + W) / P; others 1).
        wait_days: expected wait at the DC (stores: of their DC; DC rows: of their requests); NaN outside pairs.
        changed: rows whose reorder point the placement set.
        dc_level: DC rows: the chosen DC quantile level (NaN where the DC kept its own reorder point).
    """

    reorder_point: FloatArray
    stretch: FloatArray
    wait_days: FloatArray
    changed: NDArray[np.bool_]
    dc_level: FloatArray


def expected_backorders_from_samples(samples: FloatArray, r: FloatArray, q: FloatArray, points: int = 8
                                     ) -> FloatArray:
    """E[B] of (r, Q) policies from lead-time-demand samples (rows), the inventory position uniform on (r, r + Q].

    ``1/Q sum_{y=r+1}^{r+Q} E[(D - y)+]``, the sum replaced by the mean over ``points`` evenly spaced y (exact when
    ``points == Q``; ``E[(D - r)+]`` where Q <= 1), each E[(D - y)+] from
    :func:`~ml.policy.inventory_math.expected_shortage_from_samples`."""
    s = np.asarray(samples, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    qq = np.maximum(np.asarray(q, dtype=np.float64), 0.0)
    out = np.zeros(s.shape[0])
    for k in range(points):
        # midpoints of ``points`` equal slices of [r + 1/2, r + Q + 1/2]: exactly y = r+1 .. r+Q when points == Q
        y = r + np.where(qq > 1.0, 0.5 + qq * (k + 0.5) / points, 0.0)
        out += im.expected_shortage_from_samples(s, y)
    return out / points


def echelon_ordering_terms(keys: pl.DataFrame, reorder_point: FloatArray, q: FloatArray, position: FloatArray,
                           stock: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per DC row with planned stores (NaN elsewhere): (the stock its stores' plans hold on average, the sum over
    its stores of ``r + Q / 2``, the midpoint of their (s, S) cycle; its echelon position, its own inventory
    position (``position``) plus its stores' ``stock``: on hand and in transit from the DC, not the requests it
    has not shipped yet, which are still in its own stock). A DC that orders on its echelon position compares
    ``echelon position - stores' stock`` with its own reorder point [Clark and Scarf 1960]: its stores running low
    make it order before their requests arrive. NaN position where the DC's or a store's position is unknown."""
    n = keys.height
    target, echelon_position = np.full(n, np.nan), np.full(n, np.nan)
    store, dc = _dc_store_pairs(keys)
    if store.size == 0:
        return target, echelon_position
    r, qq, pos, held = (np.asarray(a, dtype=np.float64) for a in (reorder_point, q, position, stock))
    dcs, dc_pos = np.unique(dc, return_inverse=True)
    target[dcs] = np.bincount(dc_pos, weights=r[store] + qq[store] / 2.0, minlength=dcs.size)
    echelon_position[dcs] = pos[dcs] + np.bincount(dc_pos, weights=held[store], minlength=dcs.size)
    return target, echelon_position


def ordering_position(own_position: FloatArray, echelon_reading: FloatArray) -> FloatArray:
    """The position a DC on echelon ordering compares with its reorder point: its echelon position less its stores'
    planned stock (``echelon_reading``), except that a DC with nothing of its own, no stock and nothing on order
    beyond what it owes its stores (``own_position <= 0``), reads the lower of the two.

    Echelon stock assumes the stores' stock can be rebalanced. Without transfers between stores it cannot: stores
    holding a launch's or a season's first lots can keep the echelon above the reorder point while the DC stands
    empty and its other stores wait (docs/backtest.md, policy-1.13). An empty DC with nothing coming cannot serve
    any store's next request, whatever the others hold, so it orders as it would on its own position. Above zero
    the echelon reading decides, and a DC whose stores hold more than planned keeps waiting. The same rule in
    production and in the replay (:func:`ml.simulation.network.simulate_network`)."""
    own = np.asarray(own_position, dtype=np.float64)
    reading = np.asarray(echelon_reading, dtype=np.float64)
    return np.where(own <= 0.0, np.minimum(own, reading), reading)


#: seed of the lot draws :func:`with_store_order_lots` adds (the policy is deterministic)
LOT_SEED = 0x5107_107


def _dc_store_pairs(keys: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(store row, its DC's row) of every store whose product is also planned at the DC it is replenished from."""
    idx = keys.select("product_id", "location_id", "replenished_from").with_row_index("_i")
    pairs = idx.filter(pl.col("replenished_from").is_not_null()).join(
        idx.select(pl.col("product_id"), pl.col("location_id").alias("replenished_from"), pl.col("_i").alias("_dc")),
        on=["product_id", "replenished_from"], how="inner")
    return pairs["_i"].to_numpy().astype(np.int64), pairs["_dc"].to_numpy().astype(np.int64)


def with_store_order_lots(keys: pl.DataFrame, samples: FloatArray, q: FloatArray, *,
                          daily_demand: FloatArray | None = None, seed: int = LOT_SEED) -> FloatArray:
    """Each DC row's lead-time-demand samples as its stores' requests rather than their customers' units.

    A DC's samples are its stores' customer demand over its interval. But a store orders whole lots of ``q_s``,
    and the DC sees two things the customer units do not show:

    - **the rounding of the lots**: what reaches the DC over the interval is ``q_s floor((D_s + U_s) / q_s)``,
      the store's position ``U_s`` anywhere in its cycle: its demand ``D_s`` plus an error ``q_s (B - f)`` with
      ``f`` the fraction of a lot left over (uniform on [0, 1)) and ``B`` a Bernoulli(``f``) draw (whether the
      next lot is already requested): mean 0, variance ``q_s^2 / 6``, one independent draw per store;
    - **the undershoot**: the DC's position does not reach its reorder point exactly; the request that takes it
      there overshoots it by part of a lot (renewal theory: uniform on 0 .. X - 1 for a request of X units, the
      request size-biased, i.e. store ``s`` with probability proportional to its demand, ``daily_demand``; the
      undershoot correction of (s, Q) policies under compound demand, Silver, Pyke & Peterson 1998, ch. 7). Its
      mean, about half the demand-weighted lot, is stock the DC's reorder point must add to protect what it
      promises. Left out when ``daily_demand`` is None.

    Samples are floored at 0, so a DC whose stores order a week or three of demand at a time plans for the lumpy
    requests it gets, and its promise (``expected_fill_rate``) is read on them. Other rows are returned as they
    are."""
    s = np.asarray(samples, dtype=np.float64)
    store, dc = _dc_store_pairs(keys)
    lots = np.asarray(q, dtype=np.float64)[store] if store.size else np.zeros(0)
    if not (lots > 1.0).any() or s.ndim != 2:
        return s
    k = s.shape[1]
    rng = np.random.default_rng(np.random.SeedSequence([seed, k]))
    use = lots > 1.0
    f = rng.random((int(use.sum()), k))
    b = rng.random((int(use.sum()), k)) < f
    # each DC row's sum of its stores' lot errors, in the stores' order (a sorted, segmented sum)
    rows, member_of = np.unique(dc[use], return_inverse=True)
    by_dc = np.argsort(member_of, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(member_of[by_dc]) != 0])
    err_rows = np.add.reduceat((lots[use][:, None] * (b - f))[by_dc], starts, axis=0)
    del f, b
    if daily_demand is not None:
        d = np.maximum(np.asarray(daily_demand, dtype=np.float64)[store], 0.0)
        under = np.zeros((rows.size, k))
        row_of = {int(x): j for j, x in enumerate(rows)}
        order = np.argsort(dc, kind="stable")
        bounds = np.flatnonzero(np.r_[True, np.diff(dc[order]) != 0, True])
        for a, z in zip(bounds[:-1], bounds[1:], strict=True):  # one DC row (its stores) at a time
            members = order[a:z]
            w = d[members]
            if not (lots[members] > 1.0).any() or w.sum() <= 0:
                continue
            pick = members[np.minimum(np.searchsorted(np.cumsum(w) / w.sum(), rng.random(k), side="right"),
                                      members.size - 1)]
            under[row_of[int(dc[members[0]])]] = np.floor(np.maximum(lots[pick], 1.0) * rng.random(k))
        err_rows += under
    out = s.copy()
    out[rows] = np.maximum(s[rows] + err_rows, 0.0)
    return out


def place_safety_stock(
    keys: pl.DataFrame,
    samples: FloatArray,
    reorder_point: FloatArray,
    q: FloatArray,
    *,
    daily_demand: FloatArray,
    protection_days: FloatArray,
    holding_cost: FloatArray,
    is_fill_rate: NDArray[np.bool_],
    target: FloatArray,
    csl_floor: float,
    min_level: float = 0.5,
    candidate_levels: tuple[float, ...] = CANDIDATE_LEVELS,
    fixed: NDArray[np.bool_] | None = None,
    peak_ratio: FloatArray | None = None,
    lead_samples: FloatArray | None = None,
) -> Placement:
    """Place safety stock between each DC and its stores (module doc).

    Args:
        keys: one row per policy row: product_id, location_id, replenished_from (null for locations that buy
            from suppliers).
        samples: (n, k) lead-time-demand samples of each row (over its own lead time + review period).
        reorder_point, q: each row's reorder point set on its own, and its order quantity.
        daily_demand: daily demand forecast per row (the DC's is its arrival rate of requests).
        protection_days: lead time + review period of each row (the interval its samples cover).
        holding_cost: cost of holding one unit for a year at the row's location.
        is_fill_rate, target, csl_floor: each row's service metric and target (as for its own reorder point).
        min_level: lowest DC lead-time-demand quantile considered.
        fixed: rows whose reorder point was set on purpose rather than from their samples (the safety-stock
            guard's fallback): a store among them is scaled by the stretch instead of re-set on its samples, and a
            DC among them keeps its reorder point.
        lead_samples: (n, k) the demand before arrival from the same draws as ``samples`` (None: the stores are
            re-set with the continuous-review fill rate). A store's wait at the DC is added before arrival
            (``inventory_math.stretched_interval``).
        peak_ratio: per row, >= 1: the busiest ``PEAK_WINDOW_DAYS`` of its forecast that start within its
            protection interval, over the interval's rate (``ml.policy.run._peak_ratio``; None: 1). A DC's
            backorders and wait are evaluated at that rate (its samples and its demand rate scaled by it).
    """
    n = keys.height
    r0 = np.asarray(reorder_point, dtype=np.float64)
    out_r, stretch = r0.copy(), np.ones(n)
    wait, level = np.full(n, np.nan), np.full(n, np.nan)
    changed = np.zeros(n, dtype=bool)
    store, dc_of_store = _dc_store_pairs(keys)
    if store.size == 0:
        return Placement(out_r, stretch, wait, changed, level)
    dcs, dc_pos = np.unique(dc_of_store, return_inverse=True)
    s = np.asarray(samples, dtype=np.float64)
    rho = np.ones(dcs.size) if peak_ratio is None else np.maximum(np.asarray(peak_ratio, np.float64)[dcs], 1.0)
    lam = np.maximum(np.asarray(daily_demand, dtype=np.float64)[dcs], 0.0) * rho
    p_store = np.maximum(np.asarray(protection_days, dtype=np.float64)[store], 1e-9)
    h = np.asarray(holding_cost, dtype=np.float64)

    # candidate DC reorder points: quantiles of its samples, and its own reorder point
    levels = np.array([x for x in candidate_levels if x >= min_level], dtype=np.float64)
    cand = np.column_stack([im.ceil_units(np.quantile(s[dcs], lv, axis=1, method="higher")) for lv in levels]
                           + [r0[dcs]])
    n_c = cand.shape[1]
    cost = np.zeros((dcs.size, n_c))
    waits = np.zeros((dcs.size, n_c))
    # a store's reorder point over an interval stretched by f: its mean demand grows with f, its safety stock
    # (what r0 holds above the mean) with sqrt(f), as for demand that adds up independently over the days
    mu_store = s[store].mean(axis=1)
    ss_store = np.maximum(r0[store] - mu_store, 0.0)
    for j in range(n_c):
        eb = expected_backorders_from_samples(s[dcs] * rho[:, None], cand[:, j], np.asarray(q, dtype=np.float64)[dcs])
        w = np.where(lam > 0, eb / np.where(lam > 0, lam, 1.0), 0.0)
        waits[:, j] = w
        f = (p_store + w[dc_pos]) / p_store
        r_store = mu_store * f + ss_store * np.sqrt(f)
        store_cost = np.bincount(dc_pos, weights=h[store] * r_store, minlength=dcs.size)
        cost[:, j] = h[dcs] * cand[:, j] + store_cost
    # least cost; ties (within a cent a year) to the larger DC reorder point
    best_cost = cost.min(axis=1, keepdims=True)
    near = cost <= best_cost + 0.01
    choice = np.argmax(np.where(near, cand, -np.inf), axis=1)
    rows = np.arange(dcs.size)
    fx = np.zeros(n, dtype=bool) if fixed is None else np.asarray(fixed, dtype=bool)
    choice = np.where(fx[dcs], n_c - 1, choice)
    out_r[dcs] = cand[rows, choice]
    changed[dcs] = choice < n_c - 1
    level[dcs] = np.where(choice < n_c - 1, levels[np.minimum(choice, levels.size - 1)], np.nan)
    wait[dcs] = waits[rows, choice]

    # the stores re-set at their own targets on samples stretched by the chosen wait
    w_store = wait[dcs][dc_pos]
    f_store = (p_store + w_store) / p_store
    stretch[store] = f_store
    wait[store] = w_store
    moved = np.flatnonzero(f_store > 1.0 + 1e-9)
    if moved.size:
        rows_s = store[moved]
        lead = None
        if lead_samples is None:
            stretched = s[rows_s] * f_store[moved, None]
        else:
            stretched, lead = im.stretched_interval(s[rows_s], np.asarray(lead_samples)[rows_s], f_store[moved])
        r_s, _ = im.reorder_points(stretched, is_fill_rate=is_fill_rate[rows_s], target=np.asarray(target)[rows_s],
                                   q=np.asarray(q)[rows_s], csl_floor=csl_floor, lead_samples=lead)
        scaled = im.ceil_units(r0[rows_s] * f_store[moved])
        out_r[rows_s] = np.where(fx[rows_s], scaled, np.maximum(r_s, r0[rows_s]))
        changed[rows_s] = True
    return Placement(out_r, stretch, wait, changed, level)
