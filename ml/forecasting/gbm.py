"""The global LightGBM model, trained and applied with mlforecast (recursive strategy).

Features (all computed from data up to the origin, or known in advance):

- target lags and rolling statistics computed by mlforecast from the (transformed) target: at day grain lags
  1, 2, 3, 7, 14, 28, rolling means over 7 and 28 days and a 28-day rolling std at lag 1, the mean of the same
  weekday over the last 4 weeks at lag 7 and a 91-day rolling mean at lag 28 (week/month grains: see
  ``_lag_spec``). Recursive forecasting feeds the predictions back, so exogenous values that change over the
  horizon (planned promotions, price changes) are seen at every step (the direct strategy sees them only at
  the origin);
- a yearly lag passed as a known-in-advance exogenous column (the 7-day mean centred one year - 364 days - back,
  52 weeks, 12 months): the horizon is shorter than a year, so it never needs a prediction;
- the yearly momentum (``year_momentum``): that yearly lag over its own mean in the 28 days before (4 weeks, 1
  month), known in advance too: last year's rise into a season and fall after it as a ratio, free of the level, so
  the trees can apply it to the level the recursive lags carry (forecasting-1.10; measured in docs/backtest.md);
- calendar: weekday, day of month, month, day of year (week grain: ISO week and month; month grain: month);
- promotions: ``discount``, the mean discount of the period, and ``promo_unknown``, the share of the period
  whose promotions are not known at the origin. A promotion is known when it starts no later than the known
  horizon after the origin (``ml.forecasting.panel.known_promotion_days``: ``promotion_known_days``, by default
  how far ahead the export lists promotions). History periods, and future periods within the horizon, carry the
  listed discount - 0 there means "known: no promotion". Future periods beyond it, unless a known promotion runs
  in them, are *not known*: ``discount`` carries the series' promotion intensity as of the origin (its mean
  per-period discount over the year of history before it, its own span only; 0 for a series never promoted)
  times the unknown share, and ``promo_unknown`` that share. So an export of past promotions only (most ERPs)
  forecasts the average promotional lift, not "no promotion". Trees respond to the feature non-linearly (a
  small intensity is not a small lift), so training teaches the unknown case: when the history before the cutoff
  has promotions and the known horizon is shorter than ``max_horizon_days``, a deterministic random share
  (``PROMO_UNKNOWN_TRAIN_SHARE``) of the training rows carry the series' trailing intensity at that period with
  ``promo_unknown = 1``, against their actual (promoted or not) targets: the model learns the mean outcome of
  an unknown period. ``exogenous_warnings`` lists promotions seen in training but not listed for the forecast;
- price: list price over its own trailing 91-day mean; the future price path is the price list's planned
  changes up to ``price_known_days`` after the origin, then carried forward (a price stays in force until it
  changes, so a price list with past changes only needs no warning);
- static integer codes (never polars categoricals: they abort LightGBM): category, location, location type, and
  the log of the series' scale.

Target transforms (chosen on validation when ``target_transform='auto'``): ``'scale'`` divides each series by
its recent mean (the last 91 days of observed targets, else the last year, else all history); ``'seasonal'``
divides it by its deseasonalised recent mean times its category's pooled yearly index at each period
(:class:`TargetScale`: the trees model the series without the shape its category repeats every year, which is
put back multiplicatively); ``'log1p'`` fits log(1 + y) and back-transforms with expm1, ``'none'`` fits raw
units.

Training rows: the last ``train_window_days`` before the origin (the lag look-back before that feeds the features
only), weighted by the censoring weights; when series x window exceeds ``max_train_rows`` a deterministic random
sample of series is trained on (every series is still forecast, from its own recent history via ``new_df``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

# OpenMP threads that spin while waiting make LightGBM 5-8x slower when the cores are shared (measured here with
# 2 threads on 2 busy cores); passive waiting costs nothing when they are not. Must be set before libgomp starts.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from mlforecast import MLForecast  # noqa: E402
from mlforecast.lag_transforms import RollingMean, RollingStd, SeasonalRollingMean  # noqa: E402

from ml.forecasting import baselines  # noqa: E402
from ml.forecasting.arrays import nan0
from ml.forecasting.config import ForecastConfig  # noqa: E402
from ml.forecasting.distributed import map_row_blocks  # noqa: E402
from ml.forecasting.panel import Panel, known_promotion_days, promotion_warnings  # noqa: E402
from ml.forecasting.signals import feature_columns, teach_unknown, without_unused  # noqa: E402

log = logging.getLogger("stockturn.forecasting")

YEAR = {"day": 364, "week": 52, "month": 12}
PRICE_WINDOW_DAYS = 91
SCALE_WINDOW_DAYS = 91
ZERO_SCALE = 1e-3
PROMO_INTENSITY_DAYS = 365  # history the promotion intensity (mean per-period discount) is measured over
PROMO_UNKNOWN_TRAIN_SHARE = 0.3  # training rows that carry the "unknown promotion" features (module docstring)


def _lag_spec(grain: str, config: ForecastConfig) -> tuple[list[int], dict[int, list], int]:
    """(lags, lag transforms, look-back periods the features need)."""
    if grain == "day":
        lags = list(config.lags_days)
        short = min(lags)
        tfms = {short: [RollingMean(7), RollingMean(28), RollingStd(28)], 7: [SeasonalRollingMean(7, 4)],
                28: [RollingMean(91)]}
        lookback = 28 + 91
    elif grain == "week":
        lags = [lag for lag in config.lags_periods_week if lag < 52]
        tfms = {1: [RollingMean(4), RollingMean(13)], 4: [RollingMean(13)]}
        lookback = 4 + 13
    else:
        lags = [lag for lag in config.lags_periods_month if lag < 12]
        tfms = {1: [RollingMean(3), RollingMean(6)]}
        lookback = 1 + 6
    lookback = max([lookback, *lags]) + 1
    return lags, tfms, lookback


def series_scale(target: np.ndarray, weight: np.ndarray, panel: Panel) -> np.ndarray:
    """Recent mean of observed targets per series (the 'scale' transform, a static feature and the floor of the
    calibration scales): over the last 91 days, else the last year, else the whole history; a series that never
    sold gets ``ZERO_SCALE`` (so its lead-time demand stays at about zero)."""
    y = nan0(target)
    out = np.zeros(len(y))
    for days in (SCALE_WINDOW_DAYS, 365, None):
        k = y.shape[1] if days is None else min(panel.periods(days), y.shape[1])
        w = weight[:, -k:]
        den = w.sum(axis=1)
        m = np.where(den > 0, (y[:, -k:] * w).sum(axis=1) / np.maximum(den, 1e-12), 0.0)
        out = np.where(out > 0, out, m)
    return np.where(out > 0, out, ZERO_SCALE).astype(np.float32)


def _calendar(panel: Panel, t0: int, t1: int) -> dict[str, np.ndarray]:
    d = panel.period_start[t0:t1]
    days = d.astype("datetime64[D]").astype(np.int64)
    weekday = ((days + 3) % 7).astype(np.int32)  # 1970-01-01 was a Thursday; 0 = Monday
    months = d.astype("datetime64[M]").astype(np.int64)
    month = (months % 12 + 1).astype(np.int32)
    dom = (days - d.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) + 1).astype(np.int32)
    doy = (days - d.astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64) + 1).astype(np.int32)
    if panel.grain == "day":
        return {"weekday": weekday, "day_of_month": dom, "month": month, "day_of_year": doy}
    if panel.grain == "week":
        return {"week_of_year": np.minimum((doy - 1) // 7 + 1, 53).astype(np.int32), "month": month}
    return {"month": month}


def exogenous_warnings(panel: Panel, config: ForecastConfig) -> list[str]:
    """Human-readable warnings about exogenous features seen in training but not (fully) known for the forecast
    period, for the run summary and the backtest report; [] when there is nothing to report.

    Promotions only (``ml.forecasting.panel.promotion_warnings``): the history has promotions but none is listed
    after the as-of date, promotions are listed less far ahead than ``horizon_days``, or a forced
    ``promotion_known_days`` exceeds what the data lists. Prices are not warned about: a list price stays in force
    until it changes, so carrying it forward is the right reading of past-only price changes. ``load_panel``
    already logs these as WARNINGs once per panel.
    """
    return promotion_warnings(panel, config)


def promotion_intensity(panel: Panel, t: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Promotion intensity of every series (or of ``rows``) at periods ``t``: its mean per-period discount over
    the periods [t - one year, t) within its own span (from ``panel.first``), 0 without any; (n, len(t)) float32.

    The intensity as of an origin (``t = cutoff``) is the expected discount of a period whose promotions are not
    known (a period's discount is the mean over its days, days without a promotion counting 0)."""
    t = np.asarray(t, dtype=np.int64)
    k = panel.periods(PROMO_INTENSITY_DAYS)
    lo, hi = max(int(t.min()) - k, 0), max(int(t.max()), 0)
    first = panel.first if rows is None else panel.first[rows]
    disc = panel.discount[:, lo:hi] if rows is None else panel.discount[rows, lo:hi]
    inside = np.arange(lo, hi)[None, :] >= first[:, None]
    d = np.where(inside, nan0(disc), 0.0)
    if len(t) == 1:  # one origin: a plain mean (no cumulative sums over every series)
        cnt = inside.sum(axis=1)
        mean = d.sum(axis=1, dtype=np.float64) / np.maximum(cnt, 1)
        return np.where(cnt > 0, mean, 0.0).astype(np.float32)[:, None]
    cs = np.concatenate([np.zeros((len(d), 1)), np.cumsum(d, axis=1, dtype=np.float64)], 1)
    cn = np.concatenate([np.zeros((len(d), 1)), np.cumsum(inside, axis=1, dtype=np.float64)], 1)
    a, b = np.maximum(t - k, lo) - lo, np.maximum(t, lo) - lo
    cnt = cn[:, b] - cn[:, a]
    return np.where(cnt > 0, (cs[:, b] - cs[:, a]) / np.maximum(cnt, 1.0), 0.0).astype(np.float32)


