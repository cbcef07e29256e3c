"""The inventory arithmetic of the policy, on numpy arrays (no I/O): loss functions, EOQ, safety factors, reorder
points and fill rates from lead-time-demand samples, order quantities rounded to MOQ and packs, the reorder point
per service rule, the classical normal baseline, and what a policy delivers on the samples. ``ml.policy.run``
assembles the policy from these; the simulators call the same functions.

Textbook formulas that only the tests use as oracles (newsvendor, (r, Q) costs, EOQ cost, the standard-normal and
second-order loss functions, quantile grids) live in ``tests/inventory_textbook.py``.

Everything here is plain, vectorised numpy/scipy: every function accepts scalars or arrays, broadcasts its
arguments against each other and returns a ``float`` for all-scalar input, an array otherwise. There is no I/O
and no state, so the same calls size one product-location or 30,000 at once. The per-series policy functions at the
end (:func:`order_quantity`, :func:`reorder_points`, :func:`classical_policy`, :func:`stockout_over_lead_time`)
take one array value per series and return arrays. No loop runs per series: the Python loops are over solver
iterations, over the handful of distinct service-target levels (a quantile at one level for many rows is a
partition, much faster than a full sort) and over cache-sized row blocks.

Conventions
-----------
- ``D`` is lead-time demand (LTD): demand summed over the replenishment lead time (for a periodic-review base-stock
  policy, over lead time + review period). ``mean_ltd`` / ``sigma_ltd`` are its mean and standard deviation.
- ``h`` is the holding cost and ``p`` the backorder (stockout) cost per unit, both per the same time unit as the
  demand rate; ``ordering_cost`` (K) is the fixed cost per order. Purchase cost is excluded throughout.
- Service-level semantics are carried in the names, never in a shared "service level" argument:

  * ``csl``: **cycle service level** (type-1), P(no stockout in a replenishment cycle) = P(D <= r).
  * ``fill_rate``: **fill rate** (type-2), the fraction of demand met from stock on hand.

- Loss functions follow Snyder & Shen, App. C: for a random variable X,
  n(x) = E[(X - x)+] (loss), n_bar(x) = E[(x - X)+] (complementary loss) and
  n2(x) = 1/2 E[((X - x)+)^2] (second-order loss). For a standard normal Z these are L(z), L_bar(z), L2(z).
  Silver, Pyke & Thomas call L(z) G_u(k); Chopra & Meindl's ESC is sigma_L * L(ss / sigma_L).
- The distribution-free functions take lead-time demand as a matrix of Monte Carlo sample paths summed over the
  lead time, shape ``(n_series, n_samples)`` (a 1-D array is one series). Samples must be finite.
- The policy: the lead-time demand covers the protection interval (``L + R - 1`` days with the pipeline's timing:
  reviewed at the close, received at the opening); an order is proposed when the inventory position is at or
  below the reorder point r, and raises it to the order-up-to level r + Q. The periodic-review functions also take
  the demand before the order arrives (``lead_samples``, the same draws cut at the arrival).
  Quantities are whole units: reorder points are rounded *up* to whole units (:func:`ceil_units`, so the target is
  still met) and order quantities up to the MOQ and a whole number of packs (:func:`round_to_pack`).

References
----------
- [SS] L. V. Snyder and Z.-J. M. Shen, *Fundamentals of Supply Chain Theory*, 2nd ed., Wiley, 2019:
  ch. 3 (EOQ), ch. 4 (newsvendor), ch. 5 ((r, Q) policies), app. C (loss functions).
- [SPT] E. A. Silver, D. F. Pyke and D. J. Thomas, *Inventory and Production Management in Supply Chains*,
  4th ed., CRC Press, 2017: ch. 6 (safety stock for cycle service and fill rate, G_u(k)).
- [CM] S. Chopra and P. Meindl, *Supply Chain Management: Strategy, Planning, and Operation*: the safety
  inventory chapter (ESC, fill rate, CSL; Exercise 11-4).
- [Ax] S. Axsater, *Inventory Control*, 3rd ed., Springer, 2015: ch. 5 (fill rate of (R, Q) policies).
- [Zi] P. H. Zipkin, *Foundations of Inventory Management*, McGraw-Hill, 2000: ch. 6 ((r, q) policies).
- [HF] R. J. Hyndman and Y. Fan, "Sample quantiles in statistical packages", *The American Statistician* 50(4),
  1996 (empirical quantile definitions).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

__all__ = [
    "BASIS_CSL",
    "BASIS_FILL",
    "BASIS_FLOOR",
    "DEFAULT_K_MAX",
    "DEFAULT_K_MIN",
    "ClassicalPolicy",
    "FillRateSafetyFactor",
    "ceil_units",
    "classical_policy",
    "cycle_service_from_samples",
    "cycle_service_level_normal",
    "eoq",
    "expected_shortage_from_samples",
    "fill_rate_from_samples",
    "fill_rate_sampling_optimism",
    "inverse_standard_normal_loss",
    "lead_time_demand_normal",
    "normal_loss",
    "normal_loss_complement",
    "order_quantity",
    "periodic_fill_rate_from_samples",
    "poisson_loss",
    "reorder_point_for_fill_rate_from_samples",
    "raised_fill_targets",
    "reorder_point_for_periodic_fill_rate",
    "reorder_point_from_samples",
    "reorder_points",
    "review_undershoot",
    "round_to_pack",
    "safety_factor_for_fill_rate",
    "stockout_over_lead_time",
    "level_shifted_interval",
    "stretched_interval",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
#: What the functions return: a Python float for all-scalar input, a float64 array otherwise.
FloatOrArray = float | FloatArray
BoolOrArray = bool | BoolArray

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)  # phi(0) = L(0)
_SQRT_HALF = math.sqrt(0.5)
_EPS = float(np.finfo(np.float64).eps)

#: Default range of the fill-rate safety factor k (see :func:`safety_factor_for_fill_rate`).
DEFAULT_K_MIN = 0.0
DEFAULT_K_MAX = 4.0

#: Quantities within this relative distance of a whole number (of units or of packs) count as that number: 1e-9 of
#: floating noise is not a unit (10.000000001 -> 10, not 11).
_UNIT_RTOL = 1e-9
#: Row blocks for the sample-matrix functions are sized to about this many elements (stays in cache).
_BLOCK_ELEMENTS = 1 << 18
#: Up to this many distinct levels, the quantiles are one partition per level; more (levels per series): one sort.
_PARTITION_MAX_LEVELS = 64

#: ``reorder_points`` basis: which rule set the reorder point (the ``reorder_point_basis`` of ml.inventory_policy).
BASIS_CSL = "cycle_service_level"
BASIS_FILL = "fill_rate"
BASIS_FLOOR = "fill_rate_csl_floor"


class FillRateSafetyFactor(NamedTuple):
    """Result of :func:`safety_factor_for_fill_rate`.

    Attributes:
        k: Safety factor clipped to ``[k_min, k_max]``; safety stock = ``k * sigma_ltd``.
        k_unclipped: The solution of the fill-rate equation before clipping (-inf when any k meets the target,
            +inf when none does).
        met_by_order_quantity: True where the target is met with k below ``k_min`` (with the default
            ``k_min = 0``: the order quantity alone gives the fill rate, no safety stock needed). ``k`` is then
            ``k_min``, i.e. the floor, not the fill-rate formula, sets the safety stock.
        capped: True where the target needs k above ``k_max``; ``k`` is then ``k_max`` and the target is missed.
    """

    k: FloatOrArray
    k_unclipped: FloatOrArray
    met_by_order_quantity: BoolOrArray
    capped: BoolOrArray


# ----------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------


def _f64(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _ret(x: ArrayLike) -> FloatOrArray:
    a = np.asarray(x, dtype=np.float64)
    return float(a) if a.ndim == 0 else a


def _ret_bool(x: ArrayLike) -> BoolOrArray:
    a = np.asarray(x, dtype=np.bool_)
    return bool(a) if a.ndim == 0 else a


def _as_rows(samples: ArrayLike) -> tuple[FloatArray, bool]:
    """Samples as a 2-D (n_series, n_samples) float array, and whether the input was a single 1-D series."""
    s = _f64(samples)
    if s.ndim == 1:
        return s[None, :], True
    if s.ndim != 2:
        raise ValueError(f"samples must be 1-D or 2-D (n_series, n_samples), got shape {s.shape}")
    if s.shape[1] == 0:
        raise ValueError("samples must have at least one sample per series")
    return s, False


def _per_row(x: ArrayLike, n_rows: int, name: str) -> FloatArray:
    """A scalar or per-series argument broadcast to shape (n_rows,)."""
    a = _f64(x)
    if a.ndim > 1 or (a.ndim == 1 and a.size not in (1, n_rows)):
        raise ValueError(f"{name} must be a scalar or have one value per series ({n_rows}), got shape {a.shape}")
    return np.broadcast_to(a.reshape(-1) if a.ndim else a, (n_rows,)).astype(np.float64, copy=True)


def _row_result(x: FloatArray, single: bool) -> FloatOrArray:
    return float(x[0]) if single else x


# ----------------------------------------------------------------------------------------------------------------
# standard normal loss functions
# ----------------------------------------------------------------------------------------------------------------


def _std_loss(z: FloatArray) -> FloatArray:
    """L(z) on arrays. For z > 0, phi and the tail are written with erfcx (no separate underflow):
    L(z) = exp(-z^2/2) * (1/sqrt(2 pi) - z/2 * erfcx(z/sqrt 2)). For z <= 0 both terms of phi(z) - z(1-Phi(z))
    are positive, so the direct form has no cancellation."""
    with np.errstate(all="ignore"):
        pos = z > 0
        zp = np.where(pos, z, 0.0)
        bracket = np.maximum(_INV_SQRT_2PI - 0.5 * zp * special.erfcx(zp * _SQRT_HALF), 0.0)
        l_pos = np.exp(-0.5 * zp * zp) * bracket
        zn = np.where(pos, 0.0, z)
        l_neg = _INV_SQRT_2PI * np.exp(-0.5 * zn * zn) - zn * special.ndtr(-zn)
        out = np.where(pos, l_pos, l_neg)
    return np.where(np.isposinf(z), 0.0, out)


def _log_loss_and_ratio(z: FloatArray) -> tuple[FloatArray, FloatArray]:
    """log L(z) and L(z) / (1 - Phi(z)) = -L(z)/L'(z), both without underflow for large z."""
    with np.errstate(all="ignore"):
        pos = z > 0
        zp = np.where(pos, z, 0.0)
        ex = special.erfcx(zp * _SQRT_HALF)
        bracket = np.maximum(_INV_SQRT_2PI - 0.5 * zp * ex, np.finfo(np.float64).tiny)
        log_pos = -0.5 * zp * zp + np.log(bracket)
        ratio_pos = 2.0 * bracket / ex
        zn = np.where(pos, 0.0, z)
        sf_neg = special.ndtr(-zn)
        l_neg = _INV_SQRT_2PI * np.exp(-0.5 * zn * zn) - zn * sf_neg
        log_neg = np.log(l_neg)
        ratio_neg = l_neg / sf_neg
    return np.where(pos, log_pos, log_neg), np.where(pos, ratio_pos, ratio_neg)


