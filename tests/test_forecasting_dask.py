"""Forecasting on a Dask cluster (``ForecastConfig.engine = "dask"``) against the single-process engine.

A real ``distributed.LocalCluster`` of worker processes (no mocks): mlforecast's ``DistributedMLForecast``
computes the features on the workers and LightGBM's Dask learner trains across them.

What "the same forecast" means, stated as the tolerances below:

- with one worker and no row or feature sampling, the Dask engine trains on the same rows, features and bin edges
  as the local one: the forecasts are identical;
- with two workers LightGBM's data-parallel learner finds each feature's bin edges on one worker's rows, and its
  bagging draws rows per worker, so the trees differ. Two local runs that differ only in their seed differ too;
  the Dask forecast must stay within 1.5 times that seed-to-seed distance of the local one (WAPE between the
  two forecasts), its total within 2%, and its hold-out accuracy (MASE against seasonal naive) within 3%.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ml.forecasting import ForecastConfig, ltd, run_forecasting
from ml.forecasting import backtest as bt
from ml.forecasting.distributed import close_clients, map_row_blocks, row_blocks
from ml.forecasting.lead_time import LeadTimes
from ml.forecasting.ltd import SamplingSettings, lead_time_demand
from ml.forecasting.panel import load_panel, mart_as_of
from ml.planning_settings import flag_overrides, resolve_settings
from tests.forecasting_helpers import negative_binomial_panel, write_warehouse

pytest.importorskip("distributed", reason='the dask extra is not installed: pip install -e ".[dask]"')

START = date(2024, 1, 1)
FAST = ForecastConfig(
    n_origins=3, n_holdout_origins=1, lgbm_backtest_trees=25, lgbm_final_trees=30, target_transform="scale",
    calibration_sub_origins=2, n_samples=200, horizon_days=28, max_horizon_days=42, min_train_days=60,
)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 products x 2 stores + a DC, 400 days of negative-binomial demand."""
    rng = np.random.default_rng(5)
    sales = negative_binomial_panel(80, 400, seed=7, mean=np.exp(rng.normal(0.5, 0.8, 80)))
    path = write_warehouse(tmp_path_factory.mktemp("dask") / "w.duckdb", sales, start=START,
                           locations=["S01", "S02"], dc="DC01")
    yield path
    close_clients()


def _run(path: Path, config: ForecastConfig):
    with duckdb.connect(str(path), read_only=True) as con:
        return run_forecasting(con, config, progress=False)


def _mase(run) -> float:
    bt = run.forecast_backtest.filter(level="overall", split="holdout", model="selected", metric="mase")
    return float(bt.filter(pl.col("origin").is_null())["value"].item())


def _distance(a: pl.DataFrame, b: pl.DataFrame) -> tuple[float, float]:
    """(WAPE of b against a, total of b over total of a) over the same series and periods."""
    keys = ["product_id", "location_id", "period_start"]
    both = a.select(*keys, "forecast").join(b.select(*keys, "forecast"), on=keys, suffix="_b")
    assert both.height == a.height == b.height
    x, y = both["forecast"].to_numpy(), both["forecast_b"].to_numpy()
    return float(np.abs(x - y).sum() / x.sum()), float(y.sum() / x.sum())


def test_one_worker_without_sampling_gives_the_local_forecast(warehouse: Path):
    exact = FAST.replace(lgbm_bagging_fraction=1.0, lgbm_feature_fraction=1.0)
    local = _run(warehouse, exact)
    dask = _run(warehouse, exact.replace(engine="dask", dask_workers=1, dask_partitions_per_worker=3))
    assert_frame_equal(local.demand_forecast, dask.demand_forecast)
    assert_frame_equal(local.forecast_backtest, dask.forecast_backtest)
    assert np.array_equal(local.lead_time_demand.samples, dask.lead_time_demand.samples)


