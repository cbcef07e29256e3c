"""The per-series policy arithmetic on numpy arrays (no I/O): order quantities, reorder points, the classical
baseline and what each policy is expected to deliver on the lead-time-demand samples.

Everything is vectorised over series. The only Python loops are over the handful of distinct service-target
levels (a quantile at one level for many rows is a partition, much faster than a full sort) and over cache-sized
row blocks inside :mod:`ml.policy.inventory_math`.

Conventions: quantities are whole units (reorder points are rounded *up* to whole units so the target is still
met; order quantities are rounded up to the MOQ and pack size by :func:`inventory_math.round_to_pack`); the
lead-time demand (LTD) covers the protection interval, lead time + review period; an order is proposed when the
inventory position is at or below the reorder point, and raises it to the order-up-to level r + Q.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import special

from ml.policy import inventory_math as im

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Relative tolerance when rounding reorder points up to whole units (1e-9 of floating noise is not a unit).
_UNIT_RTOL = 1e-9

BASIS_CSL = "cycle_service_level"
BASIS_FILL = "fill_rate"
BASIS_FLOOR = "fill_rate_csl_floor"
BASIS_OVERRIDE = "override"


def ceil_units(x: FloatArray) -> FloatArray:
    """Round up to whole units, ignoring floating noise (10.000000001 -> 10, not 11)."""
    x = np.asarray(x, dtype=np.float64)
    return np.ceil(x - _UNIT_RTOL * np.maximum(1.0, np.abs(x)))


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
    ([SS ch. 3]), bounded to [min_cover_days, max_cover_days] days of demand, then rounded up to the MOQ and a
    whole number of packs. ``ordering_cost`` (K) and ``annual_holding_rate`` are one value for every series or
    one per series (an array of the same length, e.g. the item's rate from the master, else the default).
    Series without demand get the smallest orderable quantity (one unit, one pack or the MOQ), so a reorder point
    can still be evaluated; they are never proposed (see run_policy).
    """
    d = np.maximum(np.asarray(daily_demand, dtype=np.float64), 0.0)
    h = np.asarray(annual_holding_rate, dtype=np.float64) * np.asarray(unit_cost, dtype=np.float64)
    q_eoq = np.asarray(im.eoq(ordering_cost, h, d * days_per_year), dtype=np.float64)
    q_eoq = np.where(np.isfinite(q_eoq), q_eoq, max_cover_days * d)
    bounded = np.clip(q_eoq, min_cover_days * d, max_cover_days * d)
    need = np.where(bounded > 0, bounded, 1.0)
    return q_eoq, np.asarray(im.round_to_pack(need, moq, pack_size), dtype=np.float64)


def _quantile_by_level(samples: FloatArray, levels: FloatArray) -> FloatArray:
    """Empirical (inverted-cdf) quantile of each row at its own level; one partition per distinct level."""
    out = np.empty(samples.shape[0])
    for level in np.unique(levels):  # a few service-target levels, not series
        rows = np.flatnonzero(levels == level)
        block = samples if rows.size == samples.shape[0] else samples[rows]
        out[rows] = im.reorder_point_from_samples(block, float(level))
    return out