def inverse_standard_normal_loss(target: ArrayLike, *, max_iter: int = 60) -> FloatOrArray:
    """Solve L(z) = target for z (the inverse of the standard normal loss function), elementwise.

    Used for fill-rate safety factors: L(k) = (1 - fill_rate) Q / sigma_L  [SPT ch. 6; CM].

    Method: Newton's method on log L(z) - log(target). L is log-concave (it is the integral of the log-concave
    normal survival function), so Newton's iterates started to the right of the root decrease monotonically to it
    without overshooting. The start is a guaranteed right bracket:
    z0 = 1/sqrt(2 pi) - target when target >= L(0) = 1/sqrt(2 pi) (as L(z) <= -z + L(0) for z <= 0), and
    z0 = sqrt(2 log(1/(sqrt(2 pi) target))) otherwise (there phi(z0) = target and L(z0) < phi(z0)).
    Converges to machine precision in a handful of iterations for targets from 1e-300 to 1e300.

    Returns +inf for target == 0, -inf for target == +inf and NaN for negative or NaN targets.
    """
    t = _f64(target)
    valid = np.isfinite(t) & (t > 0)
    tv = np.where(valid, t, 1.0)
    with np.errstate(all="ignore"):
        z = np.where(tv >= _INV_SQRT_2PI, _INV_SQRT_2PI - tv, np.sqrt(2.0 * np.log(_INV_SQRT_2PI / tv)))
        log_t = np.log(tv)
    for _ in range(max_iter):
        log_l, ratio = _log_loss_and_ratio(z)
        step = np.where(valid, (log_l - log_t) * ratio, 0.0)
        z = z + step
        if np.all(np.abs(step) <= 4.0 * _EPS * (1.0 + np.abs(z))):
            break
    z = np.where(valid, z, np.nan)
    z = np.where(t == 0, np.inf, z)
    z = np.where(np.isposinf(t), -np.inf, z)
    return _ret(z)


def _solve_rq_loss_equation(t: FloatArray, a: FloatArray, *, max_iter: int = 60) -> FloatArray:
    """Solve L(k) - L(k + a) = t for k, with a > 0 and 0 < t < a (safeguarded Newton, vectorised).

    f(k) = L(k) - L(k + a) = E[min((Z - k)+, a)] = integral_k^{k+a} (1 - Phi(u)) du decreases from a to 0, with
    f'(k) = -(Phi(k + a) - Phi(k)). f is log-concave (a window integral of the log-concave normal tail), so Newton
    on log f(k) - log t started right of the root moves monotonically onto it, as in
    :func:`inverse_standard_normal_loss`. Start: hi = L^-1(t), where f(hi) <= L(hi) = t. Safeguard: steps that
    leave the bracket [lo, hi], lo = Phi^-1(1 - t/a) - a (where f(lo) >= a (1 - Phi(lo + a)) = t), bisect instead.
    """
    hi = _f64(inverse_standard_normal_loss(t))
    with np.errstate(all="ignore"):
        lo = np.minimum(special.ndtri(1.0 - t / a) - a, hi)
        log_t = np.log(t)
    k = hi.copy()
    tiny = np.finfo(np.float64).tiny
    for _ in range(max_iter):
        with np.errstate(all="ignore"):
            f = np.maximum(_std_loss(k) - _std_loss(k + a), tiny)
            g = np.log(f) - log_t
            upper = k + 0.5 * a > 0  # difference of upper tails or of lower tails, whichever is not 1 - 1
            mass = np.where(
                upper, special.ndtr(-k) - special.ndtr(-k - a), special.ndtr(k + a) - special.ndtr(k)
            )  # Phi(k + a) - Phi(k) = -f'(k)
            lo = np.where(g > 0, k, lo)
            hi = np.where(g <= 0, k, hi)
            newton = k + g * f / mass
        use_newton = np.isfinite(newton) & (newton >= lo) & (newton <= hi)
        k_new = np.where(use_newton, newton, 0.5 * (lo + hi))
        done = (np.abs(k_new - k) <= 4.0 * _EPS * (1.0 + np.abs(k))) | ~np.isfinite(k_new)
        k = k_new
        if np.all(done):
            break
    return k


