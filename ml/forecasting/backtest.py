"""Fitting every model at one cutoff, the rolling-origin backtest and its metrics.

Origins: ``n_origins`` cutoffs, the last one ``horizon`` periods before the end of the history, spaced by
``origin_step_days`` (default: the horizon, so horizons do not overlap), shrunk when the history cannot hold
``min_train_days`` before the first origin. At each origin every model is refitted on the history before it
(censoring correction, segments, scales and lead times included), so each origin is a faithful replay of
what ``run_forecasting(as_of=origin)`` would have done.

Evaluation actuals (documented in the package docstring): for selling series, recorded sales on periods that
are not censored (censored periods are left out of every per-period metric); for aggregate series (DCs), the sum
of their children's demand where censored periods carry the imputation from the whole history (an aggregate has
no censoring of its own). Cumulative quantities (lead-time demand, error paths) need every period, so they use
the imputed value on censored periods.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from ml.forecasting import baselines, censoring, gbm, metrics, segments
from ml.forecasting.arrays import nan0
from ml.forecasting.config import ForecastConfig
from ml.forecasting.distributed import map_row_blocks
from ml.forecasting.panel import Panel

log = logging.getLogger("stockturn.forecasting")

SEGMENT_WINDOW_DAYS = 365
SUB_HISTORY_DAYS = 400  # history a sub-origin re-estimates censoring, scale and local methods from (>= yearly lag)
LOCAL_HISTORY_DAYS = 730  # history the local methods see (SBA/TSB forget faster than this)
YEAR_LAG_DAYS = 366 + 7  # the yearly-lag feature looks this far back from the first training day
RECENT_LEVEL_DAYS = 91  # the recent level the collapsed-level guard compares a forecast with


def phases(panel: Panel) -> np.ndarray | None:
    """Season phase of every period (weekday at day grain); None at coarser grains."""
    if panel.grain != "day":
        return None
    return ((panel.period_start.astype("datetime64[D]").astype(np.int64) + 3) % 7).astype(np.int64)


def phantom_stockouts(panel: Panel, config: ForecastConfig, start: int, cutoff: int) -> np.ndarray | None:
    """Unrecorded stock-outs of the base series over periods [start, cutoff), from data in that range only
    (``censoring.phantom_stockouts``), for series with stock records only (sales-only data has no book to be
    wrong: a run without sales there may as well be a gap in demand); None when switched off or when no series
    has stock records."""
    if (config.phantom_max_probability is None or config.censoring == "none" or panel.stock_known is None
            or not panel.stock_known.any()):
        return None
    window = max(panel.periods(config.impute_window_days), config.phantom_min_neighbour_periods)
    found = censoring.phantom_stockouts(
        panel.sales[:, start:cutoff], panel.censored[:, start:cutoff], window=window,
        max_probability=config.phantom_max_probability,
        location=panel.static["location_code"][: panel.n_base],
    )
    found &= panel.stock_known[:, None]
    return found


def corrected_base(panel: Panel, config: ForecastConfig, start: int, cutoff: int, mode: str,
                   phantom: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(target, weight) of the base series over periods [start, cutoff) (``censoring.correct``).

    With a whole year of history the stock-outs are imputed twice: the second pass deseasonalises the
    neighbours by the category's yearly index (``baselines.pooled_year_profile``) estimated on the first
    pass's corrected demand, so stock-outs at a seasonal peak are filled at the peak's level."""
    ph = phases(panel)
    args = dict(window=panel.periods(config.impute_window_days), season=panel.season,
                phase=None if ph is None else ph[start:cutoff], phantom=phantom)
    sales, cens = panel.sales[:, start:cutoff], panel.censored[:, start:cutoff]
    target, weight = censoring.correct(sales, cens, mode, **args)
    year = panel.periods(364)
    if mode == "none" or cutoff - start < year or not (cens.any() or (phantom is not None and phantom.any())):
        return target, weight
    bins = gbm.period_bins(panel, start, cutoff)
    _, n_bins = baselines.year_bins(panel.period_start[:1], panel.grain)
    group = panel.static["category_code"][: panel.n_base]
    index = baselines.pooled_year_profile(target, (~np.isnan(target)).astype(np.float32), bins, n_bins, group,
                                          year)
    if np.allclose(index, 1.0):
        return target, weight
    return censoring.correct(sales, cens, mode, year=censoring.YearIndex(index, group, bins), **args)


