"""Guards where money is at stake: every recommended reorder point is checked against two references built from
evidence, not from the forecast's error model.

References per series (same service rule, target and order quantity as the recommendation):

- **classical**: the textbook normal reorder point (``inventory_math.classical_policy``), from the history's mean and
  standard deviation of daily demand;
- **empirical**: the same rule applied to the series' own demand over past protection intervals (a circular
  block bootstrap of its history, ``LeadTimeDemand.empirical_samples``).

Rules (``PolicyConfig.guard_factor``, default 2):

1. **Safety-stock guard.** The buffer the forecast's distribution asks for, ``ss = r - mean LTD``, may not exceed
   ``guard_factor`` x the larger reference buffer (``max(classical ss, empirical ss)``, at least 0) plus one
   unit. Beyond that the buffer falls back to that larger reference and the reorder point becomes
   ``ceil(mean LTD + reference ss)``: the forecast's level is kept, its spread is replaced by the evidence.
   Basis ``safety_stock_guard``; exception ``safety_stock_guard``, money = the buffer removed at cost.
2. **Reorder-point check.** A reorder point (after rule 1) above ``guard_factor`` x the larger reference reorder
   point plus one unit means the forecast *level* is far above anything the history shows (a launch, a ramp-up,
   or an error). It is kept but never silent: exception ``reorder_point_above_references``, money = the excess
   over the larger reference at cost.

Both rules need the empirical reference: a series without one (no history, or a lead-time demand handed in
without ``empirical_samples``) is not guarded, because the classical formula alone is weak evidence (its
fill-rate rule is known to starve slow movers whose order quantity is large against their variability).

Planner overrides of the reorder point are applied after the guards (a planner's number is the planner's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ml.policy import inventory_math as im

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

BASIS_GUARD = "safety_stock_guard"
SLACK_UNITS = 1.0


@dataclass(frozen=True)
class GuardResult:
    reorder_point: FloatArray
    basis: NDArray[np.object_]
    empirical_reorder_point: FloatArray  # NaN without empirical samples
    empirical_safety_stock: FloatArray
    reference_reorder_point: FloatArray  # max(classical, empirical)
    reference_safety_stock: FloatArray
    safety_stock_capped: BoolArray
    above_references: BoolArray
    reorder_point_before_guard: FloatArray


def apply_guards(
    r: FloatArray,
    basis: NDArray[np.object_],
    ltd_mean: FloatArray,
    empirical: NDArray | None,
    *,
    is_fill_rate: BoolArray,
    target: FloatArray,
    q: FloatArray,
    csl_floor: float,
    classical_reorder_point: FloatArray,
    classical_safety_stock: FloatArray,
    factor: float,
    empirical_lead: NDArray | None = None,
) -> GuardResult:
    """Apply the two rules of the module docstring; ``factor <= 0`` disables them (references still reported).
    ``empirical_lead``: the empirical demand before arrival (same draws), for the periodic-review fill rate of
    the empirical reference, as the forecast-based reorder point uses."""
    n = len(r)
    r0 = np.asarray(r, dtype=np.float64)
    if empirical is not None and empirical.shape[0] == n and empirical.shape[1] > 0:
        emp = np.asarray(empirical, dtype=np.float64)
        lead = None if empirical_lead is None else np.asarray(empirical_lead, dtype=np.float64)
        r_emp, _ = im.reorder_points(emp, is_fill_rate=is_fill_rate, target=target, q=q, csl_floor=csl_floor,
                                     lead_samples=lead)
        ss_emp = r_emp - emp.mean(axis=1)
    else:
        r_emp = np.full(n, np.nan)
        ss_emp = np.full(n, np.nan)
    r_ref = np.fmax(np.asarray(classical_reorder_point, dtype=np.float64), r_emp)
    ss_ref = np.maximum(np.fmax(np.asarray(classical_safety_stock, dtype=np.float64), ss_emp), 0.0)
    ss = r0 - ltd_mean
    if factor <= 0:
        none = np.zeros(n, bool)
        return GuardResult(r0, basis, r_emp, ss_emp, r_ref, ss_ref, none, none, r0.copy())
    evidence = np.isfinite(r_emp)  # the classical formula alone is no evidence (its fill-rate rule starves)
    capped = evidence & (ss > factor * ss_ref + SLACK_UNITS)
    r_new = np.where(capped, np.maximum(im.ceil_units(ltd_mean + ss_ref), 0.0), r0)
    basis_new = np.where(capped, BASIS_GUARD, basis)
    above = evidence & (r_new > factor * r_ref + SLACK_UNITS)
    return GuardResult(r_new, basis_new, r_emp, ss_emp, r_ref, ss_ref, capped, above, r0.copy())