# ----------------------------------------------------------------------------------------------------------------
# loss functions of normal and Poisson random variables
# ----------------------------------------------------------------------------------------------------------------


def _normal_family(
    x: ArrayLike, mu: ArrayLike, sigma: ArrayLike, std: Callable[[FloatArray], FloatArray], order: int, sign: float
) -> FloatArray:
    """sigma^order * std(sign * (x - mu) / sigma), with the sigma == 0 (point mass) limit and NaN for sigma < 0."""
    x, mu, sigma = np.broadcast_arrays(_f64(x), _f64(mu), _f64(sigma))
    with np.errstate(all="ignore"):
        z = sign * (x - mu) / sigma
        val = sigma**order * std(z)
    shortfall = np.maximum(sign * (mu - x), 0.0)  # point mass at mu
    degenerate = shortfall if order == 1 else 0.5 * shortfall**2
    out = np.where(sigma > 0, val, degenerate)
    return np.where(sigma < 0, np.nan, out)


def normal_loss(x: ArrayLike, mu: ArrayLike, sigma: ArrayLike) -> FloatOrArray:
    """Loss function of X ~ N(mu, sigma): n(x) = E[(X - x)+] = sigma L((x - mu)/sigma).  [SS eq. (C.31)]

    With X = lead-time demand and x = r this is the expected shortage per cycle (ESC) of [CM].
    sigma = 0 gives the point-mass limit (mu - x)+; sigma < 0 gives NaN.
    """
    return _ret(_normal_family(x, mu, sigma, _std_loss, 1, 1.0))


def normal_loss_complement(x: ArrayLike, mu: ArrayLike, sigma: ArrayLike) -> FloatOrArray:
    """Complementary loss of X ~ N(mu, sigma): n_bar(x) = E[(x - X)+] = sigma L_bar((x - mu)/sigma).  [SS eq. (C.32)]

    Equals (x - mu) + n(x); computed as sigma L(-(x - mu)/sigma). With x = S it is the expected on-hand stock left
    at the end of a newsvendor period.
    """
    return _ret(_normal_family(x, mu, sigma, _std_loss, 1, -1.0))


def _poisson_parts(x: ArrayLike, mean: ArrayLike) -> tuple[FloatArray, ...]:
    x, mean = np.broadcast_arrays(_f64(x), _f64(mean))
    with np.errstate(all="ignore"):
        m = np.floor(x)
        pmf = stats.poisson.pmf(m, mean)
        sf = stats.poisson.sf(m, mean)
        cdf = stats.poisson.cdf(m, mean)
    return x, mean, pmf, sf, cdf


def poisson_loss(x: ArrayLike, mean: ArrayLike) -> FloatOrArray:
    """Loss function of X ~ Poisson(mean): n(x) = E[(X - x)+] = sum_{k > x} (k - x) P(X = k).

    Closed form of the exact (infinite) sum, using k P(X = k) = mean P(X = k - 1), with m = floor(x):
    n(x) = (mean - x) P(X > m) + mean P(X = m).  [SS app. C; Zi ch. 6]

    Valid for real x (the loss is piecewise linear between integers). scipy's Poisson pmf/sf are computed from
    log-gamma and the regularised incomplete gamma function, so this is accurate for large means (1e6 and more)
    where summing terms would be slow or would underflow.
    """
    x, mean, pmf, sf, _ = _poisson_parts(x, mean)
    return _ret((mean - x) * sf + mean * pmf)


# ----------------------------------------------------------------------------------------------------------------
# lead-time demand, cycle service level
# ----------------------------------------------------------------------------------------------------------------


def lead_time_demand_normal(
    mean_per_period: ArrayLike,
    sd_per_period: ArrayLike,
    lead_time: ArrayLike,
    lead_time_sd: ArrayLike = 0.0,
) -> tuple[FloatOrArray, FloatOrArray]:
    """Mean and standard deviation of lead-time demand for i.i.d. per-period demand and a random lead time.

    mean_L = mu_d * L,  sigma_L = sqrt(L * sigma_d^2 + mu_d^2 * sigma_LT^2)  [CM, safety inventory chapter;
    SPT ch. 6]. With ``lead_time_sd = 0`` this is sigma_d * sqrt(L). For a periodic-review base-stock policy
    pass lead time + review period ([SS] sum over L + 1 periods).
    """
    mu, sd, lt, lt_sd = np.broadcast_arrays(
        _f64(mean_per_period), _f64(sd_per_period), _f64(lead_time), _f64(lead_time_sd)
    )
    return _ret(mu * lt), _ret(np.sqrt(lt * sd**2 + mu**2 * lt_sd**2))


def cycle_service_level_normal(safety_stock: ArrayLike, sigma_ltd: ArrayLike) -> FloatOrArray:
    """Cycle service level of a safety stock under normal lead-time demand: CSL = Phi(ss / sigma_L).  [CM]

    sigma_L = 0 gives 1 for ss >= 0 and 0 otherwise.
    """
    ss, sigma = np.broadcast_arrays(_f64(safety_stock), _f64(sigma_ltd))
    with np.errstate(all="ignore"):
        csl = special.ndtr(ss / sigma)
    csl = np.where(sigma == 0, (ss >= 0).astype(np.float64), csl)
    return _ret(np.where(sigma < 0, np.nan, csl))


# ----------------------------------------------------------------------------------------------------------------
# fill rate (type-2 service), normal lead-time demand
# ----------------------------------------------------------------------------------------------------------------


def safety_factor_for_fill_rate(
    fill_rate: ArrayLike,
    q: ArrayLike,
    sigma_ltd: ArrayLike,
    *,
    k_min: float = DEFAULT_K_MIN,
    k_max: float = DEFAULT_K_MAX,
    exact: bool = False,
) -> FillRateSafetyFactor:
    """Safety factor k (ss = k sigma_L) that gives an (r, Q) policy a target fill rate, normal lead-time demand.

    Textbook ([SPT ch. 6], [CM]): solve L(k) = (1 - fill_rate) Q / sigma_L via
    :func:`inverse_standard_normal_loss`. With ``exact=True`` solve the exact backorder expression
    L(k) - L(k + Q/sigma_L) = (1 - fill_rate) Q / sigma_L instead (always solvable for 0 < fill_rate < 1); the two
    differ only when Q is not large relative to sigma_L.

    The solution is clipped to ``[k_min, k_max]`` (default [0, 4]: never negative safety stock, at most 4 sigma).
    ``met_by_order_quantity`` flags where the target is met with k below ``k_min``; with the default k_min = 0
    that means the order quantity alone gives the fill rate (ESC at zero safety stock, 0.399 sigma_L, is already
    below (1 - fill_rate) Q). ``capped`` flags where k would exceed ``k_max`` (target missed).

    Warning — slow movers: when Q is large relative to sigma_L (pack sizes, MOQs, EOQ on cheap items), the
    formula returns a very low or negative k: ESC / Q is small because cycles are long, not because stockouts are
    rare. Measured on real demand panels, this textbook fill-rate safety stock starved slow movers and did worse
    than a cycle-service quantile at equal per-item fill (the normal approximation of intermittent lead-time
    demand adds to it). Keep the k_min floor (or set it from a minimum cycle service level,
    ``k_min = Phi^-1(csl_min)``), look at ``met_by_order_quantity``, and compare choices with
    ``tests/inventory_textbook.fill_rate_from_safety_stock`` / :func:`fill_rate_from_samples`.

    sigma_L = 0 (deterministic demand) gives k_unclipped = -inf (flagged met); fill_rate >= 1 gives +inf (capped).
    """
    fr, qq, sigma = np.broadcast_arrays(_f64(fill_rate), _f64(q), _f64(sigma_ltd))
    with np.errstate(all="ignore"):
        t = (1.0 - fr) * qq / sigma
        if exact:
            a = qq / sigma
            inner = (t > 0) & (t < a) & np.isfinite(a)
            k_raw = _solve_rq_loss_equation(np.where(inner, t, 0.5), np.where(inner, a, 1.0))
            k_raw = np.where(inner, k_raw, np.where(t <= 0, np.inf, -np.inf))
        else:
            k_raw = _f64(inverse_standard_normal_loss(t))
    k_raw = np.where(sigma == 0, -np.inf, k_raw)
    bad = ~((fr >= 0) & (fr <= 1) & (qq > 0) & (sigma >= 0))  # also catches NaN
    k_raw = np.where(bad, np.nan, k_raw)
    below = k_raw < k_min
    above = k_raw > k_max
    k = np.where(bad, np.nan, np.clip(k_raw, k_min, k_max))
    return FillRateSafetyFactor(_ret(k), _ret(k_raw), _ret_bool(below), _ret_bool(above))


