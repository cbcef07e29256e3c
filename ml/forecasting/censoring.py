"""Stock-out censoring: recorded sales on stock-out days are a lower bound of demand, not demand.

Modes (``ForecastConfig.censoring``):

- ``'impute'``: the training target on a censored period is ``max(recorded, estimate)``, where the estimate is
  the series' deseasonalised level over the uncensored periods within ``window`` periods on either side (widened
  4x, then to the whole history when a stock-out lasts longer), times the series' weekday factor at day grain
  (the series' own weekday profile, shrunk towards the panel's by ``PROFILE_PRIOR`` pseudo-observations).
- ``'exclude'``: the same estimate feeds lag features and the aggregate series, but censored periods get weight 0
  as training targets (LightGBM) and are left out of the local methods' levels.
- ``'none'``: recorded sales are demand.

Everything is computed from the array it is given: the backtest passes the history up to each origin only, so
an imputation never looks past the cutoff (the neighbourhood of the last periods is one-sided).
"""

from __future__ import annotations

import numpy as np

from ml.forecasting.arrays import nan0

PROFILE_PRIOR = 20.0  # pseudo-observations pulling a series' weekday factors towards the panel's


def _phase_matrix(phase: np.ndarray, season: int) -> np.ndarray:
    """(T, season) one-hot of each period's phase (sums by phase become one matrix product)."""
    m = np.zeros((len(phase), season), dtype=np.float32)
    m[np.arange(len(phase)), phase] = 1.0
    return m


def seasonal_profile(values: np.ndarray, observed: np.ndarray, phase: np.ndarray, season: int) -> np.ndarray:
    """(n_series, season) multiplicative profile from observed cells, shrunk towards the panel's profile."""
    onehot = _phase_matrix(phase, season)
    v = np.where(observed, values, 0.0).astype(np.float32)
    sums = (v @ onehot).astype(np.float64)
    cnts = (observed.astype(np.float32) @ onehot).astype(np.float64)
    mean = sums.sum(axis=1) / np.maximum(cnts.sum(axis=1), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        panel = sums.sum(axis=0) / np.maximum(cnts.sum(axis=0), 1.0)
        panel = panel / panel.mean() if panel.mean() > 0 else np.ones(season)
        own = (sums + PROFILE_PRIOR * panel[None, :] * mean[:, None]) / ((cnts + PROFILE_PRIOR) * mean[:, None])
    own = np.where(mean[:, None] > 0, own, panel[None, :])
    own = own / own.mean(axis=1, keepdims=True)
    return np.where(np.isfinite(own), own, 1.0)


def impute_censored(values: np.ndarray, censored: np.ndarray, *, window: int, season: int,
                    phase: np.ndarray | None = None) -> np.ndarray:
    """Demand estimate for the censored cells (0 elsewhere): deseasonalised neighbour level x season factor.

    ``values`` (n_series, T) with NaN where the series has no data; ``phase`` (T,) the season phase of each period
    (weekday at day grain) or None for no seasonal factor. Cumulative sums over the whole array, then gathered at
    the censored cells only (stock-outs are a few percent of the cells).
    """
    n, t = values.shape
    out = np.zeros((n, t), dtype=values.dtype)
    rows = np.flatnonzero(censored.any(axis=1))
    if not len(rows):
        return out
    vals = values[rows]
    cens = censored[rows]
    observed = ~cens & ~np.isnan(vals)
    if phase is not None and season > 1:
        prof = seasonal_profile(vals, observed, phase, season)
        factor = prof[:, phase]
        deseason = np.where(observed, nan0(vals) / factor, 0.0)
    else:
        prof = None
        deseason = np.where(observed, nan0(vals), 0.0)
    cs = np.zeros((len(rows), t + 1))
    cw = np.zeros((len(rows), t + 1))
    np.cumsum(deseason, axis=1, out=cs[:, 1:])
    np.cumsum(observed, axis=1, out=cw[:, 1:])
    ri, ci = np.nonzero(cens)
    level = np.full(len(ri), np.nan)
    for w in (window, 4 * window):
        lo = np.maximum(ci - w, 0)
        hi = np.minimum(ci + w + 1, t)
        wsum = cw[ri, hi] - cw[ri, lo]
        est = (cs[ri, hi] - cs[ri, lo]) / np.maximum(wsum, 1e-12)
        level = np.where(np.isnan(level) & (wsum > 0), est, level)
    overall = cs[:, -1] / np.maximum(cw[:, -1], 1.0)
    level = np.where(np.isnan(level), overall[ri], level)
    if prof is not None:
        level = level * prof[ri, phase[ci]]
    out[rows[ri], ci] = level.astype(values.dtype)
    return out


def correct(values: np.ndarray, censored: np.ndarray, mode: str, *, window: int, season: int,
            phase: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(target, weight): the training target and its weight (0 = not a training target) per cell.

    NaN cells (before a series starts) stay NaN with weight 0.
    """
    nan = np.isnan(values)
    if mode == "none" or not censored.any():
        return values, (~nan).astype(np.float32)
    est = impute_censored(values, censored, window=window, season=season, phase=phase)
    target = np.where(censored & ~nan, np.maximum(values, est), values).astype(values.dtype)
    weight = (~nan).astype(np.float32)
    if mode == "exclude":
        weight[censored] = 0.0
    elif mode != "impute":
        raise ValueError(f"unknown censoring mode {mode!r}")
    return target, weight