def corrected_history(panel: Panel, config: ForecastConfig, cutoff: int, mode: str | None = None,
                      start: int = 0) -> gbm.History:
    """Target and weights of every series (base + aggregates) over periods [start, cutoff), corrected for
    censoring (recorded and phantom stock-outs, :func:`corrected_base`) with data in that range only.
    Aggregates sum their children's corrected demand (weight 1 once started)."""
    target, weight = corrected_base(panel, config, start, cutoff, mode or config.censoring,
                                    phantom_stockouts(panel, config, start, cutoff))
    target_all = panel.aggregate(target)
    if panel.n_series > panel.n_base:
        started = np.arange(start, cutoff)[None, :] >= panel.first[panel.n_base :, None]
        weight = np.vstack([weight, started.astype(np.float32)])
    return gbm.History(target_all, weight, start, cutoff, panel.first < cutoff)


@dataclass
class CutoffFit:
    """Forecasts of every model made at one cutoff (a backtest origin, a sub-origin or the as-of date)."""

    cutoff: int
    forecasts: dict[str, np.ndarray]  # model -> (n_all, H)
    segment: np.ndarray  # (n_all,) object
    scale: np.ndarray  # (n_all,) recent mean demand (calibration scale)
    active: np.ndarray  # (n_all,) bool: has history before the cutoff
    recent_level: np.ndarray  # (n_all,) mean demand per period over the last 91 days (0: no recent sales)
    history_periods: np.ndarray  # (n_all,) periods of history before the cutoff
    transform: str = ""
    gbm_rows: int = 0
    gbm_series: int = 0
    candidates: dict[str, np.ndarray] = field(default_factory=dict)  # transform -> lightgbm forecast
    models: dict[str, gbm.GBMModel] = field(default_factory=dict)  # transform -> fitted model
    subs: list[CutoffFit] = field(default_factory=list)  # sub-origin forecasts (calibration windows)
    history: gbm.History | None = None  # the corrected history the models were fitted on (dropped after use)
    seconds: float = 0.0


def history_start(panel: Panel, config: ForecastConfig, cutoff: int) -> int:
    """First period an origin needs: LightGBM's training window, its lag look-back and the yearly lag."""
    return max(0, cutoff - panel.periods(config.train_window_days + YEAR_LAG_DAYS + 150))


def _local(panel: Panel, config: ForecastConfig, hist: gbm.History, horizon: int) -> CutoffFit:
    ph = phases(panel)
    k = min(panel.periods(LOCAL_HISTORY_DAYS), hist.target.shape[1])
    year_profile = None
    if "yearly_profile" in config.models:
        bins, n_bins = baselines.year_bins(panel.period_start, panel.grain)
        b_hist = bins[hist.start : hist.cutoff]
        prof = baselines.pooled_year_profile(hist.target, hist.weight, b_hist, n_bins,
                                             panel.static["category_code"], panel.periods(364))
        b_future = bins[hist.cutoff : hist.cutoff + horizon]
        if b_future.size < horizon:  # past the calendar: the bin of the same period one year earlier
            year = panel.periods(364)
            ext = np.concatenate([bins[: hist.cutoff], b_future])
            for j in range(b_future.size, horizon):
                ext = np.append(ext, ext[hist.cutoff + j - year])
            b_future = ext[hist.cutoff :]
        year_profile = (prof[panel.static["category_code"]], b_hist, b_future)
    fc = _local_forecasts(panel, config, hist.target[:, -k:], hist.weight[:, -k:], horizon,
                          None if ph is None else ph[hist.cutoff - k : hist.cutoff],
                          None if ph is None else ph[hist.cutoff : hist.cutoff + horizon], year_profile)
    seg = segments.classify(hist.target, hist.weight, panel.periods(SEGMENT_WINDOW_DAYS))
    k_recent = min(panel.periods(RECENT_LEVEL_DAYS), hist.target.shape[1])
    w = hist.weight[:, -k_recent:]
    den = w.sum(axis=1)
    recent = np.where(den > 0, (nan0(hist.target[:, -k_recent:]) * w).sum(axis=1) / np.maximum(den, 1e-12), 0.0)
    history = np.maximum(hist.cutoff - panel.first, 0).astype(np.float64)
    return CutoffFit(hist.cutoff, fc, seg, hist.scale(panel), hist.active, recent, history)