def known_exogenous(panel: Panel, config: ForecastConfig, cutoff: int, t0: int, t1: int) -> dict[str, np.ndarray]:
    """Promotion discount, unknown-promotion share and relative price for periods [t0, t1), as known at the
    origin (end of ``cutoff - 1``); promotions as in the module docstring.

    Returns (n_all, t1 - t0) float32 arrays.
    """
    o_day = origin_day(panel, cutoff)
    disc = panel.discount[:, t0:t1].astype(np.float32)  # a copy
    unknown = np.zeros(disc.shape, dtype=np.float32)
    j0 = max(cutoff - t0, 0)
    if j0 < t1 - t0:
        horizon_end = o_day + known_promotion_days(panel, config)  # last day promotions are known for
        fut = slice(t0 + j0, t1)
        first = np.datetime64(panel.first_day, "D").astype(np.int64)
        start = panel.period_start[fut].astype("datetime64[D]").astype(np.int64) - first
        length = panel.period_len[fut].astype(np.int64)
        # share of each future period's days after the known horizon (0 or 1 at day grain)
        share = (np.clip(start + length - 1 - horizon_end, 0, length) / length).astype(np.float32)
        listed = np.where(panel.promo_start[:, fut] <= horizon_end, nan0(panel.discount[:, fut]), 0.0)
        intensity = promotion_intensity(panel, np.array([cutoff]))[:, 0]
        has_known = listed > 0
        disc[:, j0:] = np.where(has_known, listed, share[None, :] * intensity[:, None])
        unknown[:, j0:] = np.where(has_known, 0.0, share[None, :])
    # price path frozen after the last period starting within price_known_days of the origin
    starts = panel.period_start.astype("datetime64[D]").astype(np.int64) - np.datetime64(panel.first_day, "D").astype(
        np.int64)
    freeze = int(np.searchsorted(starts, o_day + config.price_known_days, side="right")) - 1
    freeze = max(freeze, cutoff - 1)
    k = panel.periods(PRICE_WINDOW_DAYS)
    lo = max(t0 - k, 0)
    path = panel.price[:, lo:t1].copy()
    if freeze + 1 < t1:
        j = freeze + 1 - lo
        path[:, max(j, 0):] = panel.price[:, [freeze]] if freeze >= lo else path[:, [0]]
    valid = ~np.isnan(path)
    cs = np.concatenate([np.zeros((len(path), 1)), np.cumsum(nan0(path), axis=1, dtype=np.float64)], 1)
    cn = np.concatenate([np.zeros((len(path), 1)), np.cumsum(valid, axis=1, dtype=np.float64)], 1)
    idx = np.arange(t0 - lo, t1 - lo)
    a = np.maximum(idx - k, 0)
    mean = (cs[:, idx] - cs[:, a]) / np.maximum(cn[:, idx] - cn[:, a], 1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = path[:, idx] / mean
    rel = np.where(np.isfinite(rel) & (cn[:, idx] - cn[:, a] > 0), rel, 1.0).astype(np.float32)
    return {"discount": disc.astype(np.float32), "promo_unknown": unknown, "price_rel": rel}


def _teach_unknown_promotions(panel: Panel, config: ForecastConfig, cols: dict[str, np.ndarray], lo: int,
                              cutoff: int, rows: np.ndarray | None = None) -> None:
    """Give a deterministic random share of the training cells [lo, cutoff) of ``rows`` (default every series)
    the features of a period whose promotions are not known (trailing intensity, ``promo_unknown = 1``), in
    place; only when the history before the cutoff has promotions and some forecast period can lie beyond the
    known horizon."""
    if known_promotion_days(panel, config) >= config.max_horizon_days:
        return
    if not (panel.discount[:, :cutoff] > 0).any():
        return
    rows = np.arange(cols["discount"].shape[0]) if rows is None else rows
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 11, cutoff]))
    mask = rng.random((len(rows), cutoff - lo), dtype=np.float32) < PROMO_UNKNOWN_TRAIN_SHARE
    intensity = promotion_intensity(panel, np.arange(lo, cutoff), rows)
    cols["discount"][rows] = np.where(mask, intensity, cols["discount"][rows])
    cols["promo_unknown"][rows] = np.where(mask, np.float32(1.0), cols["promo_unknown"][rows])


