"""Forecast accuracy and calibration metrics on (n_series, horizon) arrays, per series and pooled.

Definitions (``e = forecast - actual`` over the cells a mask keeps; ``m`` = season length):

- MASE = mean|e| / mean|y_t - y_{t-m}| over the in-sample history (seasonal naive's in-sample MAE);
- RMSSE = sqrt(mean e^2) / sqrt(mean (y_t - y_{t-m})^2) (M5's definition);
- WAPE = sum|e| / sum actual; bias = sum e / sum actual (= mean error / mean actual, > 0 over-forecasts);
- scaled pinball loss (SPL) = mean over cells and quantile levels of the pinball loss
  ``max(q (y - f_q), (q - 1)(y - f_q))``, divided by the MASE scale;
- interval coverage at level c (``coverage_c``, plain) = share of cells with ``lower_c <= actual <= upper_c``;
- tie-corrected interval coverage at level c (``coverage_tie_c``), for integer demand: a cell strictly inside the
  interval counts 1, outside 0, and a cell *on* a bound where the predictive distribution G has an atom (the zero
  of an intermittent item: G(0) = P(Y = 0) > 0, and an interval [0, u] covers every zero) counts
  ``w = clip((c - P(lower < Y < upper)) / P(Y in {lower, upper}), 0, 1)``, the share of the bounds' atoms the
  interval needs to hold predictive mass exactly c (a bound without an atom counts 1). For a calibrated G its
  expectation is c: P(inside) + w P(on a bound) = c, while the plain share is c + the bounds' excess mass (an
  interval [0, 0] on an item with 85% zero days covers 85% of the days, whatever c is). This is the randomised
  PIT of Czado, Gneiting & Held (2009, "Predictive model assessment for count data", Biometrics 65) applied to a
  central interval: with U uniform on [G(y-), G(y)], the interval covers when U falls in the part of
  [G(lower-), G(upper)] that keeps the share w of each bound's atom; it reduces to ``ltd_pit_coverage`` for a
  one-sided interval (-inf, upper] and to the plain coverage where G has no atoms. G is the calibrator's own
  per-cell predictive distribution (``Calibrator.interval_cdf``);
- LTD coverage at level q: over (series, window), the probability that the randomised PIT of the realised
  protection-interval demand ``y`` is <= q, the PIT being uniform on [F(y-), F(y)] (F = the predicted lead-time-
  demand distribution, its Monte Carlo samples). Without ties it is the share of windows with ``y`` <= the predicted
  q-quantile; with ties (an intermittent item whose predicted median is 0 and whose realised demand is 0) the tie
  is split instead of counted as covered, which would put a calibrated forecast above nominal by the tie's mass
  (Czado, Gneiting & Held 2009, "Predictive model assessment for count data"). The plain share at or below the
  quantile is reported too (``ltd_at_or_below``; what a reorder point at that quantile achieves).

Series whose in-sample scale is 0 (no change at all in their history) have no MASE/RMSSE/SPL (NaN) and are
left out of the averages; pooled MASE/RMSSE/SPL are means of the per-series values, pooled WAPE/bias/coverage
are computed over all cells.
"""

from __future__ import annotations

import numpy as np

from ml.forecasting.arrays import nan0


def insample_scales(history: np.ndarray, observed: np.ndarray, season: int) -> tuple[np.ndarray, np.ndarray]:
    """(MAE, RMS) of the in-sample seasonal-naive errors per series, over pairs where both periods are observed.

    Falls back to lag 1 for a series with fewer than ``season + 1`` observed pairs. 0 -> NaN (undefined).
    """
    mae = _scale(history, observed, season, np.abs)
    rms = np.sqrt(_scale(history, observed, season, np.square))
    if season > 1:
        mae1 = _scale(history, observed, 1, np.abs)
        rms1 = np.sqrt(_scale(history, observed, 1, np.square))
        pairs = (observed[:, season:] & observed[:, :-season]).sum(axis=1) if history.shape[1] > season else 0
        few = np.asarray(pairs) < 2
        mae = np.where(few, mae1, mae)
        rms = np.where(few, rms1, rms)
    mae = np.where(mae > 0, mae, np.nan)
    rms = np.where(rms > 0, rms, np.nan)
    return mae, rms


