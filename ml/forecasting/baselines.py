"""Local forecasting methods, vectorised over series: every function takes a (n_series, T) history and returns
a (n_series, H) forecast. Loops run over time (or the season's phases), never over series.

- seasonal naive: the last full season repeated (the last observation when a series is younger than a season);
- naive: the last observation repeated (the non-seasonal benchmark);
- moving average: mean of the last ``window`` periods;
- Croston SBA (Syntetos-Boylan approximation) and TSB (Teunter-Syntetos-Babai) for intermittent demand, in the
  style of statsforecast's ``CrostonSBA`` / ``TSB`` with fixed smoothing constants;
- yearly profile: the recent level, deseasonalised, times a seasonal index per week (month) of the year pooled
  over the products of the series' category (:func:`pooled_year_profile`): the structure that repeats every year,
  learnt from every item of the category, so an item with one season of history (or none) still gets a forecast
  that rises into its season and falls when it ends.

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
                    phase_hist: np.ndarray | None, phase_future: np.ndarray | None,
                    year_profile: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                    phase_panel_profile: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every requested local model's (n_series, horizon) forecast from one history. ``year_profile``:
    (profile per series (n_series, n_bins), bins of the history's periods, bins of the forecast periods), needed by
    ``yearly_profile`` (without it that model is a moving average). ``phase_panel_profile``: the panel's weekday
    profile (``censoring.panel_profile``) when these series are a block of the panel (default: theirs)."""
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
    if "yearly_profile" in models:
        if year_profile is None:
            flat["yearly_profile"] = moving_average(y, weight, ma_window, horizon)
        else:
            prof, b_hist, b_fut = year_profile
            flat["yearly_profile"] = seasonal_level(y, weight, prof, b_hist[-y.shape[1]:], b_fut, ma_window)
    if flat and phase_hist is not None and phase_future is not None:
        prof = seasonal_profile(y, (weight > 0) & ~np.isnan(y), phase_hist, season,
                                panel=phase_panel_profile)[:, phase_future]
        flat = {k: (v * prof).astype(np.float32) for k, v in flat.items()}
    out.update(flat)
    return out


def year_bins(period_start: np.ndarray, grain: str) -> tuple[np.ndarray, int]:
    """(bin of the year of every period, number of bins): ISO-like week of the year (52 bins; day 364 joins the
    last week) at day and week grain, the month at month grain."""
    days = np.asarray(period_start).astype("datetime64[D]")
    if grain == "month":
        return (days.astype("datetime64[M]").astype(np.int64) % 12).astype(np.int64), 12
    doy = (days - days.astype("datetime64[Y]")).astype(np.int64)
    return np.minimum(doy // 7, 51).astype(np.int64), 52


def pooled_year_profile(y: np.ndarray, weight: np.ndarray, bins: np.ndarray, n_bins: int, group: np.ndarray,
                        periods_per_year: int, *, smooth: int = 1, min_years: int = 1) -> np.ndarray:
    """Seasonal index per group and bin of the year, (n_groups, n_bins), mean 1 over the year.

    The history is cut into whole years counted back from its end. In each year of each series that is fully
    observed and has demand, the series' values are divided by their mean over that year (so a trend between
    years does not leak into the profile); the group's index for a bin is the volume-weighted mean of those
    ratios over its series and years, i.e. the group's pooled share of the year in that bin. It is smoothed over
    ``2 smooth + 1`` neighbouring bins (circularly) and renormalised to mean 1. A group with fewer than
    ``min_years`` series-years of data gets a flat index of 1."""
    n, t = y.shape
    n_groups = int(group.max(initial=0)) + 1
    num = np.zeros((n_groups, n_bins))
    den = np.zeros((n_groups, n_bins))
    years = np.zeros(n_groups)
    yv = nan0(y).astype(np.float64)
    obs = (weight > 0) & ~np.isnan(y)
    for k in range(t // periods_per_year):
        lo, hi = t - (k + 1) * periods_per_year, t - k * periods_per_year
        block, ok = yv[:, lo:hi], obs[:, lo:hi]
        full = ok.all(axis=1)
        mean = block.mean(axis=1)
        use = full & (mean > 0)
        if not use.any():
            continue
        b = bins[lo:hi]
        rows = np.flatnonzero(use)
        # volume-weighted mean of ratios = sum of values / sum of the series' year means, per group and bin;
        # each series' mean per bin as one product with the periods' one-hot bins
        cnt = np.bincount(b, minlength=n_bins).astype(np.float64)
        onehot = np.zeros((hi - lo, n_bins))
        onehot[np.arange(hi - lo), b] = 1.0
        vals = (block[rows] @ onehot) / np.maximum(cnt, 1.0)
        g = group[rows]
        np.add.at(num, g, vals)
        np.add.at(den, g, np.repeat(mean[rows][:, None], n_bins, axis=1) * (cnt > 0))
        years += np.bincount(g, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        idx = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    # bins never seen (short histories): the group's mean; groups without enough data: flat
    seen = ~np.isnan(idx)
    fill = np.where(seen, idx, 0.0).sum(axis=1, keepdims=True) / np.maximum(seen.sum(axis=1, keepdims=True), 1)
    idx = np.where(seen, idx, np.where(seen.any(axis=1, keepdims=True), fill, 1.0))
    if smooth > 0:
        stacked = np.stack([np.roll(idx, s, axis=1) for s in range(-smooth, smooth + 1)])
        idx = stacked.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        idx = idx / idx.mean(axis=1, keepdims=True)
    idx[(years < min_years) | ~np.isfinite(idx).all(axis=1)] = 1.0
    return np.maximum(idx, 0.0)


def seasonal_level(y: np.ndarray, weight: np.ndarray, profile: np.ndarray, bins_hist: np.ndarray,
                   bins_future: np.ndarray, window: int) -> np.ndarray:
    """Deseasonalised level x the yearly profile: level = sum of the last ``window`` observed periods / sum of
    the profile over those periods (the demand of a normal-season period), forecast = level x profile of each
    future period's bin. ``profile`` is (n_series, n_bins) (each series' group row). Flat where the profile is
    flat."""
    tail_y = nan0(y[:, -window:]).astype(np.float64)
    tail_w = weight[:, -window:]
    prof_tail = profile[:, bins_hist[-window:]]
    den = (prof_tail * tail_w).sum(axis=1)
    level = np.where(den > 0, (tail_y * tail_w).sum(axis=1) / np.maximum(den, 1e-12), _fallback_mean(y, weight))
    return (level[:, None] * profile[:, bins_future]).astype(np.float32)