def _local_forecasts(panel: Panel, config: ForecastConfig, y: np.ndarray, weight: np.ndarray, horizon: int,
                     phase_hist: np.ndarray | None, phase_future: np.ndarray | None,
                     year_profile: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> dict[str, np.ndarray]:
    """``baselines.local_forecasts`` of every series, by blocks of series on the forecasting engine
    (``distributed.map_row_blocks``). What the methods pool over the panel is computed here, for all the
    series, and sent with every block: the category profiles (``year_profile``) and the weekday profile."""
    models = tuple(m for m in config.models if m != "lightgbm")
    pooled_weekdays = None
    if config.engine == "dask" and phase_hist is not None:
        pooled_weekdays = censoring.panel_profile(y, (weight > 0) & ~np.isnan(y), phase_hist, panel.season)
    shared = {"models": models, "season": panel.season, "horizon": horizon,
              "ma_window": panel.periods(config.moving_average_days), "croston_alpha": config.croston_alpha,
              "tsb_alpha_d": config.tsb_alpha_demand, "tsb_alpha_p": config.tsb_alpha_probability,
              "phase_hist": phase_hist, "phase_future": phase_future, "phase_panel_profile": pooled_weekdays}

    def block(a: int, b: int) -> dict[str, object]:
        profile = None if year_profile is None else (year_profile[0][a:b], *year_profile[1:])
        return {"y": y[a:b], "weight": weight[a:b], "year_profile": profile}

    parts = map_row_blocks(baselines.local_forecasts, len(y), block, shared, config)
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _finish(fit: CutoffFit) -> None:
    for name, values in fit.forecasts.items():
        values[~fit.active] = 0.0
        fit.forecasts[name] = values.astype(np.float32)


def fit_cutoff(panel: Panel, config: ForecastConfig, cutoff: int, horizon: int, *, transform: str,
               n_trees: int, mode: str | None = None) -> CutoffFit:
    """Fit every configured model on the history before ``cutoff`` and forecast ``horizon`` periods.

    ``transform='auto'`` fits LightGBM with both target transforms (``candidates``); the caller chooses.
    """
    t0 = time.perf_counter()
    hist = corrected_history(panel, config, cutoff, mode, start=history_start(panel, config, cutoff))
    fit = _local(panel, config, hist, horizon)
    fit.transform = transform
    fit.history = hist
    if "lightgbm" in config.models:
        if transform == "auto":
            fit.candidates = _transform_candidates(panel, config, hist, horizon, n_trees)
            return fit  # the caller chooses, then calls fit_lightgbm
        fit_lightgbm(panel, config, fit, hist, horizon, transform, n_trees)
    _finish(fit)
    fit.seconds = time.perf_counter() - t0
    return fit


def fit_lightgbm(panel: Panel, config: ForecastConfig, fit: CutoffFit, hist: gbm.History, horizon: int,
                 transform: str, n_trees: int) -> None:
    model = gbm.fit(panel, config, hist, transform=transform, n_trees=n_trees)
    fit.models[transform] = model
    fit.forecasts["lightgbm"] = gbm.predict(model, panel, config, [hist], horizon)[0]
    fit.transform = transform
    fit.gbm_rows, fit.gbm_series = model.n_train_rows, model.n_train_series
    fit.history = hist


def has_year_of_history(panel: Panel, config: ForecastConfig, cutoff: int) -> bool:
    """Whether an origin at ``cutoff`` has a whole year of history (what the 'seasonal' transform's yearly index
    needs; with less it is flat and the transform is 'scale')."""
    return cutoff - max(history_start(panel, config, cutoff), int(panel.first.min())) >= panel.periods(364)


def _transform_candidates(panel: Panel, config: ForecastConfig, hist: gbm.History, horizon: int,
                          n_trees: int) -> dict[str, np.ndarray]:
    """Forecasts of a reduced LightGBM fit with each target transform, on a sample of series (the validation
    the 'auto' transform is chosen on); other series' rows are NaN."""
    small = config.replace(max_train_rows=min(config.max_train_rows, config.transform_selection_rows))
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 4]))
    active = np.flatnonzero(hist.active)
    if len(active) > config.transform_selection_series:
        keep = np.zeros(len(hist.active), bool)
        keep[rng.choice(active, size=config.transform_selection_series, replace=False)] = True
        scored = gbm.History(hist.target, hist.weight, hist.start, hist.cutoff, keep)
    else:
        scored = hist
    out = {}
    # 'seasonal' only where a whole year of history exists (without one its yearly index is flat: 'scale')
    kinds = ("scale", "log1p", "seasonal") if has_year_of_history(panel, config, hist.cutoff) else ("scale", "log1p")
    for kind in kinds:
        model = gbm.fit(panel, small, hist, transform=kind, n_trees=max(n_trees // 2, 20))
        fc = gbm.predict(model, panel, config, [scored], horizon)[0]
        fc[~scored.active] = np.nan
        out[kind] = fc
    return out


def fit_subs(panel: Panel, config: ForecastConfig, fit: CutoffFit, sub_cutoffs: list[int], horizon: int,
             mode: str | None = None) -> None:
    """Forecasts at later sub-origins with the models fitted at ``fit.cutoff`` (LightGBM is not refitted: it
    predicts from each sub-origin's own history; local methods are cheap and re-estimated), for calibration."""
    if not sub_cutoffs:
        fit.models.clear()
        fit.history = None
        return
    hists = sub_histories(panel, config, fit.cutoff, sub_cutoffs, mode)
    subs = [_local(panel, config, h, horizon) for h in hists]
    if "lightgbm" in config.models and fit.transform in fit.models:
        preds = gbm.predict(fit.models[fit.transform], panel, config, hists, horizon)
        for sub, p in zip(subs, preds, strict=True):
            sub.forecasts["lightgbm"] = p
    for sub in subs:
        _finish(sub)
    fit.subs = subs
    fit.models.clear()
    fit.history = None


def sub_histories(panel: Panel, config: ForecastConfig, cutoff: int, sub_cutoffs: list[int],
                  mode: str | None = None) -> list[gbm.History]:
    """Corrected histories at the sub-origins of the origin ``cutoff`` (each from ``SUB_HISTORY_DAYS`` before
    it), active for a deterministic sample of ``sub_origin_max_series`` series at large sizes."""
    back = panel.periods(SUB_HISTORY_DAYS)
    hists = [corrected_history(panel, config, c, mode, start=max(0, c - back)) for c in sub_cutoffs]
    if panel.n_series > config.sub_origin_max_series:
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, 5, cutoff]))
        keep = np.zeros(panel.n_series, bool)
        keep[rng.choice(panel.n_series, size=config.sub_origin_max_series, replace=False)] = True
        hists = [gbm.History(h.target, h.weight, h.start, h.cutoff, h.active & keep) for h in hists]
    return hists


