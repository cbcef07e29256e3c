"""Every knob of the forecasting stage, with documented defaults (one frozen dataclass).

Dagster passes a plain dict (``ForecastConfig.from_dict``); the CLI and the benchmarks construct it directly.
Lengths are in days unless the name says ``periods``; at week or month grain they are converted to periods
(``ceil(days / period length)``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

Grain = Literal["auto", "day", "week", "month"]
CensoringMode = Literal["impute", "exclude", "none"]
TargetTransform = Literal["auto", "log1p", "scale", "seasonal", "none"]
SelectionMetric = Literal["rmsse", "mase", "wape"]
ForecastEngine = Literal["local", "dask"]

#: Model names, in the order they are reported. ``lightgbm`` is the global mlforecast model; the others are
#: vectorised local methods (see ``ml.forecasting.baselines``).
ALL_MODELS: tuple[str, ...] = ("seasonal_naive", "naive", "moving_average", "croston_sba", "tsb", "yearly_profile",
                               "lightgbm")


@dataclass(frozen=True)
class ForecastConfig:
    """Configuration of :func:`ml.forecasting.run_forecasting`.

    Grain and horizon
        grain: planning grain. ``'auto'`` (default) plans daily data at day grain and data that arrives as weekly
            or monthly totals (one sales line per product, location and period) at its own grain; ``'day'``,
            ``'week'`` (7-day periods ending on the as-of date, i.e. ISO weeks when it is a Sunday; weekly data
            keeps its own weeks) or ``'month'`` (calendar months) force a grain (never finer than the data's).
        horizon_days: minimum forecast horizon (default 91 days). The horizon is extended to the longest
            protection interval found (lead-time quantile ``horizon_lead_time_quantile`` + review period), up to
            ``max_horizon_days``; lead-time draws beyond it use a flat extension of the forecast (documented in
            ``ml.forecasting.ltd``).
        max_horizon_days: cap of the horizon (default 182).
        horizon_lead_time_quantile: lead-time quantile the horizon must cover (default 0.99).

    Censoring (stock-out days, ``fct_sales_daily.is_stockout_day``)
        censoring: ``'impute'`` (default) replaces recorded sales on stock-out days by an estimate from
            uncensored neighbours (never below the recorded sales); ``'exclude'`` keeps the estimate for lag
            features but gives censored days zero weight as training targets and drops them from the local
            methods' levels; ``'none'`` treats recorded sales as demand. Chosen by measurement against the
            demo's true demand (``evaluate_against_truth``, held-out origins): bias -5.2% ('none'), -2.5%
            ('impute'), -5.4% ('exclude') at equal RMSSE (0.782 / 0.782 / 0.791). 'exclude' trains only on
            days without a stock-out, which are the lower-demand days, so it does not remove the bias.
        impute_window_days: half-width of the neighbourhood the imputation averages over (default 28).
        phantom_max_probability: stock-outs the book does not show (phantom stock) are found from runs of
            periods without a sale that a series selling in its neighbouring periods would reach with a
            probability below this (default 0.001; ``None`` = off; ``censoring.phantom_stockouts``), on series
            with stock records only (sales-only data has no book to be wrong). They are corrected like recorded
            stock-outs and not scored as demand.
        phantom_min_neighbour_periods: the neighbourhood of a run measured for its selling share: the larger of
            ``impute_window_days`` and this many periods on each side (default 8, for weekly and monthly grains).

    Backtest
        n_origins: rolling origins (default 4, at least 3).
        origin_step_days: days between origins; ``None`` (default) = the horizon, shrunk when the history is too
            short for ``n_origins`` origins with ``min_train_days`` of training data before the first one.
        n_holdout_origins: the last origins are held out (default 2): models are chosen per segment and the
            uncertainty is calibrated on the earlier origins only, and the held-out numbers are reported.
        min_train_days: training history required before the first origin (default 120).
        backtest_max_series: above this many series the backtest (model choice, metrics, calibration) runs on a
            deterministic random sample of products with all their series (about this many series; default
            12,000): plenty for per-segment choices and pooled calibration, a third of the cost at M5 size. The
            final forecast always covers every series.
        calibration_sub_origins: extra forecast dates after each origin (every ``sub_origin_step_days``, default
            6 weekly ones) at which the models fitted at the origin forecast ``sub_horizon_days`` (default 28)
            from their own history, without refitting: more calibration windows for short horizons and short
            protection intervals (two or three windows are not enough to calibrate), at the cost of
            predictions only. 0 disables.
        selection_metric: per-segment model choice criterion (default ``'rmsse'``, mean-oriented, as stock is
            sized from the mean).
        selection_recency_decay: weight of an origin in the model choice relative to the next later one (default
            0.5: the latest origin counts most; ``ml.forecasting.selection``).
        min_vote_history_days: a series votes in the model choice at an origin only with at least this much
            history before it (default 365); if no series of a segment qualifies, all vote.
        level_guard_ratio: a selected forecast whose mean is below this fraction of the series' recent level
            (and of its seasonal naive, with a season of history) is replaced by a robust local method (default
            0.25; 0 disables; ``ml.forecasting.selection.guard_collapsed_level``).
        series_metric_models: models whose per-series metric rows are written (segment/overall rows are
            written for every model); ``None`` = all models. Default: the selected model and seasonal naive.

    Models
        models: candidate models (default all of ``ALL_MODELS``).
        moving_average_days: window of the moving average and of the recent level the yearly profile scales
            (default 28).
        croston_alpha / tsb_alpha_demand / tsb_alpha_probability: smoothing constants of SBA and TSB.
        target_transform: LightGBM target transform; ``'auto'`` (default) chooses between ``'log1p'``,
            ``'scale'`` (per-series division by the recent mean) and ``'seasonal'`` (division by the
            deseasonalised recent mean times the category's pooled yearly index, ``gbm.TargetScale``; a candidate
            only at an origin with a whole year of history) on the first origin that has a year of history (the
            origins before it use their own choice between the other two) (validation), by
            ``selection_metric x (1 + |bias|)`` (bias = sum error / sum actual): log1p back-transformed with
            expm1 forecasts a geometric-mean-like level, measured 17-52% too low on the demo and the
            online-retail data, which RMSSE alone can prefer on lumpy series.
        lgbm_objective: LightGBM objective (default ``'tweedie'``: non-negative, right-skewed counts; measured
            better than ``'l2'`` and ``'poisson'`` on the demo).
        lgbm_*: LightGBM parameters. ``lgbm_backtest_trees`` trees at backtest origins, ``lgbm_final_trees``
            for the final model (refit once on all data up to the as-of date).
        train_window_days: training targets come from the last ``train_window_days`` before each origin
            (default 730).
        max_train_rows: if series x window exceeds this, LightGBM trains on a deterministic sample of series
            (it still forecasts every series) (default 2,000,000: at M5 size a fit then takes about a minute
            on 2 cores).
        transform_selection_rows / transform_selection_series: the 'auto' transform choice fits both
            candidates on at most this many rows (with half the backtest trees) and scores them on at most this
            many series of the first origin, so the choice costs a fraction of a full fit.
        sub_origin_max_series: sub-origin forecasts (calibration windows) are made for at most this many series
            (a deterministic random sample; default 6,000).
        lags_days: lags at day grain (at week/month grain ``lags_periods_week`` / ``lags_periods_month``).

    Exogenous features
        signal_min_gain: an external signal or event type is used for a category's forecasts only when, in the
            backtest, it cuts the squared error of the category's totals per location by at least this share
            (default 0.005) with a 95% interval above 0 (``ml.forecasting.signals``, gating).
        signal_gating_max_age_days: a re-fit re-uses the gate stored in ``ml.forecast_backtest`` when it was
            decided at most this many days before the as-of date, on the same signal groups and categories
            (default 28: the weekly re-fit gates afresh every fourth week; the gate costs about a quarter of the
            forecasting time at M5 size). 0 gates at every run. ``ml.forecasting.signals``, "Re-using a recent
            gate".
        promotion_known_days: promotions starting up to this many days after an origin are treated as planned
            (known) at the origin, and a period in that horizon without a listed promotion as known to have none.
            ``None`` (default) derives it from the data: how far ahead the export lists promotions, (latest
            promotion start date) - (as-of date), floored at 0, so an export of past promotions only gives 0
            (``ml.forecasting.panel.known_promotion_days``); an int forces it. The same horizon applies at
            every backtest origin. Beyond it the promotion is *unknown*: the discount feature carries the series'
            historical promotion intensity (its mean per-period discount over the last year before the origin),
            not 0, and the ``promo_unknown`` feature flags the unknown share of the period (``ml.forecasting.gbm``).
            ``ml.forecasting.gbm.exogenous_warnings`` reports promotions seen in the history but not listed for
            the forecast period.
        price_known_days: list-price changes effective up to this many days after an origin are known
            (default 56); after that the last known price is carried forward.

    Uncertainty and lead-time demand
        quantile_levels: levels of the per-period quantiles written to ``ml.demand_forecast`` and scored with
            the pinball loss.
        interval_levels: central interval coverage levels evaluated (default 0.8 and 0.95).
        interval_bounds: "continuous" (default): the intervals are calibrated so that the share of periods inside
            is nominal on earlier origins (``coverage_80``); on intermittent count data this share counts every
            zero inside [0, u], so the interval is narrower than the distribution's own central interval (the
            tie-split coverage ``coverage_tie_80`` reads 0.73-0.75 on carparts, 0.66-0.71 on Online Retail).
            "integer" (count data): the bounds are the predictive distribution read on the integers and
            rescaled per segment so that the tie-split coverage is nominal on earlier origins
            (``calibration.Calibrator``); the plain share is then above nominal (a bound is an atom).
        horizon_buckets_days: upper bounds of the horizon buckets the per-period calibration pools by.
        n_volume_bands: calibration pools are split by segment x volume band (equal-count bands of the series
            scale within each segment).
        n_samples: Monte Carlo samples of lead-time demand per series (default 1000).
        empirical_window_days: history the empirical lead-time demand (the series' own demand over past
            protection intervals, a circular block bootstrap) is drawn from (default 730).
        empirical_blend_weight / empirical_blend_segments: for these segments (default intermittent and lumpy)
            this share of the lead-time-demand samples (default 0.5) comes from the empirical distribution, the
            rest from forecast + error paths (``ml.forecasting.ltd.blend_with_empirical``).
        ltd_cap_factor: every forecast-based lead-time-demand sample is capped at this multiple (default 3) of the
            larger of the largest demand the series' history shows over such an interval and its forecast mean
            over the interval (``ml.forecasting.ltd.cap_to_evidence``); 0 disables.
        seed: seed of every random draw (bootstrap, lead times, LightGBM, series sampling).
        min_receipts_product: purchase-order lines with receipts needed to use a product's own lead-time
            distribution (default 8), else the supplier's (``min_receipts_supplier``, default 8), else the nominal
            lead time. Each line is one observation, split over its receipts by units (``ml.forecasting.lead_time``).
        lead_time_prior_lines: a product's own distribution is mixed with its supplier's, worth this many order
            lines (default 8; 0 = the product's own lines only): a credibility weight against the noisy tail of a
            few lines.
        lead_time_lookback_days: receipts/transfers received in this window before the as-of date are used.
        default_lead_time_days: lead time when there is no receipt and no nominal lead time (default 14).
        default_transfer_lead_time_days: transfer lead time without transfer history (default 2).
        review_period_store_days: review period of locations replenished by transfer (default 1).
        review_period_supplier_days: review period of locations that buy from suppliers (DCs, single-site
            retailers) (default 7).

    Performance and determinism
        num_threads: LightGBM threads (default 2). With ``deterministic=True`` and fixed seeds the same inputs
            and configuration (this value included) give identical outputs. The panel is kept in float32.
        engine: where the global LightGBM model trains: ``"local"`` (default, in this process) or ``"dask"`` (a
            Dask cluster, through mlforecast's ``DistributedMLForecast``; needs ``pip install -e ".[dask]"``;
            ``ml.forecasting.distributed`` documents what runs where and how close the results are).
        dask_address: the scheduler of a running Dask cluster (``tcp://host:8786``), whose workers train with
            the threads they were started with; empty starts a local cluster of ``dask_workers`` worker processes
            (default 2) of ``num_threads // dask_workers`` threads each.
        dask_partitions_per_worker: series partitions per worker (default 2).
    """

    # grain and horizon
    grain: Grain = "auto"
    horizon_days: int = 91
    max_horizon_days: int = 182
    horizon_lead_time_quantile: float = 0.99

    # censoring
    censoring: CensoringMode = "impute"
    impute_window_days: int = 28
    phantom_max_probability: float | None = 0.001
    phantom_min_neighbour_periods: int = 8

    # backtest
    n_origins: int = 4
    origin_step_days: int | None = None
    n_holdout_origins: int = 2
    min_train_days: int = 120
    backtest_max_series: int = 12_000
    calibration_sub_origins: int = 6
    sub_origin_step_days: int = 7
    sub_horizon_days: int = 28
    selection_metric: SelectionMetric = "rmsse"
    selection_recency_decay: float = 0.5
    min_vote_history_days: int = 365
    level_guard_ratio: float = 0.25
    series_metric_models: tuple[str, ...] | None = ("selected", "seasonal_naive")

    # models
    models: tuple[str, ...] = ALL_MODELS
    moving_average_days: int = 28
    croston_alpha: float = 0.1
    tsb_alpha_demand: float = 0.1
    tsb_alpha_probability: float = 0.05
    target_transform: TargetTransform = "auto"
    lgbm_backtest_trees: int = 120
    lgbm_final_trees: int = 200
    lgbm_learning_rate: float = 0.08
    lgbm_num_leaves: int = 63
    lgbm_min_data_in_leaf: int = 50
    lgbm_feature_fraction: float = 0.8
    lgbm_bagging_fraction: float = 0.6
    lgbm_max_bin: int = 127
    lgbm_objective: str = "tweedie"
    train_window_days: int = 730
    max_train_rows: int = 2_000_000
    transform_selection_rows: int = 500_000
    transform_selection_series: int = 4_000
    sub_origin_max_series: int = 6_000
    lags_days: tuple[int, ...] = (1, 2, 3, 7, 14, 28)
    lags_periods_week: tuple[int, ...] = (1, 2, 4, 52)
    lags_periods_month: tuple[int, ...] = (1, 2, 3, 12)
    yearly_lag: bool = True

    # exogenous
    promotion_known_days: int | None = None
    signal_min_gain: float = 0.005
    signal_gating_max_age_days: int = 28
    price_known_days: int = 56

    # uncertainty and lead-time demand
    quantile_levels: tuple[float, ...] = (0.025, 0.1, 0.5, 0.9, 0.975)
    interval_levels: tuple[float, ...] = (0.8, 0.95)
    interval_bounds: str = "continuous"
    horizon_buckets_days: tuple[int, ...] = (7, 14, 28, 56, 91, 182, 366)
    n_volume_bands: int = 3
    n_samples: int = 1000
    empirical_window_days: int = 730
    empirical_blend_weight: float = 0.5
    empirical_blend_segments: tuple[str, ...] = ("intermittent", "lumpy")
    ltd_cap_factor: float = 3.0
    seed: int = 20240601
    min_receipts_product: int = 8
    min_receipts_supplier: int = 8
    lead_time_prior_lines: float = 8.0
    lead_time_lookback_days: int = 730
    default_lead_time_days: int = 14
    default_transfer_lead_time_days: int = 2
    review_period_store_days: int = 1
    review_period_supplier_days: int = 7

    # performance and determinism
    num_threads: int = 2
    engine: ForecastEngine = "local"
    dask_address: str | None = None
    dask_workers: int = 2
    dask_partitions_per_worker: int = 2

    def __post_init__(self) -> None:
        if self.n_origins < 3:
            raise ValueError(f"n_origins must be at least 3, got {self.n_origins}")
        if not 1 <= self.n_holdout_origins < self.n_origins:
            raise ValueError("n_holdout_origins must be between 1 and n_origins - 1")
        if self.censoring not in ("impute", "exclude", "none"):
            raise ValueError(f"censoring must be 'impute', 'exclude' or 'none', got {self.censoring!r}")
        if self.grain not in ("auto", "day", "week", "month"):
            raise ValueError(f"grain must be 'auto', 'day', 'week' or 'month', got {self.grain!r}")
        unknown = set(self.models) - set(ALL_MODELS)
        if unknown or not self.models:
            raise ValueError(f"unknown models {sorted(unknown)}; choose from {ALL_MODELS}")
        if "seasonal_naive" not in self.models:
            raise ValueError("seasonal_naive must stay among the models: it is the benchmark every metric scales by")
        if self.horizon_days < 1 or self.max_horizon_days < self.horizon_days:
            raise ValueError("need 1 <= horizon_days <= max_horizon_days")
        for level in (*self.quantile_levels, *self.interval_levels):
            if not 0.0 < level < 1.0:
                raise ValueError(f"levels must be in (0, 1), got {level}")
        if self.interval_bounds not in ("continuous", "integer"):
            raise ValueError(f"interval_bounds must be 'continuous' or 'integer', got {self.interval_bounds!r}")
        if self.signal_gating_max_age_days < 0:
            raise ValueError(f"signal_gating_max_age_days must be >= 0, got {self.signal_gating_max_age_days}")
        if self.n_samples < 1:
            raise ValueError("n_samples must be positive")
        if self.engine not in ("local", "dask"):
            raise ValueError(f"engine must be 'local' or 'dask', got {self.engine!r}")
        if self.dask_workers < 1 or self.dask_partitions_per_worker < 1:
            raise ValueError("dask_workers and dask_partitions_per_worker must be at least 1")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> ForecastConfig:
        """Build from a plain dict (Dagster run config); lists become tuples, unknown keys raise."""
        values = dict(values or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown forecast config keys: {sorted(unknown)}")
        converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**converted)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every setting (for RunInfo inputs and metadata)."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    def replace(self, **changes: Any) -> ForecastConfig:
        return dataclasses.replace(self, **changes)