# ----------------------------------------------------------------------------------------------------------------
# EOQ
# ----------------------------------------------------------------------------------------------------------------


def eoq(ordering_cost: ArrayLike, holding_cost: ArrayLike, demand_rate: ArrayLike) -> FloatOrArray:
    """Economic order quantity Q* = sqrt(2 K lambda / h).  [SS eqs. (3.4), (3.5)]

    Minimises g(Q) = K lambda / Q + h Q / 2 (purchase cost excluded); g(Q*) = sqrt(2 K lambda h).
    """
    k, h, lam = np.broadcast_arrays(_f64(ordering_cost), _f64(holding_cost), _f64(demand_rate))
    with np.errstate(all="ignore"):
        return _ret(np.sqrt(2.0 * k * lam / h))


# ----------------------------------------------------------------------------------------------------------------
# distribution-free: samples of lead-time demand
# ----------------------------------------------------------------------------------------------------------------


def reorder_point_from_samples(
    samples: ArrayLike, csl: ArrayLike, *, method: Literal["inverted_cdf", "linear"] = "inverted_cdf"
) -> FloatOrArray:
    """Reorder point for a cycle service level from samples of lead-time demand: the empirical csl-quantile per row.

    - ``"inverted_cdf"`` (default, [HF] definition 1): the smallest sample value x with F_n(x) >= csl, i.e. the
      smallest reorder point with an empirical cycle service level of at least ``csl`` (integers stay integers).
    - ``"linear"`` ([HF] definition 7, numpy's default): linear interpolation between order statistics.

    ``csl`` may be a scalar or one value per series. Both methods equal ``np.quantile(..., method=...)`` per row.
    Rows are grouped by level: one partition per distinct level (a few service targets; faster than a full sort),
    one sort of all rows when there are more than 64 distinct levels.
    """
    s, single = _as_rows(samples)
    n_rows, n = s.shape
    c = _per_row(csl, n_rows, "csl")
    bad = ~((c >= 0) & (c <= 1))
    c = np.where(bad, 0.5, c)
    if method == "inverted_cdf":
        lo = np.clip(np.ceil(n * c).astype(np.int64) - 1, 0, n - 1)
        hi, w = lo, np.zeros(n_rows)
    elif method == "linear":
        pos = (n - 1) * c
        lo = np.clip(np.floor(pos).astype(np.int64), 0, n - 1)
        hi = np.minimum(lo + 1, n - 1)
        w = pos - lo
    else:
        raise ValueError(f"unknown method {method!r}")
    levels = np.unique(c)
    if levels.size <= _PARTITION_MAX_LEVELS:
        out = np.empty(n_rows)
        for level in levels:  # a few service-target levels, not series: a partition around each is enough
            rows = np.flatnonzero(c == level)
            block = s if rows.size == n_rows else s[rows]
            lo_l, hi_l = lo[rows[0]], hi[rows[0]]
            arr = np.partition(block, np.unique([lo_l, hi_l]), axis=1)
            out[rows] = arr[:, lo_l] + w[rows] * (arr[:, hi_l] - arr[:, lo_l])
    else:
        arr = np.sort(s, axis=1)
        rows = np.arange(n_rows)
        out = arr[rows, lo] + w * (arr[rows, hi] - arr[rows, lo])
    out = np.where(bad, np.nan, out)
    return _row_result(out, single)


def expected_shortage_from_samples(samples: ArrayLike, r: ArrayLike) -> FloatOrArray:
    """Expected shortage per cycle from samples of lead-time demand: E[(D - r)+], the sample mean per row.

    The distribution-free ESC (= :func:`normal_loss` for normal D). ``r`` is a scalar or one value per series.
    """
    s, single = _as_rows(samples)
    rr = _per_row(r, s.shape[0], "r")
    out = np.empty(s.shape[0])
    for sl in _row_blocks(s.shape):
        out[sl] = np.maximum(s[sl] - rr[sl, None], 0.0).mean(axis=1)
    return _row_result(out, single)


def cycle_service_from_samples(samples: ArrayLike, r: ArrayLike) -> FloatOrArray:
    """Cycle service level of a reorder point from samples of lead-time demand: P(D <= r), the sample share per row.

    The distribution-free :func:`cycle_service_level_normal`. ``r`` is a scalar or one value per series.
    """
    s, single = _as_rows(samples)
    rr = _per_row(r, s.shape[0], "r")
    out = np.empty(s.shape[0])
    for sl in _row_blocks(s.shape):
        out[sl] = (s[sl] <= rr[sl, None]).mean(axis=1)
    return _row_result(out, single)