@dataclass
class Actuals:
    """Evaluation actuals over the whole history (see the module docstring)."""

    cells: np.ndarray  # (n_all, T) actual per period (recorded sales; aggregates: imputed sums)
    path: np.ndarray  # (n_all, T) actual for cumulative sums (imputed on censored periods)
    mask: np.ndarray  # (n_all, T) bool: the period counts in per-period metrics
    scales: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # cutoff -> MASE/RMSSE scales


def evaluation_actuals(panel: Panel, config: ForecastConfig) -> Actuals:
    phantom = phantom_stockouts(panel, config, 0, panel.n_hist)
    if phantom is not None:
        log.info("stock-outs in the history of %s series: %s periods recorded, %s more found from the sales "
                 "(runs without a sale the book did not call stock-outs; ForecastConfig.phantom_max_probability)",
                 f"{panel.n_base:,}", f"{int(panel.censored.sum()):,}", f"{int(phantom.sum()):,}")
    imputed, _ = corrected_base(panel, config, 0, panel.n_hist, "impute", phantom)
    path = panel.aggregate(imputed)
    started = np.arange(panel.n_hist)[None, :] >= panel.first[:, None]
    mask = started.copy()
    mask[: panel.n_base] &= ~panel.censored if phantom is None else ~(panel.censored | phantom)
    cells = path.copy()
    cells[: panel.n_base] = panel.sales
    path = np.where(started, nan0(path), 0.0).astype(np.float32)
    cells = np.where(started, nan0(cells), 0.0).astype(np.float32)
    return Actuals(cells, path, mask)


def insample_scales(panel: Panel, actuals: Actuals, cutoff: int) -> tuple[np.ndarray, np.ndarray]:
    """MASE/RMSSE denominators from the history before the cutoff: recorded sales on uncensored periods for
    selling series, the (imputed) aggregate for aggregates. Cached per cutoff."""
    if cutoff not in actuals.scales:
        started = np.arange(cutoff)[None, :] >= panel.first[:, None]
        hist = np.where(actuals.mask[:, :cutoff], actuals.cells[:, :cutoff], np.nan)
        observed = actuals.mask[:, :cutoff] & started
        actuals.scales[cutoff] = metrics.insample_scales(hist, observed, panel.season)
    return actuals.scales[cutoff]


def origin_cutoffs(n_hist: int, horizon: int, config: ForecastConfig, panel: Panel) -> list[int]:
    """Cutoffs (history periods) of the backtest origins, oldest first."""
    k = config.n_origins
    step = panel.periods(config.origin_step_days) if config.origin_step_days else horizon
    min_train = panel.periods(config.min_train_days)
    last = n_hist - horizon
    if last - (k - 1) * step < min_train:
        step = (last - min_train) // (k - 1)
        if step < 1:
            raise ValueError(
                f"history of {n_hist} {panel.grain} periods is too short for {k} origins with a {horizon}-period "
                f"horizon and {min_train} training periods: lower horizon_days, n_origins or min_train_days"
            )
        log.warning("history too short for origins a horizon apart: origins are %s periods apart", step)
    return [last - (k - 1 - j) * step for j in range(k)]
