"""Multi-echelon safety-stock placement: guaranteed-service (GSM), serial stochastic-service (Clark-Scarf), METRIC.

Plain numpy/scipy, no I/O and no state, in the style of :mod:`ml.policy.inventory_math`. Three models:

1. **Guaranteed-service model (GSM)** [GW; SS ch. 6.3-6.4; SW]. Every node ``k`` quotes its customers an outbound
   service time ``S_k`` and is quoted an inbound service time ``SI_k`` (the largest outbound service time of its
   suppliers, or an external one at a source). It holds a base stock that covers demand over its *net lead time*

       NLT_k = SI_k + T_k - S_k >= 0,    T_k = processing (replenishment) time of k,

   with safety stock ``ss_k = z_k * sigma_k * sqrt(NLT_k)``. ``sigma_k`` is the per-period demand s.d. seen by k:
   external demand at customer-facing nodes, and for the others the root-sum-square of what their successors see
   (independent demands). Customer-facing nodes must quote ``S_k <= s_k`` (their maximum outbound service time).
   The problem is to choose the service times minimising ``sum_k h_k ss_k``. Solvers:

   * :func:`gsm_tree` - **exact** Graves-Willems dynamic programme over integer service times for any tree
     (serial, distribution, assembly or mixed; a forest is solved one component at a time).
   * :func:`gsm_two_level` - **exact**, vectorised over products: one DC feeding ``n_stores`` stores (arrays
     ``(n_products, n_stores)``). For a DC outbound service time ``S`` each store's best reply is closed form
     (``SI_j = S``, ``S_j = min(s_j, S + T_j)``), so the total cost is a function of ``S`` alone: the DC term
     ``h z sigma sqrt(SI + T - S)`` is concave in S, each store term ``h_j z_j sigma_j sqrt((S + T_j - s_j)+)`` is zero
     up to ``s_j - T_j`` and concave after it. The sum is concave between those breakpoints, so its minimum over
     the real interval ``[0, SI_dc + T_dc]`` is at ``0``, ``SI_dc + T_dc`` or some ``s_j - T_j``: evaluating those
     ``n_stores + 2`` candidates is exact, also for non-integer times (integer inputs give integer answers).

2. **Serial stochastic-service model** (Clark-Scarf), normal demand, echelon base-stock policies [CS; CZ; SS ch. 6.2].
   Stage 1 faces the customer, stage N is supplied externally; echelon holding costs ``h_j``, shipment lead times
   ``L_j``, backorder cost ``p`` at stage 1, per-period demand N(mu, sigma).

   * :func:`shang_song_serial_normal` - the Shang-Song newsvendor **heuristic** (closed form, vectorised) [SSo]:
     ``S~_j = w F~_j^-1((p + sum_{i>j} h_i) / (p + sum_i h_i)) + (1 - w) F~_j^-1((p + sum_{i>j} h_i) /
     (p + sum_{i>=j} h_i))``, F~_j the normal c.d.f. of demand over ``L_1 + ... + L_j`` periods, w = 1/2.
   * :func:`clark_scarf_serial_normal` - the **exact** optimum (up to discretisation) by the Chen-Zheng form of
     the Clark-Scarf recursion on a grid [CZ; SS sec. 6.2.3]:
     ``C_0(x) = (p + h'_1) x^-``, ``C^_j(x) = h_j x + C_{j-1}(x)``, ``C_j(y) = E[C^_j(y - D_j)]``,
     ``S*_j = argmin C_j``, ``C_j(x) <- C_j(min(S*_j, x))``; optimal cost ``C_N(S*_N)``. ``D_j`` ~ N(mu L_j,
     sigma sqrt(L_j)); ``h'_1 = sum_j h_j`` is stage 1's local holding cost. The expectation of the piecewise-linear
     interpolant of ``C_{j-1}`` is taken exactly with normal complementary loss functions, so the only error is the
     grid's interpolation error (O(step^2)); S* is refined by a parabola through the grid minimum. One instance per
     call (loop over products). Pass ``echelon_base_stock`` to evaluate given levels instead of optimising.

3. **METRIC-style delay** [Sh; Ax ch. 10; SS ch. 6]: :func:`metric_dc_delay` gives the expected delay a store order
   waits at a DC that runs a base-stock policy, ``W = E[B_dc] / lambda_dc`` (Little's law), ``E[B_dc] = n(S_dc)``
   with outstanding DC orders ~ Poisson(lambda L) (Palm's theorem) or normal; a store's effective lead time is
   then ``L_transfer + W`` (:func:`metric_store_lead_time`). METRIC uses only the mean of the delay (the store's
   lead time is treated as deterministic), which is its known approximation.

Conventions
-----------
- Times (processing times, service times, lead times) are in periods; demand s.d. is per period; holding costs are
  per unit per period; the GSM cost is the holding cost of safety stock only (pipeline and cycle stock are not
  affected by the placement).
- ``z`` (safety factor) is ``Phi^-1(csl)`` for a cycle service level; the GSM treats it as given per node.

References
----------
- [GW] S. C. Graves and S. P. Willems, "Optimizing strategic safety stock placement in supply chains",
  *Manufacturing & Service Operations Management* 2(1), 2000, 68-83.
- [SW] K. Simpson, "In-process inventories", *Operations Research* 6(6), 1958 (the all-or-nothing property).
- [SS] L. V. Snyder and Z.-J. M. Shen, *Fundamentals of Supply Chain Theory*, 2nd ed., Wiley, 2019: ch. 6
  (6.2 stochastic-service serial systems, Example 6.1; 6.3-6.4 guaranteed-service model, Example 6.5).
- [CS] A. J. Clark and H. Scarf, "Optimal policies for a multi-echelon inventory problem", *Management Science*
  6(4), 1960, 475-490.
- [CZ] F. Chen and Y.-S. Zheng, "Lower bounds for multi-echelon stochastic inventory systems", *Management
  Science* 40(11), 1994, 1426-1443.
- [SSo] K. H. Shang and J.-S. Song, "Newsvendor bounds and heuristic for optimal policies in serial supply
  chains", *Management Science* 49(5), 2003, 618-638.
- [Sh] C. C. Sherbrooke, "METRIC: a multi-echelon technique for recoverable item control", *Operations Research*
  16(1), 1968, 122-141.
- [Ax] S. Axsater, *Inventory Control*, 3rd ed., Springer, 2015: ch. 10 (multi-echelon systems, METRIC).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

from ml.policy import inventory_math as im
from ml.policy.inventory_math import FloatArray, FloatOrArray, _f64, _ret  # same array conventions

__all__ = [
    "DCDelay",
    "GSMNode",
    "GSMTreeSolution",
    "GSMTwoLevelSolution",
    "SerialBaseStock",
    "clark_scarf_serial_normal",
    "gsm_safety_stock",
    "gsm_tree",
    "gsm_tree_cost",
    "gsm_two_level",
    "metric_dc_delay",
    "metric_store_lead_time",
    "shang_song_serial_normal",
]

#: Service times within this distance of a whole number count as that number (the tree DP is over integers).
_INT_TOL = 1e-9


# ================================================================================================================
# 1. guaranteed-service model
# ================================================================================================================


def gsm_safety_stock(safety_factor: ArrayLike, demand_sd: ArrayLike, net_lead_time: ArrayLike) -> FloatOrArray:
    """GSM safety stock ``z * sigma * sqrt(NLT)`` for a net lead time ``NLT = SI + T - S``.  [GW; SS sec. 6.3]

    A negative net lead time is infeasible and gives NaN.
    """
    z, sd, nlt = np.broadcast_arrays(_f64(safety_factor), _f64(demand_sd), _f64(net_lead_time))
    with np.errstate(invalid="ignore"):
        out = z * sd * np.sqrt(np.where(nlt >= 0, nlt, np.nan))
    return _ret(out)


class GSMNode(NamedTuple):
    """One stage of a guaranteed-service tree.

    - ``holding_cost``: h, per unit per period.
    - ``processing_time``: T, whole periods (>= 0).
    - ``demand_sd``: s.d. per period of *external* (customer) demand at this node; 0 for purely internal nodes.
    - ``max_outbound_service_time``: s, the service time the node's customers are promised. ``None`` means 0 for
      a customer-facing node (no successors) and unconstrained otherwise.
    - ``external_inbound_service_time``: SI quoted by an outside supplier; used at nodes without predecessors.
    - ``safety_factor``: z for this node; ``None`` uses the solver's default.
    - ``sd_override``: the s.d. this node sees, replacing the root-sum-square rule (e.g. correlated demands).
    """

    holding_cost: float
    processing_time: int
    demand_sd: float = 0.0
    max_outbound_service_time: int | None = None
    external_inbound_service_time: int = 0
    safety_factor: float | None = None
    sd_override: float | None = None


class GSMTreeSolution(NamedTuple):
    """Optimal GSM solution on a tree, keyed by node id."""

    outbound_service_time: dict[Hashable, int]
    inbound_service_time: dict[Hashable, int]
    net_lead_time: dict[Hashable, int]
    demand_sd: dict[Hashable, float]
    safety_stock: dict[Hashable, float]
    cost: float


def _as_int(x: float, what: str) -> int:
    r = round(float(x))
    if not math.isfinite(float(x)) or abs(float(x) - r) > _INT_TOL or r < 0:
        raise ValueError(f"{what} must be a non-negative whole number of periods, got {x!r}")
    return int(r)


class _Tree:
    """Validated GSM tree: adjacency, the s.d. each node sees, max replenishment times."""

    def __init__(self, nodes: Mapping[Hashable, GSMNode], edges: Iterable[tuple[Hashable, Hashable]],
                 default_z: float) -> None:
        self.nodes = dict(nodes)
        self.pred: dict[Hashable, list[Hashable]] = {k: [] for k in self.nodes}
        self.succ: dict[Hashable, list[Hashable]] = {k: [] for k in self.nodes}
        n_edges = 0
        for a, b in edges:
            if a not in self.nodes or b not in self.nodes:
                raise ValueError(f"edge ({a!r}, {b!r}) names an unknown node")
            if a == b:
                raise ValueError(f"self-loop at node {a!r}")
            self.succ[a].append(b)
            self.pred[b].append(a)
            n_edges += 1
        self.nbrs = {k: self.pred[k] + self.succ[k] for k in self.nodes}
        # a forest has |E| = |V| - (number of components) and no cycles; check by traversal
        self.components: list[list[Hashable]] = []
        seen: set[Hashable] = set()
        for root in self.nodes:
            if root in seen:
                continue
            order, stack, parent = [], [root], {root: None}
            seen.add(root)
            while stack:
                k = stack.pop()
                order.append(k)
                for m in self.nbrs[k]:
                    if m == parent[k]:
                        continue
                    if m in seen:
                        raise ValueError("the network is not a tree (it has a cycle or a duplicate edge)")
                    seen.add(m)
                    parent[m] = k
                    stack.append(m)
            self.components.append(order)
        if n_edges != len(self.nodes) - len(self.components):
            raise ValueError("the network is not a tree (it has a cycle or a duplicate edge)")

        self.T = {k: _as_int(n.processing_time, f"processing_time of {k!r}") for k, n in self.nodes.items()}
        self.ext = {k: _as_int(n.external_inbound_service_time, f"external_inbound_service_time of {k!r}")
                    for k, n in self.nodes.items()}
        self.z = {k: float(default_z if n.safety_factor is None else n.safety_factor) for k, n in self.nodes.items()}
        self.s_max: dict[Hashable, int | None] = {}
        for k, n in self.nodes.items():
            if n.max_outbound_service_time is None:
                self.s_max[k] = 0 if not self.succ[k] else None
            else:
                self.s_max[k] = _as_int(n.max_outbound_service_time, f"max_outbound_service_time of {k!r}")
        topo = self._topological()
        # sd: root-sum-square over successors (downstream first), plus the node's own external demand
        self.sd: dict[Hashable, float] = {}
        for k in reversed(topo):
            n = self.nodes[k]
            if n.sd_override is not None:
                self.sd[k] = float(n.sd_override)
            else:
                self.sd[k] = math.sqrt(float(n.demand_sd) ** 2 + sum(self.sd[j] ** 2 for j in self.succ[k]))
        # max replenishment time M_k = max(ext or preds' M) + T_k  (upstream first)
        self.M: dict[Hashable, int] = {}
        for k in topo:
            inbound = max([self.M[i] for i in self.pred[k]], default=self.ext[k])
            self.M[k] = inbound + self.T[k]

    def _topological(self) -> list[Hashable]:
        indeg = {k: len(self.pred[k]) for k in self.nodes}
        order = [k for k, d in indeg.items() if d == 0]
        i = 0
        while i < len(order):
            for j in self.succ[order[i]]:
                indeg[j] -= 1
                if indeg[j] == 0:
                    order.append(j)
            i += 1
        return order

    def own_cost(self, k: Hashable, grid: FloatArray) -> FloatArray:
        """c[S, SI] = h z sd sqrt(SI + T - S) on the integer grid, +inf where infeasible."""
        n = self.nodes[k]
        s, si = grid[:, None], grid[None, :]
        nlt = si + self.T[k] - s
        feasible = nlt >= 0
        if not self.pred[k]:
            feasible &= si >= self.ext[k]
        if self.s_max[k] is not None:
            feasible &= s <= self.s_max[k]
        coef = float(n.holding_cost) * self.z[k] * self.sd[k]
        with np.errstate(invalid="ignore"):
            c = coef * np.sqrt(np.maximum(nlt, 0.0))
        return np.where(feasible, c, np.inf)


def gsm_tree(
    nodes: Mapping[Hashable, GSMNode],
    edges: Iterable[tuple[Hashable, Hashable]],
    *,
    safety_factor: float = 1.0,
) -> GSMTreeSolution:
    """Exact guaranteed-service safety-stock placement on a tree (Graves-Willems DP).  [GW; SS sec. 6.4]

    ``edges`` are (supplier, customer) pairs; the underlying undirected graph must be a tree (or forest). Each node
    ``k`` is processed after all but one of its neighbours (DFS post-order from an arbitrary root), computing

    - if that remaining neighbour is a *customer* of k: ``f_k(S) = min_SI c_k(S, SI)``, passed on as
      ``F_k(x) = min_{S <= x} f_k(S)`` (the customer's inbound service time must be >= S_k);
    - if it is a *supplier* of k: ``g_k(SI) = min_S c_k(S, SI)``, passed on as ``G_k(y) = min_{SI >= y} g_k(SI)``;

    with ``c_k(S, SI) = h_k z_k sd_k sqrt(SI + T_k - S) + sum_{processed suppliers i} F_i(SI)
    + sum_{processed customers j} G_j(S)`` over integers ``0 <= S, SI <= max_k M_k`` (M_k = longest replenishment
    time into k), subject to ``SI + T_k - S >= 0``, ``S <= s_k`` and, at sources, ``SI >= external SI``. The root
    takes ``min_{S, SI} c_root``; the argmins are then traced back down. Cost is O(n * M^2) for n nodes.

    Ties are broken towards the smallest service times. The reported inbound service time is the actual one,
    ``max(external SI, suppliers' S)``.
    """
    tree = _Tree(nodes, edges, safety_factor)
    if not tree.nodes:
        return GSMTreeSolution({}, {}, {}, {}, {}, 0.0)
    g_max = max(tree.M.values())
    grid = np.arange(g_max + 1, dtype=np.float64)
    out_s: dict[Hashable, int] = {}
    total = 0.0
    for comp in tree.components:
        root = comp[0]
        parent: dict[Hashable, Hashable | None] = {root: None}
        for k in comp:  # comp is a DFS pre-order: parents come before children
            for m in tree.nbrs[k]:
                if m not in parent:
                    parent[m] = k
        c: dict[Hashable, FloatArray] = {}
        passed: dict[Hashable, FloatArray] = {}  # F_k or G_k
        children = {k: [m for m in tree.nbrs[k] if parent.get(m) == k and m != parent[k]] for k in comp}
        for k in reversed(comp):  # post-order
            ck = tree.own_cost(k, grid)
            for m in children[k]:
                # a processed supplier constrains SI (columns), a processed customer constrains S (rows)
                ck = ck + (passed[m][None, :] if m in tree.pred[k] else passed[m][:, None])
            c[k] = ck
            p = parent[k]
            if p is None:
                continue
            if p in tree.succ[k]:
                f = ck.min(axis=1)  # over SI, per S
                passed[k] = np.minimum.accumulate(f)
            else:
                g = ck.min(axis=0)  # over S, per SI
                passed[k] = np.minimum.accumulate(g[::-1])[::-1]
        best = float(c[root].min())
        if not np.isfinite(best):
            raise ValueError("the GSM instance is infeasible")
        total += best
        # trace back: (S, SI) per node
        s_si: dict[Hashable, tuple[int, int]] = {}
        s0, si0 = np.unravel_index(int(np.argmin(c[root])), c[root].shape)
        s_si[root] = (int(s0), int(si0))
        for k in comp:  # pre-order
            s_k, si_k = s_si[k]
            for m in children[k]:
                cm = c[m]
                if m in tree.pred[k]:  # supplier: S_m <= SI_k
                    f = cm.min(axis=1)
                    s_m = int(np.argmin(f[: si_k + 1]))
                    s_si[m] = (s_m, int(np.argmin(cm[s_m, :])))
                else:  # customer: SI_m >= S_k
                    g = cm.min(axis=0)
                    si_m = s_k + int(np.argmin(g[s_k:]))
                    s_si[m] = (int(np.argmin(cm[:, si_m])), si_m)
        out_s.update({k: v[0] for k, v in s_si.items()})
    sol = _gsm_evaluate(tree, out_s)
    if abs(sol.cost - total) > 1e-9 * max(1.0, abs(total)):  # the DP and the evaluation must agree
        raise AssertionError(f"GSM trace-back cost {sol.cost} != DP optimum {total}")
    return sol


def _gsm_evaluate(tree: _Tree, out_s: Mapping[Hashable, int]) -> GSMTreeSolution:
    si = {k: max([out_s[i] for i in tree.pred[k]], default=tree.ext[k]) for k in tree.nodes}
    nlt, ss, cost = {}, {}, 0.0
    for k, n in tree.nodes.items():
        s_max = tree.s_max[k]
        if s_max is not None and out_s[k] > s_max:
            raise ValueError(f"node {k!r}: outbound service time {out_s[k]} exceeds its maximum {s_max}")
        nlt[k] = si[k] + tree.T[k] - out_s[k]
        if nlt[k] < 0:
            raise ValueError(f"node {k!r}: negative net lead time {nlt[k]}")
        ss[k] = tree.z[k] * tree.sd[k] * math.sqrt(nlt[k])
        cost += float(n.holding_cost) * ss[k]
    return GSMTreeSolution(dict(out_s), si, nlt, dict(tree.sd), ss, cost)


def gsm_tree_cost(
    nodes: Mapping[Hashable, GSMNode],
    edges: Iterable[tuple[Hashable, Hashable]],
    outbound_service_time: Mapping[Hashable, int],
    *,
    safety_factor: float = 1.0,
) -> GSMTreeSolution:
    """Evaluate given outbound service times on a GSM tree (same conventions as :func:`gsm_tree`).

    Raises ``ValueError`` if a net lead time is negative or a customer-facing promise is exceeded.
    """
    tree = _Tree(nodes, edges, safety_factor)
    out_s = {k: _as_int(outbound_service_time[k], f"outbound service time of {k!r}") for k in tree.nodes}
    return _gsm_evaluate(tree, out_s)


class GSMTwoLevelSolution(NamedTuple):
    """Optimal GSM placement for one DC and its stores, per product. Shapes: (n_products,) for the DC,
    (n_products, n_stores) for the stores (inbound service time of every store = the DC's outbound one)."""

    dc_outbound_service_time: FloatArray
    store_outbound_service_time: FloatArray
    dc_net_lead_time: FloatArray
    store_net_lead_time: FloatArray
    dc_demand_sd: FloatArray
    dc_safety_stock: FloatArray
    store_safety_stock: FloatArray
    dc_cost: FloatArray
    store_cost: FloatArray
    cost: FloatArray


def gsm_two_level(
    *,
    dc_holding_cost: ArrayLike,
    dc_processing_time: ArrayLike,
    dc_inbound_service_time: ArrayLike,
    store_holding_cost: ArrayLike,
    store_processing_time: ArrayLike,
    store_demand_sd: ArrayLike,
    store_max_service_time: ArrayLike = 0.0,
    store_safety_factor: ArrayLike,
    dc_safety_factor: ArrayLike,
    dc_demand_sd: ArrayLike | None = None,
) -> GSMTwoLevelSolution:
    """Exact GSM for a DC supplying stores, vectorised over products.  [GW; SS sec. 6.4]

    DC arguments broadcast to ``(n_products,)``; store arguments to ``(n_products, n_stores)``. ``store_demand_sd``
    fixes the shape (a 1-D array is one product); store arguments broadcast numpy-style, so pass a per-product
    store value as a column ``(n_products, 1)``. ``dc_demand_sd`` defaults to the root-sum-square of the stores'
    (independent demands). A store with zero s.d. (product not stocked there) costs nothing and does not
    constrain the DC.

    For a DC outbound service time S in ``[0, SI_dc + T_dc]`` the stores' best replies are ``SI_j = S`` and
    ``S_j = min(s_j, S + T_j)``, so

        cost(S) = h_dc z_dc sd_dc sqrt(SI_dc + T_dc - S) + sum_j h_j z_j sd_j sqrt((S + T_j - s_j)+),

    piecewise concave with breakpoints ``s_j - T_j``; the minimum is at ``0``, ``SI_dc + T_dc`` or a breakpoint
    (module docstring). All ``n_stores + 2`` candidates are evaluated in a loop of ``(n_products, n_stores)``
    array operations; equal-cost ties go to the smallest S (more stock at the DC). Exact for real or
    integer times; integer inputs give integer service times. Memory O(n_products * n_stores).
    """
    sd = _f64(store_demand_sd)
    if sd.ndim == 1:
        sd = sd[None, :]
    if sd.ndim != 2:
        raise ValueError(f"store_demand_sd must be (n_products, n_stores), got shape {sd.shape}")
    shape = sd.shape
    n_p = shape[0]

    def st(x: ArrayLike, name: str) -> FloatArray:
        a = _f64(x)
        try:
            return np.broadcast_to(a, shape).astype(np.float64)
        except ValueError as exc:
            raise ValueError(f"{name} does not broadcast to {shape}") from exc

    def dc(x: ArrayLike, name: str) -> FloatArray:
        a = _f64(x)
        try:
            return np.broadcast_to(a.reshape(-1) if a.ndim else a, (n_p,)).astype(np.float64)
        except ValueError as exc:
            raise ValueError(f"{name} does not broadcast to ({n_p},)") from exc

    h_s, t_s = st(store_holding_cost, "store_holding_cost"), st(store_processing_time, "store_processing_time")
    s_s, z_s = st(store_max_service_time, "store_max_service_time"), st(store_safety_factor, "store_safety_factor")
    h_d, t_d = dc(dc_holding_cost, "dc_holding_cost"), dc(dc_processing_time, "dc_processing_time")
    si_d, z_d = dc(dc_inbound_service_time, "dc_inbound_service_time"), dc(dc_safety_factor, "dc_safety_factor")
    sd_d = np.sqrt(np.sum(sd**2, axis=1)) if dc_demand_sd is None else dc(dc_demand_sd, "dc_demand_sd")
    for name, a in (("store_demand_sd", sd), ("store_processing_time", t_s), ("store_max_service_time", s_s),
                    ("dc_processing_time", t_d), ("dc_inbound_service_time", si_d), ("dc_demand_sd", sd_d)):
        if np.any(~np.isfinite(a)) or np.any(a < 0):
            raise ValueError(f"{name} must be finite and >= 0")

    reach = si_d + t_d  # the DC's replenishment time: S_dc in [0, reach]
    coef_d = h_d * z_d * sd_d
    coef_s = h_s * z_s * sd
    slack = t_s - s_s  # store NLT = (S + T_j - s_j)+ = (S + slack)+

    def total(s: FloatArray) -> FloatArray:  # s: (n_products,)
        return coef_d * np.sqrt(reach - s) + np.sum(coef_s * np.sqrt(np.maximum(s[:, None] + slack, 0.0)), axis=1)

    best_s = np.zeros(n_p)
    best_c = total(best_s)
    cands = [reach] + [np.clip(-slack[:, j], 0.0, reach) for j in range(shape[1])]
    for s in cands:
        c = total(s)
        better = c < best_c - 1e-12 * np.maximum(1.0, np.abs(best_c))
        better |= (np.abs(c - best_c) <= 1e-12 * np.maximum(1.0, np.abs(best_c))) & (s < best_s)
        best_s = np.where(better, s, best_s)
        best_c = np.where(better, c, best_c)

    s_out = np.minimum(s_s, best_s[:, None] + t_s)
    nlt_s = best_s[:, None] + t_s - s_out
    nlt_d = reach - best_s
    ss_d = z_d * sd_d * np.sqrt(nlt_d)
    ss_s = z_s * sd * np.sqrt(nlt_s)
    dc_cost = h_d * ss_d
    store_cost = h_s * ss_s
    return GSMTwoLevelSolution(best_s, s_out, nlt_d, nlt_s, sd_d, ss_d, ss_s, dc_cost, store_cost,
                               dc_cost + store_cost.sum(axis=1))


# ================================================================================================================
# 2. serial stochastic-service model (Clark-Scarf), normal demand
# ================================================================================================================


class SerialBaseStock(NamedTuple):
    """Echelon base-stock levels (index 0 = stage 1, the customer-facing stage) and the expected cost per period."""

    echelon_base_stock: FloatArray
    cost: float


def shang_song_serial_normal(
    echelon_holding_cost: ArrayLike,
    lead_time: ArrayLike,
    stockout_cost: ArrayLike,
    demand_mean: ArrayLike,
    demand_sd: ArrayLike,
    *,
    weight: float = 0.5,
) -> FloatArray:
    """Shang-Song newsvendor heuristic for echelon base-stock levels of a serial system (normal demand).  [SSo; SS
    sec. 6.2.4, eq. (6.32)]

    Stages along the last axis, stage 1 (customer-facing) first: ``echelon_holding_cost`` and ``lead_time`` have
    shape ``(..., N)``; ``stockout_cost``, ``demand_mean``, ``demand_sd`` broadcast against ``(...)``. With
    ``P_j = p + sum_{i>j} h_i`` and ``D~_j`` ~ N(mu L~_j, sigma sqrt(L~_j)), ``L~_j = L_1 + ... + L_j``:

        S~_j = w F~_j^-1(P_j / (p + sum_{i=1}^N h_i)) + (1 - w) F~_j^-1(P_j / (P_j + h_j)),

    the average (w = 1/2) of the newsvendor levels that bound the optimal S*_j from below and above. A heuristic:
    typically within a fraction of a percent of the optimal cost (:func:`clark_scarf_serial_normal`).
    """
    h = _f64(echelon_holding_cost)
    lt = _f64(lead_time)
    h, lt = np.broadcast_arrays(h, lt)
    p = _f64(stockout_cost)[..., None]
    mu = _f64(demand_mean)[..., None]
    sigma = _f64(demand_sd)[..., None]
    h_total = h.sum(axis=-1, keepdims=True)
    upstream = h_total - np.cumsum(h, axis=-1)  # sum_{i>j} h_i
    p_eff = p + upstream
    cum_lt = np.cumsum(lt, axis=-1)
    mean_ltd, sd_ltd = mu * cum_lt, sigma * np.sqrt(cum_lt)
    s_low = mean_ltd + special.ndtri(p_eff / (p + h_total)) * sd_ltd
    s_up = mean_ltd + special.ndtri(p_eff / (p_eff + h)) * sd_ltd
    return np.asarray(weight * s_low + (1.0 - weight) * s_up, dtype=np.float64)


def _expect_piecewise_linear(
    y: FloatArray, x: FloatArray, gx: FloatArray, mean: float, sd: float, *, block: int = 256
) -> FloatArray:
    """E[g(y - D)] for D ~ N(mean, sd), g the piecewise-linear interpolant of (x, gx) extended linearly beyond x.

    g(t) = g_0 + b (t - x_0) + sum_k d_k (t - x_k)+ (d_k = slope change at interior knot k), so exactly
    E[g(y - D)] = g_0 + b (y - mean - x_0) + sum_k d_k n_bar_D(y - x_k), n_bar_D(t) = E[(t - D)+].
    """
    slopes = np.diff(gx) / np.diff(x)
    d = np.diff(slopes)
    keep = np.abs(d) > 1e-13 * max(1.0, float(np.max(np.abs(slopes))))
    knots, dk = x[1:-1][keep], d[keep]
    out = gx[0] + slopes[0] * (y - mean - x[0])
    for i in range(0, y.size, block):
        yy = y[i: i + block]
        nbar = np.asarray(im.normal_loss_complement(yy[:, None] - knots[None, :], mean, sd))
        out[i: i + block] += nbar @ dk
    return out


def _parabolic_min(x: FloatArray, c: FloatArray) -> tuple[float, float]:
    i = int(np.argmin(c))
    if 0 < i < c.size - 1:
        c0, c1, c2 = c[i - 1], c[i], c[i + 1]
        den = c0 - 2.0 * c1 + c2
        if den > 0:
            off = 0.5 * (c0 - c2) / den  # in grid steps, within (-1/2, 1/2]
            step = x[1] - x[0]
            return float(x[i] + off * step), float(c1 - 0.25 * (c0 - c2) * off)
    return float(x[i]), float(c[i])


def clark_scarf_serial_normal(
    echelon_holding_cost: ArrayLike,
    lead_time: ArrayLike,
    stockout_cost: float,
    demand_mean: float,
    demand_sd: float,
    *,
    n_grid: int = 2001,
    echelon_base_stock: ArrayLike | None = None,
) -> SerialBaseStock:
    """Optimal echelon base-stock levels of a serial system, normal demand (Clark-Scarf / Chen-Zheng).  [CS; CZ;
    SS sec. 6.2.3]

    Stage 1 (index 0) faces the customer. Recursion, j = 1..N:

        C_0(x) = (p + h'_1) max(-x, 0),   h'_1 = sum_i h_i (stage 1's local holding cost)
        C^_j(x) = h_j x + C_{j-1}(x)
        C_j(y) = E[C^_j(y - D_j)] = h_j (y - mu L_j) + E[C_{j-1}(y - D_j)],   D_j ~ N(mu L_j, sigma sqrt(L_j))
        S*_j = argmin_y C_j(y),   then C_j(x) <- C_j(min(S*_j, x))

    and the optimal expected cost per period is C_N(S*_N). ``C_{j-1}`` is kept on a uniform grid of ``n_grid``
    points over ``[-pad, mu sum L + pad]``, ``pad = 8 sigma sqrt(sum L)`` (plus the given levels), extended
    linearly outside it (it is linear there up to a normal tail of 8 s.d.). The expectation of its
    piecewise-linear interpolant is exact (:func:`_expect_piecewise_linear`), so the error is the interpolation
    error, O(step^2); S*_j is refined by a parabola through the grid minimum. With ``echelon_base_stock`` given
    the levels are evaluated, not optimised (cost of a heuristic, say).

    One instance per call (1-D ``echelon_holding_cost`` and ``lead_time``). Time O(N n_grid^2).
    """
    h = _f64(echelon_holding_cost).reshape(-1)
    lt = _f64(lead_time).reshape(-1)
    if h.shape != lt.shape or h.size == 0:
        raise ValueError("echelon_holding_cost and lead_time must be 1-D of the same length (one per stage)")
    if np.any(lt < 0) or stockout_cost < 0 or demand_sd < 0:
        raise ValueError("lead times, stockout cost and demand s.d. must be >= 0")
    n = h.size
    total_lt = float(lt.sum())
    pad = max(8.0 * demand_sd * math.sqrt(total_lt), 1e-3 * max(1.0, demand_mean * total_lt), 1e-6)
    lo, hi = -pad, demand_mean * total_lt + pad
    given = None if echelon_base_stock is None else _f64(echelon_base_stock).reshape(-1)
    if given is not None:
        if given.size != n:
            raise ValueError("echelon_base_stock needs one level per stage")
        lo, hi = min(lo, float(given.min()) - pad), max(hi, float(given.max()) + pad)
    x = np.linspace(lo, hi, int(n_grid))
    c_bar = (stockout_cost + h.sum()) * np.maximum(-x, 0.0)
    levels = np.empty(n)
    cost = 0.0
    for j in range(n):
        mean_j, sd_j = demand_mean * lt[j], demand_sd * math.sqrt(lt[j])
        c_j = h[j] * (x - mean_j) + _expect_piecewise_linear(x, x, c_bar, mean_j, sd_j)
        if given is None:
            s_j, cost = _parabolic_min(x, c_j)
        else:
            s_j = float(given[j])
            cost = float(np.interp(s_j, x, c_j))
        levels[j] = s_j
        c_bar = np.where(x < s_j, c_j, cost)
    return SerialBaseStock(levels, float(cost))


# ================================================================================================================
# 3. METRIC-style delay at the DC
# ================================================================================================================


class DCDelay(NamedTuple):
    """Steady state of a DC running a base-stock policy, seen by the stores' orders."""

    expected_backorders: FloatOrArray
    expected_on_hand: FloatOrArray
    stockout_probability: FloatOrArray  # P(an arriving store order is not filled at once)
    expected_delay: FloatOrArray  # mean wait of a store order at the DC, periods


def metric_dc_delay(
    base_stock: ArrayLike,
    demand_rate: ArrayLike,
    lead_time: ArrayLike,
    *,
    distribution: Literal["poisson", "normal"] = "poisson",
    demand_sd: ArrayLike | None = None,
) -> DCDelay:
    """Expected delay of store orders at a DC with base-stock level S (METRIC).  [Sh; Ax ch. 10]

    Orders outstanding at the DC, X, are demand over its replenishment lead time L:
    ``"poisson"``: X ~ Poisson(lambda L) (Palm's theorem for Poisson demand, any lead-time distribution with mean
    L); ``"normal"``: X ~ N(lambda L, sigma sqrt(L)), sigma = ``demand_sd`` per period. Then

        E[B] = E[(X - S)+] = n(S),   E[I] = S - lambda L + E[B],   P(wait) = P(X >= S),
        W = E[B] / lambda                                              (Little's law)

    (Poisson: P(wait) = P(X >= S) for unit demands by PASTA; normal: 1 - Phi((S - lambda L) / (sigma sqrt L)).)
    ``lambda = 0`` gives W = 0. All arguments broadcast (vectorised over products / DCs).
    """
    s, lam, lt = np.broadcast_arrays(_f64(base_stock), _f64(demand_rate), _f64(lead_time))
    mean = lam * lt
    if distribution == "poisson":
        ebo = _f64(im.poisson_loss(s, mean))
        with np.errstate(all="ignore"):
            p_wait = stats.poisson.sf(np.ceil(s) - 1.0, mean)  # P(X >= ceil(S))
        p_wait = np.where(mean == 0, (s <= 0).astype(np.float64), p_wait)
    elif distribution == "normal":
        if demand_sd is None:
            raise ValueError("distribution='normal' needs demand_sd")
        sigma = _f64(demand_sd) * np.sqrt(lt)
        ebo = _f64(im.normal_loss(s, mean, sigma))
        p_wait = 1.0 - _f64(im.cycle_service_level_normal(s - mean, sigma))
    else:
        raise ValueError(f"unknown distribution {distribution!r}")
    with np.errstate(all="ignore"):
        delay = np.where(lam > 0, ebo / lam, 0.0)
    return DCDelay(_ret(ebo), _ret(s - mean + ebo), _ret(p_wait), _ret(delay))


def metric_store_lead_time(transfer_lead_time: ArrayLike, dc_expected_delay: ArrayLike) -> FloatOrArray:
    """A store's effective replenishment lead time under METRIC: ``L_transfer + W_dc``.  [Sh; Ax ch. 10]

    Use it for the store's lead-time demand (mean lambda_j (L + W)); METRIC ignores the variance of the delay.
    """
    return _ret(_f64(transfer_lead_time) + _f64(dc_expected_delay))