def reorder_points(
    samples: FloatArray,
    *,
    is_fill_rate: BoolArray,
    target: FloatArray,
    q: FloatArray,
    csl_floor: float,
) -> tuple[FloatArray, NDArray[np.object_]]:
    """Reorder point per series from the LTD samples, and which rule set it.

    - cycle service level target: the empirical quantile at the target (the smallest r with
      P(D <= r) >= target), rounded up to whole units;
    - fill-rate target: the smallest whole-unit r whose exact sample (r, Q) fill rate meets the target for this
      Q (:func:`inventory_math.reorder_point_for_fill_rate_from_samples`), but never below the empirical quantile
      at ``csl_floor`` (the slow-mover guard, see PolicyConfig.min_cycle_service_level).

    Never negative. ``basis`` is 'cycle_service_level', 'fill_rate' or 'fill_rate_csl_floor'.
    """
    n = samples.shape[0]
    r = np.zeros(n)
    basis = np.full(n, BASIS_CSL, dtype=object)
    csl_rows = np.flatnonzero(~is_fill_rate)
    if csl_rows.size:
        block = samples if csl_rows.size == n else samples[csl_rows]
        r[csl_rows] = ceil_units(_quantile_by_level(block, target[csl_rows]))
    fr_rows = np.flatnonzero(is_fill_rate)
    if fr_rows.size:
        block = samples if fr_rows.size == n else samples[fr_rows]
        r_fill = np.asarray(im.reorder_point_for_fill_rate_from_samples(block, target[fr_rows], q[fr_rows], step=1.0))
        r_floor = ceil_units(np.asarray(im.reorder_point_from_samples(block, csl_floor))) if csl_floor > 0 else 0.0
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
    k_min: float = 0.0,
    k_max: float = 4.0,
) -> ClassicalPolicy:
    """Classical reorder point [CM; SPT ch. 6]: mu_L = d (L + R), sigma_L = s_d sqrt(L + R) (fixed lead time, i.i.d.
    days), r = ceil(mu_L + k sigma_L) with k = Phi^-1(CSL) for a cycle service target and, for a fill-rate target,
    the textbook k solving L(k) = (1 - fill rate) Q / sigma_L clipped to [k_min, k_max]. Safety stock =
    r - mu_L. A series without variability (sigma_L = 0) gets k = 0, r = ceil(mu_L)."""
    d = np.nan_to_num(np.asarray(mean_daily, dtype=np.float64), nan=0.0)
    s = np.nan_to_num(np.asarray(std_daily, dtype=np.float64), nan=0.0)
    t = np.maximum(np.asarray(protection_days, dtype=np.float64), 0.0)
    mu_l, sigma_l = (np.asarray(x, dtype=np.float64) for x in im.lead_time_demand_normal(d, s, t))
    with np.errstate(all="ignore"):
        k_csl = special.ndtri(np.where(is_fill_rate, 0.5, target))
    fr = im.safety_factor_for_fill_rate(np.where(is_fill_rate, target, 0.5), np.maximum(q, 1e-9), sigma_l,
                                        k_min=k_min, k_max=k_max, exact=False)
    k = np.where(is_fill_rate, np.asarray(fr.k, dtype=np.float64), k_csl)
    k = np.where(sigma_l > 0, k, 0.0)
    k = np.where(np.isfinite(k), k, np.where(k > 0, k_max, k_min))
    r = np.maximum(ceil_units(mu_l + k * sigma_l), 0.0)
    return ClassicalPolicy(mu_l, sigma_l, k, r, r - mu_l)


def cycle_service_from_samples(samples: FloatArray, r: FloatArray) -> FloatArray:
    """P(D <= r) per row (the cycle service level a reorder point gives on the samples)."""
    out = np.empty(samples.shape[0])
    step = max(1, (1 << 20) // max(samples.shape[1], 1))
    for start in range(0, samples.shape[0], step):  # row blocks, bounded memory
        sl = slice(start, start + step)
        out[sl] = (samples[sl] <= r[sl, None]).mean(axis=1)
    return out


def stockout_over_lead_time(
    samples: FloatArray, position: FloatArray, lead_fraction: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """(P(D_L > position), E[(D_L - position)+]) with D_L = the demand over the lead time alone, approximated by
    the protection-interval samples D scaled by f = L / (L + R) (exact when the review period is 0):
    P(f D > x) = 1 - P(D <= x / f) and E[(f D - x)+] = f E[(D - x / f)+], so the samples are never copied.
    f = 0 gives no demand (P = 0, shortage = (-x)+); a NaN position gives NaN."""
    pos = np.asarray(position, dtype=np.float64)
    f = np.asarray(lead_fraction, dtype=np.float64)
    ok = np.isfinite(pos)
    has_lead = ok & (f > 0)
    x = np.where(has_lead, pos / np.where(f > 0, f, 1.0), 0.0)
    p_out = 1.0 - cycle_service_from_samples(samples, x)
    short = f * np.asarray(im.expected_shortage_from_samples(samples, x), dtype=np.float64)
    p_out = np.where(has_lead, p_out, np.where(ok, (pos < 0).astype(np.float64), np.nan))
    short = np.where(has_lead, short, np.where(ok, np.maximum(-pos, 0.0), np.nan))
    return p_out, short