def test_two_workers_stay_within_the_local_engines_seed_noise(warehouse: Path):
    local = _run(warehouse, FAST)
    other_seed = _run(warehouse, FAST.replace(seed=FAST.seed + 1))
    dask = _run(warehouse, FAST.replace(engine="dask", dask_workers=2))
    noise, _ = _distance(local.demand_forecast, other_seed.demand_forecast)
    wape, total = _distance(local.demand_forecast, dask.demand_forecast)
    assert 0 < wape <= 1.5 * noise, (wape, noise)
    assert total == pytest.approx(1.0, abs=0.02)
    assert _mase(dask) == pytest.approx(_mase(local), rel=0.03)
    # the plan's inputs have the same shape and keys
    assert dask.lead_time_demand.samples.shape == local.lead_time_demand.samples.shape
    assert_frame_equal(dask.lead_time_demand.keys, local.lead_time_demand.keys)


def test_the_engine_is_one_flag_or_one_settings_key_away(tmp_path: Path):
    warehouse = tmp_path / "w.duckdb"
    overrides, sources = flag_overrides(forecast_engine="dask", dask_workers=3)
    settings = resolve_settings(warehouse=warehouse, settings_file=None, overrides=overrides,
                                override_sources=sources)
    config = settings.forecast_config()
    assert (config.engine, config.dask_workers, config.dask_address) == ("dask", 3, None)
    assert settings.sources["forecast.engine"] == "--forecast-engine"
    (tmp_path / "stockturn.toml").write_text('[forecast]\nengine = "dask"\ndask_address = "tcp://10.0.0.5:8786"\n')
    config = resolve_settings(warehouse=warehouse, settings_file=None).forecast_config()
    assert (config.engine, config.dask_address) == ("dask", "tcp://10.0.0.5:8786")
    with pytest.raises(ValueError, match="engine must be 'local' or 'dask'"):
        ForecastConfig(engine="spark")


def test_the_last_periods_are_forecast_for_every_series(warehouse: Path):
    """No series is lost or split between partitions: every output series gets every horizon period once."""
    run = _run(warehouse, FAST.replace(engine="dask", dask_workers=2, dask_partitions_per_worker=5))
    df = run.demand_forecast
    h = run.summary["horizon_periods"]
    assert df.select("product_id", "location_id").unique().height == 120
    assert df.height == 120 * h
    assert df.group_by("product_id", "location_id", "period_start").len()["len"].max() == 1
    assert df["period_start"].min() == START + timedelta(days=400)


def _ltd_inputs(n: int, seed: int = 3) -> tuple[dict[str, np.ndarray], LeadTimes, SamplingSettings]:
    """Lead-time-demand inputs of ``n`` series: forecasts, pools of error paths, two lead-time distributions."""
    rng = np.random.default_rng(seed)
    horizon = 40
    forecast = rng.gamma(1.0, 2.0, (n, horizon)).astype(np.float32)
    paths = np.concatenate([np.zeros((30, 1)), np.cumsum(rng.normal(0, 0.2, (30, horizon)), axis=1)], axis=1)
    lead_times = LeadTimes(np.array([5.0, 9.0, 3.0, 12.0]), np.array([1.0, 2.0, 3.0, 5.0]),
                           np.where(np.arange(n) % 2 == 0, 0, 2), np.where(np.arange(n) % 2 == 0, 2, 4),
                           np.array(["test"] * n, dtype=object), np.full(n, 7.0))
    history = np.where(rng.random((n, 90)) < 0.4, rng.poisson(3.0, (n, 90)), 0).astype(np.float64)
    arrays = {"forecast": forecast, "scale": forecast.mean(axis=1) + 0.1,
              "pool_start": rng.integers(0, 10, n), "pool_count": np.full(n, 20), "history": history,
              "n_observed": rng.integers(0, 91, n), "blend": rng.random(n) < 0.3}
    settings = SamplingSettings(paths=paths, x0=0.0, days_per_period=1.0, tail_periods=28, n_samples=64,
                                cap_factor=3.0, blend_weight=0.5, forecast_seed=np.random.SeedSequence([9, 1]),
                                empirical_seed=np.random.SeedSequence([9, 6]))
    return arrays, lead_times, settings


