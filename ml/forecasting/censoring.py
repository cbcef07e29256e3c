"""Stock-out censoring: recorded sales on stock-out days are a lower bound of demand, not demand.

Modes (``ForecastConfig.censoring``):

- ``'impute'``: the training target on a censored period is ``max(recorded, estimate)``, where the estimate is
  the series' deseasonalised level over the uncensored periods within ``window`` periods on either side (widened
  4x, then to the whole history when a stock-out lasts longer), times the series' weekday factor at day grain
  (the series' own weekday profile, shrunk towards the panel's by ``PROFILE_PRIOR`` pseudo-observations) and,
  when the caller gives one (``YearIndex``; ``backtest.corrected_base`` does with a whole year of history), the
  category's yearly index: the neighbours are divided by it and the estimate multiplied by it, so a stock-out
  in a peak week is filled at the peak's level rather than the mean of the quieter weeks around it.
- ``'exclude'``: the same estimate feeds lag features and the aggregate series, but censored periods get weight 0
  as training targets (LightGBM) and are left out of the local methods' levels.
- ``'none'``: recorded sales are demand.

Stock-outs the book does not show (phantom or "ghost" stock: the system holds units the shelf does not) are
found from the sales themselves (:func:`phantom_stockouts`, used by ``'impute'`` and ``'exclude'`` when
``phantom_max_probability`` is set, on series that have stock records): a run of periods without a sale,
closed on both sides by a sale or a recorded stock-out, is a stock-out when a series that sells in a share
``p`` of its neighbouring periods would go that long without a sale with probability ``(1 - p) ** k`` below
``phantom_max_probability``; ``p`` is the lower 5% bound (Jeffreys) of the share measured in the
neighbourhood, without the two sales that bound the run, so a slow seller with a few sales nearby is not judged
on them. Periods in which the whole location sold nothing (a closed store) never count. This is the
out-of-shelf detection from point-of-sale data of Papakiriakopoulos, Pramatari & Doukidis (2009) in its
simplest, distribution-free form: the selling share, not a Poisson rate, so lumpy items with large orders are
not flagged for their normal gaps.

Everything is computed from the array it is given: the backtest passes the history up to each origin only, so
an imputation never looks past the cutoff (the neighbourhood of the last periods is one-sided).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from ml.forecasting.arrays import nan0

PROFILE_PRIOR = 20.0  # pseudo-observations pulling a series' weekday factors towards the panel's
MIN_YEAR_FACTOR = 0.05  # floor of the yearly index an observation is divided by (off-season near-zero weeks)
PHANTOM_RATE_CONFIDENCE = 0.05  # a run is judged against the 5% lower bound of its neighbours' selling share


def _phase_matrix(phase: np.ndarray, season: int) -> np.ndarray:
    """(T, season) one-hot of each period's phase (sums by phase become one matrix product)."""
    m = np.zeros((len(phase), season), dtype=np.float32)
    m[np.arange(len(phase)), phase] = 1.0
    return m


def _phase_sums(values: np.ndarray, observed: np.ndarray, phase: np.ndarray, season: int,
                ) -> tuple[np.ndarray, np.ndarray]:
    onehot = _phase_matrix(phase, season)
    v = np.where(observed, values, 0.0).astype(np.float32)
    return (v @ onehot).astype(np.float64), (observed.astype(np.float32) @ onehot).astype(np.float64)


def panel_profile(values: np.ndarray, observed: np.ndarray, phase: np.ndarray, season: int) -> np.ndarray:
    """(season,) the panel's multiplicative profile, mean 1, pooled over every series' observed cells (the
    prior :func:`seasonal_profile` shrinks each series towards)."""
    return _pooled(*_phase_sums(values, observed, phase, season), season)


def _pooled(sums: np.ndarray, cnts: np.ndarray, season: int) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        panel = sums.sum(axis=0) / np.maximum(cnts.sum(axis=0), 1.0)
        return panel / panel.mean() if panel.mean() > 0 else np.ones(season)


