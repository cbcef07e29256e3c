"""``run_forecasting``: panel -> rolling-origin backtest -> model choice per segment -> calibration -> final
forecast and lead-time demand. See the package docstring for the returned frames."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import numpy as np
import polars as pl

from ml.demand_distribution import LTD_QUANTILE_LEVELS, LeadTimeDemand, exposure_days
from ml.forecasting import backtest as bt
from ml.forecasting import gbm, metrics
from ml.forecasting import selection as sel
from ml.forecasting import signals as sig
from ml.forecasting.calibration import Calibrator, OriginErrors, origin_errors
from ml.forecasting.config import ForecastConfig
from ml.forecasting.distributed import map_row_blocks
from ml.forecasting.lead_time import (
    LeadTimeData,
    LeadTimes,
    lead_times_at,
    read_lead_time_data,
    realised_lead_times,
)
from ml.forecasting.ltd import CHUNK as LTD_CHUNK
from ml.forecasting.ltd import (
    LeadTimeDemandSamples,
    SamplingSettings,
    lead_time_demand,
    realised_demand,
)
from ml.forecasting.panel import PERIOD_DAYS, Panel, load_panel, mart_as_of
from ml.forecasting.segments import SEGMENTS

log = logging.getLogger("stockturn.forecasting")

BACKTEST_LTD_SAMPLES = 400
#: LTD backtest: the realised protection interval uses the lead time of the first order placed within this many
#: days after the forecast date (``lead_time.realised_lead_times``), else a draw from the distribution known then.
REALISED_LEAD_TIME_DAYS = 28
#: Stamped on the ml tables (``RunInfo.model_version``): bump when the method changes what it produces.
MODEL_VERSION = "forecasting-1.14"


@dataclass
class ForecastRun:
    """What ``run_forecasting`` returns (frames documented in ``ml.forecasting``)."""

    demand_forecast: pl.DataFrame
    forecast_backtest: pl.DataFrame
    lead_time_demand: LeadTimeDemand
    summary: dict


@dataclass
class _OriginEval:
    index: int
    date: date
    fit: bt.CutoffFit
    series: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # model -> per-series metrics
    usable: np.ndarray | None = None
    selected: np.ndarray | None = None  # (n_all,) object model name per series
    quantile_metrics: dict[str, np.ndarray] = field(default_factory=dict)
    ltd_hits: np.ndarray | None = None  # (n_all, n_levels) tie-corrected coverage, mean over the windows, NaN: none
    ltd_hits_le: np.ndarray | None = None  # (n_all, n_levels) share of windows at or below the quantile
    ltd_windows: np.ndarray | None = None  # (n_all,) windows evaluated per series
    ltd_windows_realised_lt: np.ndarray | None = None  # (n_all,) of which with the lead time that really followed
    ltd_short_real: np.ndarray | None = None  # (n_all, n_shortage_levels) realised demand beyond the quantile, summed
    ltd_short_expected: np.ndarray | None = None  # (n_all, n_shortage_levels) what the samples expected of it
    ltd_level_real: np.ndarray | None = None  # (n_all,) realised protection-interval demand, summed over windows
    ltd_level_expected: np.ndarray | None = None  # (n_all,) the samples' mean, summed over the same windows
    errors: OriginErrors | None = None
    sub_errors: list[OriginErrors] = field(default_factory=list)
    choice: sel.SelectionResult | None = None  # the model choice this origin was scored under
    level_guarded: np.ndarray | None = None  # (n_all,) series whose collapsed level was replaced


class _Timer:
    def __init__(self, progress: bool) -> None:
        self.level = logging.INFO if progress else logging.DEBUG
        self.times: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str, message: str = "") -> None:
        now = time.perf_counter()
        self.times[name] = self.times.get(name, 0.0) + now - self._t
        self._t = now
        log.log(self.level, "forecasting: %s done in %.1f s%s", name, self.times[name], f" ({message})" if message
                else "")


def _origin_date(panel: Panel, cutoff: int) -> date:
    start = panel.period_start[cutoff - 1].astype(object)
    return start + timedelta(days=int(panel.period_len[cutoff - 1]) - 1)


def choose_horizon(panel: Panel, lead_times: LeadTimes, config: ForecastConfig) -> tuple[int, float]:
    """(horizon periods, horizon days): at least horizon_days, covering the longest protection interval
    (lead-time quantile + review period), capped at max_horizon_days."""
    longest = float(np.max(lead_times.quantile(config.horizon_lead_time_quantile) + lead_times.review_days))
    days = float(min(max(config.horizon_days, np.ceil(longest)), config.max_horizon_days))
    return panel.periods(days), days


@dataclass
class _Context:
    panel: Panel
    lead_times: LeadTimes
    horizon: int
    horizon_days: float
    cutoffs: list[int]
    actuals: bt.Actuals
    lead_time_data: LeadTimeData


def _prepare(con: duckdb.DuckDBPyConnection, config: ForecastConfig, as_of: date) -> tuple[_Context, _Context]:
    """(backtest context, full context): the backtest runs on a sample of products at large sizes."""
    panel = load_panel(con, config, as_of)
    lt_data = read_lead_time_data(con, as_of)
    lead_times = lead_times_at(lt_data, panel.keys, config, as_of)
    horizon, horizon_days = choose_horizon(panel, lead_times, config)
    cutoffs = bt.origin_cutoffs(panel.n_hist, horizon, config, panel)
    sample = panel.subset_products(config.backtest_max_series, config.seed)
    actuals = bt.evaluation_actuals(sample, config)
    full = _Context(panel, lead_times, horizon, horizon_days, cutoffs, actuals, lt_data)
    if sample is panel:
        return full, full
    sample_lt = lead_times_at(lt_data, sample.keys, config, as_of)
    return _Context(sample, sample_lt, horizon, horizon_days, cutoffs, actuals, lt_data), full


def signal_groups(panel: Panel, config: ForecastConfig) -> list[str]:
    """The signal groups the forecast gates (none without signals or without LightGBM)."""
    return panel.signals.groups if panel.signals is not None and "lightgbm" in config.models else []


def _gating_categories(panel: Panel) -> list[str]:
    return sorted(set(_gating_units(panel)[2].tolist()))


def _backtest(ctx: _Context, config: ForecastConfig, timer: _Timer, mode: str | None = None,
              as_of: date | None = None, reuse: sig.Gating | None = None,
              ) -> tuple[list[_OriginEval], str, sig.Gating | None]:
    """Fit every model at every origin and score the point forecasts; gate the external signals (when the panel
    has any) on the same origins, then forecast the sub-origins with the gated signals.

    ``reuse``: a recent gate (``signals.stored_gating``): the origins and sub-origins forecast with its
    decisions from the start and nothing is gated; the forecasts are those of a run that made the same
    decisions itself (the transform candidates, chosen before any gate, still use every group)."""
    evals: list[_OriginEval] = []
    transform = config.target_transform
    groups = signal_groups(ctx.panel, config)
    if reuse is not None:
        groups = []
        gated_use = reuse.use_masks(ctx.panel.keys["category"].to_numpy().astype(str))
        ctx.panel.signal_use = gated_use
    gating_errors: list[sig.GatingErrors] = []
    for k, cutoff in enumerate(ctx.cutoffs):
        if reuse is not None and transform == "auto":
            ctx.panel.signal_use = None  # the candidates, as in a run that gates afterwards
        fit = bt.fit_cutoff(ctx.panel, config, cutoff, ctx.horizon, transform=transform,
                            n_trees=config.lgbm_backtest_trees, mode=mode)
        if reuse is not None:
            ctx.panel.signal_use = gated_use
        ev = _OriginEval(k, _origin_date(ctx.panel, cutoff), fit)
        _point_metrics(ev, ctx.panel, ctx.actuals, ctx.horizon)
        if transform == "auto" and fit.candidates:
            # final once 'seasonal' could compete (the origin has a year of history) or no later origin has one;
            # until then each origin uses its own choice (without a year 'seasonal' would equal 'scale')
            final = "seasonal" in fit.candidates or not any(
                bt.has_year_of_history(ctx.panel, config, c) for c in ctx.cutoffs[k + 1 :])
            chosen = _choose_transform(ev, ctx.panel, ctx.actuals, ctx.horizon, config)
            bt.fit_lightgbm(ctx.panel, config, fit, fit.history, ctx.horizon, chosen,
                            config.lgbm_backtest_trees)
            _point_metrics(ev, ctx.panel, ctx.actuals, ctx.horizon, models=("lightgbm",))
            transform = chosen if final else transform
        if groups:
            gating_errors += _without_each_group(ev, ctx, config, groups, _sub_cutoffs(ctx, config, cutoff), mode)
        else:
            bt.fit_subs(ctx.panel, config, fit, _sub_cutoffs(ctx, config, cutoff), _sub_horizon(ctx, config), mode)
        evals.append(ev)
        timer.lap(f"origin_{k + 1}", f"origin {ev.date}, lightgbm rows {fit.gbm_rows:,}, {len(fit.subs)} sub-origins")
    gating = None
    if groups:
        categories = ctx.panel.keys["category"].to_numpy().astype(str)
        unit_category = _gating_units(ctx.panel)[2]
        gating = sig.decide(groups, unit_category, gating_errors, config.seed, config.signal_min_gain,
                            ctx.panel.periods(7))
        ctx.panel.signal_use = gating.use_masks(categories)
        dropped = any(not r.kept for r in gating.rows)
        for ev in evals:
            fit = ev.fit
            if dropped:  # the origin's forecast with only the signals kept for each category
                fit.forecasts["lightgbm"] = gbm.predict(fit.models[fit.transform], ctx.panel, config,
                                                        [fit.history], ctx.horizon)[0]
                _point_metrics(ev, ctx.panel, ctx.actuals, ctx.horizon, models=("lightgbm",))
            bt.fit_subs(ctx.panel, config, fit, _sub_cutoffs(ctx, config, fit.cutoff), _sub_horizon(ctx, config),
                        mode)
        gating.decided_on = as_of
    elif reuse is not None:
        gating = reuse
    if gating is not None:
        kept = [f"{r.group} in {r.category} ({r.gain:+.1%})" for r in gating.rows if r.kept]
        source = f"re-used the gate decided on {gating.decided_on}; " if gating.reused else ""
        timer.lap("signal_gating", source + "kept: " + (", ".join(kept) or "none"))
    return evals, ("scale" if transform == "auto" else transform), gating


def _gating_units(panel: Panel) -> tuple[np.ndarray, int, np.ndarray]:
    """(unit of every base series, number of units, category of every unit): a unit is a category x selling
    location."""
    base = panel.keys[: panel.n_base].select("category", "location_id")
    units = base.unique(maintain_order=True).with_row_index("unit")
    unit = base.join(units, on=["category", "location_id"], how="left", maintain_order="left")["unit"].to_numpy()
    return unit.astype(np.int64), units.height, units["category"].to_numpy().astype(str)


def _without_each_group(ev: _OriginEval, ctx: _Context, config: ForecastConfig, groups: list[str],
                        sub_cutoffs: list[int], mode: str | None) -> list[sig.GatingErrors]:
    """Squared errors of category x location period totals with every signal group and with each group's
    features missing in turn (``ml.forecasting.signals``, gating). Every day after the origin is scored once, by
    the freshest forecast that covers it: the first week of each sub-origin's forecast (made weekly by the
    origin's model), and the origin's own forecast for its first week and for the days after the last
    sub-origin's first week. So a signal known only a few days ahead is judged on every week, not on one.

    Only the periods the gate reads are forecast (a recursive forecast's first periods do not depend on how far
    it runs): a sub-origin's first week, and a group's variant of the origin's forecast up to the last scored
    period, with actuals, where the group was known (``signals.decide`` reads nothing else). Beyond that the
    variant carries the forecast with every group, which the gate does not read."""
    fit = ev.fit
    panel, model = ctx.panel, fit.models[fit.transform]
    n_all, nb = panel.n_series, panel.n_base
    everything = {g: np.ones(n_all, bool) for g in groups}
    variants = [everything] + [{**everything, g: np.zeros(n_all, bool)} for g in groups]
    unit, n_units, _ = _gating_units(panel)
    step = panel.periods(config.sub_origin_step_days)
    with_all = fit.forecasts["lightgbm"]
    own = np.ones(ctx.horizon, bool)
    own[step : step * (len(sub_cutoffs) + 1)] = False  # these days are scored by the sub-origins
    own[_window(ctx.actuals, fit.cutoff, ctx.horizon)[3]:] = False  # no actuals yet
    known = _known_periods(panel, fit.history, ctx.horizon)
    reach = {g: int(np.flatnonzero(known[g] & own).max()) + 1 if (known[g] & own).any() else 0 for g in groups}
    without = {g: with_all for g in groups if reach[g] == 0}  # never scored
    for h in sorted({r for r in reach.values() if r}):
        gs = [g for g in groups if reach[g] == h]
        preds = gbm.predict(model, panel, config, [fit.history] * len(gs), h,
                            uses=[variants[1 + groups.index(g)] for g in gs])
        for g, p in zip(gs, preds, strict=True):
            without[g] = np.concatenate([p, with_all[:, h:]], axis=1)
    windows: list[tuple[gbm.History, int, list[np.ndarray], np.ndarray]] = [
        (fit.history, ctx.horizon, [with_all, *(without[g] for g in groups)], own)]
    if sub_cutoffs:
        sub_h = min(step, _sub_horizon(ctx, config))  # only each sub-origin's first week is scored
        hists = bt.sub_histories(panel, config, fit.cutoff, sub_cutoffs, mode)
        preds = gbm.predict(model, panel, config, [h for h in hists for _ in variants], sub_h,
                            uses=[v for _ in hists for v in variants])
        for j, h in enumerate(hists):
            windows.append((h, sub_h, preds[j * len(variants) : (j + 1) * len(variants)], np.ones(sub_h, bool)))
    out = []
    for hist, horizon, forecasts, scored in windows:
        cells, _, mask, _ = _window(ctx.actuals, hist.cutoff, horizon)
        mask = (mask & hist.active[:, None])[:nb] & scored[None, :]

        def sq_error(forecast: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            f, a, v = sig.unit_totals(forecast[:nb], cells[:nb], mask, unit, n_units)  # noqa: B023
            return (f - a) ** 2, v

        with_all_error, valid = sq_error(forecasts[0])
        out.append(sig.GatingErrors(with_all_error, {g: sq_error(p)[0] for g, p in zip(groups, forecasts[1:],
                                                                                       strict=True)},
                                    valid, _known_periods(panel, hist, horizon)))
    return out


def _known_periods(panel: Panel, hist: gbm.History, horizon: int) -> dict[str, np.ndarray]:
    """Per signal group, the periods of the ``horizon`` after ``hist``'s cutoff where its features are known."""
    cols = sig.feature_columns(panel.signals, panel.agg, panel.period_start_day, panel.period_len,
                               gbm.origin_day(panel, hist.cutoff), hist.cutoff, hist.cutoff + horizon)
    return sig.known_periods(panel.signals, cols)


