"""A backtest's forecasting runs made ahead of the replay in parallel processes (issue 9 §5): the same entries,
to the bit, that the replay would make one planning date at a time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ml.simulation.stockturn_planner import forecast_run, prefetch_forecast_runs, replay_forecast_config
from ml.warehouse import connect

#: LightGBM among the models (its thread count is what the prefetch changes), kept small for the suite
FORECAST = {"models": ["lightgbm", "seasonal_naive", "tsb"], "n_samples": 200, "calibration_sub_origins": 1,
            "min_train_days": 60, "lgbm_backtest_trees": 20, "lgbm_final_trees": 30}


def _as_ofs(warehouse: Path) -> list:
    with connect(warehouse, read_only=True) as con:
        last = con.execute("select max(date_day) from marts.fct_sales_daily").fetchone()[0]
    return [last - timedelta(days=60), last - timedelta(days=30)]


def test_prefetched_runs_are_the_runs_the_replay_would_make(small_warehouse: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import ml.forecasting as forecasting

    fc = replay_forecast_config(FORECAST)
    assert fc.num_threads == 2  # the replay's own setting; the two workers run with one thread each
    as_ofs = _as_ofs(small_warehouse)
    made = prefetch_forecast_runs(small_warehouse, fc, as_ofs, tmp_path, workers=2)
    assert made == 2 and len(list(tmp_path.glob("ltd_*.parquet"))) == 2
    assert not list(tmp_path.glob(".*.tmp"))  # every entry was written whole

    calls: list[int] = []
    real = forecasting.run_forecasting
    monkeypatch.setattr(forecasting, "run_forecasting", lambda *a, **k: calls.append(1) or real(*a, **k))
    with connect(small_warehouse, read_only=True) as con:
        for k, as_of in enumerate(as_ofs):
            cached_ltd, cached_demand = forecast_run(con, fc, as_of, tmp_path)
            assert len(calls) == k  # the replay reads the prefetched entry, it does not forecast again
            fresh_ltd, fresh_demand = forecast_run(con, fc, as_of, None)  # two threads, in this process
            assert len(calls) == k + 1
            assert cached_ltd.to_samples_frame().equals(fresh_ltd.to_samples_frame())
            assert cached_demand.equals(fresh_demand)
    # a second study finds everything made: nothing to prefetch
    assert prefetch_forecast_runs(small_warehouse, fc, as_ofs, tmp_path, workers=2) == 0


def test_one_worker_leaves_the_forecasting_to_the_replay(small_warehouse: Path, tmp_path: Path) -> None:
    fc = replay_forecast_config(FORECAST)
    assert prefetch_forecast_runs(small_warehouse, fc, _as_ofs(small_warehouse), tmp_path, workers=1) == 0
    assert prefetch_forecast_runs(small_warehouse, fc, _as_ofs(small_warehouse), None, workers=2) == 0
    assert not list(tmp_path.iterdir())


def test_the_thread_count_is_not_part_of_the_cache_key(small_warehouse: Path, tmp_path: Path) -> None:
    """A study re-run with another LightGBM thread count reads the same entries (the count changes the speed only,
    which the first test checks), while any setting that changes the forecast makes new ones."""
    from ml.simulation.stockturn_planner import _forecast_run_paths

    base = replay_forecast_config(FORECAST)
    as_of = _as_ofs(small_warehouse)[0]
    paths = {name: _forecast_run_paths("load", cfg, as_of, tmp_path) for name, cfg in {
        "two": base, "one": base.replace(num_threads=1), "trees": base.replace(lgbm_final_trees=31)}.items()}
    assert paths["two"] == paths["one"] != paths["trees"]


def test_a_run_that_fails_ahead_is_left_to_the_replay(small_warehouse: Path, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A forecasting run that fails in a worker (here: an as-of date before the data begins) does not stop the
    study: the prefetch says so and leaves the rest to the replay, which raises the run's own error itself."""
    import logging

    fc = replay_forecast_config(FORECAST)
    with connect(small_warehouse, read_only=True) as con:
        first = con.execute("select min(date_day) from marts.fct_sales_daily").fetchone()[0]
    too_early = first - timedelta(days=400)
    with caplog.at_level(logging.WARNING, logger="stockturn.simulation"):
        made = prefetch_forecast_runs(small_warehouse, fc, [too_early, too_early + timedelta(days=1)], tmp_path,
                                      workers=2)
    assert made == 0
    assert any("stopped after 0 of 2 runs" in r.getMessage() for r in caplog.records)
    with connect(small_warehouse, read_only=True) as con, pytest.raises(Exception):  # noqa: B017, PT011
        forecast_run(con, fc, too_early, tmp_path)
