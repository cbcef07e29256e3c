"""Compare a policy with the classical baseline at matched service (the acceptance study's core).

"Higher turnover at the same service level" needs the baseline tuned to the candidate's service first. The
baseline has a knob (its safety factor z, or a cycle-service target); it is run on a grid of settings
(:func:`scan_baseline`), and each setting gives the baseline's achieved fill rate on both measures, the
volume-weighted fill (units served / units demanded) and the item-average fill (mean over product-locations
with demand). Along the grid each curve rises with the knob.

Matching on BOTH measures
-------------------------
``param_volume`` is the setting at which the baseline's volume fill equals the candidate's, ``param_item`` the
one for the item-average fill (linear interpolation between grid points on the running maximum of each curve).
The *matched* setting is the larger of the two: the cheapest baseline setting whose fill matches or beats the
candidate's on BOTH measures (the comparison the acceptance criteria define: "at the same service" means the
baseline gives at least the candidate's service on each measure). Where the candidate moves service between
items (better volume fill, worse item-average fill, or the reverse), the baseline is tuned to the measure it
lags on, and the other measure is then better for the baseline than for the candidate; both per-measure
settings, the inventories there and the baseline's fills at the match are reported, so the comparison at the
smaller setting (baseline no better on either measure) can always be read off as well.

Inventory difference and its uncertainty
----------------------------------------
``inventory_difference = baseline average inventory value at the matched setting (interpolated linearly
between grid points) - candidate average inventory value``; positive = the candidate holds less. The
confidence interval is a percentile bootstrap over products (clusters): products are resampled with
replacement (all locations of a product together), and on each resample the fills, the matched setting and the
difference are recomputed, so the interval includes the uncertainty of the match itself. Runs share demand and
lead-time random numbers, so the resampling unit is the product, not the day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray

from ml.simulation.engine import SimulationResult

__all__ = ["MatchResult", "Outcome", "match_service", "reaches", "scan_baseline"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Outcome:
    """Per-series results matching needs: units demanded, served and average inventory value, (n_series,) each."""

    demanded: FloatArray
    served: FloatArray
    inventory: FloatArray

    @classmethod
    def of(cls, result: SimulationResult | Outcome) -> Outcome:
        if isinstance(result, Outcome):
            return result
        return cls(result.demanded, result.served, result.avg_inventory_value)


def reaches(result: SimulationResult | Outcome, target: SimulationResult | Outcome) -> bool:
    """``result``'s fill rates (volume and item average) are at least ``target``'s on both measures."""
    def fills(o: Outcome) -> tuple[float, float]:
        has = o.demanded > 0
        return float(o.served.sum() / max(o.demanded.sum(), 1e-12)), float((o.served[has] / o.demanded[has]).mean())

    (vol, item), (t_vol, t_item) = fills(Outcome.of(result)), fills(Outcome.of(target))
    return vol >= t_vol and item >= t_item


@dataclass(frozen=True)
class MatchResult:
    """Outcome of :func:`match_service`; money in the unit of the costs, inventories are average values at cost.

    Attributes:
        grid: one row per baseline setting: param, fill_rate_volume, fill_rate_item_avg, avg_inventory_value.
        candidate_fill_volume, candidate_fill_item, candidate_inventory: the candidate's results.
        param_volume, param_item: baseline setting matching the candidate on each measure (NaN: outside the grid).
        matched_param: max of the two (see the module doc); binding: which measure set it ('volume' / 'item').
        baseline_inventory: baseline inventory at matched_param; baseline_fill_volume / baseline_fill_item: its
            fills there.
        inventory_at_param_volume, inventory_at_param_item: baseline inventory at each per-measure setting.
        inventory_difference: baseline_inventory - candidate_inventory (> 0: the candidate holds less);
            inventory_difference_pct: the same in % of baseline_inventory.
        ci_low, ci_high, ci_pct_low, ci_pct_high: bootstrap percentile interval of both (confidence level).
        n_boot: resamples drawn; n_boot_failed: resamples where a match fell outside the grid (left out).
        note: empty, or why the match failed (widen the grid).
    """

    grid: pl.DataFrame
    candidate_fill_volume: float
    candidate_fill_item: float
    candidate_inventory: float
    param_volume: float
    param_item: float
    matched_param: float
    binding: str
    baseline_inventory: float
    baseline_fill_volume: float
    baseline_fill_item: float
    inventory_at_param_volume: float
    inventory_at_param_item: float
    inventory_difference: float
    inventory_difference_pct: float
    ci_low: float
    ci_high: float
    ci_pct_low: float
    ci_pct_high: float
    confidence: float
    n_boot: int
    n_boot_failed: int
    note: str = ""

    def summary(self) -> dict[str, float | str | int]:
        return {k: v for k, v in self.__dict__.items() if k != "grid"}

    def baseline_inventory_at(self, fill_volume: float, fill_item: float) -> float:
        """The baseline's inventory at the cheapest setting of its grid that reaches both fills (the same
        interpolation as the match itself; NaN outside the grid)."""
        params = self.grid["param"].to_numpy().astype(np.float64)
        p_vol = _crossing(self.grid["fill_rate_volume"].to_numpy()[None, :], np.array([fill_volume]), params)
        p_item = _crossing(self.grid["fill_rate_item_avg"].to_numpy()[None, :], np.array([fill_item]), params)
        at = np.where(np.isnan(p_vol) | np.isnan(p_item), np.nan, np.fmax(p_vol, p_item))
        return float(_interp_rows(self.grid["avg_inventory_value"].to_numpy()[None, :], params, at)[0])

    def fill_sensitivity(self, points: float = 0.1) -> dict[str, float]:
        """How much the comparison hangs on the candidate's exact fill: the baseline's matched inventory if the
        candidate's fill were ``points`` percentage points lower / higher on both measures, and the reduction
        that would then be reported (%). Where the baseline's curve is steep (high fill) a tenth of a point moves
        it a lot; the bootstrap interval, which resamples series, does not show this."""
        d = points / 100.0
        out: dict[str, float] = {"points": points}
        for side, sign in (("lower", -1.0), ("higher", 1.0)):
            inv = self.baseline_inventory_at(self.candidate_fill_volume + sign * d, self.candidate_fill_item + sign * d)
            out[f"baseline_inventory_{side}"] = inv
            with np.errstate(all="ignore"):
                out[f"reduction_pct_{side}"] = float(100.0 * (inv - self.candidate_inventory) / inv)
        return out


def scan_baseline(run: Callable[[float], SimulationResult], grid: Iterable[float]) -> dict[float, SimulationResult]:
    """Run the baseline at each setting of its knob (e.g. ``lambda z: simulate(..., schedule for z, ...)``)."""
    return {float(p): run(float(p)) for p in grid}


def _crossing(curves: FloatArray, target: FloatArray, params: FloatArray) -> FloatArray:
    """Per row: the param where the (running-max) curve first reaches target, linearly interpolated; NaN outside."""
    mono = np.maximum.accumulate(curves, axis=1)
    reach = mono >= target[:, None]
    ok = reach.any(axis=1) & (mono[:, 0] <= target)
    j = np.where(ok, reach.argmax(axis=1), 0)
    j0 = np.maximum(j - 1, 0)
    rows = np.arange(curves.shape[0])
    y0, y1 = mono[rows, j0], mono[rows, j]
    with np.errstate(all="ignore"):
        w = np.where(y1 > y0, (target - y0) / (y1 - y0), 1.0)
    out = params[j0] + np.clip(w, 0.0, 1.0) * (params[j] - params[j0])
    return np.where(ok, out, np.nan)


def _interp_rows(values: FloatArray, params: FloatArray, at: FloatArray) -> FloatArray:
    """Per row: values (n_rows, n_grid) linearly interpolated at the row's param ``at``; NaN stays NaN."""
    ok = np.isfinite(at)
    a = np.where(ok, at, params[0])
    j = np.clip(np.searchsorted(params, a, side="right") - 1, 0, params.size - 2) if params.size > 1 else \
        np.zeros(at.shape, dtype=np.int64)
    rows = np.arange(values.shape[0])
    if params.size == 1:
        return np.where(ok, values[:, 0], np.nan)
    w = (a - params[j]) / (params[j + 1] - params[j])
    out = values[rows, j] + np.clip(w, 0.0, 1.0) * (values[rows, j + 1] - values[rows, j])
    return np.where(ok, out, np.nan)


