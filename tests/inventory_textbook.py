"""Textbook inventory formulas the tests use as oracles, not the policy: newsvendor (normal and Poisson), (r, Q)
cost and the EOQ + safety-stock heuristic, EOQ cost, safety stock and reorder point for a cycle service level,
expected shortage and fill rate from a safety stock, the standard-normal and second-order loss functions, quantile
grids, order-up-to and (r, Q) order quantities.

They were in ``ml/policy/inventory_math.py``; production uses only what is left there (issue 11: keep in the package
what production uses). Conventions and references: that module's docstring.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

from ml.policy.inventory_math import (  # the module's own helpers, shared with the production functions
    _INV_SQRT_2PI,
    _SQRT_HALF,
    FloatArray,
    FloatOrArray,
    _as_rows,
    _f64,
    _normal_family,
    _per_row,
    _poisson_parts,
    _ret,
    _row_result,
    _solve_rq_loss_equation,
    _std_loss,
    eoq,
    normal_loss,
    normal_loss_complement,
    poisson_loss,
    round_to_pack,
)


class NewsvendorSolution(NamedTuple):
    """Optimal base-stock (order-up-to) level and its expected cost."""

    level: FloatOrArray
    cost: FloatOrArray


class RQPolicy(NamedTuple):
    """A continuous-review (r, Q) policy: reorder point ``r``, order quantity ``q``."""

    r: FloatOrArray
    q: FloatOrArray


def _std_loss2(z: FloatArray) -> FloatArray:
    """L2(z) on arrays: 1/2 [(z^2 + 1)(1 - Phi(z)) - z phi(z)], erfcx form for z > 0."""
    with np.errstate(all="ignore"):
        pos = z > 0
        zp = np.where(pos, z, 0.0)
        bracket = np.maximum(0.5 * (zp * zp + 1.0) * special.erfcx(zp * _SQRT_HALF) - zp * _INV_SQRT_2PI, 0.0)
        l_pos = 0.5 * np.exp(-0.5 * zp * zp) * bracket
        zn = np.where(pos, 0.0, z)
        l_neg = 0.5 * ((zn * zn + 1.0) * special.ndtr(-zn) - zn * _INV_SQRT_2PI * np.exp(-0.5 * zn * zn))
        out = np.where(pos, l_pos, l_neg)
    return np.where(np.isposinf(z), 0.0, out)


def standard_normal_loss(z: ArrayLike) -> FloatOrArray:
    """Standard normal (first-order) loss function L(z) = E[(Z - z)+].

    L(z) = phi(z) - z (1 - Phi(z)), Z ~ N(0, 1).  [SS eq. (C.22)]; G_u(k) in [SPT ch. 6].

    Decreasing and convex, L(z) -> -z as z -> -inf and L(z) ~ phi(z)/z^2 as z -> +inf. Evaluated with the scaled
    complementary error function for z > 0, so it keeps full relative precision in the tail (no underflow of
    ``1 - Phi(z)`` until L itself underflows near z = 38).
    """
    return _ret(_std_loss(_f64(z)))


def complementary_normal_loss(z: ArrayLike) -> FloatOrArray:
    """Standard normal complementary loss L_bar(z) = E[(z - Z)+] = z + L(z).  [SS eq. (C.23)]

    Computed as L(-z) (symmetry of Z), which avoids the cancellation of ``z + L(z)`` for z << 0.
    """
    return _ret(_std_loss(-_f64(z)))


def second_order_normal_loss(z: ArrayLike) -> FloatOrArray:
    """Standard normal second-order loss L2(z) = 1/2 E[((Z - z)+)^2].

    L2(z) = 1/2 [(z^2 + 1)(1 - Phi(z)) - z phi(z)] = integral_z^inf L(u) du.  [SS eq. (C.27)]
    """
    return _ret(_std_loss2(_f64(z)))


def complementary_second_order_normal_loss(z: ArrayLike) -> FloatOrArray:
    """Standard normal complementary second-order loss L2_bar(z) = 1/2 E[((z - Z)+)^2].

    L2_bar(z) = 1/2 [(z^2 + 1) Phi(z) + z phi(z)] = L2(-z), and L2(z) + L2_bar(z) = (z^2 + 1)/2.  [SS eq. (C.28)]
    """
    return _ret(_std_loss2(-_f64(z)))


def normal_second_order_loss(x: ArrayLike, mu: ArrayLike, sigma: ArrayLike) -> FloatOrArray:
    """Second-order loss of X ~ N(mu, sigma): n2(x) = 1/2 E[((X - x)+)^2] = sigma^2 L2((x - mu)/sigma).  [SS eq. (C.33)]

    n2 is an antiderivative of -n: integral_a^b n(y) dy = n2(a) - n2(b), which gives the (r, Q) cost in closed form.
    """
    return _ret(_normal_family(x, mu, sigma, _std_loss2, 2, 1.0))


def poisson_loss_complement(x: ArrayLike, mean: ArrayLike) -> FloatOrArray:
    """Complementary loss of X ~ Poisson(mean): n_bar(x) = E[(x - X)+] = sum_{k <= x} (x - k) P(X = k).

    n_bar(x) = (x - mean) P(X <= m) + mean P(X = m), m = floor(x); equals (x - mean) + n(x).  [SS app. C]
    The direct form keeps relative precision when x is far below the mean.
    """
    x, mean, pmf, _, cdf = _poisson_parts(x, mean)
    return _ret((x - mean) * cdf + mean * pmf)


def safety_stock_csl(csl: ArrayLike, sigma_ltd: ArrayLike) -> FloatOrArray:
    """Safety stock for a cycle service level under normal lead-time demand: ss = Phi^-1(csl) * sigma_L.

    [CM; SPT ch. 6]. ``csl`` = P(D <= r). csl < 0.5 gives negative safety stock. sigma_L = 0 gives 0.
    """
    csl, sigma = np.broadcast_arrays(_f64(csl), _f64(sigma_ltd))
    with np.errstate(all="ignore"):
        ss = special.ndtri(csl) * sigma
    ss = np.where((sigma == 0) & (csl >= 0) & (csl <= 1), 0.0, ss)
    return _ret(np.where(sigma < 0, np.nan, ss))


def reorder_point_csl(csl: ArrayLike, mean_ltd: ArrayLike, sigma_ltd: ArrayLike) -> FloatOrArray:
    """Reorder point for a cycle service level, normal lead-time demand: r = mean_L + Phi^-1(csl) * sigma_L.  [CM]"""
    return _ret(_f64(mean_ltd) + _f64(safety_stock_csl(csl, sigma_ltd)))


def expected_shortage_per_cycle_normal(safety_stock: ArrayLike, sigma_ltd: ArrayLike) -> FloatOrArray:
    """Expected shortage per replenishment cycle, normal lead-time demand: ESC = sigma_L L(ss / sigma_L).

    [CM: ESC = -ss (1 - Phi(ss/sigma_L)) + sigma_L phi(ss/sigma_L)]; equals n(r) for r = mean_L + ss.
    """
    return _ret(_normal_family(safety_stock, 0.0, sigma_ltd, _std_loss, 1, 1.0))


def fill_rate_from_safety_stock(
    safety_stock: ArrayLike, q: ArrayLike, sigma_ltd: ArrayLike, *, exact: bool = False
) -> FloatOrArray:
    """Fill rate of an (r, Q) policy with normal lead-time demand, given ss = r - mean_L.

    - ``exact=False`` (textbook, [CM; SPT ch. 6]): fill_rate = 1 - ESC / Q, ESC = sigma_L L(ss/sigma_L),
      floored at 0. It charges each cycle its full shortage, so it is conservative when Q is small relative to
      sigma_L and can go negative (floored) when ss is very negative.
    - ``exact=True`` ([Ax ch. 5; Zi ch. 6], backorders, inventory position uniform on [r, r + Q]):
      fill_rate = 1 - [n(r) - n(r + Q)] / Q = 1 - sigma_L [L(k) - L(k + Q/sigma_L)] / Q, k = ss/sigma_L.
      This is the same expression :func:`fill_rate_from_samples` evaluates on samples.

    Use this to evaluate any (r, Q) choice, e.g. a cycle-service reorder point, on the same scale as a fill-rate
    target. sigma_L = 0 gives the point-mass limit.
    """
    ss, qq, sigma = np.broadcast_arrays(_f64(safety_stock), _f64(q), _f64(sigma_ltd))
    esc = _normal_family(ss, 0.0, sigma, _std_loss, 1, 1.0)
    if exact:
        esc = esc - _normal_family(ss + qq, 0.0, sigma, _std_loss, 1, 1.0)
    with np.errstate(all="ignore"):
        fr = np.maximum(1.0 - esc / qq, 0.0)
    return _ret(np.where(qq > 0, fr, np.nan))


def eoq_cost(q: ArrayLike, ordering_cost: ArrayLike, holding_cost: ArrayLike, demand_rate: ArrayLike) -> FloatOrArray:
    """EOQ cost per time unit of ordering Q: g(Q) = K lambda / Q + h Q / 2.  [SS ch. 3]"""
    q, k, h, lam = np.broadcast_arrays(_f64(q), _f64(ordering_cost), _f64(holding_cost), _f64(demand_rate))
    with np.errstate(all="ignore"):
        return _ret(k * lam / q + 0.5 * h * q)


def newsvendor_cost_normal(s: ArrayLike, h: ArrayLike, p: ArrayLike, mu: ArrayLike, sigma: ArrayLike) -> FloatOrArray:
    """Expected newsvendor cost of base-stock level S, normal demand: g(S) = E[h (S - D)+ + p (D - S)+].

    g(S) = h n_bar(S) + p n(S) = h (S - mu) + (h + p) n(S).  [SS ch. 4]
    """
    s, h, p = _f64(s), _f64(h), _f64(p)
    return _ret(h * _f64(normal_loss_complement(s, mu, sigma)) + p * _f64(normal_loss(s, mu, sigma)))


def newsvendor_normal(h: ArrayLike, p: ArrayLike, mu: ArrayLike, sigma: ArrayLike) -> NewsvendorSolution:
    """Optimal newsvendor base-stock level and cost, normal demand D ~ N(mu, sigma).

    S* = mu + sigma Phi^-1(p / (p + h)),  g(S*) = (p + h) sigma phi(Phi^-1(p / (p + h))).  [SS ch. 4]

    For a periodic-review base-stock policy with lead time L, pass the demand summed over L + 1 periods.
    """
    h, p, mu, sigma = np.broadcast_arrays(_f64(h), _f64(p), _f64(mu), _f64(sigma))
    with np.errstate(all="ignore"):
        z = special.ndtri(p / (p + h))
        level = mu + np.where(sigma == 0, 0.0, sigma * z)
        cost = np.where(sigma == 0, 0.0, (p + h) * sigma * _INV_SQRT_2PI * np.exp(-0.5 * z * z))
    return NewsvendorSolution(_ret(level), _ret(cost))


def newsvendor_cost_poisson(s: ArrayLike, h: ArrayLike, p: ArrayLike, mean: ArrayLike) -> FloatOrArray:
    """Expected newsvendor cost of base-stock level S, Poisson demand: g(S) = h n_bar(S) + p n(S).  [SS ch. 4]"""
    return _ret(_f64(h) * _f64(poisson_loss_complement(s, mean)) + _f64(p) * _f64(poisson_loss(s, mean)))


def newsvendor_poisson(h: ArrayLike, p: ArrayLike, mean: ArrayLike) -> NewsvendorSolution:
    """Optimal newsvendor base-stock level and cost, Poisson demand.

    S* = the smallest integer S with F(S) >= p / (p + h).  [SS ch. 4 (discrete demand)]
    """
    h, p, mean = np.broadcast_arrays(_f64(h), _f64(p), _f64(mean))
    with np.errstate(all="ignore"):
        level = stats.poisson.ppf(p / (p + h), mean)
        level = np.where(np.isfinite(level), np.maximum(level, 0.0), level)
    return NewsvendorSolution(_ret(level), newsvendor_cost_poisson(level, h, p, mean))


def rq_cost_normal(
    r: ArrayLike,
    q: ArrayLike,
    h: ArrayLike,
    p: ArrayLike,
    ordering_cost: ArrayLike,
    demand_rate: ArrayLike,
    mean_ltd: ArrayLike,
    sigma_ltd: ArrayLike,
) -> FloatOrArray:
    """Expected cost per time unit of a continuous-review (r, Q) policy, normal lead-time demand.

    g(r, Q) = [K lambda + integral_r^{r+Q} g(y) dy] / Q,  g(y) = E[h (y - D)+ + p (D - y)+]  [SS eq. (5.7)]

    In closed form with the second-order loss n2 (as g(y) = h (y - mu_L) + (h + p) n(y) and n2' = -n):
    g(r, Q) = K lambda / Q + h (r - mu_L + Q/2) + (h + p) [n2(r) - n2(r + Q)] / Q.

    ``p`` is the backorder cost per unit per time unit, as in [SS ch. 5].
    """
    r, q, h, p, k, lam = np.broadcast_arrays(_f64(r), _f64(q), _f64(h), _f64(p), _f64(ordering_cost), _f64(demand_rate))
    mu = _f64(mean_ltd)
    n2 = _f64(normal_second_order_loss(r, mu, sigma_ltd)) - _f64(normal_second_order_loss(r + q, mu, sigma_ltd))
    with np.errstate(all="ignore"):
        return _ret(k * lam / q + h * (r - mu + 0.5 * q) + (h + p) * n2 / q)


def rq_eoq_ss_normal(
    h: ArrayLike,
    p: ArrayLike,
    ordering_cost: ArrayLike,
    demand_rate: ArrayLike,
    mean_ltd: ArrayLike,
    sigma_ltd: ArrayLike,
) -> RQPolicy:
    """The "EOQ + SS" approximation of the optimal (r, Q) policy.  [SS ch. 5, eqs. (3.4), (5.21)]

    Q = EOQ = sqrt(2 K lambda / h); r = the newsvendor fractile of lead-time demand,
    r = mu_L + sigma_L Phi^-1(p / (p + h)).
    """
    r, _ = newsvendor_normal(h, p, mean_ltd, sigma_ltd)
    q = eoq(ordering_cost, h, demand_rate)
    r, q = np.broadcast_arrays(_f64(r), _f64(q))
    return RQPolicy(_ret(r), _ret(q))


def rq_optimal_r_for_q_normal(
    q: ArrayLike, h: ArrayLike, p: ArrayLike, mean_ltd: ArrayLike, sigma_ltd: ArrayLike
) -> FloatOrArray:
    """Cost-minimising reorder point for a given order quantity Q, normal lead-time demand.

    dg/dr = 0  <=>  g(r) = g(r + Q)  <=>  n(r) - n(r + Q) = h Q / (h + p)  [SS eq. (5.9); Zi ch. 6],
    i.e. r is the reorder point whose exact fill rate is p / (p + h). Solved as
    L(k) - L(k + Q/sigma_L) = h Q / ((h + p) sigma_L), r = mu_L + k sigma_L. sigma_L = 0 gives
    r = mu_L - h Q / (h + p).
    """
    q, h, p, mu, sigma = np.broadcast_arrays(_f64(q), _f64(h), _f64(p), _f64(mean_ltd), _f64(sigma_ltd))
    with np.errstate(all="ignore"):
        frac = h / (h + p)
        a = q / sigma
        t = frac * a
        inner = (sigma > 0) & (q > 0) & (frac > 0) & (frac < 1) & np.isfinite(a)
        k = _solve_rq_loss_equation(np.where(inner, t, 0.5), np.where(inner, a, 1.0))
        r = np.where(inner, mu + k * sigma, np.nan)
        r = np.where((sigma == 0) & (q > 0), mu - frac * q, r)
    return _ret(r)


def _quantile_function(levels: FloatArray, qv: FloatArray, u: FloatArray) -> FloatArray:
    """Piecewise-linear quantile function through (levels, qv[row]) at probabilities u (n_rows, k), flat outside."""
    n_rows, m = qv.shape
    if m == 1:
        return np.broadcast_to(qv[:, :1], (n_rows, u.shape[1])).copy()
    idx = np.clip(np.searchsorted(levels, u, side="right") - 1, 0, m - 2)
    lo_l, hi_l = levels[idx], levels[idx + 1]
    w = np.clip((u - lo_l) / (hi_l - lo_l), 0.0, 1.0)
    rows = np.arange(n_rows)[:, None]
    return qv[rows, idx] * (1.0 - w) + qv[rows, idx + 1] * w


def _check_quantiles(levels: ArrayLike, quantiles: ArrayLike) -> tuple[FloatArray, FloatArray, bool]:
    lv = _f64(levels)
    qv, single = _as_rows(quantiles)
    if lv.ndim != 1 or lv.size != qv.shape[1]:
        raise ValueError(f"levels must be 1-D with one level per quantile column ({qv.shape[1]}), got {lv.shape}")
    if not (np.all(np.diff(lv) > 0) and lv[0] > 0 and lv[-1] < 1):
        raise ValueError("levels must be strictly increasing and inside (0, 1)")
    # quantile crossing (common in ML forecasts): rearrange each row into a monotone quantile function
    return lv, np.sort(qv, axis=1), single


def reorder_point_from_quantiles(levels: ArrayLike, quantiles: ArrayLike, csl: ArrayLike) -> FloatOrArray:
    """Reorder point for a cycle service level from forecast quantiles of lead-time demand.

    Linear interpolation of each row's quantile function at ``csl`` (scalar or one per series). ``levels`` (m,)
    are the probability levels shared by all rows, ``quantiles`` (n_series, m) the values; crossed quantiles
    are sorted per row first (monotone rearrangement). Outside [levels[0], levels[-1]] the outermost quantile is
    returned (no tail extrapolation): ask the forecaster for the levels you need.
    """
    lv, qv, single = _check_quantiles(levels, quantiles)
    c = _per_row(csl, qv.shape[0], "csl")
    out = _quantile_function(lv, qv, c[:, None])[:, 0]
    out = np.where((c >= 0) & (c <= 1), out, np.nan)
    return _row_result(out, single)


def quantiles_to_samples(levels: ArrayLike, quantiles: ArrayLike, n_samples: int = 200) -> FloatArray:
    """Turn forecast quantiles of lead-time demand into an equally weighted sample matrix for the ``*_from_samples``
    functions.

    Evaluates each row's piecewise-linear quantile function at the midpoints u_j = (j + 1/2) / n_samples
    (stratified, deterministic "samples"), returning shape (n_series, n_samples). Crossed quantiles are sorted per
    row first. Beyond the outermost levels the quantile function is held flat, which understates the upper tail
    (and so the expected shortage) when the top level is not high: include levels such as 0.99 when fill rates
    matter.
    """
    lv, qv, single = _check_quantiles(levels, quantiles)
    if n_samples < 1:
        raise ValueError("n_samples must be >= 1")
    u = (np.arange(n_samples) + 0.5) / n_samples
    out = _quantile_function(lv, qv, np.broadcast_to(u, (qv.shape[0], n_samples)))
    return out[0] if single else out


def order_up_to_quantity(
    position: ArrayLike, s_level: ArrayLike, moq: ArrayLike = 0.0, pack_size: ArrayLike = 1.0
) -> FloatOrArray:
    """Order quantity of an order-up-to (base-stock / (s, S)) review: raise the inventory position to S.

    quantity = round_to_pack(S - position, moq, pack_size); 0 when the position is already at or above S.
    ``position`` is the inventory position (on hand + on order - backorders).
    """
    return round_to_pack(_f64(s_level) - _f64(position), moq, pack_size)


def rq_order_quantity(position: ArrayLike, r: ArrayLike, q: ArrayLike) -> FloatOrArray:
    """Order quantity of an (r, nQ) review: when position <= r, order the smallest multiple n Q with
    position + n Q > r; otherwise 0.  [SPT ch. 6; Zi ch. 6]

    ``q`` should already be a whole number of packs (see :func:`round_to_pack`).
    """
    pos, r, q = np.broadcast_arrays(_f64(position), _f64(r), _f64(q))
    with np.errstate(all="ignore"):
        n = np.floor((r - pos) / q) + 1.0
        out = np.where(pos <= r, n * q, 0.0)
    return _ret(np.where(q > 0, out, np.nan))