def _ltd_blocks(arrays: dict[str, np.ndarray], lead_times: LeadTimes, settings: SamplingSettings,
                config: ForecastConfig) -> list[np.ndarray]:
    n = len(arrays["forecast"])

    def block(a: int, b: int) -> dict[str, object]:
        return {**{k: v[a:b] for k, v in arrays.items()}, "lead_times": lead_times.take(slice(a, b)),
                "first_row": a}

    parts = map_row_blocks(lead_time_demand, n, block, {"settings": settings}, config, align=ltd.CHUNK)
    return [np.concatenate([getattr(p, f) for p in parts])
            for f in ("samples", "lead_samples", "empirical", "empirical_lead")]


def test_lead_time_demand_is_the_same_whatever_the_blocks(monkeypatch: pytest.MonkeyPatch):
    """Each chunk of series draws from its own stream, so cutting the series into blocks on chunk boundaries
    (as the Dask engine does) draws exactly the samples of one pass; a block that starts inside a chunk is
    refused rather than silently drawing other samples."""
    monkeypatch.setattr(ltd, "CHUNK", 16)
    arrays, lead_times, settings = _ltd_inputs(70)
    whole = lead_time_demand(**arrays, lead_times=lead_times, settings=settings)
    pieces = [lead_time_demand(**{k: v[a:b] for k, v in arrays.items()}, lead_times=lead_times.take(slice(a, b)),
                               settings=settings, first_row=a) for a, b in [(0, 16), (16, 48), (48, 70)]]
    for field in ("samples", "lead_samples", "empirical", "empirical_lead"):
        assert np.array_equal(getattr(whole, field), np.concatenate([getattr(p, field) for p in pieces])), field
    assert (whole.lead_samples <= whole.samples).all() and whole.samples.std() > 0
    with pytest.raises(ValueError, match="multiple of 16"):
        lead_time_demand(**{k: v[8:] for k, v in arrays.items()}, lead_times=lead_times.take(slice(8, 70)),
                         settings=settings, first_row=8)


def test_row_blocks_cover_every_row_once_on_chunk_boundaries():
    for n, k, align in [(10_000, 4, 2048), (5, 4, 2048), (7, 3, 1), (4096, 4, 2048), (1, 1, 1)]:
        blocks = row_blocks(n, k, align)
        assert blocks[0][0] == 0 and blocks[-1][1] == n
        assert all(b0[1] == b1[0] for b0, b1 in zip(blocks[:-1], blocks[1:], strict=True))
        assert all(a % align == 0 and b > a for a, b in blocks) and len(blocks) <= k
    assert row_blocks(10_000, 4, 2048) == [(0, 2048), (2048, 4096), (4096, 8192), (8192, 10_000)]


def test_sampling_and_local_methods_on_two_workers_match_one_process(warehouse: Path):
    """The lead-time-demand sampling of more series than one chunk, on the 2-worker cluster, gives the local
    engine's samples draw for draw; the local methods of a real panel, cut into blocks on the workers, give the
    local forecasts."""
    arrays, lead_times, settings = _ltd_inputs(2 * ltd.CHUNK + 300)
    on_workers = FAST.replace(engine="dask", dask_workers=2)
    local = _ltd_blocks(arrays, lead_times, settings, FAST)
    dask = _ltd_blocks(arrays, lead_times, settings, on_workers)
    for a, b in zip(local, dask, strict=True):
        assert np.array_equal(a, b)

    with duckdb.connect(str(warehouse), read_only=True) as con:
        panel = load_panel(con, FAST, mart_as_of(con))
    cutoff = panel.n_hist
    hist = bt.corrected_history(panel, FAST, cutoff, start=bt.history_start(panel, FAST, cutoff))
    local_fit = bt._local(panel, FAST, hist, 28)
    dask_fit = bt._local(panel, on_workers, hist, 28)
    assert local_fit.forecasts.keys() == dask_fit.forecasts.keys() and len(local_fit.forecasts) >= 3
    for name, values in local_fit.forecasts.items():
        np.testing.assert_allclose(dask_fit.forecasts[name], values, rtol=1e-6, atol=1e-9, err_msg=name)
