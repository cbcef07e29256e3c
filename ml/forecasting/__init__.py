"""Probabilistic demand forecasts, rolling-origin backtest and calibrated lead-time demand.

Public API (plain Python, no Dagster)::

    from ml.forecasting import ForecastConfig, run_forecasting
    run = run_forecasting(con, ForecastConfig(), as_of=None, progress=True)
    run.demand_forecast          # -> ml.demand_forecast
    run.forecast_backtest        # -> ml.forecast_backtest
    run.lead_time_demand         # LeadTimeDemand -> ml.lead_time_demand via .to_frame(); handed to ml.policy
    run.summary                  # headline numbers (Dagster metadata, the report)

    from ml.forecasting import evaluate_against_truth   # benchmarks only: the demo's hidden true demand

``as_of`` (default: the last day of ``marts.fct_sales_daily``) bounds every input: sales, stock-out flags, prices
and lead-time observations after it are never read, so a simulator can replay any past planning date. Planned
promotions and price changes after it are used up to ``promotion_known_days`` (derived from how far ahead the
export lists promotions unless set) / ``price_known_days`` ahead; beyond that a promotion is *unknown* (the
series' historical promotion intensity), never "known: none".

Pipeline (modules)
    ``panel``: the demand series from the marts (active stock products x selling locations; every location that
    replenishes others gets the summed demand of the locations below it), at the planning grain (day; week or
    month by configuration, or automatically when the data arrives as weekly/monthly totals).
    ``censoring``: stock-out days corrected (``impute`` by default), always from data before the cutoff: the
    ones the stock records show, and the ones they do not (phantom stock: runs without a sale that the series'
    neighbouring sales make improbable); with a year of history a stock-out is filled at its week's level of
    the category's yearly index, so a sold-out peak does not teach the model a smaller peak.
    ``baselines`` (seasonal naive, naive, moving average, Croston SBA, TSB) and ``gbm`` (a global mlforecast LightGBM,
    recursive, with lags, rolling statistics, calendar, promotion, price and static features and a target
    transform chosen on validation). ``segments``: Syntetos-Boylan classes. ``backtest``: fits at every rolling
    origin. ``selection``: the model per segment, recency-weighted over the origins (each held-out origin scored
    under the choice made on the origins before it; the shipped choice uses every origin), guarded by the simple
    baselines on the latest origin, and the guard against a collapsed forecast level.
    ``calibration``: pooled normalised errors of the chosen models -> per-period quantiles/intervals and
    cumulative error paths. ``lead_time`` + ``ltd``: measured lead-time distributions and Monte Carlo demand
    over lead time + review period, blended for intermittent and lumpy series with the series' own demand over
    past protection intervals (also handed to the policy's guards). ``truth``: evaluation against the demo's
    true demand.

Frames (dates are ``pl.Date``; keys ``product_id``, ``location_id``)

``demand_forecast``: one row per output series x forecast period (every series the same number of periods):
    product_id, location_id, period_start, period_end (first and last day of the period), horizon (1 = the
    first period after as_of), grain ('day' | 'week' | 'month'), forecast (mean demand in the period, units),
    q025, q100, q500, q900, q975 (per-period quantiles, the number is the level in per mille), lower_80,
    upper_80, lower_95, upper_95 (central intervals calibrated for coverage on backtest errors), model (the
    model chosen for the series' segment), segment (Syntetos-Boylan class as of as_of). All values >= 0.

``forecast_backtest`` (long): origin (the as-of date the origin replays; null = pooled over the held-out
    origins), split ('selection': origins the models were chosen on, 'holdout': later origins), level
    ('series' | 'segment' | 'overall'), segment (null for 'overall'), product_id / location_id (null above
    'series'), model (every candidate and 'selected' = the per-segment choice), metric, value,
    is_selected_model. Metrics: mase, rmsse (scaled by the in-sample seasonal naive), wape, bias (sum error /
    sum actual), n_series; for 'selected' on held-out origins also spl (scaled pinball loss over the quantile
    levels), coverage_80, coverage_95 (per-period intervals: the plain share of periods inside), coverage_tie_80,
    coverage_tie_95 (the same with a count inside the interval only in part when it sits on a bound carrying an
    atom of the predictive distribution, e.g. a zero day of an intermittent item: ``metrics.interval_tie_coverage``)
    and ltd_coverage_p50 ... p99 (coverage of the
    predicted lead-time-demand quantile by realised demand over a realised protection interval - the lead time of
    the order really placed next where there is one -, ties split by the randomised PIT:
    ``metrics.ltd_pit_coverage``), ltd_at_or_below_p50 ... p99 (the plain share at or below; overall and segment
    rows only), ltd_windows and ltd_windows_realised_lead_time. Per-series rows exist for the models in
    ``series_metric_models``. Actuals: recorded sales on periods that are not stock-outs (censored periods are
    not scored); aggregate (DC) series: the sum of their children's demand, stock-out periods imputed.

``lead_time_demand``: ``LeadTimeDemand.to_frame()`` (see ``ml.demand_distribution``): one row per output series
    with daily_demand_mean, lead_time_mean_days, lead_time_p90_days, review_period_days, lead_time_source
    ('receipts:product' | 'receipts:supplier' | 'transfers' | 'nominal' | 'default'), ltd_mean, ltd_std,
    ltd_p50 ... ltd_p99 and n_samples.

``summary``: as_of, model_version, grain, native_grain, censoring, horizon_periods, horizon_days, n_series,
    n_aggregate_series, backtest_series, origins, holdout_origins, lightgbm_transform, selected_model_by_segment,
    series_by_segment, holdout_accuracy (per model: mase, rmsse, wape, bias, n_series), selected_vs_seasonal_naive
    (ratios), beats_seasonal_naive, holdout_coverage, holdout_spl, selection (the choice per held-out origin, what
    the baseline guard replaced, votes per segment), guards (series whose collapsed level was replaced, final and
    held out), warnings (features seen in training but not known for the forecast period), lead_time_sources,
    seconds (per stage), seconds_total.
"""

from ml.forecasting.config import ForecastConfig
from ml.forecasting.pipeline import MODEL_VERSION, ForecastRun, run_forecasting
from ml.forecasting.truth import evaluate_against_truth

__all__ = ["MODEL_VERSION", "ForecastConfig", "ForecastRun", "evaluate_against_truth", "run_forecasting"]