def _scale(history: np.ndarray, observed: np.ndarray, lag: int, fn) -> np.ndarray:
    if history.shape[1] <= lag:
        return np.full(history.shape[0], np.nan)
    d = fn(nan0(history[:, lag:]) - nan0(history[:, :-lag]))
    ok = observed[:, lag:] & observed[:, :-lag]
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(ok, d, 0.0).sum(axis=1) / np.maximum(n, 1), np.nan)


def pinball(actual: np.ndarray, quantile: np.ndarray, level: float) -> np.ndarray:
    diff = actual - quantile
    return np.maximum(level * diff, (level - 1.0) * diff)


def _masked_mean(x: np.ndarray, mask: np.ndarray, axis: int = 1) -> np.ndarray:
    n = mask.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(mask, x, 0.0).sum(axis=axis) / np.maximum(n, 1), np.nan)


def series_point_metrics(forecast: np.ndarray, actual: np.ndarray, mask: np.ndarray, mae_scale: np.ndarray,
                         rms_scale: np.ndarray) -> dict[str, np.ndarray]:
    """Per-series MASE, RMSSE, WAPE, bias and the sums the pooled WAPE/bias need."""
    e = np.where(mask, forecast - actual, 0.0).astype(np.float64)
    a = np.where(mask, actual, 0.0).astype(np.float64)
    n = mask.sum(axis=1)
    abs_sum = np.abs(e).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mae = np.where(n > 0, abs_sum / np.maximum(n, 1), np.nan)
        rmse = np.where(n > 0, np.sqrt((e**2).sum(axis=1) / np.maximum(n, 1)), np.nan)
        act = a.sum(axis=1)
        return {
            "mase": mae / mae_scale,
            "rmsse": rmse / rms_scale,
            "wape": np.where(act > 0, abs_sum / act, np.nan),
            "bias": np.where(act > 0, e.sum(axis=1) / act, np.nan),
            "_abs_err": abs_sum,
            "_err": e.sum(axis=1),
            "_actual": act,
            "_n": n.astype(np.float64),
            "mae": mae,
        }


def series_quantile_metrics(quantiles: dict[float, np.ndarray], intervals: dict[float, tuple[np.ndarray, np.ndarray]],
                            actual: np.ndarray, mask: np.ndarray, mae_scale: np.ndarray,
                            interval_cdf: dict[float, tuple[np.ndarray, ...]] | None = None,
                            ) -> dict[str, np.ndarray]:
    """Per-series scaled pinball loss and interval coverage (with the hit counts for pooling); with
    ``interval_cdf`` ({level: (lower, upper, G(lower-), G(lower), G(upper-), G(upper))}, the interval as the
    predictive distribution G reads it and G at its bounds) also the tie-corrected coverage ``coverage_tie_XX``
    (``interval_tie_coverage``)."""
    out: dict[str, np.ndarray] = {}
    losses = [_masked_mean(pinball(actual, q, lvl), mask) for lvl, q in quantiles.items()]
    out["spl"] = np.mean(losses, axis=0) / mae_scale if losses else np.full(len(actual), np.nan)
    for c, (lo, hi) in intervals.items():
        key = round(c * 100)
        hit = (actual >= lo - _tol(lo)) & (actual <= hi + _tol(hi)) & mask
        out[f"coverage_{key}"] = _masked_mean(hit.astype(np.float64), mask)
        out[f"_hits_{key}"] = hit.sum(axis=1).astype(np.float64)
        if interval_cdf is not None and c in interval_cdf:
            tie = np.where(mask, interval_tie_coverage(actual, *interval_cdf[c], level=c), 0.0)
            out[f"coverage_tie_{key}"] = _masked_mean(tie, mask)
            out[f"_tie_hits_{key}"] = tie.sum(axis=1)
    return out