def origin_day(panel: Panel, cutoff: int) -> int:
    """Day number (days since panel.first_day) of the last day of history period ``cutoff - 1``."""
    start = panel.period_start[cutoff - 1].astype("datetime64[D]").astype(np.int64)
    return int(start + panel.period_len[cutoff - 1] - 1 - np.datetime64(panel.first_day, "D").astype(np.int64))


def yearly_lag(target: np.ndarray, start: int, panel: Panel, cutoff: int, t0: int, t1: int) -> np.ndarray:
    """Target one year back (7-day centred mean at day grain) for periods [t0, t1); NaN where unavailable.

    ``target`` holds periods [start, cutoff).
    """
    lag = YEAR[panel.grain]
    half = 3 if panel.grain == "day" else 0
    n = target.shape[0]
    t = np.arange(t0, t1)
    if len(t) == 0:
        return np.zeros((n, 0), np.float32)
    a = np.clip(t - lag - half - start, 0, cutoff - start)
    b = np.clip(np.minimum(t - lag + half + 1, cutoff) - start, 0, cutoff - start)
    # cumulative sums over the history columns the windows read only (a, b grow with t), not the whole history
    s0, s1 = int(a[0]), int(b[-1])
    part = target[:, s0:s1]
    cs = np.concatenate([np.zeros((n, 1)), np.cumsum(nan0(part), axis=1, dtype=np.float64)], 1)
    cv = np.concatenate([np.zeros((n, 1)), np.cumsum(~np.isnan(part), axis=1, dtype=np.float64)], 1)
    a, b = a - s0, b - s0
    cnt = cv[:, b] - cv[:, a]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(cnt > 0, (cs[:, b] - cs[:, a]) / cnt, np.nan)
    out[:, (t - lag - half < start) | (b <= a)] = np.nan
    return out.astype(np.float32)