def _sub_horizon(ctx: _Context, config: ForecastConfig) -> int:
    return min(ctx.panel.periods(config.sub_horizon_days), ctx.horizon)


def _sub_cutoffs(ctx: _Context, config: ForecastConfig, cutoff: int) -> list[int]:
    step = ctx.panel.periods(config.sub_origin_step_days)
    subs = [cutoff + j * step for j in range(1, config.calibration_sub_origins + 1)]
    return [c for c in subs if c + _sub_horizon(ctx, config) <= ctx.panel.n_hist]


def _short_pi(lead_times: LeadTimes, panel: Panel, sub_h: int, config: ForecastConfig) -> np.ndarray:
    """Series whose protection interval (lead-time quantile + review) fits in the sub-origin horizon."""
    longest = lead_times.quantile(config.horizon_lead_time_quantile) + lead_times.review_days
    return longest / PERIOD_DAYS[panel.grain] + panel.x0 <= sub_h


def _select_and_calibrate(ctx: _Context, evals: list[_OriginEval], config: ForecastConfig, timer: _Timer,
                          ) -> sel.SelectionResult:
    """Choose a model per segment, score the held-out origins honestly and return the choice to ship.

    - selection origins: their 'selected' metrics use the choice made on the selection origins (in-sample);
    - each held-out origin k: the choice made on origins 0..k-1 only (recency-weighted, baseline-guarded), and
      quantiles / lead-time demand calibrated on the errors of those origins under that choice;
    - the shipped choice uses every origin, the latest weighing most; the final calibration uses every origin's
      errors under that choice (the errors of the model actually shipped)."""
    panel, horizon = ctx.panel, ctx.horizon
    n_sel = config.n_origins - config.n_holdout_origins
    first = _choose(evals[:n_sel], config, panel)
    for ev in evals[:n_sel]:
        _evaluate_choice(ev, first, ctx, config)
    for ev in evals[n_sel:]:  # the held-out origins, each chosen and calibrated on the origins before it
        res = _choose(evals[: ev.index], config, panel)
        for prev in evals[: ev.index]:
            _set_errors(prev, res.choice, ctx, config)
        _evaluate_choice(ev, res, ctx, config)
        cal = _calibrator(evals[: ev.index], panel, config, horizon, until=ev.fit.cutoff)
        _quantile_metrics(ev, cal, panel, ctx.actuals, horizon, config)
        _ltd_metrics(ev, cal, ctx, config)
    final = _choose(evals, config, panel)
    for ev in evals:
        _set_errors(ev, final.choice, ctx, config)
    timer.lap("selection_calibration", ", ".join(f"{s}: {m}" for s, m in final.choice.items())
              + (f"; baseline guard replaced {final.guarded}" if final.guarded else ""))
    return final


