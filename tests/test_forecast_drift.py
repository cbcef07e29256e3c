"""Forecast drift (issue 11, section 1): the check that asks the weekly re-fit to come early, on a real DuckDB file
with the tables it reads, and the sensor's once-per-forecast decision."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from ml.forecasting.drift import forecast_drift
from orchestration.definitions import defs
from orchestration.defs.schedules import evaluate_drift

AS_OF = date(2025, 3, 1)


def _warehouse(path: Path, *, days: int, forecast: float, actual: float, backtest_wape: float = 0.3) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema ml; create schema marts")
        con.execute("create table ml.demand_forecast (run_id varchar, as_of_date date, product_id varchar, "
                    "location_id varchar, period_start date, period_end date, forecast double)")
        con.execute("create table ml.forecast_backtest (level varchar, model varchar, metric varchar, value double)")
        con.execute("create table marts.fct_sales_daily (date_day date, product_id varchar, location_id varchar, "
                    "units_sold double, is_stockout_day boolean)")
        con.execute("insert into ml.forecast_backtest values ('overall', 'selected', 'wape', ?), "
                    "('overall', 'selected', 'wape', ?), ('overall', 'seasonal_naive', 'wape', 0.9)",
                    [backtest_wape, backtest_wape])
        for k in range(1, 29):  # a four-week forecast, two series; a DC row the sales mart does not have
            day = AS_OF + timedelta(days=k)
            for series in ("S1", "S2", "DC1"):
                con.execute("insert into ml.demand_forecast values ('fc1', ?, 'P1', ?, ?, ?, ?)",
                            [AS_OF, series, day, day, forecast])
        for k in range(-30, days + 1):
            day = AS_OF + timedelta(days=k)
            for series in ("S1", "S2"):
                stockout = series == "S2" and k == 3  # a stock-out day is left out of the comparison
                con.execute("insert into marts.fct_sales_daily values (?, 'P1', ?, ?, ?)",
                            [day, series, 0.0 if stockout else actual, stockout])
    return path


def test_too_few_days_is_no_verdict(tmp_path: Path) -> None:
    drift = forecast_drift(duckdb.connect(str(_warehouse(tmp_path / "w.duckdb", days=5, forecast=10, actual=30)),
                                          read_only=True))
    assert not drift.drifted and drift.wape is None and "fewer than 7" in drift.reason


def test_a_forecast_on_target_has_not_drifted_and_one_twice_too_high_has(tmp_path: Path) -> None:
    good = forecast_drift(duckdb.connect(str(_warehouse(tmp_path / "good.duckdb", days=14, forecast=10, actual=10.5)),
                                         read_only=True))
    assert not good.drifted and good.days == 14 and abs(good.bias + 0.0476) < 1e-3
    assert good.expected_wape == 0.3 and abs(good.wape - 0.5 / 10.5) < 1e-9
    bad = forecast_drift(duckdb.connect(str(_warehouse(tmp_path / "bad.duckdb", days=14, forecast=20, actual=10)),
                                        read_only=True))
    assert bad.drifted and abs(bad.bias - 1.0) < 1e-9 and "re-fit" in bad.reason
    assert "WAPE above 1.5x" in bad.reason and "bias beyond" in bad.reason


def test_the_sensor_asks_for_one_refit_per_forecast(tmp_path: Path) -> None:
    wh = _warehouse(tmp_path / "w.duckdb", days=14, forecast=20, actual=10)
    cursor, decision = evaluate_drift(wh, None)
    assert isinstance(decision, dg.RunRequest) and cursor == "fc1"
    assert decision.tags["stockturn/refit_for_forecast"] == "fc1"
    # the early re-fit gates the external signals afresh, and the job accepts that run config
    assert decision.run_config["ops"]["demand_forecasting"]["config"]["forecast"] == {"signal_gating_max_age_days": 0}
    job = defs.resolve_job_def("stockturn_pipeline")
    assert dg.validate_run_config(job, decision.run_config)
    again, decision = evaluate_drift(wh, cursor)
    assert again == "fc1" and isinstance(decision, dg.SkipReason) and "already requested" in decision.skip_message
    ok = _warehouse(tmp_path / "ok.duckdb", days=14, forecast=10, actual=10)
    assert isinstance(evaluate_drift(ok, None)[1], dg.SkipReason)
    assert isinstance(evaluate_drift(tmp_path / "missing.duckdb", None)[1], dg.SkipReason)