#: the window (days) year_momentum compares last year's value with
MOMENTUM_DAYS = 28


def year_momentum(target: np.ndarray, start: int, panel: Panel, cutoff: int, t0: int, t1: int) -> np.ndarray:
    """Last year's shape, relative: the yearly lag at period t over the mean of the yearly lag in the
    ``MOMENTUM_DAYS`` before t, for periods [t0, t1); NaN where last year is unknown or was zero.

    Known in advance like the yearly lag, and free of the series' level, so the trees can carry a rise into a
    season and the fall after it onto the level the recursive lags give (a peak that only the yearly lag's level
    shows is easily out-voted by the recent lags)."""
    m = max(1, panel.periods(MOMENTUM_DAYS))
    ylag = yearly_lag(target, start, panel, cutoff, t0 - m, t1).astype(np.float64)
    ok = ~np.isnan(ylag)
    cs = np.concatenate([np.zeros((ylag.shape[0], 1)), np.cumsum(np.where(ok, ylag, 0.0), axis=1)], axis=1)
    cn = np.concatenate([np.zeros((ylag.shape[0], 1)), np.cumsum(ok, axis=1)], axis=1)
    k = np.arange(t1 - t0)
    den_n = cn[:, k + m] - cn[:, k]
    with np.errstate(invalid="ignore", divide="ignore"):
        den = np.where(den_n > 0, (cs[:, k + m] - cs[:, k]) / den_n, np.nan)
        out = np.where(den > 0, ylag[:, m:] / den, np.nan)
    return out.astype(np.float32)