def _choose(evals: list[_OriginEval], config: ForecastConfig, panel: Panel) -> sel.SelectionResult:
    origins = [sel.OriginScores(ev.series, ev.fit.segment, ev.usable,
                                ev.fit.history_periods * PERIOD_DAYS[panel.grain]) for ev in evals]
    return sel.choose_models(origins, list(config.models), SEGMENTS, metric=config.selection_metric,
                             decay=config.selection_recency_decay, min_history_days=config.min_vote_history_days)


def selected_forecast(fit: bt.CutoffFit, choice: dict[str, str], config: ForecastConfig, panel: Panel,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(forecast, model name per series, level-guarded mask): the segment's chosen model per series, with a
    collapsed level replaced (``selection.guard_collapsed_level``)."""
    names = _selected_names(fit.segment, choice)
    point = _pick(fit.forecasts, names)
    guarded_point, guarded = sel.guard_collapsed_level(
        point, fit.forecasts, fit.segment, fit.recent_level, fit.history_periods >= panel.season,
        config.level_guard_ratio)
    if guarded.any():
        names = names.copy()
        names[guarded] = "level_guard"
    return guarded_point, names, guarded


def _evaluate_choice(ev: _OriginEval, res: sel.SelectionResult, ctx: _Context, config: ForecastConfig) -> None:
    """Score origin ``ev`` under the choice ``res`` (its 'selected' forecast, point metrics and errors)."""
    point, names, guarded = selected_forecast(ev.fit, res.choice, config, ctx.panel)
    ev.selected, ev.choice, ev.level_guarded = names, res, guarded
    ev.fit.forecasts["selected"] = point
    _point_metrics(ev, ctx.panel, ctx.actuals, ctx.horizon, models=("selected",))
    _set_errors(ev, res.choice, ctx, config)


def _set_errors(ev: _OriginEval, choice: dict[str, str], ctx: _Context, config: ForecastConfig) -> None:
    """Calibration errors of origin ``ev`` (and its sub-origins) for the model ``choice`` would ship."""
    point, _, _ = selected_forecast(ev.fit, choice, config, ctx.panel)
    ev.errors = _errors(ev.fit, point, ctx.actuals, ctx.horizon)
    ev.sub_errors = []
    for sub in ev.fit.subs:
        sub_point, _, _ = selected_forecast(sub, choice, config, ctx.panel)
        sub.forecasts["selected"] = sub_point
        ev.sub_errors.append(_errors(sub, sub_point, ctx.actuals, _sub_horizon(ctx, config)))


def _calibrator(evals: list[_OriginEval], panel: Panel, config: ForecastConfig, horizon: int,
                until: int | None = None) -> Calibrator:
    """Calibration from the errors of ``evals`` (main origins: every horizon; their first sub-origin-horizon
    periods and the sub-origins: short horizons)."""
    return Calibrator([e.errors for e in evals], n_volume_bands=config.n_volume_bands,
                      bucket_edges=_bucket_edges(panel, config, horizon), horizon=horizon,
                      levels=config.quantile_levels, intervals=config.interval_levels, until_index=until,
                      short_errors=[s for e in evals for s in (e.errors, *e.sub_errors)],
                      integer_bounds=config.interval_bounds == "integer")


def run_forecasting(con: duckdb.DuckDBPyConnection, config: ForecastConfig | None = None, *,
                    as_of: date | None = None, progress: bool = True) -> ForecastRun:
    """Forecast every active series from the marts, backtest, calibrate and build lead-time demand.

    Only data on or before ``as_of`` (default: the mart's last day) is used, so the function can replay any past
    planning date without look-ahead.
    """
    config = config or ForecastConfig()
    timer = _Timer(progress)
    as_of = as_of or mart_as_of(con)
    ctx, full_ctx = _prepare(con, config, as_of)
    panel, horizon = full_ctx.panel, ctx.horizon
    reuse = None
    if groups := signal_groups(ctx.panel, config):
        reuse, why = sig.stored_gating(con, as_of, config.signal_gating_max_age_days, groups,
                                       _gating_categories(ctx.panel), config.signal_min_gain)
        log.log(timer.level, "signal gating: %s", ("re-using the stored gate, " if reuse else "gating afresh: ") + why)
    timer.lap("load", f"{panel.n_series:,} series x {panel.n_hist:,} {panel.grain}s, horizon {horizon} periods, "
                      f"backtest on {ctx.panel.n_series:,} series, "
                      f"origins {[str(_origin_date(panel, c)) for c in ctx.cutoffs]}")
    evals, transform, gating = _backtest(ctx, config, timer, as_of=as_of, reuse=reuse)
    if gating is not None:
        panel.signal_use = gating.use_masks(panel.keys["category"].to_numpy().astype(str))
    selection = _select_and_calibrate(ctx, evals, config, timer)
    choice = selection.choice
    bt_panel = ctx.panel

    # ---------------------------------------------------------------- final model at as_of
    final = bt.fit_cutoff(panel, config, panel.n_hist, horizon, transform=transform,
                          n_trees=config.lgbm_final_trees)
    point, selected, level_guarded = selected_forecast(final, choice, config, panel)
    cal = _calibrator(evals, panel, config, horizon)
    quantiles = cal.period_quantiles(point, final.scale, final.segment)
    intervals = cal.period_intervals(point, final.scale, final.segment)
    timer.lap("final_fit", f"lightgbm rows {final.gbm_rows:,}")

    out = panel.keys["is_output"].to_numpy()
    short = _short_pi(full_ctx.lead_times, panel, _sub_horizon(ctx, config), config)
    rows = np.flatnonzero(out)
    lt_out = full_ctx.lead_times.take(rows)
    sampled = _plan_lead_time_demand(panel, config, final, point, cal, short, rows, lt_out)
    ltd = LeadTimeDemand(
        keys=panel.keys[rows].select("product_id", "location_id"),
        samples=sampled.samples,
        lead_samples=sampled.lead_samples,
        empirical_samples=sampled.empirical,
        empirical_lead_samples=sampled.empirical_lead,
        daily_demand_mean=(point[rows].sum(axis=1) / (horizon * PERIOD_DAYS[panel.grain])).astype(np.float64),
        lead_time_mean_days=lt_out.mean(),
        lead_time_p90_days=lt_out.quantile(0.9),
        review_period_days=lt_out.review_days,
        lead_time_source=lt_out.source.astype(str),
    )
    timer.lap("lead_time_demand", f"{len(rows):,} series x {config.n_samples} samples")

    n_sel = config.n_origins - config.n_holdout_origins
    demand_forecast = _demand_forecast_frame(panel, point, quantiles, intervals, selected, final.segment, out,
                                             horizon)
    backtest_frame = _backtest_frame(evals, bt_panel, config, choice, n_sel)
    if gating is not None:
        backtest_frame = pl.concat([backtest_frame, _gating_frame(gating)], how="vertical")
    summary = _summary(panel, config, evals, selection, n_sel, transform, horizon, ctx.horizon_days, final,
                       full_ctx.lead_times, out, level_guarded, timer)
    summary["backtest_series"] = int(bt_panel.n_series)
    summary["warnings"] = gbm.exogenous_warnings(panel, config) if "lightgbm" in config.models else []
    summary["signal_gating"] = [] if gating is None else [
        {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.__dict__.items()}
        for r in gating.rows]
    summary["signal_gating_decided_on"] = None if gating is None else str(gating.decided_on)
    summary["signal_gating_reused"] = bool(gating is not None and gating.reused)
    timer.lap("frames")
    summary["seconds"] = {k: round(v, 2) for k, v in timer.times.items()}
    summary["seconds_total"] = round(sum(timer.times.values()), 2)
    return ForecastRun(demand_forecast, backtest_frame, ltd, summary)


# ------------------------------------------------------------------------------------------------ helpers


def _plan_lead_time_demand(panel: Panel, config: ForecastConfig, final: bt.CutoffFit, point: np.ndarray,
                           cal: Calibrator, short: np.ndarray, rows: np.ndarray, lead_times: LeadTimes,
                           ) -> LeadTimeDemandSamples:
    """The plan's lead-time demand of the series ``rows`` (``ltd.lead_time_demand``), by blocks of series on the
    forecasting engine (``distributed.map_row_blocks``: one block locally, on the workers with Dask)."""
    parts = _lead_time_demand_blocks(
        lead_time_demand, panel, config, cal, final, point, final.history.target, short, rows, lead_times,
        x0=panel.x0, n_samples=config.n_samples, seeds=([config.seed, 1], [config.seed, 6]), with_lead=True)
    return LeadTimeDemandSamples(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                                   ("samples", "lead_samples", "empirical", "empirical_lead")))


def _lead_time_demand_blocks(func: Callable[..., object], panel: Panel, config: ForecastConfig, cal: Calibrator,
                             fit: bt.CutoffFit, forecast: np.ndarray, history: np.ndarray, short: np.ndarray,
                             rows: np.ndarray, lead_times: LeadTimes, *, x0: float, n_samples: int,
                             seeds: tuple[list[int], list[int]], with_lead: bool,
                             per_row: dict[str, np.ndarray] | None = None) -> list:
    """``func`` (``ltd.lead_time_demand``, or a scorer of it) over blocks of the series ``rows`` of ``fit`` on the
    forecasting engine, aligned to the sampling's chunks. ``forecast`` (n_all, H) is the forecast sampled,
    ``history`` (n_all, T) the corrected history ending at the fit's cutoff, ``lead_times`` the distributions of
    ``rows``; ``per_row`` are more arrays of ``rows`` for ``func``; ``seeds``: the forecast-based and the empirical
    samples' seed sequences."""
    start, count = cal.path_pool(fit.segment[rows], fit.scale[rows], short[rows])
    window = history[:, -panel.periods(config.empirical_window_days):][rows]
    arrays = {"forecast": forecast[rows], "scale": fit.scale[rows], "pool_start": start, "pool_count": count,
              "history": window, "n_observed": np.minimum(fit.history_periods[rows], window.shape[1]),
              "blend": np.isin(fit.segment[rows].astype(str), config.empirical_blend_segments), **(per_row or {})}
    settings = SamplingSettings(
        paths=cal.paths, x0=x0, days_per_period=PERIOD_DAYS[panel.grain], tail_periods=panel.periods(28),
        n_samples=n_samples, cap_factor=config.ltd_cap_factor, blend_weight=config.empirical_blend_weight,
        forecast_seed=np.random.SeedSequence(seeds[0]), empirical_seed=np.random.SeedSequence(seeds[1]),
        with_lead=with_lead)

    def block(a: int, b: int) -> dict[str, object]:
        return {**{k: v[a:b] for k, v in arrays.items()}, "lead_times": lead_times.take(slice(a, b)),
                "first_row": a}

    return map_row_blocks(func, len(rows), block, {"settings": settings}, config, align=LTD_CHUNK)


def _bucket_edges(panel: Panel, config: ForecastConfig, horizon: int) -> list[int]:
    edges = sorted({min(panel.periods(d), horizon) for d in config.horizon_buckets_days})
    return edges if edges[-1] >= horizon else [*edges, horizon]


def _window(actuals: bt.Actuals, cutoff: int, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Actual cells, path and mask of [cutoff, cutoff + horizon), padded when the data ends earlier."""
    end = min(cutoff + horizon, actuals.cells.shape[1])
    seen = end - cutoff
    pad = horizon - seen
    cells, path, mask = actuals.cells[:, cutoff:end], actuals.path[:, cutoff:end], actuals.mask[:, cutoff:end]
    if pad:
        z = np.zeros((len(cells), pad), np.float32)
        cells, path = np.hstack([cells, z]), np.hstack([path, z])
        mask = np.hstack([mask, np.zeros((len(mask), pad), bool)])
    return cells, path, mask, seen


def _point_metrics(ev: _OriginEval, panel: Panel, actuals: bt.Actuals, horizon: int,
                   models: tuple[str, ...] | None = None) -> None:
    cutoff = ev.fit.cutoff
    cells, _, mask, _ = _window(actuals, cutoff, horizon)
    mae_s, rms_s = bt.insample_scales(panel, actuals, cutoff)
    mask = mask & ev.fit.active[:, None]
    ev.usable = mask.any(axis=1)
    for name in models or tuple(ev.fit.forecasts):
        ev.series[name] = metrics.series_point_metrics(ev.fit.forecasts[name], cells, mask, mae_s, rms_s)


def _choose_transform(ev: _OriginEval, panel: Panel, actuals: bt.Actuals, horizon: int,
                      config: ForecastConfig) -> str:
    cells, _, mask, _ = _window(actuals, ev.fit.cutoff, horizon)
    mae_s, rms_s = bt.insample_scales(panel, actuals, ev.fit.cutoff)
    mask = mask & ev.fit.active[:, None]
    scores, biases = {}, {}
    for kind, fc in ev.fit.candidates.items():
        scored = ~np.isnan(fc).any(axis=1) & ev.usable
        m = metrics.series_point_metrics(np.nan_to_num(fc), cells, mask, mae_s, rms_s)
        scores[kind] = _score(m, scored, config.selection_metric)
        act = m["_actual"][scored].sum()
        biases[kind] = float(m["_err"][scored].sum() / act) if act > 0 else 0.0
    # RMSSE alone rewards shrinking lumpy series towards zero (log1p forecasts a geometric mean): the level
    # matters for stock, so the score is inflated by the absolute bias
    penalised = {k: scores[k] * (1.0 + abs(biases[k])) for k in scores}
    best = min(penalised, key=lambda k: (np.nan_to_num(penalised[k], nan=np.inf), k))
    ev.fit.candidates.clear()
    log.info("lightgbm target transform chosen on the origin %s: %s (%s %s)", ev.date, best, config.selection_metric,
             ", ".join(f"{k} {v:.4f} bias {biases[k]:+.3f}" for k, v in scores.items()))
    return best


def _score(m: dict[str, np.ndarray], rows: np.ndarray, metric: str) -> float:
    if metric == "wape":
        act = m["_actual"][rows].sum()
        return float(m["_abs_err"][rows].sum() / act) if act > 0 else float("nan")
    v = m[metric][rows]
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def _selected_names(segment: np.ndarray, choice: dict[str, str]) -> np.ndarray:
    out = np.empty(len(segment), dtype=object)
    for seg, model in choice.items():
        out[segment == seg] = model
    return out


def _pick(forecasts: dict[str, np.ndarray], names: np.ndarray) -> np.ndarray:
    out = np.zeros_like(next(iter(forecasts.values())))
    for name in np.unique(names.astype(str)):
        rows = names == name
        out[rows] = forecasts[name][rows]
    return out


def _errors(fit: bt.CutoffFit, forecast: np.ndarray, actuals: bt.Actuals, horizon: int) -> OriginErrors:
    cells, path, mask, seen = _window(actuals, fit.cutoff, horizon)
    return origin_errors(fit.cutoff, forecast, cells, path, mask & fit.active[:, None], fit.scale, fit.segment,
                         fit.active, seen)


def _quantile_metrics(ev: _OriginEval, cal: Calibrator, panel: Panel, actuals: bt.Actuals, horizon: int,
                      config: ForecastConfig) -> None:
    cells, _, mask, _ = _window(actuals, ev.fit.cutoff, horizon)
    mask = mask & ev.fit.active[:, None]
    q = cal.period_quantiles(ev.fit.forecasts["selected"], ev.fit.scale, ev.fit.segment)
    iv = cal.period_intervals(ev.fit.forecasts["selected"], ev.fit.scale, ev.fit.segment)
    mae_s, _ = bt.insample_scales(panel, actuals, ev.fit.cutoff)
    scored = cells[mask]
    integer = bool(np.all(scored == np.round(scored)))  # the tie-split reads G on the integers (count data)
    cdf = cal.interval_cdf(ev.fit.forecasts["selected"], ev.fit.scale, ev.fit.segment, iv, integer=integer)
    ev.quantile_metrics = metrics.series_quantile_metrics(q, iv, cells, mask, mae_s, cdf)


#: columns of the LTD_QUANTILE_LEVELS quantiles that the shortage is measured beyond
_SHORTAGE_COLUMNS = [LTD_QUANTILE_LEVELS.index(level) for level in metrics.LTD_SHORTAGE_LEVELS]


def _ltd_metrics(ev: _OriginEval, cal: Calibrator, ctx: _Context, config: ForecastConfig) -> None:
    """Coverage of the lead-time-demand quantiles: realised demand over a realised protection interval (the lead
    time of the first order really placed within ``REALISED_LEAD_TIME_DAYS`` after the forecast date, else a draw
    from the distribution known at that date, + review period) vs the quantiles predicted at that date, so the
    check covers the lead-time distribution as well as the demand. Evaluated at the origin (every series whose
    interval ends inside the data) and at its sub-origins (series whose protection interval fits in the
    sub-origin horizon), all with the same calibration (errors observed before the origin)."""
    panel = ctx.panel
    sub_h = _sub_horizon(ctx, config)
    n = panel.n_series
    hits_sum = np.zeros((n, len(LTD_QUANTILE_LEVELS)))
    le_sum = np.zeros((n, len(LTD_QUANTILE_LEVELS)))
    windows = np.zeros(n)
    realised_lt = np.zeros(n)
    short_real = np.zeros((n, len(metrics.LTD_SHORTAGE_LEVELS)))
    short_expected = np.zeros((n, len(metrics.LTD_SHORTAGE_LEVELS)))
    level_real, level_expected = np.zeros(n), np.zeros(n)
    for j, fit in enumerate([ev.fit, *ev.fit.subs]):
        fc_date = _origin_date(panel, fit.cutoff)
        lead_times = lead_times_at(ctx.lead_time_data, panel.keys, config, fc_date)
        short = _short_pi(lead_times, panel, sub_h, config)
        rows = np.flatnonzero(fit.active & (short if j > 0 else True))
        if not len(rows):
            continue
        h = fit.forecasts["selected"].shape[1]
        _, path, _, seen = _window(ctx.actuals, fit.cutoff, h)
        lt_rows = lead_times.take(rows)
        drawn = lt_rows.sample(np.random.default_rng(np.random.SeedSequence([config.seed, 15, ev.index, j])), 1)[:, 0]
        real = realised_lead_times(ctx.lead_time_data, panel.keys[rows], fc_date, REALISED_LEAD_TIME_DAYS)
        lt_real = np.where(np.isnan(real), drawn, real)
        x = exposure_days(lt_real, lt_rows.review_days)[0] / PERIOD_DAYS[panel.grain]
        ok = x <= seen
        realised = realised_demand(path[rows], x)
        check = _check_lead_time_demand(ctx, config, cal, fit, short, rows, lt_rows, realised,
                                        [config.seed, 2, ev.index, j], [config.seed, 14, ev.index, j])
        realised_lt[rows[ok]] += ~np.isnan(real[ok])
        hits_sum[rows[ok]] += check.hits[ok]
        le_sum[rows[ok]] += check.hits_le[ok]
        windows[rows[ok]] += 1
        short_real[rows[ok]] += check.short_real[ok]
        short_expected[rows[ok]] += check.short_expected[ok]
        level_real[rows[ok]] += realised[ok]
        level_expected[rows[ok]] += check.mean[ok]
    with np.errstate(invalid="ignore", divide="ignore"):
        ev.ltd_hits = np.where(windows[:, None] > 0, hits_sum / np.maximum(windows, 1)[:, None], np.nan)
        ev.ltd_hits_le = np.where(windows[:, None] > 0, le_sum / np.maximum(windows, 1)[:, None], np.nan)
    ev.ltd_windows = windows
    ev.ltd_windows_realised_lt = realised_lt
    ev.ltd_short_real, ev.ltd_short_expected = short_real, short_expected
    ev.ltd_level_real, ev.ltd_level_expected = level_real, level_expected


@dataclass(frozen=True)
class LeadTimeDemandCheck:
    """Per series: the lead-time-demand coverage of one realised window (``_ltd_metrics``)."""

    hits: np.ndarray  # (n, levels) PIT coverage of the quantile levels (ties split)
    hits_le: np.ndarray  # (n, levels) realised <= quantile
    short_real: np.ndarray  # (n, shortage levels) realised demand beyond the quantile
    short_expected: np.ndarray  # (n, shortage levels) what the samples expected beyond it
    mean: np.ndarray  # (n,) the samples' mean


def _check_lead_time_demand(ctx: _Context, config: ForecastConfig, cal: Calibrator, fit: bt.CutoffFit,
                            short: np.ndarray, rows: np.ndarray, lead_times: LeadTimes, realised: np.ndarray,
                            forecast_seed: list[int], empirical_seed: list[int]) -> LeadTimeDemandCheck:
    """The lead-time demand ``fit`` predicted for ``rows`` against ``realised``, by blocks of series on the
    forecasting engine: the samples are drawn and scored where the block is, only the scores come back."""
    panel = ctx.panel
    hist = bt.corrected_history(panel, config, fit.cutoff,
                                start=max(0, fit.cutoff - panel.periods(config.empirical_window_days)))
    parts = _lead_time_demand_blocks(
        score_lead_time_demand, panel, config, cal, fit, fit.forecasts["selected"], hist.target, short, rows,
        lead_times, x0=0.0, n_samples=BACKTEST_LTD_SAMPLES, seeds=(forecast_seed, empirical_seed),
        with_lead=False, per_row={"realised": realised})
    return LeadTimeDemandCheck(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                                 ("hits", "hits_le", "short_real", "short_expected", "mean")))


def score_lead_time_demand(realised: np.ndarray, settings: SamplingSettings, first_row: int = 0,
                           **arrays: np.ndarray) -> LeadTimeDemandCheck:
    """One block of :func:`_check_lead_time_demand`: ``ltd.lead_time_demand`` of the block's series, scored
    against their ``realised`` demand."""
    samples = lead_time_demand(**arrays, settings=settings, first_row=first_row).samples
    qs = np.quantile(samples, LTD_QUANTILE_LEVELS, axis=1, method="inverted_cdf").T
    short_real, short_expected = metrics.ltd_shortage(realised, samples, qs[:, _SHORTAGE_COLUMNS])
    return LeadTimeDemandCheck(metrics.ltd_pit_coverage(realised, samples, LTD_QUANTILE_LEVELS),
                               metrics.ltd_hits(realised, qs), short_real, short_expected,
                               samples.mean(axis=1))


# ------------------------------------------------------------------------------------------------ frames

_POINT = ("mase", "rmsse", "wape", "bias")


def _aggregate(series: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in ("mase", "rmsse"):
        v = series[k][rows]
        v = v[np.isfinite(v)]
        out[k] = float(v.mean()) if len(v) else float("nan")
    act = series["_actual"][rows].sum()
    out["wape"] = float(series["_abs_err"][rows].sum() / act) if act > 0 else float("nan")
    out["bias"] = float(series["_err"][rows].sum() / act) if act > 0 else float("nan")
    return out


def _aggregate_quantiles(qm: dict[str, np.ndarray], n: np.ndarray, rows: np.ndarray,
                         levels: tuple[float, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    v = qm["spl"][rows]
    v = v[np.isfinite(v)]
    out["spl"] = float(v.mean()) if len(v) else float("nan")
    cells = n[rows].sum()
    for c in levels:
        key = round(c * 100)
        out[f"coverage_{key}"] = float(qm[f"_hits_{key}"][rows].sum() / cells) if cells else float("nan")
        if f"_tie_hits_{key}" in qm:
            out[f"coverage_tie_{key}"] = float(qm[f"_tie_hits_{key}"][rows].sum() / cells) if cells else float(
                "nan")
    return out


def _aggregate_ltd(hits: np.ndarray, windows: np.ndarray, hits_le: np.ndarray | None = None) -> dict[str, float]:
    """Pooled LTD coverage: every evaluated (series, window) counts once. ``ltd_coverage_pXX`` is tie-corrected
    (``metrics.ltd_pit_coverage``), ``ltd_at_or_below_pXX`` the plain share of windows at or below the quantile."""
    out = {}
    total = windows.sum()
    for name, h in (("ltd_coverage", hits), ("ltd_at_or_below", hits_le)):
        if h is None:
            continue
        for j, level in enumerate(LTD_QUANTILE_LEVELS):
            col = np.nan_to_num(h[:, j]) * windows
            out[f"{name}_p{round(level * 100):02d}"] = float(col.sum() / total) if total else float("nan")
    out["ltd_windows"] = float(total)
    return out


def _aggregate_ltd_money(evals: list[_OriginEval], rows: Callable[[_OriginEval], np.ndarray]) -> dict[str, float]:
    """What the lead-time-demand samples got right in units, pooled over the windows of ``rows``:
    ``ltd_level_ratio`` = realised demand / the samples' mean (the level reorder points and safety stock are
    built on) and ``ltd_shortage_ratio_pXX`` = realised demand beyond each window's predicted quantile / what the
    samples expected beyond it (``metrics.ltd_shortage``: the unit loss fill rates are computed from). Both are 1
    when the samples are right; NaN where the samples expected nothing."""
    def pooled(name: str) -> np.ndarray:
        return np.sum([getattr(ev, name)[rows(ev)].sum(axis=0) for ev in evals], axis=0)

    real, expected = pooled("ltd_level_real"), pooled("ltd_level_expected")
    out = {"ltd_level_ratio": float(real / expected) if expected > 0 else float("nan")}
    real_s, expected_s = pooled("ltd_short_real"), pooled("ltd_short_expected")
    for j, level in enumerate(metrics.LTD_SHORTAGE_LEVELS):
        ratio = real_s[j] / expected_s[j] if expected_s[j] > 0 else float("nan")
        out[f"ltd_shortage_ratio_p{round(level * 100):02d}"] = float(ratio)
    return out


def _pooled_metrics(evals: list[_OriginEval], model: str, seg: str | None, config: ForecastConfig,
                    ) -> dict[str, float]:
    """Metrics of one model pooled over origins (per-series values of every origin, cells of every origin)."""
    def rows(ev: _OriginEval) -> np.ndarray:
        r = ev.usable.copy()
        if seg is not None:
            r &= ev.fit.segment == seg
        return r

    keys = ("mase", "rmsse", "_abs_err", "_err", "_actual")
    pooled = {k: np.concatenate([ev.series[model][k][rows(ev)] for ev in evals]) for k in keys}
    out = _aggregate(pooled, np.ones(len(pooled["mase"]), bool))
    out["n_series"] = float(len(pooled["mase"]))
    if model == "selected" and evals and all(ev.quantile_metrics for ev in evals):
        qkeys = ["spl", *[f"_{kind}_{round(c * 100)}" for c in config.interval_levels
                          for kind in ("hits", "tie_hits")]]
        qm = {k: np.concatenate([ev.quantile_metrics[k][rows(ev)] for ev in evals]) for k in qkeys}
        n = np.concatenate([ev.series[model]["_n"][rows(ev)] for ev in evals])
        out.update(_aggregate_quantiles(qm, n, np.ones(len(n), bool), config.interval_levels))
        hits = np.concatenate([ev.ltd_hits[rows(ev)] for ev in evals])
        hits_le = np.concatenate([ev.ltd_hits_le[rows(ev)] for ev in evals])
        wins = np.concatenate([ev.ltd_windows[rows(ev)] for ev in evals])
        out.update(_aggregate_ltd(hits, wins, hits_le))
        out["ltd_windows_realised_lead_time"] = float(sum(ev.ltd_windows_realised_lt[rows(ev)].sum()
                                                          for ev in evals))
        out.update(_aggregate_ltd_money(evals, rows))
    return out


def _backtest_frame(evals: list[_OriginEval], panel: Panel, config: ForecastConfig, choice: dict[str, str],
                    n_sel: int) -> pl.DataFrame:
    models = [*config.models, "selected"]
    frames: list[pl.DataFrame] = []
    keys = panel.keys.select("product_id", "location_id")

    def add(origin: date | None, split: str, level: str, segment: str | None, model: str,
            values: dict[str, float], chosen: dict[str, str]) -> None:
        selected = model == "selected" or (segment is not None and chosen.get(segment) == model)
        frames.append(pl.DataFrame({
            "origin": [origin] * len(values), "split": split, "level": level, "segment": segment,
            "product_id": None, "location_id": None, "model": model, "metric": list(values),
            "value": [float(v) for v in values.values()], "is_selected_model": selected,
        }, schema=_SCHEMA))

    groups: list[tuple[list[_OriginEval], date | None, str, dict[str, str]]] = [
        ([ev], ev.date, "selection" if ev.index < n_sel else "holdout", ev.choice.choice if ev.choice else choice)
        for ev in evals]
    groups.append((evals[n_sel:], None, "holdout", choice))
    for evs, origin, split, chosen in groups:
        for model in models:
            for seg in (None, *SEGMENTS):
                vals = _pooled_metrics(evs, model, seg, config)
                if vals["n_series"] == 0:
                    continue
                add(origin, split, "overall" if seg is None else "segment", seg, model, vals, chosen)
    # per-series rows
    series_models = models if config.series_metric_models is None else [
        m for m in config.series_metric_models if m in models]
    for ev in evals:
        split = "selection" if ev.index < n_sel else "holdout"
        rows = np.flatnonzero(ev.usable)
        for model in series_models:
            data = {k: ev.series[model][k][rows] for k in _POINT}
            if model == "selected" and ev.quantile_metrics:
                data["spl"] = ev.quantile_metrics["spl"][rows]
                for c in config.interval_levels:
                    for name in (f"coverage_{round(c * 100)}", f"coverage_tie_{round(c * 100)}"):
                        data[name] = ev.quantile_metrics[name][rows]
                for j, level in enumerate(LTD_QUANTILE_LEVELS):
                    data[f"ltd_coverage_p{round(level * 100):02d}"] = ev.ltd_hits[rows, j]
            sel_flag = np.ones(len(rows), bool) if model == "selected" else ev.selected[rows].astype(str) == model
            wide = keys[rows].with_columns(
                pl.Series("segment", ev.fit.segment[rows].astype(str)),
                pl.Series("is_selected_model", sel_flag),
                *[pl.Series(k, np.asarray(v, dtype=np.float64)) for k, v in data.items()],
            )
            long = wide.unpivot(index=["product_id", "location_id", "segment", "is_selected_model"],
                                variable_name="metric", value_name="value")
            frames.append(long.with_columns(
                pl.lit(ev.date).alias("origin"), pl.lit(split).alias("split"), pl.lit("series").alias("level"),
                pl.lit(model).alias("model"),
            ).select(list(_SCHEMA)).cast(_SCHEMA))
    return pl.concat(frames, how="vertical").filter(pl.col("value").is_not_nan())


def _gating_frame(gating: sig.Gating) -> pl.DataFrame:
    """The signal-gating decisions as ``ml.forecast_backtest`` rows: level 'signal_gating', segment = category,
    model = the signal group, is_selected_model = kept."""
    rows = []
    for r in gating.rows:
        for metric in sig.GATING_METRICS:
            rows.append({"origin": gating.decided_on, "split": "holdout", "level": "signal_gating",
                         "segment": r.category,
                         "product_id": None, "location_id": None, "model": r.group, "metric": metric,
                         "value": float(getattr(r, metric)), "is_selected_model": r.kept})
    return pl.DataFrame(rows, schema=_SCHEMA).filter(pl.col("value").is_not_nan())


_SCHEMA = {
    "origin": pl.Date, "split": pl.String, "level": pl.String, "segment": pl.String, "product_id": pl.String,
    "location_id": pl.String, "model": pl.String, "metric": pl.String, "value": pl.Float64,
    "is_selected_model": pl.Boolean,
}


def quantile_column(level: float) -> str:
    """Column name of a per-period quantile: q + level in per mille (q025 = 2.5%, q500 = median)."""
    return f"q{round(level * 1000):03d}"


def _demand_forecast_frame(panel: Panel, point: np.ndarray, quantiles: dict[float, np.ndarray],
                           intervals: dict[float, tuple[np.ndarray, np.ndarray]], selected: np.ndarray,
                           segment: np.ndarray, out: np.ndarray, horizon: int) -> pl.DataFrame:
    rows = np.flatnonzero(out)
    n = len(rows)
    starts = panel.period_start[panel.n_hist : panel.n_hist + horizon]
    lengths = panel.period_len[panel.n_hist : panel.n_hist + horizon]
    keys = panel.keys[rows]
    frame = pl.DataFrame({
        "product_id": np.repeat(keys["product_id"].to_numpy(), horizon),
        "location_id": np.repeat(keys["location_id"].to_numpy(), horizon),
        "period_start": np.tile(starts, n),
        "period_end": np.tile(starts + (lengths - 1).astype("timedelta64[D]"), n),
        "horizon": np.tile(np.arange(1, horizon + 1, dtype=np.int32), n),
        "grain": panel.grain,
        "forecast": point[rows].ravel().astype(np.float64),
        **{quantile_column(lvl): q[rows].ravel().astype(np.float64) for lvl, q in sorted(quantiles.items())},
        **{f"{side}_{round(c * 100)}": b[rows].ravel().astype(np.float64)
           for c, bounds in sorted(intervals.items()) for side, b in zip(("lower", "upper"), bounds, strict=True)},
        "model": np.repeat(selected[rows].astype(str), horizon),
        "segment": np.repeat(segment[rows].astype(str), horizon),
    })
    return frame.with_columns(pl.col("period_start").cast(pl.Date), pl.col("period_end").cast(pl.Date))


def _summary(panel: Panel, config: ForecastConfig, evals: list[_OriginEval], selection: sel.SelectionResult,
             n_sel: int, transform: str, horizon: int, horizon_days: float, final: bt.CutoffFit,
             lead_times: LeadTimes, out: np.ndarray, level_guarded: np.ndarray, timer: _Timer) -> dict:
    choice = selection.choice
    hold = evals[n_sel:]
    acc = {m: _pooled_metrics(hold, m, None, config) for m in [*config.models, "selected"]}
    snaive = acc["seasonal_naive"]
    chosen = acc["selected"]
    seg_counts = {s: int(((final.segment == s) & out).sum()) for s in SEGMENTS}
    src, cnt = np.unique(lead_times.source[out].astype(str), return_counts=True)
    return {
        "as_of": panel.as_of.isoformat(),
        "model_version": MODEL_VERSION,
        "grain": panel.grain,
        "native_grain": panel.native_grain,
        "censoring": config.censoring,
        "horizon_periods": horizon,
        "horizon_days": horizon_days,
        "n_series": int(out.sum()),
        "n_aggregate_series": int(panel.n_series - panel.n_base),
        "origins": [ev.date.isoformat() for ev in evals],
        "holdout_origins": [ev.date.isoformat() for ev in hold],
        "lightgbm_transform": transform,
        "lightgbm_train_rows_final": final.gbm_rows,
        "selected_model_by_segment": choice,
        "series_by_segment": seg_counts,
        "holdout_accuracy": {m: {k: round(v, 4) for k, v in a.items() if k in (*_POINT, "n_series")}
                             for m, a in acc.items()},
        "selected_vs_seasonal_naive": {
            k: round(chosen[k] / snaive[k], 4) if snaive[k] else None for k in ("mase", "rmsse", "wape")},
        "beats_seasonal_naive": bool(chosen["mase"] < snaive["mase"] and chosen["rmsse"] < snaive["rmsse"]),
        "holdout_coverage": {k: round(v, 4) for k, v in chosen.items() if k.startswith(("coverage", "ltd_"))},
        "holdout_spl": round(chosen.get("spl", float("nan")), 4),
        "selection": {
            "method": f"recency-weighted {config.selection_metric} (decay {config.selection_recency_decay}), "
                      f"votes need {config.min_vote_history_days} days of history, baseline-guarded",
            "by_holdout_origin": {ev.date.isoformat(): ev.choice.choice for ev in hold if ev.choice},
            "baseline_guard_replaced": selection.guarded,
            "votes_by_segment": selection.voters,
        },
        "guards": {
            "level_guard_series": int((level_guarded & out).sum()),
            "level_guard_holdout_series": int(sum(int(ev.level_guarded.sum()) for ev in hold
                                                  if ev.level_guarded is not None)),
        },
        "lead_time_sources": dict(zip(src.tolist(), cnt.tolist(), strict=True)),
    }