def interval_tie_coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray, g_lower_below: np.ndarray,
                          g_lower: np.ndarray, g_upper_below: np.ndarray, g_upper: np.ndarray, *,
                          level: float) -> np.ndarray:
    """Tie-corrected hit probability of each cell for the central interval [lower, upper] of coverage ``level``
    (see the module docstring): 1 strictly inside, 0 outside, ``w`` on a bound carrying an atom of the predictive
    distribution G, 1 on a bound without one. ``g_lower_below`` = G(lower-) = P(Y < lower), ``g_lower`` =
    G(lower) = P(Y <= lower), likewise at ``upper``."""
    y = np.asarray(actual, dtype=np.float64)
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    same = np.abs(hi - lo) <= _tol(hi)
    atom_lo = np.maximum(g_lower - g_lower_below, 0.0)
    atom_hi = np.maximum(g_upper - g_upper_below, 0.0)
    atoms = np.where(same, np.maximum(g_upper - g_lower_below, 0.0), atom_lo + atom_hi)
    inside = np.where(same, 0.0, np.maximum(g_upper_below - g_lower, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(atoms > 0, np.clip((level - inside) / np.where(atoms > 0, atoms, 1.0), 0.0, 1.0), 1.0)
    on_lo = np.abs(y - lo) <= _tol(lo)
    on_hi = np.abs(y - hi) <= _tol(hi)
    atom_at_y = np.where(same, atoms, np.where(on_lo, atom_lo, atom_hi))
    strictly = (y > lo + _tol(lo)) & (y < hi - _tol(hi))
    hit = np.where(on_lo | on_hi, np.where(atom_at_y > 0, w, 1.0), strictly.astype(np.float64))
    return np.where(hi < lo - _tol(lo), 0.0, hit)  # an interval that holds no integer


def ltd_hits(realised: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """(n_series, n_levels) 1.0 where realised protection-interval demand <= the predicted quantile."""
    return (realised[:, None] <= quantiles + _tol(quantiles)).astype(np.float64)


def ltd_pit_coverage(realised: np.ndarray, samples: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
    """(n_series, n_levels) tie-corrected coverage of each window: P(U <= q) for U uniform on [F(y-), F(y)], F the
    empirical distribution of the row's samples and y the realised demand (see the module docstring)."""
    y = np.asarray(realised, dtype=np.float64)[:, None]
    s = samples.astype(np.float64)
    tol = _tol(y)
    f_lo = (s < y - tol).mean(axis=1)
    f_hi = (s <= y + tol).mean(axis=1)
    q = np.asarray(levels, dtype=np.float64)[None, :]
    width = (f_hi - f_lo)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        split = np.clip((q - f_lo[:, None]) / np.where(width > 0, width, 1.0), 0.0, 1.0)
    return np.where(width > 0, split, (f_lo[:, None] <= q).astype(np.float64))


#: Quantile levels the lead-time-demand shortage is measured beyond: where reorder points sit (a subset of
#: ``ml.demand_distribution.LTD_QUANTILE_LEVELS``, whose quantiles the backtest computes once per window).
LTD_SHORTAGE_LEVELS: tuple[float, ...] = (0.8, 0.9, 0.95, 0.98)


def ltd_shortage(realised: np.ndarray, samples: np.ndarray, quantiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(realised, expected), each (n_series, n_levels): the demand of each window beyond the row's predicted
    quantiles ``quantiles`` (n_series, n_levels), ``max(y - q, 0)``, and what the samples expect of it,
    ``E[max(D - q, 0)]``.

    This is the unit loss a reorder point at that quantile runs into: what a fill rate is computed from. Coverage
    counts how often demand passes the quantile; this weighs by how far. Pooled, ``sum(realised) / sum(expected)``
    is 1 for samples whose tail has the right size, above 1 when the tail is too thin (fill promised from the
    samples is then too high) and below 1 when it is too fat (safety stock is bought against shortages that do
    not come)."""
    y = np.asarray(realised, dtype=np.float64)
    s = samples.astype(np.float64)
    q = np.asarray(quantiles, dtype=np.float64)
    real = np.maximum(y[:, None] - q, 0.0)
    expected = np.stack([np.maximum(s - q[:, [j]], 0.0).mean(axis=1) for j in range(q.shape[1])], axis=1)
    return real, expected


def _tol(x: np.ndarray) -> np.ndarray:
    """Float32 round-off allowance when an integer actual meets a quantile computed to equal it."""
    return 1e-5 * np.maximum(1.0, np.abs(x))