#: target transforms that divide each series by a level (``'seasonal'``: times its category's yearly index)
DIVIDING_TRANSFORMS: tuple[str, ...] = ("scale", "seasonal")
#: floor of the yearly index a 'seasonal' target is divided by (a bin with almost no demand in any year)
MIN_YEAR_INDEX = 0.05


def _transform(y: np.ndarray, kind: str, divisor: np.ndarray) -> np.ndarray:
    if kind in DIVIDING_TRANSFORMS:
        return y / divisor
    if kind == "log1p":
        return np.log1p(np.maximum(y, 0.0))
    return y


def _inverse(y: np.ndarray, kind: str, divisor: np.ndarray) -> np.ndarray:
    if kind in DIVIDING_TRANSFORMS:
        return y * divisor
    if kind == "log1p":
        return np.expm1(y)
    return y


def period_bins(panel: Panel, lo: int, hi: int) -> np.ndarray:
    """Bin of the year (``baselines.year_bins``) of periods [lo, hi); periods past the panel's calendar take the
    bin of the period one year earlier."""
    bins, _ = baselines.year_bins(panel.period_start, panel.grain)
    if hi <= len(bins):
        return bins[lo:hi]
    year = panel.periods(364)
    ext = np.concatenate([bins, np.zeros(hi - len(bins), dtype=bins.dtype)])
    for j in range(len(bins), hi):
        ext[j] = ext[j - year]
    return ext[lo:hi]


@dataclass(frozen=True)
class TargetScale:
    """What the dividing transforms divide a series' target by.

    ``'scale'``: its recent mean (``level``). ``'seasonal'``: its deseasonalised recent mean times the yearly
    index of the period's bin (``index``: the series' category's pooled seasonal index,
    ``baselines.pooled_year_profile``, from the history before the cutoff only). The trees then model a series
    without its category's yearly shape, and the shape is put back multiplicatively: a peak or the fall after a
    season comes from the whole category's earlier years, not from one series' few recursive lags (the
    aggregate, group seasonal index of Withycombe 1989 and Dekker, van Donselaar & Ouwehand 2004, applied to a
    global model). Without a whole year of history the index is flat and this is ``'scale'``."""

    level: np.ndarray  # (n_all,)
    index: np.ndarray | None = None  # (n_all, n_bins) or None (no yearly index)

    def divisor(self, panel: Panel, lo: int, hi: int) -> np.ndarray:
        """(n_all, hi - lo) divisor of periods [lo, hi) ((n_all, 1) without a yearly index)."""
        if self.index is None:
            return self.level[:, None]
        return self.level[:, None] * self.index[:, period_bins(panel, lo, hi)]


def target_scale(panel: Panel, hist: History, transform: str) -> TargetScale:
    """The :class:`TargetScale` of a history for ``transform``."""
    if transform != "seasonal":
        return TargetScale(hist.scale(panel))
    bins = period_bins(panel, hist.start, hist.cutoff)
    _, n_bins = baselines.year_bins(panel.period_start[:1], panel.grain)
    code = panel.static["category_code"]
    profile = baselines.pooled_year_profile(hist.target, hist.weight, bins, n_bins, code, panel.periods(364))
    index = np.maximum(profile[code], MIN_YEAR_INDEX).astype(np.float32)
    level = series_scale(hist.target / index[:, bins], hist.weight, panel)
    return TargetScale(level, index)