def _evaluate(weights: FloatArray, cand: Outcome, dem: FloatArray, srv: FloatArray, fill: FloatArray,
              inv: FloatArray, params: FloatArray) -> dict[str, FloatArray]:
    """All matching quantities for a batch of weight vectors (n_rows, n_series)."""
    has_d = (cand.demanded > 0).astype(np.float64)
    wd = weights * has_d
    n_items = wd.sum(axis=1)
    with np.errstate(all="ignore"):
        c_fill_i = np.where(cand.demanded > 0, cand.served / cand.demanded, 0.0)
        c_vol = (weights @ cand.served) / (weights @ cand.demanded)
        c_item = (wd @ c_fill_i) / n_items
        b_vol = (weights @ srv) / (weights @ dem)
        b_item = (wd @ fill) / n_items[:, None]
    c_inv = weights @ cand.inventory
    b_inv = weights @ inv
    p_vol = _crossing(b_vol, c_vol, params)
    p_item = _crossing(b_item, c_item, params)
    matched = np.fmax(p_vol, p_item)
    matched = np.where(np.isnan(p_vol) | np.isnan(p_item), np.nan, matched)
    inv_m = _interp_rows(b_inv, params, matched)
    return {
        "c_vol": c_vol, "c_item": c_item, "c_inv": c_inv, "b_vol": b_vol, "b_item": b_item, "b_inv": b_inv,
        "p_vol": p_vol, "p_item": p_item, "matched": matched, "inv_m": inv_m,
        "inv_pv": _interp_rows(b_inv, params, p_vol), "inv_pi": _interp_rows(b_inv, params, p_item),
        "vol_m": _interp_rows(b_vol, params, matched), "item_m": _interp_rows(b_item, params, matched),
    }