def _row_blocks(shape: tuple[int, ...]) -> list[slice]:
    """Row slices of about _BLOCK_ELEMENTS elements each (cache-sized blocks; this is not a per-row loop)."""
    n_rows, n_cols = shape
    step = max(1, _BLOCK_ELEMENTS // max(n_cols, 1))
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def _clipped_shortage(s: FloatArray, r: FloatArray, q: FloatArray, buf: FloatArray) -> FloatArray:
    """E[min((D - r)+, Q)] = E[(D - r)+ - (D - r - Q)+] per row (s: block of samples, r/q: per row)."""
    np.subtract(s, r[:, None], out=buf)
    np.clip(buf, 0.0, q[:, None], out=buf)
    return buf.mean(axis=1)


def fill_rate_from_samples(samples: ArrayLike, r: ArrayLike, q: ArrayLike) -> FloatOrArray:
    """Fill rate of an (r, Q) policy from samples of lead-time demand D.

    fill_rate = 1 - E[(D - r)+ - (D - r - Q)+] / Q  [Ax ch. 5; Zi ch. 6]

    The exact expression for backordered demand with the inventory position uniform on [r, r + Q]: the demand
    not met from stock in a cycle is the lead-time demand beyond r, but at most one order quantity. For normal D
    it equals ``fill_rate_from_safety_stock`` (tests/inventory_textbook.py) with ``exact=True``. ``r`` and ``q``
    are scalars or one value per series; q <= 0 gives NaN.
    """
    s, single = _as_rows(samples)
    n_rows = s.shape[0]
    rr, qq = _per_row(r, n_rows, "r"), _per_row(q, n_rows, "q")
    out = np.empty(n_rows)
    for sl in _row_blocks(s.shape):
        buf = np.empty_like(s[sl])
        out[sl] = _clipped_shortage(s[sl], rr[sl], np.maximum(qq[sl], 0.0), buf)
    with np.errstate(all="ignore"):
        fr = np.where(qq > 0, 1.0 - out / qq, np.nan)
    return _row_result(fr, single)


def reorder_point_for_fill_rate_from_samples(
    samples: ArrayLike,
    fill_rate: ArrayLike,
    q: ArrayLike,
    *,
    step: float | None = None,
    rtol: float = 1e-7,
) -> FloatOrArray:
    """Smallest reorder point r whose sample fill rate (see :func:`fill_rate_from_samples`) meets the target.

    Solves E[min((D - r)+, Q)] <= (1 - fill_rate) Q per row. The left side is continuous and non-increasing in
    r, equal to Q at r = min(D) - Q and 0 at r = max(D), so the answer lies in that bracket. It is found by
    bisection run on all rows at once (blocks of rows sized for the cache; no loop per row):

    - ``step=None``: continuous r, bracket narrowed to ``rtol`` times its initial width; the upper end (which
      always meets the target) is returned.
    - ``step=s``: r restricted to multiples of s (``step=1`` for whole units); returns the smallest multiple
      meeting the target, exactly.

    ``fill_rate`` (in (0, 1]) and ``q`` (> 0) are scalars or one value per series; other values give NaN.
    fill_rate = 1 returns max(D) (no sampled shortage at all).
    """
    if step is not None and not step > 0:
        raise ValueError("step must be positive")
    s, single = _as_rows(samples)
    n_rows = s.shape[0]
    fr, qq = _per_row(fill_rate, n_rows, "fill_rate"), _per_row(q, n_rows, "q")
    bad = ~((fr > 0) & (fr <= 1) & (qq > 0) & np.isfinite(qq))
    fr, qq = np.where(bad, 0.5, fr), np.where(bad, 1.0, qq)
    target = (1.0 - fr) * qq
    lo_all = s.min(axis=1) - qq
    hi_all = s.max(axis=1)
    out = np.empty(n_rows)
    n_iter = max(1, math.ceil(math.log2(1.0 / rtol)))
    for sl in _row_blocks(s.shape):
        blk, t, qb = s[sl], target[sl], qq[sl]
        buf = np.empty_like(blk)
        if step is None:
            lo, hi = lo_all[sl].copy(), hi_all[sl].copy()
            for _ in range(n_iter):
                mid = 0.5 * (lo + hi)
                meets = _clipped_shortage(blk, mid, qb, buf) <= t
                hi = np.where(meets, mid, hi)
                lo = np.where(meets, lo, mid)
            out[sl] = hi
        else:
            # invariant: hi*step meets the target, lo*step does not (lo*step <= min(D) - Q gives shortage Q > t)
            lo = np.floor(lo_all[sl] / step) - 1.0
            hi = np.ceil(hi_all[sl] / step)
            while np.any(hi - lo > 1):
                mid = np.floor(0.5 * (lo + hi))
                meets = _clipped_shortage(blk, mid * step, qb, buf) <= t
                active = hi - lo > 1
                hi = np.where(active & meets, mid, hi)
                lo = np.where(active & ~meets, mid, lo)
            out[sl] = hi * step
    out = np.where(bad, np.nan, out)
    return _row_result(out, single)


# ----------------------------------------------------------------------------------------------------------------
# periodic review: the fill rate of an (R, s, S) policy from joint samples of the demand over the lead time alone
# and over lead time + review period
# ----------------------------------------------------------------------------------------------------------------

#: Seed of the undershoot chain (:func:`review_undershoot`): fixed, so a policy is reproducible run to run.
UNDERSHOOT_SEED = 20240917
#: Steps the undershoot chain runs before it is recorded (it starts anywhere in the cycle, uniform on [0, Q)).
_UNDERSHOOT_BURN_IN = 256
#: Rows the undershoot chain runs at once (a block's draws fit in the cache; the result does not depend on it).
_UNDERSHOOT_BLOCK_ROWS = 1024


def review_undershoot(review_demand: ArrayLike, q: ArrayLike, *, whole_units: bool = True,
                      seed: int = UNDERSHOOT_SEED) -> FloatArray:
    """(n_series, n_samples) draws of how far the inventory position sits below the order-up-to level r + Q at a
    review of an (R, s, S) policy, in the long run: ``U`` in [0, Q).

    At each review the position has fallen by the review period's demand since the last one; when it is at or
    below r (``U >= Q``) an order raises it to r + Q again (``U = 0``). This is a Markov chain on U whose
    stationary law is the renewal measure of the review-period demand on [0, Q) (Hadley & Whitin 1963, ch. 5;
    Zheng & Federgruen 1991): uniform for smooth demand small against Q, an atom at 0 for lumpy demand (most
    reviews see nothing and the position stays at r + Q). It is simulated per series from the review-period
    demand samples (``review_demand``, drawn with replacement), all series at once: a burn-in of
    256 steps from a uniform start, then one recorded state per sample. The draws are seeded and the same for
    every row, so a row's undershoot does not depend on the other rows passed. ``q <= 0`` gives U = 0.

    ``whole_units`` (default): the position moves in whole units, as goods are counted, so a review's demand is
    rounded to a whole number at random with its mean kept (0.3 -> 1 with probability 0.3). Forecast-based draws
    are continuous; summing them as they are would leave a slow item's position a fraction of a unit above its
    reorder point, and every single-unit sale would then count as mostly short.
    """
    d, _ = _as_rows(review_demand)
    n, m = d.shape
    qq = np.maximum(_per_row(q, n, "q"), 0.0)
    # one sequence of draws for every row, so a row's chain does not depend on which other rows are passed
    rng = np.random.default_rng(np.random.SeedSequence([seed, m]))
    u = rng.random() * qq
    picks = rng.integers(0, m, _UNDERSHOOT_BURN_IN + m)
    coins = rng.random(_UNDERSHOOT_BURN_IN + m)
    if whole_units:
        u = np.floor(u)
    out = np.empty((n, m))
    for a in range(0, n, _UNDERSHOOT_BLOCK_ROWS):  # a block of rows at a time: its draws stay in the cache
        rows = slice(a, a + _UNDERSHOOT_BLOCK_ROWS)
        d_b, q_b, u_b, out_b = d[rows], qq[rows], u[rows], out[rows]
        for k in range(_UNDERSHOOT_BURN_IN + m):
            step = d_b[:, picks[k]]
            if whole_units:
                whole = np.floor(step)
                step = whole + (coins[k] < step - whole)
            u_b += step
            u_b[u_b >= q_b] = 0.0
            if k >= _UNDERSHOOT_BURN_IN:
                out_b[:, k - _UNDERSHOOT_BURN_IN] = u_b
    return out


def _periodic_parts(samples: FloatArray, lead: FloatArray, undershoot: FloatArray, level: FloatArray,
                    sl: slice) -> FloatArray:
    """E[(D_P + U - S)+ - (D_L + U - S)+] per row of the block ``sl``: the demand short in one review period."""
    s = level[sl, None]
    a = np.maximum(samples[sl] + undershoot[sl] - s, 0.0)
    b = np.maximum(lead[sl] + undershoot[sl] - s, 0.0)
    return (a - b).mean(axis=1)


def _joint_rows(samples: ArrayLike, lead_samples: ArrayLike) -> tuple[FloatArray, FloatArray, bool]:
    s, single = _as_rows(samples)
    ld, _ = _as_rows(lead_samples)
    if ld.shape != s.shape:
        raise ValueError(f"lead_samples {ld.shape} must have the shape of samples {s.shape}")
    return s, np.minimum(ld, s), single


def periodic_fill_rate_from_samples(samples: ArrayLike, lead_samples: ArrayLike, r: ArrayLike, q: ArrayLike, *,
                                    undershoot: ArrayLike | None = None) -> FloatOrArray:
    """Fill rate of a periodic-review (R, s, S) policy (s = r, S = r + Q) from joint samples of the demand over
    the protection interval ``D_P`` (``samples``) and over the part of it before an order arrives ``D_L``
    (``lead_samples``, the same draws cut at the arrival).

    An order placed at a review with the position at ``y = S - U`` covers the demand from its arrival to the next
    arrival: the demand short in that review period is ``(D_P - y)+ - (D_L - y)+`` (with backorders; Hadley &
    Whitin; Silver, Pyke & Thomas ch. 7). With ``U`` the long-run undershoot at a review
    (:func:`review_undershoot`, paired with the samples; computed here when not given):

        fill_rate = 1 - E[(D_P + U - S)+ - (D_L + U - S)+] / E[D_P - D_L]

    Unlike the continuous-review (r, Q) formula (:func:`fill_rate_from_samples`) it does not cap a cycle's
    shortage at Q (one customer order larger than the whole position loses more than Q) and it does not count
    the demand during the lead time as exposed when the next order is on its way. Measured against a day-by-day
    replay of known demand it is within about a point for smooth, intermittent and lumpy demand
    (bench/fill_promise.py; docs/backtest.md). A row without review-period demand has fill rate 1; q <= 0 gives
    NaN.
    """
    s, ld, single = _joint_rows(samples, lead_samples)
    n = s.shape[0]
    rr, qq = _per_row(r, n, "r"), _per_row(q, n, "q")
    u = review_undershoot(s - ld, qq) if undershoot is None else _as_rows(undershoot)[0]
    short = np.empty(n)
    per_review = (s - ld).mean(axis=1)
    level = rr + qq
    for sl in _row_blocks(s.shape):
        short[sl] = _periodic_parts(s, ld, u, level, sl)
    with np.errstate(all="ignore"):
        fr = np.where(per_review > 0, 1.0 - short / np.where(per_review > 0, per_review, 1.0), 1.0)
    return _row_result(np.where(qq > 0, fr, np.nan), single)


def fill_rate_sampling_optimism(samples: ArrayLike, lead_samples: ArrayLike, fill_rate: ArrayLike, q: ArrayLike,
                                *, undershoot: ArrayLike | None = None) -> FloatOrArray:
    """How much the periodic-review fill rate of the reorder point set on a set of draws overstates what that
    reorder point delivers on new draws, per row (>= 0), by two-fold cross-fitting.

    The smallest r whose sampled shortage meets the target picks the draws whose tail happens to be light: on a
    few hundred draws of lumpy demand the fill rate it reports is 2-4 points above the fill rate of the same r
    on independent draws (bench/fill_promise.py). Here r is set on each half of the draws and judged on the
    other; the mean gap between the half it was set on and the other half is the optimism of a half-size set,
    divided by sqrt(2) for the full set (the sampling error of a tail estimate shrinks with the square root of
    the number of draws). ``ml.policy.run`` raises the fill-rate target by it before it sets r and takes it off the
    promise, so the promise is what independent draws would say. Needs an even split: one draw is dropped when
    the number is odd. Fewer than 20 draws: 0.
    """
    s, ld, single = _joint_rows(samples, lead_samples)
    n, m = s.shape
    h = m // 2
    if h < 10:
        return _row_result(np.zeros(n), single)
    fr, qq = _per_row(fill_rate, n, "fill_rate"), _per_row(q, n, "q")
    u = review_undershoot(s - ld, qq) if undershoot is None else _as_rows(undershoot)[0]
    halves = [(slice(0, h), slice(h, 2 * h)), (slice(h, 2 * h), slice(0, h))]
    gap = np.zeros(n)
    for fit, judge in halves:
        r = _f64(reorder_point_for_periodic_fill_rate(s[:, fit], ld[:, fit], fr, qq, undershoot=u[:, fit]))
        on_fit = _f64(periodic_fill_rate_from_samples(s[:, fit], ld[:, fit], r, qq, undershoot=u[:, fit]))
        on_judge = _f64(periodic_fill_rate_from_samples(s[:, judge], ld[:, judge], r, qq, undershoot=u[:, judge]))
        gap += np.nan_to_num(on_fit - on_judge, nan=0.0) / 2.0
    return _row_result(np.maximum(gap, 0.0) / math.sqrt(2.0), single)


def raised_fill_targets(samples: ArrayLike, lead_samples: ArrayLike, *, is_fill_rate: BoolArray, target: ArrayLike,
                        q: ArrayLike, undershoot: ArrayLike | None = None) -> tuple[FloatArray, FloatArray]:
    """(target to set the reorder point with, optimism) per row: a fill-rate row's target raised by its
    :func:`fill_rate_sampling_optimism` (at most 1), which the promise then loses; other rows keep their target
    and an optimism of 0."""
    s, ld, _ = _joint_rows(samples, lead_samples)
    n = s.shape[0]
    t, qq = _per_row(target, n, "target"), _per_row(q, n, "q")
    fill = np.asarray(is_fill_rate, dtype=bool)
    optimism = np.zeros(n)
    rows = np.flatnonzero(fill)
    if rows.size:
        u = None if undershoot is None else _as_rows(undershoot)[0][rows]
        optimism[rows] = fill_rate_sampling_optimism(s[rows], ld[rows], t[rows], qq[rows], undershoot=u)
    return np.where(fill, np.minimum(t + optimism, 1.0), t), optimism


def _add_own_intervals(out_s: FloatArray, out_l: FloatArray, s: FloatArray, lead_of_added: FloatArray,
                       extra: FloatArray, *, seed: int, tag: tuple[int, ...] = ()) -> None:
    """Add to ``out_s`` (and ``lead_of_added``'s part to ``out_l``), in place, ``floor(extra)`` whole intervals of
    each row's own draws and ``frac(extra)`` times one more, every added interval the draws shuffled. The k-th
    shuffle is the same for every row, so a row's result does not depend on the others."""
    n, m = s.shape
    k = 0
    while True:
        part = np.clip(extra - k, 0.0, 1.0)  # share of the k-th added interval (1: whole, < 1: fraction)
        rows = np.flatnonzero(part > 0)
        if not rows.size:
            return
        cols = np.random.default_rng(np.random.SeedSequence([seed, m, k, *tag])).permutation(m)
        every_row, whole = rows.size == n, bool(np.all(part[rows] == 1.0))
        added = None
        for src, out in ((s, out_s), (lead_of_added, out_l)):
            if added is None or src is not s:  # one gather when the added lead part is the draws themselves
                added = src[np.ix_(rows, cols)]
                if not whole:
                    added *= part[rows, None]
            if every_row:
                out += added
            else:
                out[rows] += added
        k += 1


def stretched_interval(samples: ArrayLike, lead_samples: ArrayLike, factor: ArrayLike, *,
                       seed: int = UNDERSHOOT_SEED) -> tuple[FloatArray, FloatArray]:
    """Joint samples of a protection interval stretched by ``factor`` per row (a wait for the goods at the DC, a
    planner's longer lead time): the demand of the added days comes before the arrival, so it is added to both.

    The added ``(f - 1) P`` days are drawn as whole independent intervals of the row's own samples (other draws,
    shuffled), ``floor(f - 1)`` of them, plus ``frac(f - 1)`` times one more: ``D_P + sum_k D_P^(k) + frac
    D_P^(k+1)``. A customer order of 5 stays an order of 5 over each added whole interval (it becomes more
    likely, not larger), which scaling the samples by ``f`` would not keep; the mean is the same, ``f E[D_P]``,
    and demand without variability stays without. A factor below 1 (a shorter planner lead time) shrinks
    the time before arrival: ``D_P f`` and ``clip(D_L + D_P (f - 1), 0, D_P f)``. One shuffle per added interval,
    seeded, so a policy is reproducible."""
    s, single = _as_rows(samples)
    ld = _as_rows(lead_samples)[0]
    f = _per_row(factor, s.shape[0], "factor")
    out_s, out_l = s.copy(), ld.copy()
    shrink = np.flatnonzero(f < 1.0)
    if shrink.size:
        out_s[shrink] = s[shrink] * f[shrink, None]
        out_l[shrink] = np.clip(ld[shrink] + s[shrink] * (f[shrink, None] - 1.0), 0.0, out_s[shrink])
    # the added days come before the arrival: their demand is added to the demand before arrival whole
    _add_own_intervals(out_s, out_l, s, s, np.where(f > 1.0, f - 1.0, 0.0), seed=seed)
    if single:
        return out_s[0], out_l[0]
    return out_s, out_l


def level_shifted_interval(samples: ArrayLike, lead_samples: ArrayLike, factor: ArrayLike, *,
                           seed: int = UNDERSHOOT_SEED) -> tuple[FloatArray, FloatArray]:
    """Joint samples of the same interval with its demand level moved by ``factor`` per row (a re-plan between
    forecasts: ``ml.policy.run.forecast_level_shift``).

    A level above 1 comes as more customers, not larger orders: ``floor(f - 1)`` independent intervals of the
    row's own draws (other draws, shuffled, with their own demand before arrival) are added, and ``frac(f - 1)``
    times one more, so ``E = f E[D]``. A slow item's one-unit sale stays one unit (the added draws are mostly
    zero), where scaling the draws by 1.2 would make every single sale 1.2 units, a reorder point of 2 for an
    item that sells one at a time; a fast item gets the smooth 20% more it should. A level below 1 scales the
    draws (the whole-unit rounding of the fill rate then thins them). One shuffle per added interval, seeded: a
    row's result does not depend on the others."""
    s, single = _as_rows(samples)
    ld = _as_rows(lead_samples)[0]
    f = _per_row(factor, s.shape[0], "factor")
    down = np.minimum(f, 1.0)[:, None]
    out_s, out_l = s * down, ld * down
    # more customers over the same interval: each added interval keeps its own demand before arrival
    _add_own_intervals(out_s, out_l, s, ld, np.maximum(f - 1.0, 0.0), seed=seed, tag=(1,))
    if single:
        return out_s[0], out_l[0]
    return out_s, out_l


class _Excess:
    """E[(X - level)+] per row of a sample matrix X for many levels: X sorted once with its suffix sums, then a
    binary search per row and query (a few gathers over the rows, not a pass over the samples)."""

    def __init__(self, x: FloatArray) -> None:
        self.sorted = np.sort(x, axis=1)
        n, self.m = x.shape
        self.tail = np.zeros((n, self.m + 1))
        self.tail[:, : self.m] = np.cumsum(self.sorted[:, ::-1], axis=1)[:, ::-1]

    def __call__(self, level: FloatArray) -> FloatArray:
        n = self.sorted.shape[0]
        rows = np.arange(n)
        lo, hi = np.zeros(n, dtype=np.int64), np.full(n, self.m, dtype=np.int64)
        while np.any(lo < hi):  # lo = number of samples <= level
            mid = (lo + hi) // 2
            le = self.sorted[rows, np.minimum(mid, self.m - 1)] <= level
            open_ = lo < hi
            lo = np.where(open_ & le, mid + 1, lo)
            hi = np.where(open_ & ~le, mid, hi)
        return (self.tail[rows, lo] - level * (self.m - lo)) / self.m


#: Rows per block of the periodic reorder-point search (bounds the memory of the sorted copies).
_PERIODIC_BLOCK_ROWS = 4096


def reorder_point_for_periodic_fill_rate(samples: ArrayLike, lead_samples: ArrayLike, fill_rate: ArrayLike,
                                         q: ArrayLike, *, undershoot: ArrayLike | None = None) -> FloatOrArray:
    """Smallest whole-unit reorder point r whose periodic-review fill rate
    (:func:`periodic_fill_rate_from_samples`) meets the target, by bisection on all rows at once.

    The shortage per review is non-increasing in S = r + Q (its derivative is P(D_L + U > S) - P(D_P + U > S)
    <= 0 because D_L <= D_P), zero once S reaches max(D_P + U) and the whole review-period demand once S is at or
    below min(D_L + U); so the answer lies in that bracket. Each step reads the shortage off the sorted draws
    (``_Excess``), in blocks of rows. ``fill_rate`` in (0, 1] and ``q`` > 0 per row; other values give NaN. A
    row without review-period demand gets the smallest r in the bracket.
    """
    s, ld, single = _joint_rows(samples, lead_samples)
    n = s.shape[0]
    fr, qq = _per_row(fill_rate, n, "fill_rate"), _per_row(q, n, "q")
    bad = ~((fr > 0) & (fr <= 1) & (qq > 0) & np.isfinite(qq))
    fr, qq = np.where(bad, 0.5, fr), np.where(bad, 1.0, qq)
    u = review_undershoot(s - ld, qq) if undershoot is None else _as_rows(undershoot)[0]
    out = np.empty(n)
    for a in range(0, n, _PERIODIC_BLOCK_ROWS):
        sl = slice(a, min(a + _PERIODIC_BLOCK_ROWS, n))
        over_p, over_l = _Excess(s[sl] + u[sl]), _Excess(ld[sl] + u[sl])
        allowed = (1.0 - fr[sl]) * (s[sl] - ld[sl]).mean(axis=1)
        q_b = qq[sl]
        lo = np.floor(over_l.sorted[:, 0] - q_b) - 1.0  # shortage there: the whole review demand
        hi = np.maximum(np.ceil(over_p.sorted[:, -1] - q_b), lo + 1.0)  # no shortage at all
        while np.any(hi - lo > 1):
            mid = np.floor(0.5 * (lo + hi))
            short = over_p(mid + q_b) - over_l(mid + q_b)
            meets = short <= allowed + 1e-12 * np.maximum(allowed, 1.0)
            active = hi - lo > 1
            hi = np.where(active & meets, mid, hi)
            lo = np.where(active & ~meets, mid, lo)
        out[sl] = hi
    return _row_result(np.where(bad, np.nan, out), single)

# ----------------------------------------------------------------------------------------------------------------
# order quantities
# ----------------------------------------------------------------------------------------------------------------


def ceil_units(x: ArrayLike) -> FloatArray:
    """Round up to whole units, ignoring floating noise (10.000000001 -> 10, not 11)."""
    x = _f64(x)
    return np.ceil(x - _UNIT_RTOL * np.maximum(1.0, np.abs(x)))


def round_to_pack(q: ArrayLike, moq: ArrayLike = 0.0, pack_size: ArrayLike = 1.0) -> FloatOrArray:
    """Order quantity that respects a minimum order quantity and a pack size.

    For q > 0: result = pack * ceil(max(q, moq) / pack), so result >= q, result >= moq and result is a whole
    number of packs (moq itself is rounded up to whole packs). q <= 0 (nothing needed) gives 0; NaN q gives NaN.
    A pack size that is 0, negative or NaN counts as 1 (whole units); a NaN or negative MOQ counts as 0.
    Quantities within a relative 1e-9 of a whole number of packs count as that number (floating noise such as
    0.1 + 0.2 does not add a pack).
    """
    q, moq, pack = np.broadcast_arrays(_f64(q), _f64(moq), _f64(pack_size))
    pack = np.where(np.isnan(pack) | (pack <= 0), 1.0, pack)
    moq = np.where(np.isnan(moq) | (moq < 0), 0.0, moq)
    with np.errstate(all="ignore"):
        n_packs = ceil_units(np.maximum(q, moq) / pack)
        out = np.where(q > 0, n_packs * pack, 0.0)
    return _ret(np.where(np.isnan(q), np.nan, out))


def order_quantity(
    daily_demand: FloatArray,
    unit_cost: FloatArray,
    ordering_cost: FloatArray,
    *,
    annual_holding_rate: float | FloatArray,
    min_cover_days: float,
    max_cover_days: float,
    moq: FloatArray,
    pack_size: FloatArray,
    days_per_year: float = 365.0,
) -> tuple[FloatArray, FloatArray]:
    """(EOQ in units, order quantity rounded to MOQ and pack).

    EOQ = sqrt(2 K D / h) with D = daily demand x days_per_year and h = annual_holding_rate x unit cost
    ([SS ch. 3], :func:`eoq`), bounded to [min_cover_days, max_cover_days] days of demand, then rounded up to the
    MOQ and a whole number of packs (:func:`round_to_pack`). ``ordering_cost`` (K) and ``annual_holding_rate`` are
    one value for every series or one per series (an array of the same length, e.g. the item's rate from the
    master, else the default). Series without demand get the smallest orderable quantity (one unit, one pack or the
    MOQ), so a reorder point can still be evaluated; they are never proposed (see ``ml.policy.run.run_policy``).
    """
    d = np.maximum(_f64(daily_demand), 0.0)
    h = _f64(annual_holding_rate) * _f64(unit_cost)
    q_eoq = _f64(eoq(ordering_cost, h, d * days_per_year))
    q_eoq = np.where(np.isfinite(q_eoq), q_eoq, max_cover_days * d)
    bounded = np.clip(q_eoq, min_cover_days * d, max_cover_days * d)
    need = np.where(bounded > 0, bounded, 1.0)
    return q_eoq, _f64(round_to_pack(need, moq, pack_size))


# ----------------------------------------------------------------------------------------------------------------
# the policy per series: reorder points by service rule, the classical baseline, stock-out over the lead time
# ----------------------------------------------------------------------------------------------------------------


def reorder_points(
    samples: FloatArray,
    *,
    is_fill_rate: BoolArray,
    target: FloatArray,
    q: FloatArray,
    csl_floor: float,
    lead_samples: FloatArray | None = None,
    undershoot: FloatArray | None = None,
) -> tuple[FloatArray, NDArray[np.object_]]:
    """Reorder point per series from the LTD samples, and which rule set it.

    - cycle service level target: the empirical quantile at the target (the smallest r with
      P(D <= r) >= target, :func:`reorder_point_from_samples`), rounded up to whole units;
    - fill-rate target: the smallest whole-unit r whose fill rate meets the target for this Q, but never below
      the empirical quantile at ``csl_floor`` (the slow-mover guard, see PolicyConfig.min_cycle_service_level).
      With ``lead_samples`` (the demand before an order arrives, same draws) the fill rate is the periodic-review
      one (:func:`reorder_point_for_periodic_fill_rate`, with ``undershoot`` if given); without, the
      continuous-review (r, Q) one (:func:`reorder_point_for_fill_rate_from_samples`).

    Never negative. ``basis`` is :data:`BASIS_CSL`, :data:`BASIS_FILL` or :data:`BASIS_FLOOR`.
    """
    n = samples.shape[0]
    r = np.zeros(n)
    basis = np.full(n, BASIS_CSL, dtype=object)
    csl_rows = np.flatnonzero(~is_fill_rate)
    if csl_rows.size:
        block = samples if csl_rows.size == n else samples[csl_rows]
        r[csl_rows] = ceil_units(reorder_point_from_samples(block, target[csl_rows]))
    fr_rows = np.flatnonzero(is_fill_rate)
    if fr_rows.size:
        block = samples if fr_rows.size == n else samples[fr_rows]
        if lead_samples is None:
            r_fill = _f64(reorder_point_for_fill_rate_from_samples(block, target[fr_rows], q[fr_rows], step=1.0))
        else:
            lead = lead_samples if fr_rows.size == n else lead_samples[fr_rows]
            u = None if undershoot is None else (undershoot if fr_rows.size == n else undershoot[fr_rows])
            r_fill = _f64(reorder_point_for_periodic_fill_rate(block, lead, target[fr_rows], q[fr_rows],
                                                               undershoot=u))
        r_floor = ceil_units(reorder_point_from_samples(block, csl_floor)) if csl_floor > 0 else 0.0
        floor_binds = r_floor > r_fill
        r[fr_rows] = np.maximum(r_fill, r_floor)
        basis[fr_rows] = np.where(floor_binds, BASIS_FLOOR, BASIS_FILL)
    return np.maximum(r, 0.0), basis


@dataclass(frozen=True)
class ClassicalPolicy:
    """The textbook baseline: normal lead-time demand from the historical mean and standard deviation of daily
    demand over a fixed lead time; z = Phi^-1(CSL) or the fill-rate safety factor from the normal loss function."""

    ltd_mean: FloatArray
    ltd_std: FloatArray
    safety_factor: FloatArray
    reorder_point: FloatArray
    safety_stock: FloatArray


def classical_policy(
    mean_daily: FloatArray,
    std_daily: FloatArray,
    protection_days: FloatArray,
    *,
    is_fill_rate: BoolArray,
    target: FloatArray,
    q: FloatArray,
    k_min: float = DEFAULT_K_MIN,
    k_max: float = DEFAULT_K_MAX,
) -> ClassicalPolicy:
    """Classical reorder point [CM; SPT ch. 6]: mu_L = d (L + R), sigma_L = s_d sqrt(L + R) (fixed lead time, i.i.d.
    days, :func:`lead_time_demand_normal`), r = ceil(mu_L + k sigma_L) with k = Phi^-1(CSL) for a cycle service
    target and, for a fill-rate target, the textbook k solving L(k) = (1 - fill rate) Q / sigma_L
    (:func:`safety_factor_for_fill_rate`) clipped to [k_min, k_max]. Safety stock = r - mu_L. A series without
    variability (sigma_L = 0) gets k = 0, r = ceil(mu_L)."""
    d = np.nan_to_num(_f64(mean_daily), nan=0.0)
    s = np.nan_to_num(_f64(std_daily), nan=0.0)
    t = np.maximum(_f64(protection_days), 0.0)
    mu_l, sigma_l = (_f64(x) for x in lead_time_demand_normal(d, s, t))
    with np.errstate(all="ignore"):
        k_csl = special.ndtri(np.where(is_fill_rate, 0.5, target))
    fr = safety_factor_for_fill_rate(np.where(is_fill_rate, target, 0.5), np.maximum(q, 1e-9), sigma_l,
                                     k_min=k_min, k_max=k_max, exact=False)
    k = np.where(is_fill_rate, _f64(fr.k), k_csl)
    k = np.where(sigma_l > 0, k, 0.0)
    k = np.where(np.isfinite(k), k, np.where(k > 0, k_max, k_min))
    r = np.maximum(ceil_units(mu_l + k * sigma_l), 0.0)
    return ClassicalPolicy(mu_l, sigma_l, k, r, r - mu_l)


def stockout_over_lead_time(lead_samples: FloatArray, position: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(P(D_L > position), E[(D_L - position)+]) with D_L the demand before an order placed today arrives
    (``lead_samples``, one row per series): the chance and the expected units of running out before the next
    receipt can help. A NaN position gives NaN."""
    pos = _f64(position)
    ok = np.isfinite(pos)
    x = np.where(ok, pos, 0.0)
    p_out = 1.0 - _f64(cycle_service_from_samples(lead_samples, x))
    short = _f64(expected_shortage_from_samples(lead_samples, x))
    return np.where(ok, p_out, np.nan), np.where(ok, short, np.nan)