@dataclass(frozen=True)
class History:
    """Corrected target and weights of every series over periods [start, cutoff)."""

    target: np.ndarray  # (n_all, cutoff - start)
    weight: np.ndarray
    start: int
    cutoff: int
    active: np.ndarray  # (n_all,) series with data before the cutoff

    def scale(self, panel: Panel) -> np.ndarray:
        return series_scale(self.target, self.weight, panel)


def _columns(panel: Panel, config: ForecastConfig, hist: History, transform: str, scale: TargetScale, lo: int,
             hi: int, use: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Model columns over periods [lo, hi) (lo >= hist.start): transformed target (0 after the cutoff), yearly lag,
    known exogenous values, calendar and external signals / events as known at the cutoff (``use``: the series
    whose forecasts use each signal group, None = all), each (n_all, hi - lo)."""
    return {**_columns_without_signals(panel, config, hist, transform, scale, lo, hi),
            **_signal_columns(panel, hist, lo, hi, use)}


def _signal_columns(panel: Panel, hist: History, lo: int, hi: int, use: dict[str, np.ndarray] | None,
                    ) -> dict[str, np.ndarray]:
    if panel.signals is None:
        return {}
    return feature_columns(panel.signals, panel.agg, panel.period_start_day, panel.period_len,
                           origin_day(panel, hist.cutoff), lo, hi, use)


def _signal_columns_as_used(panel: Panel, cols: dict[str, np.ndarray], use: dict[str, np.ndarray] | None,
                            ) -> dict[str, np.ndarray]:
    return cols if panel.signals is None else without_unused(panel.signals, cols, use)


def _columns_without_signals(panel: Panel, config: ForecastConfig, hist: History, transform: str,
                             scale: TargetScale, lo: int, hi: int) -> dict[str, np.ndarray]:
    n_all = hist.target.shape[0]
    seen = hist.target[:, lo - hist.start :]
    div = scale.divisor(panel, lo, hi)
    y = _transform(nan0(seen), transform, div[:, : seen.shape[1]] if div.shape[1] > 1 else div).astype(np.float32)
    cols: dict[str, np.ndarray] = {
        "y": np.concatenate([y, np.zeros((n_all, hi - hist.cutoff), np.float32)], axis=1) if hi > hist.cutoff
        else y[:, : hi - lo],
    }
    ylag = yearly_lag(hist.target, hist.start, panel, hist.cutoff, lo, hi)
    cols["year_lag"] = _transform(ylag, transform, div).astype(np.float32)
    cols["year_momentum"] = year_momentum(hist.target, hist.start, panel, hist.cutoff, lo, hi)
    cols.update(known_exogenous(panel, config, hist.cutoff, lo, hi))
    for name, v in _calendar(panel, lo, hi).items():
        cols[name] = np.broadcast_to(v[None, :], (n_all, len(v)))
    return cols


def _statics(panel: Panel, scale: TargetScale) -> dict[str, np.ndarray]:
    out = dict(panel.static)
    out["log_scale"] = np.log(scale.level).astype(np.float32)
    return out


def _long_frame(i: np.ndarray, t: np.ndarray, columns: dict[str, np.ndarray], lo: int,
                statics: dict[str, np.ndarray], id_offset: int = 0) -> pl.DataFrame:
    """Rows (series i, absolute period t) of (n, periods from lo) column arrays as a long frame."""
    data: dict[str, np.ndarray] = {"unique_id": (i + id_offset).astype(np.int32), "ds": t.astype(np.int32)}
    for name, arr in columns.items():
        data[name] = arr[i, t - lo]
    for name, arr in statics.items():
        data[name] = arr[i]
    return pl.DataFrame(data)


def _horizon_frame(series: np.ndarray, cutoff: int, horizon: int, columns: dict[str, np.ndarray], lo: int,
                   id_offset: int = 0) -> pl.DataFrame:
    """``_long_frame`` of every listed series x the ``horizon`` periods from ``cutoff`` (series-major), sliced
    instead of gathered cell by cell."""
    data: dict[str, np.ndarray] = {
        "unique_id": np.repeat(series + id_offset, horizon).astype(np.int32),
        "ds": np.tile(np.arange(cutoff, cutoff + horizon), len(series)).astype(np.int32),
    }
    for name, arr in columns.items():
        data[name] = arr[series, cutoff - lo : cutoff - lo + horizon].ravel()
    return pl.DataFrame(data)


def _cells(series: np.ndarray, first: np.ndarray, lo: int, hi: int, n_all: int) -> tuple[np.ndarray, np.ndarray]:
    """(series, absolute period) of every period in [lo, hi) at or after each listed series' first period."""
    m = np.zeros((n_all, hi - lo), dtype=bool)
    m[series] = True
    m &= np.arange(lo, hi)[None, :] >= first[:, None]
    i, t = np.nonzero(m)
    return i, t + lo


@dataclass
class GBMModel:
    mlf: MLForecast
    transform: str
    n_train_rows: int
    n_train_series: int
    lookback: int


def fit(panel: Panel, config: ForecastConfig, hist: History, *, transform: str, n_trees: int) -> GBMModel:
    """Train the global model on the last ``train_window_days`` before ``hist.cutoff``."""
    lags, tfms, lookback = _lag_spec(panel.grain, config)
    n_all = hist.target.shape[0]
    cutoff = hist.cutoff
    scale = target_scale(panel, hist, transform)
    window = min(panel.periods(config.train_window_days), cutoff - hist.start)
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 3, cutoff]))
    train_series = np.flatnonzero(hist.active)
    if len(train_series) * window > config.max_train_rows:
        n_keep = max(1, config.max_train_rows // window)
        train_series = np.sort(rng.choice(train_series, size=n_keep, replace=False))
    lo = max(cutoff - window - lookback, hist.start)
    cols = _columns(panel, config, hist, transform, scale, lo, cutoff)
    _teach_unknown_promotions(panel, config, cols, lo, cutoff, train_series)
    if panel.signals is not None:
        teach_unknown(panel.signals, cols, train_series, config.seed, cutoff)
    i, t = _cells(train_series, panel.first, lo, cutoff, n_all)
    train = _long_frame(i, t, cols, lo, _statics(panel, scale))
    w_cells = hist.weight[i, t - hist.start]
    params = dict(
        n_estimators=n_trees, learning_rate=config.lgbm_learning_rate, num_leaves=config.lgbm_num_leaves,
        min_child_samples=config.lgbm_min_data_in_leaf, colsample_bytree=config.lgbm_feature_fraction,
        subsample=config.lgbm_bagging_fraction, subsample_freq=1, max_bin=config.lgbm_max_bin,
        objective=config.lgbm_objective, random_state=config.seed, n_jobs=config.num_threads,
        deterministic=True, force_row_wise=True, verbose=-1,
    )
    if config.engine == "dask":
        from ml.forecasting import distributed

        mlf, n_rows = distributed.fit(train, w_cells, first_period=cutoff - window,
                                      static_features=list(_statics(panel, scale)), lags=lags, lag_transforms=tfms,
                                      params=params, config=config)
        return GBMModel(mlf, transform, n_rows, len(train_series), lookback)
    mlf = MLForecast(models={"lgbm": lgb.LGBMRegressor(**params)}, freq=1, lags=lags, lag_transforms=tfms,
                     num_threads=1)
    prep = mlf.preprocess(train, id_col="unique_id", time_col="ds", target_col="y",
                          static_features=list(_statics(panel, scale)), dropna=False)
    keep = (prep["ds"].to_numpy() >= cutoff - window) & (w_cells > 0)
    X = prep.filter(pl.Series(keep)).select(mlf.ts.features_order_)
    y = prep["y"].to_numpy()[keep]
    w = w_cells[keep]
    del prep, train
    mlf.fit_models(X, y, models_fit_kwargs={"lgbm": {"sample_weight": w}})
    return GBMModel(mlf, transform, X.height, len(train_series), lookback)


def predict(model: GBMModel, panel: Panel, config: ForecastConfig, histories: list[History],
            horizon: int, uses: list[dict[str, np.ndarray] | None] | None = None) -> list[np.ndarray]:
    """Recursive forecasts of ``horizon`` periods after each history's cutoff (one mlforecast call: each
    (history, series) pair is a separate series), (n_all, horizon) each, >= 0; inactive series get 0.

    ``uses``: per history, the series whose forecasts use each signal group (default ``panel.signal_use``: the
    gating decision, or every group before it is made)."""
    n_all = histories[0].target.shape[0]
    new_parts, x_parts, rows, scales = [], [], [], []
    # a history passed more than once (the signal gating's variants) has its signal-free columns, scale and
    # cells computed once
    shared: dict[int, tuple] = {}
    for j, hist in enumerate(histories):
        lo = max(hist.cutoff - model.lookback, hist.start)
        if id(hist) not in shared:
            scale = target_scale(panel, hist, model.transform)
            series = np.flatnonzero(hist.active)
            base = _columns_without_signals(panel, config, hist, model.transform, scale, lo, hist.cutoff + horizon)
            signal_cols = _signal_columns(panel, hist, lo, hist.cutoff + horizon, None)
            shared[id(hist)] = (scale, series, base, signal_cols, _cells(series, panel.first, lo, hist.cutoff, n_all))
        scale, series, base, signal_cols, (i, t) = shared[id(hist)]
        use = panel.signal_use if uses is None else uses[j]
        cols = {**base, **_signal_columns_as_used(panel, signal_cols, use)}
        new_parts.append(_long_frame(i, t, cols, lo, _statics(panel, scale), id_offset=j * n_all))
        x_cols = {k: v for k, v in cols.items() if k != "y"}
        x_parts.append(_horizon_frame(series, hist.cutoff, horizon, x_cols, lo, id_offset=j * n_all))
        rows.append(series)
        scales.append(scale.divisor(panel, hist.cutoff, hist.cutoff + horizon)[series])
    # the mlforecast time index must be aligned across series: shift every history so its cutoff is 0
    new_df = pl.concat([_rebase(df, h.cutoff) for df, h in zip(new_parts, histories, strict=True)])
    x_df = pl.concat([_rebase(df, h.cutoff) for df, h in zip(x_parts, histories, strict=True)])
    preds = _predict_on_engine(model.mlf, horizon, new_df, x_df, config)
    values = preds["lgbm"].to_numpy()
    out: list[np.ndarray] = []
    pos = 0
    for series, scale in zip(rows, scales, strict=True):
        n = len(series)
        p = values[pos : pos + n * horizon].reshape(n, horizon).astype(np.float64)
        pos += n * horizon
        fc = np.zeros((n_all, horizon), dtype=np.float32)
        fc[series] = np.maximum(_inverse(p, model.transform, scale), 0.0)
        out.append(fc)
    return out


def _predict_on_engine(mlf: MLForecast, horizon: int, new_df: pl.DataFrame, x_df: pl.DataFrame,
                       config: ForecastConfig) -> pl.DataFrame:
    """The recursive forecasts of every series of ``new_df``, sorted by series and period: in one call locally,
    by blocks of whole series on the workers with the Dask engine (each series' features come from its own
    history, so the blocks give the same numbers)."""
    if config.engine != "dask":  # one block: no need to list the series
        return predict_block(mlf, horizon, new_df, x_df).sort("unique_id", "ds")
    ids = new_df["unique_id"].unique().sort().to_numpy()

    def block(a: int, b: int) -> dict[str, object]:
        lo, hi = ids[a], ids[b - 1]
        return {"new_df": new_df.filter(pl.col("unique_id").is_between(lo, hi)),
                "x_df": x_df.filter(pl.col("unique_id").is_between(lo, hi))}

    parts = map_row_blocks(predict_block, len(ids), block, {"mlf": mlf, "h": horizon}, config)
    return pl.concat(parts).sort("unique_id", "ds")


def predict_block(mlf: MLForecast, h: int, new_df: pl.DataFrame, x_df: pl.DataFrame) -> pl.DataFrame:
    """``MLForecast.predict`` of the series of ``new_df`` (a block of them on a Dask worker)."""
    return mlf.predict(h, new_df=new_df, X_df=x_df)


def _rebase(df: pl.DataFrame, cutoff: int) -> pl.DataFrame:
    return df.with_columns((pl.col("ds") - cutoff).cast(pl.Int32))
