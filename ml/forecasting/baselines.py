"""Local forecasting methods, vectorised over series: every function takes a (n_series, T) history and returns
a (n_series, H) forecast. Loops run over time (or the season's phases), never over series.

- seasonal naive: the last full season repeated (the last observation when a series is younger than a season);
- naive: the last observation repeated (the non-seasonal benchmark);
- moving average: mean of the last ``window`` periods;
- Croston SBA (Syntetos-Boylan approximation) and TSB (Teunter-Syntetos-Babai) for intermittent demand, in the
  style of statsforecast's ``CrostonSBA`` / ``TSB`` with fixed smoothing constants.

Histories carry a weight per cell: 0 marks a period that is not an observation (NaN before the series starts,
or a censored period under ``censoring='exclude'``); the moving average, SBA and TSB skip those periods, the
seasonal naive uses the (imputed) value. At day grain the flat methods (moving average, SBA, TSB) are multiplied
by the series' weekday profile (``censoring.seasonal_profile``, shrunk towards the panel's profile), so that
"flat" means "flat level, usual week".
"""

from __future__ import annotations

import numpy as np

from ml.forecasting.arrays import nan0
from ml.forecasting.censoring import seasonal_profile


def seasonal_naive(y: np.ndarray, season: int, horizon: int) -> np.ndarray:
    """Repeat the last ``season`` values; series with fewer than a season of data repeat their last value."""
    n, t = y.shape
    season = max(1, min(season, t))
    last = y[:, t - season :]
    reps = int(np.ceil(horizon / season))
    fc = np.tile(last, (1, reps))[:, :horizon]
    if np.isnan(fc).any():
        filled = _last_valid(y)
        naive = np.repeat(filled[:, None], horizon, axis=1)
        fc = np.where(np.isnan(fc), naive, fc)
    return nan0(fc).astype(np.float32)


def _last_valid(y: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(y)
    idx = y.shape[1] - 1 - np.argmax(valid[:, ::-1], axis=1)
    out = y[np.arange(len(y)), idx]
    return np.where(valid.any(axis=1), out, 0.0)


def naive(y: np.ndarray, horizon: int) -> np.ndarray:
    """Repeat the last observed value (0 for a series without data)."""
    return np.repeat(_last_valid(y)[:, None], horizon, axis=1).astype(np.float32)


def moving_average(y: np.ndarray, weight: np.ndarray, window: int, horizon: int) -> np.ndarray:
    """Flat forecast: weighted mean of the last ``window`` periods (the whole history if shorter)."""
    tail_y = nan0(y[:, -window:])
    tail_w = weight[:, -window:]
    den = tail_w.sum(axis=1)
    level = np.where(den > 0, (tail_y * tail_w).sum(axis=1) / np.maximum(den, 1e-12), _fallback_mean(y, weight))
    return np.repeat(level[:, None], horizon, axis=1).astype(np.float32)


def _fallback_mean(y: np.ndarray, weight: np.ndarray) -> np.ndarray:
    w = weight.sum(axis=1)
    return np.where(w > 0, (nan0(y) * weight).sum(axis=1) / np.maximum(w, 1e-12), 0.0)


def croston_sba(y: np.ndarray, weight: np.ndarray, alpha: float, horizon: int) -> np.ndarray:
    """Croston's method with the Syntetos-Boylan bias correction (1 - alpha / 2) * size / interval, flat."""
    n, t = y.shape
    size = np.full(n, np.nan)
    interval = np.full(n, np.nan)
    since = np.ones(n)  # periods since the last demand (counting observed periods only)
    yv = nan0(y).astype(np.float64)
    obs = weight > 0
    for k in range(t):
        o = obs[:, k]
        d = o & (yv[:, k] > 0)
        first = d & np.isnan(size)
        size = np.where(first, yv[:, k], size)
        interval = np.where(first, since, interval)
        upd = d & ~first
        size = np.where(upd, size + alpha * (yv[:, k] - size), size)
        interval = np.where(upd, interval + alpha * (since - interval), interval)
        since = np.where(d, 1.0, since + o)
    level = np.where(np.isnan(size), 0.0, (1.0 - alpha / 2.0) * size / np.where(np.isnan(interval), 1.0, interval))
    return np.repeat(level[:, None], horizon, axis=1).astype(np.float32)


def tsb(y: np.ndarray, weight: np.ndarray, alpha_d: float, alpha_p: float, horizon: int) -> np.ndarray:
    """Teunter-Syntetos-Babai: demand probability updated every period (so obsolescence decays it), flat."""
    n, t = y.shape
    yv = nan0(y).astype(np.float64)
    obs = weight > 0
    started = np.zeros(n, dtype=bool)
    prob = np.zeros(n)
    size = np.zeros(n)
    for k in range(t):
        o = obs[:, k]
        d = o & (yv[:, k] > 0)
        first = d & ~started
        prob = np.where(first, 1.0, prob)
        size = np.where(first, yv[:, k], size)
        started |= first
        upd = o & started & ~first
        prob = np.where(upd, prob + alpha_p * (d - prob), prob)
        size = np.where(upd & d, size + alpha_d * (yv[:, k] - size), size)
    level = prob * size
    return np.repeat(level[:, None], horizon, axis=1).astype(np.float32)


def local_forecasts(models: tuple[str, ...], y: np.ndarray, weight: np.ndarray, *, season: int, horizon: int,
                    ma_window: int, croston_alpha: float, tsb_alpha_d: float, tsb_alpha_p: float,
                    phase_hist: np.ndarray | None, phase_future: np.ndarray | None) -> dict[str, np.ndarray]:
    """Every requested local model's (n_series, horizon) forecast from one history."""
    out: dict[str, np.ndarray] = {}
    flat: dict[str, np.ndarray] = {}
    if "seasonal_naive" in models:
        out["seasonal_naive"] = seasonal_naive(y, season, horizon)
    if "naive" in models:
        out["naive"] = naive(y, horizon)
    if "moving_average" in models:
        flat["moving_average"] = moving_average(y, weight, ma_window, horizon)
    if "croston_sba" in models:
        flat["croston_sba"] = croston_sba(y, weight, croston_alpha, horizon)
    if "tsb" in models:
        flat["tsb"] = tsb(y, weight, tsb_alpha_d, tsb_alpha_p, horizon)
    if flat and phase_hist is not None and phase_future is not None:
        prof = seasonal_profile(y, (weight > 0) & ~np.isnan(y), phase_hist, season)[:, phase_future]
        flat = {k: (v * prof).astype(np.float32) for k, v in flat.items()}
    out.update(flat)
    return out
