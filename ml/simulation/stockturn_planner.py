"""stockturn's recommended policy as a simulation planner: forecasts and policy re-made at each planning date.

At every planning date of a replay (:func:`ml.simulation.planning.schedule_from_planner`) the planner runs the
real pipeline with ``as_of`` = the day before the plan takes effect, so it reads nothing after it:

1. ``ml.forecasting.run_forecasting(con, config, as_of=as_of)`` (public API only): daily mean forecast per
   product x location (``demand_forecast.forecast``) and the calibrated lead-time-demand samples;
2. the lead-time demand is re-expressed over the *simulation's* protection interval (see below) as a
   :class:`~ml.demand_distribution.LeadTimeDemand` for the simulated series;
3. ``ml.policy.run_policy(con, ltd, forecast, config, as_of=as_of)``: classification (ABC/XYZ), service metric
   and target per series (``planning.service_levels``), unit cost, planner overrides;
4. order quantity and reorder point with the policy's own arithmetic (:func:`ml.policy.inventory_math.order_quantity`,
   :func:`ml.policy.inventory_math.reorder_points`) on those samples, with the *simulation's* supply terms (supplier
   MOQ, pack size, supplier ordering cost) so the baseline and stockturn order under the same terms. The rule
   is the policy's: review daily, order when the position is <= r, up to r + Q (engine rule ``"s_S"``).

Why step 2: the simulator replenishes every store x product straight from its supplier (single echelon, see
:mod:`ml.simulation.demo_truth`), while the pipeline plans the demo's stores as replenished by transfer from the
DC (lead time of ~1-3 days). The protection interval P = L + R of the simulation is drawn from the same lead-time
distribution the classical baseline is given (:class:`~ml.simulation.engine.LeadTimeModel`), and the demand over
it is the sum of the pipeline's daily mean forecasts over days 1..P (beyond the horizon: the mean of its last 28
days), with a dispersion (``dispersion``): 'mixed' (default) = variance ``phi_d M + c2 M^2`` where ``phi_d`` is the
day-to-day index of dispersion of the series' recorded sales around their local level (:func:`daily_dispersion`,
noise that adds up over the days) and ``c2`` the persistent level error: the pipeline's short-interval variance
beyond that noise, bounded by the level error of a flat trailing mean over P in the series' own history
(:func:`naive_level_error`); 'quadratic' = all extra-Poisson variance of the pipeline's samples as level error;
'linear' = variance ``phi M`` with ``phi = var / mean`` of the pipeline's samples. On intermittent series the
pipeline's short-interval samples are mostly zero with rare large values; carried over a long interval as a level
error ('quadratic') they put most of the mass at zero and starve slow movers (docs/backtest.md).

Cost of a replay: one forecasting run per planning date. Each run's outputs that the planner needs (daily means
of the simulated series, phi, the policy's forecast frame) are cached as parquet under ``cache_dir`` keyed by
the warehouse's landing load, the as-of date and the forecast configuration, so scenario runs and re-runs reuse
them. The plans as written (:func:`pipeline_policy`) are cached keyed by both configurations, and what
``run_policy`` reads from forecasting (:func:`forecast_run`) by the forecast configuration alone, so a study of
another policy setting re-plans without forecasting again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from ml.demand_distribution import LeadTimeDemand
from ml.simulation.engine import LeadTimeModel
from ml.simulation.planning import PlanningContext, PlanParams, forecast_day

log = logging.getLogger("stockturn.simulation")

__all__ = ["ForecastSnapshot", "StockturnPlanner", "daily_dispersion", "prefetch_forecast_runs",
           "replay_forecast_config"]

#: Forecast-config overrides for replays: one run per planning date, so the backtest inside each run is cut to
#: the minimum (3 origins, 1 held out, 3 calibration sub-origins, fewer trees, 500 samples). Measured on the
#: default demo (816 series x 732 days, 2 shared cores): ~68 s per run instead of ~2-3 min.
REPLAY_FORECAST_OVERRIDES: dict[str, object] = {
    "n_origins": 3, "n_holdout_origins": 1, "calibration_sub_origins": 3, "lgbm_backtest_trees": 60,
    "lgbm_final_trees": 100, "n_samples": 500,
}


def replay_forecast_config(overrides: dict | None = None):  # -> ForecastConfig
    """The cheaper forecasting configuration used at each replay planning date (plus ``overrides``)."""
    from ml.forecasting import ForecastConfig

    return ForecastConfig.from_dict({**REPLAY_FORECAST_OVERRIDES, **(overrides or {})})


@dataclass(frozen=True)
class ForecastSnapshot:
    """What the planner keeps of one forecasting run at ``as_of``.

    Attributes:
        forecast: demand_forecast rows (product_id, location_id, period_start, period_end, forecast) after as_of.
        dispersion: product_id, location_id, phi (var/mean of the pipeline's LTD samples, >= 1), daily_mean,
            review_period_days.
        seconds: forecasting wall time (0 when read from the cache).
    """

    forecast: pl.DataFrame
    dispersion: pl.DataFrame
    seconds: float = 0.0


SNAPSHOT_VERSION = 2


#: forecast settings that change how fast a run is, not what it computes (LightGBM is deterministic across thread
#: counts: ``tests/test_backtest_prefetch.py``), so they are not part of a cache key and the parallel prefetch
#: (:func:`prefetch_forecast_runs`) fills the same entries a sequential study reads
SPEED_ONLY_SETTINGS = frozenset({"num_threads"})


def _cache_key(load_id: str, as_of: date, config_dict: dict, *, policy: bool = True) -> str:
    """Cache key of a study's stored run: the load, the day, the configuration and the code's versions (the
    forecasting's only, for a run without the policy: a new policy version re-plans without forecasting again)."""
    from ml.forecasting.pipeline import MODEL_VERSION
    from ml.policy.run import POLICY_MODEL_VERSION

    code = [MODEL_VERSION, POLICY_MODEL_VERSION] if policy else [MODEL_VERSION]
    config_dict = _without_speed_settings(config_dict)
    payload = json.dumps({"snapshot": SNAPSHOT_VERSION, "code": code, "load": load_id, "as_of": as_of.isoformat(),
                          "config": config_dict}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def forecast_snapshot(con, config, as_of: date, cache_dir: Path | None) -> ForecastSnapshot:
    """Run forecasting at ``as_of`` (or read the cached run)."""
    from ml.forecasting import run_forecasting

    key = _cache_key(_load_id(con), as_of, config.to_dict(), policy=False)
    if cache_dir is not None:
        fpath, dpath = cache_dir / f"forecast_{key}.parquet", cache_dir / f"dispersion_{key}.parquet"
        if fpath.exists() and dpath.exists():
            return ForecastSnapshot(pl.read_parquet(fpath), pl.read_parquet(dpath))
    t0 = time.perf_counter()
    run = run_forecasting(con, config, as_of=as_of, progress=False)
    seconds = time.perf_counter() - t0
    ltd = run.lead_time_demand
    s = np.asarray(ltd.samples, dtype=np.float64)
    mean, var = s.mean(axis=1), s.var(axis=1, ddof=1) if s.shape[1] > 1 else np.zeros(s.shape[0])
    with np.errstate(all="ignore"):
        phi = np.where(mean > 0, var / np.where(mean > 0, mean, 1.0), 1.0)
    dispersion = ltd.keys.select(pl.col("product_id").cast(pl.String), pl.col("location_id").cast(pl.String)
                                 ).with_columns(pl.Series("phi", np.maximum(np.nan_to_num(phi, nan=1.0), 1.0)),
                                                pl.Series("cv2", np.where(mean > 0, np.maximum(
                                                    np.nan_to_num(var - mean), 0.0) / np.where(mean > 0, mean, 1.0)**2,
                                                    0.0)),
                                                pl.Series("ltd_mean", mean), pl.Series("ltd_var", var),
                                                pl.Series("daily_mean", np.asarray(ltd.daily_demand_mean, float)),
                                                pl.Series("review_period_days",
                                                          np.asarray(ltd.review_period_days, float)))
    forecast = run.demand_forecast.select(
        pl.col("product_id").cast(pl.String), pl.col("location_id").cast(pl.String), "period_start", "period_end",
        pl.col("forecast").cast(pl.Float64))
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        forecast.write_parquet(fpath)
        dispersion.write_parquet(dpath)
    return ForecastSnapshot(forecast, dispersion, seconds)


POLICY_CACHE_COLUMNS = ("product_id", "location_id", "reorder_point", "order_quantity", "expected_fill_rate",
                        "daily_demand_forecast", "service_metric", "service_target", "is_safety_stock_guarded")
#: what the network replay needs on top (each location's own terms and review period as written)
NETWORK_POLICY_COLUMNS = (*POLICY_CACHE_COLUMNS, "location_type", "min_order_qty", "pack_size",
                          "review_period_days", "safety_stock", "echelon_store_target_units")


def pipeline_policy(con, forecast_config, policy_config, as_of: date, cache_dir: Path | None,
                    columns: tuple[str, ...] = POLICY_CACHE_COLUMNS, *, forecast_as_of: date | None = None,
                    ) -> tuple[pl.DataFrame, float]:
    """(the policy rows ``run_forecasting`` + ``run_policy`` write to ``ml.inventory_policy`` at ``as_of``, wall
    seconds; 0 when read from the cache). Cached like the forecast snapshots, keyed by both configurations.

    ``forecast_as_of`` (before ``as_of``): re-plan on ``as_of`` from the forecast made on that earlier day, as the
    nightly plan does between the weekly forecasts (``run_policy(forecast_as_of=...)``)."""
    from ml.policy import run_policy

    later = forecast_as_of is not None and forecast_as_of < as_of
    key = _cache_key(_load_id(con), as_of, {"forecast": forecast_config.to_dict(),
                                            "policy": policy_config.to_dict(), "mode": "as_written",
                                            **({} if columns == POLICY_CACHE_COLUMNS else {"columns": list(columns)}),
                                            **({"forecast_as_of": forecast_as_of.isoformat()} if later else {})})
    path = cache_dir / f"policy_{key}.parquet" if cache_dir is not None else None
    if path is not None and path.exists():
        return pl.read_parquet(path), 0.0
    t0 = time.perf_counter()
    ltd, forecast = forecast_run(con, forecast_config, forecast_as_of if later else as_of, cache_dir)
    pol = run_policy(con, ltd, forecast, policy_config, as_of=as_of,
                     forecast_as_of=forecast_as_of if later else None).inventory_policy
    pol = pol.select(*[c for c in columns if c in pol.columns])
    if path is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        pol.write_parquet(path)
    return pol, time.perf_counter() - t0


def _without_speed_settings(config_dict: dict) -> dict:
    """``config_dict`` (a forecast configuration, or a dict holding one under ``"forecast"``) without the
    :data:`SPEED_ONLY_SETTINGS`."""
    if isinstance(config_dict.get("forecast"), dict):
        return {**config_dict, "forecast": _without_speed_settings(config_dict["forecast"])}
    return {k: v for k, v in config_dict.items() if k not in SPEED_ONLY_SETTINGS}


def _forecast_run_paths(load_id: str, forecast_config, as_of: date, cache_dir: Path) -> tuple[Path, Path]:
    key = _cache_key(load_id, as_of, {"forecast": forecast_config.to_dict(), "mode": "forecast_run"}, policy=False)
    return cache_dir / f"ltd_{key}.parquet", cache_dir / f"demand_{key}.parquet"


def _write_atomically(frame: pl.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` through a temporary file, so a killed run never leaves half a cache entry."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, path)


def forecast_run(con, forecast_config, as_of: date, cache_dir: Path | None) -> tuple[LeadTimeDemand, pl.DataFrame]:
    """(lead-time demand, demand forecast) of ``run_forecasting`` as of ``as_of``: everything ``run_policy`` reads
    from forecasting. Cached losslessly (``LeadTimeDemand.to_samples_frame``) keyed by the load and the forecast
    configuration only, so a study that changes only the policy settings re-plans without forecasting again."""
    from ml.forecasting import run_forecasting

    paths = _forecast_run_paths(_load_id(con), forecast_config, as_of, cache_dir) if cache_dir is not None else None
    if paths is not None and all(p.exists() for p in paths):
        return LeadTimeDemand.from_samples_frame(pl.read_parquet(paths[0])), pl.read_parquet(paths[1])
    run = run_forecasting(con, forecast_config, as_of=as_of, progress=False)
    # the policy always reads the round-tripped form, so a cached and a fresh re-plan are the same to the bit
    samples = run.lead_time_demand.to_samples_frame()
    if paths is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(samples, paths[0])
        _write_atomically(run.demand_forecast, paths[1])
    return LeadTimeDemand.from_samples_frame(samples), run.demand_forecast


def prefetch_forecast_runs(warehouse: Path | str, forecast_config, as_ofs: Sequence[date], cache_dir: Path | None,
                           *, workers: int | None = None, level: int = logging.INFO) -> int:
    """Run the forecasting a study will read (:func:`forecast_run` at each of ``as_ofs``) into the cache, several
    runs at once, before the replay asks for them one planning date at a time. Returns the runs made.

    Each run is independent of the others (it reads the warehouse as of its own day), so they go to ``workers``
    processes (default: one per core, at most one per run), each with ``num_threads`` split between them. On
    2 cores two single-threaded runs finish sooner than two two-threaded runs one after the other: LightGBM keeps
    only about 1.5 cores busy, and the rest of a run is single-threaded Python. The results are the same to the
    bit (the thread count is a :data:`SPEED_ONLY_SETTINGS`). Runs already cached are skipped; with one worker (or
    one run to make) nothing is prefetched and the study forecasts as it goes. With the Dask forecasting engine
    the cluster is the parallelism: nothing is prefetched either (each worker process would start a cluster)."""
    from ml.warehouse import connect

    if cache_dir is None or not as_ofs or getattr(forecast_config, "engine", "local") == "dask":
        return 0
    with connect(warehouse, read_only=True) as con:
        load_id = _load_id(con)
    cold = sorted({d for d in as_ofs
                   if not all(p.exists() for p in _forecast_run_paths(load_id, forecast_config, d, cache_dir))})
    n_workers = min(int(workers) if workers else (os.cpu_count() or 1), len(cold))
    if n_workers <= 1:
        return 0
    threads = max(1, int(forecast_config.num_threads) // n_workers)
    config = forecast_config.to_dict() | {"num_threads": threads}
    log.log(level, "backtest: forecasting at %d dates in %d processes (%d LightGBM thread%s each)", len(cold),
            n_workers, threads, "" if threads == 1 else "s")
    t0 = time.perf_counter()
    done = 0
    pool = ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        pending = {pool.submit(_forecast_run_into_cache, str(warehouse), config, d, str(cache_dir)): d for d in cold}
        for future in as_completed(pending):
            future.result()
            done += 1
            log.log(level, "backtest: forecast as of %s ready (%d of %d, %.0f s)", pending[future], done, len(cold),
                    time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001 - only a speed-up: the replay makes what is missing itself
        # (a run that fails for its data fails again there, in this process, with its own message; a worker the
        # system killed for memory leaves the rest to this one process)
        log.warning("backtest: forecasting ahead in %d processes stopped after %d of %d runs (%s: %s); the replay "
                    "forecasts the rest one planning date at a time", n_workers, done, len(cold),
                    type(exc).__name__, exc)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return done


def _forecast_run_into_cache(warehouse: str, config: dict, as_of: date, cache_dir: str) -> None:
    """One prefetch run, in a worker process (:func:`prefetch_forecast_runs`)."""
    from ml.forecasting import ForecastConfig
    from ml.warehouse import connect

    with connect(warehouse, read_only=True) as con:
        forecast_run(con, ForecastConfig.from_dict(config), as_of, Path(cache_dir))


def _load_id(con) -> str:
    try:
        return str(con.execute("select coalesce(max(load_id), '') from raw.landing_files").fetchall()[0][0])
    except Exception:  # noqa: BLE001 - a warehouse without the raw load table still works, uncached by load
        return ""


def _daily_matrix(forecast: pl.DataFrame, keys: pl.DataFrame, as_of: date, horizon: int) -> np.ndarray:
    """(n_keys, horizon) mean forecast per day after as_of (period rows spread evenly over their days); NaN rows
    for keys without a forecast."""
    n = keys.height
    out = np.full((n, horizon), np.nan)
    f = forecast.with_columns(
        ((pl.col("period_end") - pl.col("period_start")).dt.total_days() + 1).alias("len"),
        (pl.col("period_start") - pl.lit(as_of)).dt.total_days().alias("d0"))
    idx = keys.select("product_id", "location_id").with_row_index("_i")
    f = f.join(idx, on=["product_id", "location_id"], how="inner")
    if f.height == 0:
        return out
    rows_with = np.unique(f["_i"].to_numpy())
    out[rows_with] = 0.0
    # expand periods to days (daily grain: len 1)
    f = f.with_columns((pl.col("forecast") / pl.col("len")).alias("rate")).with_columns(
        pl.int_ranges(pl.col("d0"), pl.col("d0") + pl.col("len")).alias("day")).explode("day").filter(
        (pl.col("day") >= 1) & (pl.col("day") <= horizon))
    out[f["_i"].to_numpy(), f["day"].to_numpy() - 1] = f["rate"].to_numpy()
    # days past the forecast horizon: the mean of its last 28 days
    last = f.group_by("_i").agg(pl.col("day").max())
    for i, dmax in last.iter_rows():
        if dmax < horizon:
            out[i, dmax:] = out[i, max(0, dmax - 28):dmax].mean()
    return out


def daily_dispersion(history: np.ndarray, window_days: int = 365, local_days: int = 28) -> np.ndarray:
    """Index of dispersion of day-to-day demand around its local level, per row of ``history`` (days in columns),
    >= 1 (Poisson days).

    Over the last ``window_days``: sum of (x_t - m_t)^2 / sum of m_t, with m_t the centred ``local_days`` moving
    mean (a season or a level shift moves m_t, not the residual), times local_days / (local_days - 1) for the
    mean estimated in the same window. This is the part of the variance that adds up over the days of an interval
    (Poisson arrivals, several units per customer, weekday swings); the level error of a forecast is not in it.
    Rows without demand get 1.
    """
    x = np.asarray(history, dtype=np.float64)[:, -window_days:]
    n, t = x.shape
    if t < 2:
        return np.ones(n)
    k = min(local_days, t)
    c = np.concatenate([np.zeros((n, 1)), np.cumsum(x, axis=1)], axis=1)
    i = np.arange(t)
    lo = np.clip(i - k // 2, 0, t - k)
    m = (c[:, lo + k] - c[:, lo]) / k
    num = ((x - m) ** 2).sum(axis=1) * k / max(k - 1, 1)
    den = m.sum(axis=1)
    with np.errstate(all="ignore"):
        phi = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    return np.maximum(np.nan_to_num(phi, nan=1.0), 1.0)


def naive_level_error(history: np.ndarray, interval_days: np.ndarray, phi_d: np.ndarray, *, window_days: int = 365,
                      level_days: int = 28, step_days: int = 7) -> np.ndarray:
    """Squared relative level error of a naive forecast over an interval, per row, from the row's own history.

    For origins t every ``step_days`` days in the last ``window_days`` (the interval inside the history): forecast
    = the mean of the ``level_days`` days before t times the interval length P, actual = demand over days
    t .. t+P-1. c2 = (mean squared error - phi_d x mean actual) / mean actual^2, >= 0: the error left after the
    day-to-day noise, i.e. how far the demand level moved over P days. It bounds the level error a forecast
    should be charged with (a forecast worse than a flat trailing mean is not a reason to stock more). Rows
    without demand or too little history give +inf (no bound)."""
    x = np.asarray(history, dtype=np.float64)[:, -window_days:]
    n, t = x.shape
    out = np.full(n, np.inf)
    c = np.concatenate([np.zeros((n, 1)), np.cumsum(x, axis=1)], axis=1)
    p_all = np.maximum(np.rint(np.asarray(interval_days, dtype=np.float64)), 1).astype(np.int64)
    for p in np.unique(p_all):
        rows = np.flatnonzero(p_all == p)
        origins = np.arange(level_days, t - p + 1, step_days)
        if origins.size < 4:
            continue
        actual = c[np.ix_(rows, origins + p)] - c[np.ix_(rows, origins)]
        level = (c[np.ix_(rows, origins)] - c[np.ix_(rows, origins - level_days)]) / level_days
        err2 = ((actual - level * p) ** 2).mean(axis=1)
        ma = actual.mean(axis=1)
        with np.errstate(all="ignore"):
            c2 = np.where(ma > 0, np.maximum(err2 - phi_d[rows] * ma, 0.0) / np.where(ma > 0, ma, 1.0) ** 2, np.inf)
        out[rows] = c2
    return out


def _mixed_samples(rng: np.random.Generator, m: np.ndarray, phi_d: np.ndarray, c2_level: np.ndarray) -> np.ndarray:
    """Demand samples with mean ``m`` (n, k) and variance phi_d m + c2_level m^2 (plus the tiny phi_d c2 m^2 of
    mixing): a gamma level factor G (mean 1, squared CV c2_level) shared by the interval, then a negative
    binomial with mean G m and variance phi_d G m (Poisson where phi_d = 1)."""
    c2 = np.clip(c2_level, 0.0, None)[:, None]
    has = c2 > 1e-9
    g = np.where(has, rng.gamma(np.where(has, 1.0 / np.where(has, c2, 1.0), 1.0), np.where(has, c2, 1.0),
                                size=m.shape), 1.0)
    lam_mean = np.maximum(m * g, 0.0)
    extra = np.clip(phi_d - 1.0, 0.0, None)[:, None]
    over = np.broadcast_to(extra > 1e-9, m.shape)
    shape = np.where(over, lam_mean / np.where(extra > 1e-9, extra, 1.0), 1.0)
    lam = np.where(over & (shape > 0), rng.gamma(np.where(shape > 0, shape, 1.0), np.where(over, extra, 1.0)),
                   lam_mean)
    lam = np.where(over & (shape <= 0), 0.0, lam)
    return rng.poisson(lam).astype(np.float64)


def lead_time_demand_for_simulation(
    snapshot: ForecastSnapshot, keys: pl.DataFrame, lead_times: LeadTimeModel, review_period: np.ndarray,
    as_of: date, *, n_samples: int, seed: int, dispersion: str = "mixed", history: np.ndarray | None = None,
) -> tuple[LeadTimeDemand, np.ndarray]:
    """The pipeline's forecast re-expressed over the simulation's protection interval (module doc, step 2).

    ``dispersion``: 'mixed' (default: daily noise from ``history`` scaling with the interval + the pipeline's
    remaining extra variance as a persistent level error), 'quadratic' or 'linear' (module doc). ``history``:
    (n_keys, days) recorded daily sales up to ``as_of`` (what the planner may see), needed by 'mixed' (without
    it the daily index of dispersion is taken as 1, i.e. Poisson days).

    Returns the LeadTimeDemand of the simulated series that have a forecast and their row indices in ``keys``.
    """
    pmf = np.asarray(lead_times.pmf, dtype=np.float64)
    group = np.asarray(lead_times.group)
    max_p = int(pmf.shape[1] - 1 + np.max(review_period)) + 1
    daily = _daily_matrix(snapshot.forecast, keys, as_of, max_p)
    has = ~np.isnan(daily[:, 0])
    rows = np.flatnonzero(has)
    disp = keys.select("product_id", "location_id").join(snapshot.dispersion, on=["product_id", "location_id"],
                                                         how="left", maintain_order="left")
    phi = disp["phi"].fill_null(1.0).to_numpy()[rows]
    cv2 = disp["cv2"].fill_null(0.0).to_numpy()[rows] if "cv2" in disp.columns else np.zeros(rows.size)
    rng = np.random.default_rng(np.random.SeedSequence([seed, as_of.toordinal()]))
    # lead-time draws per series from its group's pmf (0 days counts as 1, as in the engine)
    cdf = np.cumsum(pmf, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random((rows.size, n_samples))
    lt = np.empty((rows.size, n_samples), dtype=np.int64)
    for g in np.unique(group[rows]):
        sel = group[rows] == g
        lt[sel] = np.searchsorted(cdf[g], u[sel], side="right")
    lt = np.maximum(lt, 1)
    p = np.clip(lt + review_period[rows, None].astype(np.int64) - 1, 1, max_p)  # demand_distribution.exposure_days
    cum = np.cumsum(daily[rows], axis=1)
    m = np.take_along_axis(cum, p - 1, axis=1)
    m = np.maximum(m, 0.0)
    samples = np.zeros_like(m)
    if dispersion == "mixed":
        # variance over the interval = phi_d M (day-to-day noise, adds up over days) + c2_level M^2 (level error
        # of the forecast, persists over the interval); c2_level = what the pipeline's short-interval samples
        # have beyond the daily noise: (var_s - phi_d m_s) / m_s^2 >= 0
        phi_d = (daily_dispersion(history[rows]) if history is not None else np.ones(rows.size))
        m_s = disp["ltd_mean"].fill_null(0.0).to_numpy()[rows] if "ltd_mean" in disp.columns else None
        v_s = disp["ltd_var"].fill_null(0.0).to_numpy()[rows] if "ltd_var" in disp.columns else None
        if m_s is None or v_s is None:  # a snapshot without the pipeline's moments: all of cv2 as level error
            c2_level = cv2
        else:
            with np.errstate(all="ignore"):
                c2_level = np.where(m_s > 0, np.maximum(v_s - phi_d * m_s, 0.0) / np.where(m_s > 0, m_s, 1.0)**2,
                                    0.0)
        if history is not None:  # the level error over P is at most that of a flat trailing mean (naive_level_error)
            c2_level = np.minimum(c2_level, naive_level_error(history[rows], p.mean(axis=1), phi_d))
        samples = _mixed_samples(rng, m, phi_d, np.nan_to_num(c2_level, nan=0.0))
    elif dispersion == "linear":
        # negative binomial with mean m, variance phi m (Poisson where phi == 1)
        over = phi > 1.0 + 1e-9
        pois = ~over
        if pois.any():
            samples[pois] = rng.poisson(m[pois])
        if over.any():
            r = m[over] / (phi[over, None] - 1.0)
            pos = r > 0
            lam = rng.gamma(np.where(pos, r, 1.0), np.where(pos, (phi[over, None] - 1.0), 0.0))
            samples[over] = np.where(pos, rng.poisson(lam), 0.0)
    elif dispersion == "quadratic":
        # gamma-Poisson: a relative level error with squared CV c2 that persists over the interval
        # (variance m + c2 m^2), c2 from the pipeline's samples: (var - mean) / mean^2, >= 0
        c2 = np.clip(cv2[:, None], 1e-6, None)
        lam = rng.gamma(1.0 / c2, c2 * np.maximum(m, 1e-12))
        samples = rng.poisson(lam).astype(np.float64)
    else:
        raise ValueError(f"dispersion must be 'mixed', 'quadratic' or 'linear', not {dispersion!r}")
    mean_lt = (pmf * np.arange(pmf.shape[1])).sum(axis=1)[group[rows]]
    p90 = np.argmax(cdf >= 0.9, axis=1)[group[rows]].astype(np.float64)
    horizon_days = min(91, max_p)
    ltd = LeadTimeDemand(
        keys=keys[rows].select("product_id", "location_id"),
        samples=samples.astype(np.float64),
        daily_demand_mean=daily[rows, :horizon_days].mean(axis=1),
        lead_time_mean_days=np.maximum(mean_lt, 1.0).astype(np.float64),
        lead_time_p90_days=np.maximum(p90, 1.0),
        review_period_days=review_period[rows].astype(np.float64),
        lead_time_source=np.full(rows.size, "simulation:supplier", dtype=object),
    )
    return ltd, rows


@dataclass
class StockturnPlanner:
    """A :data:`~ml.simulation.planning.Planner` that re-runs forecasting and policy at each planning date.

    Args:
        warehouse: DuckDB warehouse the pipeline reads (opened read-only at each planning date).
        keys: the simulated series (product_id, location_id, supplier_moq, supplier_pack_size, ...), row i =
            series i.
        start: calendar date of simulation day 0 (a plan taking effect on day k is made as of day k - 1).
        forecast_config / policy_config: pipeline configurations (``replay_forecast_config()`` by default).
        review_period: days between reviews (default 1: the pipeline's store review period).
        ordering_cost: cost per order line used for the EOQ (the supplier's: ``PolicyConfig.ordering_cost_per_line``).
        fallback: planner for series the pipeline does not forecast (e.g. inactive products); counted in
            ``stats``.
        cache_dir: forecast cache folder (None = no cache).
    """

    warehouse: Path | str
    keys: pl.DataFrame
    start: date
    forecast_config: object | None = None
    policy_config: object | None = None
    review_period: int = 1
    ordering_cost: float | None = None
    n_samples: int = 1000
    seed: int = 7
    dispersion: str = "mixed"
    fallback: object | None = None
    cache_dir: Path | None = None
    stats: list[dict] = field(default_factory=list)
    targets: list[pl.DataFrame] = field(default_factory=list)
    direct: bool = False
    #: the days forecasting runs (sorted, the first 0). On another day the plan as written (``direct``) is
    #: re-planned from the latest of them; the re-expressed plan is kept from it
    forecast_days: tuple[int, ...] = (0,)
    _kept: dict[int, PlanParams] = field(default_factory=dict)

    def _replay_as_written(self, ctx: PlanningContext, pol: pl.DataFrame, as_of: date, seconds: float,
                           t0: float) -> PlanParams:
        """The pipeline's own reorder point and order quantity per series, exactly as ``ml.inventory_policy``
        holds them at ``as_of`` (``direct`` mode); series without a row use the fallback planner."""
        n = self.keys.height
        joined = self.keys.select("product_id", "location_id").join(
            pol, on=["product_id", "location_id"], how="left", maintain_order="left")
        has = joined["reorder_point"].is_not_null().to_numpy()
        rows = np.flatnonzero(has)
        r = joined["reorder_point"].to_numpy()[rows].astype(np.float64)
        q = joined["order_quantity"].to_numpy()[rows].astype(np.float64)
        s_all, big_all = np.zeros(n), np.zeros(n)
        missing = np.flatnonzero(~has)
        if missing.size:
            if self.fallback is None:
                raise ValueError(f"{missing.size} simulated series have no policy row and no fallback planner")
            fb = self.fallback(ctx)
            s_all[missing] = np.broadcast_to(np.asarray(fb.reorder_point, dtype=np.float64), (n,))[missing]
            big_all[missing] = np.broadcast_to(np.asarray(fb.order_up_to, dtype=np.float64), (n,))[missing]
        s_all[rows], big_all[rows] = r, r + q
        self.targets.append(pl.DataFrame({
            "day": np.full(rows.size, ctx.day, dtype=np.int64), "series": rows.astype(np.int64),
            "service_metric": joined["service_metric"].to_numpy()[rows],
            "service_target": joined["service_target"].to_numpy()[rows].astype(np.float64),
            "expected_fill_rate": joined["expected_fill_rate"].to_numpy()[rows].astype(np.float64),
            "daily_demand_forecast": joined["daily_demand_forecast"].to_numpy()[rows].astype(np.float64),
            "reorder_point": r, "order_quantity": q}))
        self.stats.append({"day": ctx.day, "as_of": as_of.isoformat(), "forecast_seconds": round(seconds, 1),
                           "plan_seconds": round(time.perf_counter() - t0, 1), "series_planned": int(rows.size),
                           "series_fallback": int(missing.size), "mode": "as_written"})
        log.info("stockturn plan as of %s (ml.inventory_policy as written): %d series (%d fallback), %.0f s%s",
                 as_of, rows.size, missing.size, time.perf_counter() - t0, " (cached)" if seconds == 0 else "")
        return PlanParams(reorder_point=s_all, order_up_to=big_all,
                          moq=self.keys["supplier_moq"].to_numpy().astype(np.float64),
                          pack_size=self.keys["supplier_pack_size"].to_numpy().astype(np.float64),
                          review_period=self.review_period)

    def __call__(self, ctx: PlanningContext) -> PlanParams:
        from ml.policy import PolicyConfig, inventory_math, run_policy
        from ml.warehouse import connect

        fcfg = self.forecast_config or replay_forecast_config()
        pcfg = self.policy_config or PolicyConfig()
        k_order = pcfg.ordering_cost_per_line if self.ordering_cost is None else self.ordering_cost
        as_of = self.start + timedelta(days=ctx.day - 1)
        made_day = forecast_day(ctx.day, self.forecast_days)
        n = self.keys.height
        t0 = time.perf_counter()
        if self.direct:
            with connect(self.warehouse, read_only=True) as con:
                pol, seconds = pipeline_policy(con, fcfg, pcfg, as_of, self.cache_dir,
                                               forecast_as_of=self.start + timedelta(days=made_day - 1))
            return self._replay_as_written(ctx, pol, as_of, seconds, t0)
        if made_day != ctx.day and made_day in self._kept:
            return self._kept[made_day]
        with connect(self.warehouse, read_only=True) as con:
            snap = forecast_snapshot(con, fcfg, as_of, self.cache_dir)
            review = np.full(n, float(self.review_period))
            ltd, rows = lead_time_demand_for_simulation(snap, self.keys, ctx.lead_times, review, as_of,
                                                        n_samples=self.n_samples, seed=self.seed,
                                                        dispersion=self.dispersion,
                                                        history=np.asarray(ctx.observed, dtype=np.float64))
            pol = run_policy(con, ltd, snap.forecast, pcfg, as_of=as_of).inventory_policy
        pol = ltd.keys.join(pol, on=["product_id", "location_id"], how="left", maintain_order="left")
        moq = self.keys["supplier_moq"].to_numpy().astype(np.float64)[rows]
        pack = self.keys["supplier_pack_size"].to_numpy().astype(np.float64)[rows]
        unit_cost = pol["unit_cost"].fill_null(1.0).to_numpy()
        d_fc = np.asarray(ltd.daily_demand_mean, dtype=np.float64)
        _, q = inventory_math.order_quantity(d_fc, unit_cost, np.full(rows.size, k_order),
                                             annual_holding_rate=pcfg.annual_holding_rate,
                                             min_cover_days=pcfg.min_order_cover_days,
                                             max_cover_days=pcfg.max_order_cover_days, moq=moq, pack_size=pack,
                                             days_per_year=pcfg.days_per_year)
        is_fill = (pol["service_metric"].fill_null("cycle_service_level") == "fill_rate").to_numpy()
        target = pol["service_target"].fill_null(pcfg.default_service_target).to_numpy()
        lead = ltd.lead_only()
        r, _ = inventory_math.reorder_points(ltd.samples, is_fill_rate=is_fill, target=target, q=q,
                                             csl_floor=pcfg.min_cycle_service_level, lead_samples=lead)
        expected_fill = np.asarray(inventory_math.periodic_fill_rate_from_samples(ltd.samples, lead, r, q),
                                   dtype=np.float64)
        s_all = np.zeros(n)
        big_all = np.zeros(n)
        missing = np.setdiff1d(np.arange(n), rows)
        if missing.size:
            if self.fallback is None:
                raise ValueError(f"{missing.size} simulated series have no forecast and no fallback planner")
            fb = self.fallback(ctx)
            s_fb = np.broadcast_to(np.asarray(fb.reorder_point, dtype=np.float64), (n,))
            big_fb = np.broadcast_to(np.asarray(fb.order_up_to, dtype=np.float64), (n,))
            s_all[missing], big_all[missing] = s_fb[missing], big_fb[missing]
        s_all[rows], big_all[rows] = r, r + q
        self.targets.append(pl.DataFrame({
            "day": np.full(rows.size, ctx.day, dtype=np.int64), "series": rows.astype(np.int64),
            "service_metric": pol["service_metric"].fill_null("cycle_service_level"),
            "service_target": target, "expected_fill_rate": expected_fill,
            "daily_demand_forecast": d_fc, "reorder_point": r, "order_quantity": q}))
        self.stats.append({"day": ctx.day, "as_of": as_of.isoformat(), "forecast_seconds": round(snap.seconds, 1),
                           "plan_seconds": round(time.perf_counter() - t0, 1), "series_planned": int(rows.size),
                           "series_fallback": int(missing.size)})
        log.info("stockturn plan as of %s: %d series (%d fallback), forecasting %.0f s%s, total %.0f s", as_of,
                 rows.size, missing.size, snap.seconds, " (cached)" if snap.seconds == 0 else "",
                 time.perf_counter() - t0)
        self._kept[ctx.day] = PlanParams(reorder_point=s_all, order_up_to=big_all,
                                         moq=self.keys["supplier_moq"].to_numpy().astype(np.float64),
                                         pack_size=self.keys["supplier_pack_size"].to_numpy().astype(np.float64),
                                         review_period=self.review_period)
        return self._kept[ctx.day]