def seasonal_profile(values: np.ndarray, observed: np.ndarray, phase: np.ndarray, season: int,
                     panel: np.ndarray | None = None) -> np.ndarray:
    """(n_series, season) multiplicative profile from observed cells, shrunk towards the panel's profile
    (``panel``, default :func:`panel_profile` of these series: pass it when they are a block of the panel)."""
    sums, cnts = _phase_sums(values, observed, phase, season)
    mean = sums.sum(axis=1) / np.maximum(cnts.sum(axis=1), 1.0)
    if panel is None:
        panel = _pooled(sums, cnts, season)
    with np.errstate(invalid="ignore", divide="ignore"):
        own = (sums + PROFILE_PRIOR * panel[None, :] * mean[:, None]) / ((cnts + PROFILE_PRIOR) * mean[:, None])
    own = np.where(mean[:, None] > 0, own, panel[None, :])
    own = own / own.mean(axis=1, keepdims=True)
    return np.where(np.isfinite(own), own, 1.0)


@dataclass(frozen=True)
class YearIndex:
    """A yearly seasonal index per group (``baselines.pooled_year_profile``): ``index`` (n_groups, n_bins),
    ``group`` (n_series,) each series' row, ``bins`` (T,) each period's bin of the year."""

    index: np.ndarray
    group: np.ndarray
    bins: np.ndarray

    def factor(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), T) index of each period for the given series, floored at ``MIN_YEAR_FACTOR``."""
        index = np.maximum(self.index, MIN_YEAR_FACTOR).astype(np.float32)
        return index[self.group[rows]][:, self.bins]


def impute_censored(values: np.ndarray, censored: np.ndarray, *, window: int, season: int,
                    phase: np.ndarray | None = None, year: YearIndex | None = None) -> np.ndarray:
    """Demand estimate for the censored cells (0 elsewhere): deseasonalised neighbour level x season factor.

    ``values`` (n_series, T) with NaN where the series has no data; ``phase`` (T,) the season phase of each period
    (weekday at day grain) or None for no seasonal factor; ``year`` the yearly index, or None: with it the
    neighbours are deseasonalised by the year's shape too, so a stock-out at a seasonal peak is filled at the
    peak's level, not at the average of the quieter weeks around it. Cumulative sums over the whole array, then
    gathered at the censored cells only (stock-outs are a few percent of the cells).
    """
    n, t = values.shape
    out = np.zeros((n, t), dtype=values.dtype)
    rows = np.flatnonzero(censored.any(axis=1))
    if not len(rows):
        return out
    vals = values[rows]
    cens = censored[rows]
    observed = ~cens & ~np.isnan(vals)
    # (rows, T) work in float32 (the panel's precision); the running sums in float64
    factor: np.ndarray | None = None
    if phase is not None and season > 1:
        factor = seasonal_profile(vals, observed, phase, season)[:, phase].astype(np.float32)
    if year is not None:
        yf = year.factor(rows).astype(np.float32)
        factor = yf if factor is None else factor * yf
    deseason = nan0(vals).astype(np.float32, copy=True)
    if factor is not None:
        deseason /= factor
    deseason[~observed] = 0.0
    cs = np.zeros((len(rows), t + 1))
    cw = np.zeros((len(rows), t + 1), dtype=np.int32)
    np.cumsum(deseason, axis=1, dtype=np.float64, out=cs[:, 1:])
    np.cumsum(observed, axis=1, dtype=np.int32, out=cw[:, 1:])
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
    if factor is not None:
        level = level * factor[ri, ci]
    out[rows[ri], ci] = level.astype(values.dtype)
    return out


def phantom_stockouts(values: np.ndarray, censored: np.ndarray, *, window: int, max_probability: float,
                      location: np.ndarray | None = None) -> np.ndarray:
    """(n_series, T) bool: periods of an unrecorded stock-out (module docstring).

    ``values`` (n_series, T) recorded sales, NaN before a series starts; ``censored`` the recorded stock-outs;
    ``window`` the periods on each side of a run whose selling share ``p`` is measured (at least ``window // 2``
    observed periods needed, else the run is not judged); ``location`` (n_series,) integer codes: periods in
    which every series of a location sold nothing are closures, not stock-outs. Only closed runs are judged: a
    run still open at the end of the array may be a product that stopped selling."""
    n, t = values.shape
    out = np.zeros((n, t), dtype=bool)
    if n == 0 or t < 3 or max_probability <= 0:
        return out
    nan = np.isnan(values)
    observed = ~nan & ~censored
    selling = observed & (nan0(values) > 0)
    closure = np.zeros((n, t), dtype=bool)
    if location is not None:
        n_loc = int(location.max(initial=0)) + 1
        onehot = np.zeros((n_loc, n), dtype=np.float32)
        onehot[location, np.arange(n)] = 1.0
        closure = ((onehot @ selling.astype(np.float32)) == 0)[location]
    evidence = observed & ~closure  # periods the series could have sold in
    zero = evidence & ~selling
    # runs of periods without a sale (closures inside a run neither break nor lengthen it): starts and
    # (exclusive) ends per row, from the padded differences
    padded = np.zeros((n, t + 2), dtype=np.int8)
    padded[:, 1:-1] = observed & ~selling
    d = np.diff(padded, axis=1)
    rs, s = np.nonzero(d == 1)
    re_, e = np.nonzero(d == -1)
    if not len(s):
        return out
    assert (rs == re_).all()
    closes = selling | censored  # what may bound a run on either side
    closed = (s > 0) & (e < t)
    closed[closed] &= closes[rs[closed], s[closed] - 1] & closes[rs[closed], e[closed]]
    rs, s, e = rs[closed], s[closed], e[closed]
    if not len(s):
        return out

    def cumulative(mask: np.ndarray) -> np.ndarray:  # counts < 2**31: exact in int32, a third of float64's memory
        cs = np.zeros((n, t + 1), dtype=np.int32)
        np.cumsum(mask, axis=1, dtype=np.int32, out=cs[:, 1:])
        return cs

    def window_sum(cs: np.ndarray, rs: np.ndarray, s: np.ndarray, e: np.ndarray) -> np.ndarray:
        lo, hi = np.maximum(s - window, 0), np.minimum(e + window, t)
        return ((cs[rs, s] - cs[rs, lo]) + (cs[rs, hi] - cs[rs, e])).astype(np.float64)

    zero_cs = cumulative(zero)
    k = (zero_cs[rs, e] - zero_cs[rs, s]).astype(np.float64)
    del zero_cs
    obs_cs, sell_cs = cumulative(evidence), cumulative(selling)
    n_obs, n_sell = window_sum(obs_cs, rs, s, e), window_sum(sell_cs, rs, s, e)
    # the two sales that bound the run are there because the run was found: they are not evidence of the rate
    bounds = selling[rs, s - 1].astype(np.float64) + selling[rs, e]
    n_obs, n_sell = n_obs - bounds, np.maximum(n_sell - bounds, 0.0)
    # the lower bound never exceeds the measured share: runs that share cannot flag are not judged further
    # (most runs are short; the inverse incomplete beta is the costly step at M5 size)
    log_alpha = np.log(max_probability)
    with np.errstate(divide="ignore", invalid="ignore"):  # k = 0 (a run of closures only) never flags
        share = np.minimum(n_sell / np.maximum(n_obs, 1.0), 1.0)
        maybe = (n_obs >= max(window // 2, 1)) & (k * np.log1p(-share) < log_alpha)
    rs, s, e, k, n_obs, n_sell = rs[maybe], s[maybe], e[maybe], k[maybe], n_obs[maybe], n_sell[maybe]
    p_low = special.betaincinv(n_sell + 0.5, np.maximum(n_obs - n_sell, 0.0) + 0.5, PHANTOM_RATE_CONFIDENCE)
    with np.errstate(divide="ignore", invalid="ignore"):
        flag = k * np.log1p(-np.minimum(p_low, 1.0)) < log_alpha
    if not flag.any():
        return out
    rs, s, e = rs[flag], s[flag], e[flag]
    lengths = e - s
    cols = np.repeat(s - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + np.arange(lengths.sum())
    out[np.repeat(rs, lengths), cols] = True
    return out & zero


def correct(values: np.ndarray, censored: np.ndarray, mode: str, *, window: int, season: int,
            phase: np.ndarray | None, phantom: np.ndarray | None = None,
            year: YearIndex | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(target, weight): the training target and its weight (0 = not a training target) per cell.

    ``phantom`` (optional, same shape): unrecorded stock-outs (:func:`phantom_stockouts`), corrected like the
    recorded ones; ``year``: the yearly index the imputation deseasonalises by (:func:`impute_censored`). NaN
    cells (before a series starts) stay NaN with weight 0.
    """
    nan = np.isnan(values)
    if phantom is not None and mode != "none":
        censored = censored | phantom
    if mode == "none" or not censored.any():
        return values, (~nan).astype(np.float32)
    est = impute_censored(values, censored, window=window, season=season, phase=phase, year=year)
    target = np.where(censored & ~nan, np.maximum(values, est), values).astype(values.dtype)
    weight = (~nan).astype(np.float32)
    if mode == "exclude":
        weight[censored] = 0.0
    elif mode != "impute":
        raise ValueError(f"unknown censoring mode {mode!r}")
    return target, weight