def match_service(
    candidate: SimulationResult | Outcome,
    baseline: Mapping[float, SimulationResult | Outcome],
    clusters: ArrayLike | None = None,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    batch: int = 50,
) -> MatchResult:
    """Match the baseline to the candidate's service on both fill measures; inventory difference with a CI.

    Args:
        candidate: the policy under test (e.g. stockturn), simulated on the same demand and lead-time draws.
        baseline: {knob setting: result} from :func:`scan_baseline`; settings are sorted, fills should rise.
        clusters: (n_series,) resampling unit per series (product_id); None = each series its own cluster.
        n_boot: bootstrap resamples (0 = point estimate only).
        confidence: level of the percentile interval.
        seed: bootstrap seed.
        batch: resamples evaluated together (memory ~ batch x n_series x 8 bytes).
    """
    if not baseline:
        raise ValueError("baseline needs at least one setting")
    params = np.array(sorted(baseline), dtype=np.float64)
    cand = Outcome.of(candidate)
    outs = [Outcome.of(baseline[p]) for p in sorted(baseline)]
    n = cand.demanded.size
    if any(o.demanded.size != n for o in outs):
        raise ValueError("candidate and baseline runs must cover the same series")
    if any(not np.allclose(o.demanded, cand.demanded) for o in outs):
        raise ValueError("candidate and baseline runs must replay the same demand")
    dem = np.stack([o.demanded for o in outs], axis=1)
    srv = np.stack([o.served for o in outs], axis=1)
    inv = np.stack([o.inventory for o in outs], axis=1)
    with np.errstate(all="ignore"):
        fill = np.where(dem > 0, srv / dem, 0.0)

    point = _evaluate(np.ones((1, n)), cand, dem, srv, fill, inv, params)
    pv = {k: float(v[0]) if v.ndim == 1 else v[0] for k, v in point.items()}
    grid = pl.DataFrame({"param": params, "fill_rate_volume": pv["b_vol"], "fill_rate_item_avg": pv["b_item"],
                         "avg_inventory_value": pv["b_inv"]})
    note = ""
    if np.isnan(pv["p_vol"]) or np.isnan(pv["p_item"]):
        lo_hi = "above" if (pv["c_vol"] > np.max(pv["b_vol"]) or pv["c_item"] > np.max(pv["b_item"])) else "below"
        note = f"the candidate's fill is {lo_hi} the baseline grid on at least one measure: widen the grid"
    binding = "volume" if pv["p_vol"] >= pv["p_item"] else "item"
    diff = pv["inv_m"] - pv["c_inv"]

    diffs, pcts = np.zeros(0), np.zeros(0)
    n_failed = 0
    if n_boot > 0:
        codes = np.unique(np.asarray(clusters if clusters is not None else np.arange(n)).astype(str),
                          return_inverse=True)[1].reshape(-1)
        n_cl = int(codes.max()) + 1
        rng = np.random.default_rng(seed)
        d_list, p_list = [], []
        for start in range(0, n_boot, batch):
            m = min(batch, n_boot - start)
            counts = rng.multinomial(n_cl, np.full(n_cl, 1.0 / n_cl), size=m).astype(np.float64)
            ev = _evaluate(counts[:, codes], cand, dem, srv, fill, inv, params)
            dd = ev["inv_m"] - ev["c_inv"]
            d_list.append(dd)
            with np.errstate(all="ignore"):
                p_list.append(100.0 * dd / ev["inv_m"])
        diffs, pcts = np.concatenate(d_list), np.concatenate(p_list)
        n_failed = int(np.count_nonzero(~np.isfinite(diffs)))
    alpha = (1.0 - confidence) / 2.0

    def pct(a: FloatArray, q: float) -> float:
        a = a[np.isfinite(a)]
        return float(np.quantile(a, q)) if a.size else float("nan")

    with np.errstate(all="ignore"):
        diff_pct = 100.0 * diff / pv["inv_m"] if pv["inv_m"] else float("nan")
    return MatchResult(
        grid=grid,
        candidate_fill_volume=pv["c_vol"],
        candidate_fill_item=pv["c_item"],
        candidate_inventory=pv["c_inv"],
        param_volume=pv["p_vol"],
        param_item=pv["p_item"],
        matched_param=pv["matched"],
        binding=binding if not note else "",
        baseline_inventory=pv["inv_m"],
        baseline_fill_volume=pv["vol_m"],
        baseline_fill_item=pv["item_m"],
        inventory_at_param_volume=pv["inv_pv"],
        inventory_at_param_item=pv["inv_pi"],
        inventory_difference=diff,
        inventory_difference_pct=float(diff_pct),
        ci_low=pct(diffs, alpha),
        ci_high=pct(diffs, 1.0 - alpha),
        ci_pct_low=pct(pcts, alpha),
        ci_pct_high=pct(pcts, 1.0 - alpha),
        confidence=confidence,
        n_boot=n_boot,
        n_boot_failed=n_failed,
        note=note,
    )
