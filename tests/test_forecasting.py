"""``run_forecasting`` end to end: on synthetic warehouses with a known truth (grain detection, no look-ahead,
determinism) and on the small demo company's warehouse (well-formed frames for the ``ml`` tables)."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ml.demand_distribution import LTD_QUANTILE_LEVELS
from ml.forecasting import ForecastConfig, run_forecasting
from ml.forecasting.panel import detect_native_grain, load_panel
from tests.forecasting_helpers import negative_binomial_panel, write_warehouse

#: A light configuration: the logic of the default one at a fraction of the model-fitting cost.
FAST = ForecastConfig(
    n_origins=3, n_holdout_origins=1, lgbm_backtest_trees=25, lgbm_final_trees=30, target_transform="scale",
    calibration_sub_origins=2, n_samples=200, horizon_days=28, max_horizon_days=42, min_train_days=60,
)
START = date(2024, 1, 1)


@pytest.fixture(scope="module")
def daily_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 products x 2 stores + a DC, 300 days of negative-binomial demand with 5% stock-out days."""
    rng = np.random.default_rng(11)
    sales = negative_binomial_panel(24, 300, seed=3, mean=np.exp(rng.normal(0.5, 0.8, 24)))
    stockout = rng.random(sales.shape) < 0.05
    sales = np.where(stockout, np.floor(sales * 0.5), sales)
    receipts = pl.DataFrame({
        "product_id": [f"P{i % 12:04d}" for i in range(120)], "supplier_id": "SUP1", "location_id": "DC01",
        "lead_time_days": rng.integers(3, 12, 120).astype(np.int32), "quantity_received": 10.0,
        "order_date": [START + timedelta(days=int(d)) for d in rng.integers(0, 250, 120)],
    }).with_columns((pl.col("order_date") + pl.duration(days=pl.col("lead_time_days"))).alias("received_date"))
    return write_warehouse(tmp_path_factory.mktemp("fc") / "daily.duckdb", sales, start=START, stockout=stockout,
                           locations=["S01", "S02"], dc="DC01", receipts=receipts)


def _run(path: Path, config: ForecastConfig = FAST, as_of: date | None = None):
    with duckdb.connect(str(path), read_only=True) as con:
        return run_forecasting(con, config, as_of=as_of, progress=False)


def test_weekly_and_monthly_data_are_planned_at_their_own_grain(tmp_path: Path):
    weeks = negative_binomial_panel(6, 104, seed=1, mean=20.0, weekly=False)
    daily = np.zeros((6, 104 * 7))
    daily[:, ::7] = weeks  # one line per product every Monday (START is a Monday)
    path = write_warehouse(tmp_path / "weekly.duckdb", daily, start=START)
    with duckdb.connect(str(path), read_only=True) as con:
        assert detect_native_grain(con, START + timedelta(days=104 * 7 - 1)) == "week"
        panel = load_panel(con, ForecastConfig(), START + timedelta(days=104 * 7 - 1))
        assert panel.grain == "week" and panel.n_hist == 104
        assert np.allclose(panel.sales, weeks)  # each line is its own period, not a sparse day
        run = run_forecasting(con, FAST.replace(horizon_days=56, max_horizon_days=91), progress=False)
    df = run.demand_forecast
    assert set(df["grain"]) == {"week"} and df.group_by("product_id").len()["len"].to_list() == [8] * 6
    assert (df["period_start"].dt.weekday() == 1).all()  # periods start on the data's weekday (Monday)
    # a weekly forecast of ~20 units, lead-time demand of 14 days (default) + 7 review = 3 weeks ~ 60
    assert df["forecast"].mean() == pytest.approx(20, rel=0.25)
    assert run.lead_time_demand.mean().mean() == pytest.approx(60, rel=0.3)

    months = negative_binomial_panel(4, 36, seed=2, mean=50.0, weekly=False)
    starts = [date(2022 + m // 12, m % 12 + 1, 1) for m in range(36)]
    n_days = (date(2025, 1, 1) - date(2022, 1, 1)).days
    daily = np.zeros((4, n_days))
    daily[:, [(s - date(2022, 1, 1)).days for s in starts]] = months
    path = write_warehouse(tmp_path / "monthly.duckdb", daily, start=date(2022, 1, 1), fill_days=False)
    with duckdb.connect(str(path), read_only=True) as con:
        assert detect_native_grain(con, date(2024, 12, 31)) == "month"
        panel = load_panel(con, ForecastConfig(), date(2024, 12, 31))
    assert panel.grain == "month" and panel.n_hist == 36 and np.allclose(panel.sales, months)


def test_full_run_on_a_synthetic_warehouse_is_complete_and_deterministic(daily_warehouse: Path):
    run = _run(daily_warehouse)
    again = _run(daily_warehouse)
    assert_frame_equal(run.demand_forecast, again.demand_forecast)
    assert_frame_equal(run.forecast_backtest, again.forecast_backtest)
    assert np.array_equal(run.lead_time_demand.samples, again.lead_time_demand.samples)
    df = run.demand_forecast
    h = run.summary["horizon_periods"]
    # every output series (24 store series + 12 DC series) x every horizon period, nothing negative or missing
    assert df.select("product_id", "location_id").unique().height == 36
    assert df.height == 36 * h
    values = df.select(pl.col(pl.Float64))
    assert values.null_count().sum_horizontal().item() == 0 and (values.min().min_horizontal().item() >= 0)
    assert (df["q100"] <= df["q500"]).all() and (df["q500"] <= df["q900"]).all()
    assert (df["lower_95"] <= df["lower_80"]).all() and (df["upper_80"] <= df["upper_95"]).all()
    # the DC's demand is its stores' demand
    dc = df.filter(location_id="DC01").group_by("product_id").agg(pl.col("forecast").sum())
    stores = df.filter(pl.col("location_id") != "DC01").group_by("product_id").agg(pl.col("forecast").sum())
    ratio = dc.join(stores, on="product_id").select(pl.col("forecast") / pl.col("forecast_right"))
    assert ratio.to_series().median() == pytest.approx(1.0, rel=0.2)
    ltd = run.lead_time_demand.to_frame()
    assert ltd.height == 36 and set(ltd["lead_time_source"]) == {"default", "receipts:product"}
    assert ltd.filter(location_id="DC01")["review_period_days"].unique().to_list() == [7.0]
    assert (ltd.filter(location_id="DC01")["lead_time_mean_days"] > 3).all()
    bt = run.forecast_backtest
    pooled = bt.filter(level="overall", split="holdout", model="selected").filter(pl.col("origin").is_null())
    metrics = set(pooled["metric"])
    assert {"mase", "rmsse", "wape", "bias", "spl", "coverage_80", "coverage_95"} <= metrics
    assert {f"ltd_coverage_p{round(q * 100):02d}" for q in LTD_QUANTILE_LEVELS} <= metrics
    money = {m: v for m, v in pooled.select("metric", "value").iter_rows() if m.startswith(("ltd_level", "ltd_short"))}
    assert set(money) == {"ltd_level_ratio", "ltd_shortage_ratio_p80", "ltd_shortage_ratio_p90",
                          "ltd_shortage_ratio_p95", "ltd_shortage_ratio_p98"}
    assert 0.5 < money["ltd_level_ratio"] < 2.0 and money["ltd_shortage_ratio_p90"] >= 0
    assert set(bt["level"]) == {"series", "segment", "overall"}
    assert run.summary["beats_seasonal_naive"] in (True, False)


def test_no_look_ahead(daily_warehouse: Path, tmp_path: Path):
    """Changing anything dated after as_of (sales, stock-outs, receipts) leaves every output unchanged."""
    as_of = START + timedelta(days=240)
    changed = tmp_path / "changed.duckdb"
    shutil.copy(daily_warehouse, changed)
    with duckdb.connect(str(changed)) as con:
        con.execute("update marts.fct_sales_daily set units_sold = units_sold * 7 + 3, is_stockout_day = not "
                    "is_stockout_day where date_day > ?", [as_of])
        con.execute("update marts.fct_purchase_receipts set lead_time_days = 90 where received_date > ?", [as_of])
    base, other = _run(daily_warehouse, as_of=as_of), _run(changed, as_of=as_of)
    assert base.summary["as_of"] == str(as_of)
    assert base.demand_forecast["period_start"].min() == as_of + timedelta(days=1)
    assert_frame_equal(base.demand_forecast, other.demand_forecast)
    assert_frame_equal(base.forecast_backtest, other.forecast_backtest)
    assert_frame_equal(base.lead_time_demand.to_frame(), other.lead_time_demand.to_frame())


@pytest.mark.slow
def test_small_demo_warehouse(small_warehouse: Path):
    """The small demo company: stores replenished by transfer from DC01, which buys from suppliers."""
    run = _run(small_warehouse, FAST.replace(horizon_days=56, max_horizon_days=91))
    df, ltd = run.demand_forecast, run.lead_time_demand.to_frame()
    with duckdb.connect(str(small_warehouse), read_only=True) as con:
        expected = con.execute(
            """select count(*) from (select distinct product_id, location_id from marts.fct_sales_daily)
               join marts.dim_product using (product_id) where is_active and product_type = 'stock'"""
        ).fetchall()[0][0]
        n_dc = con.execute("select count(*) from marts.dim_location where location_type = 'dc'").fetchall()[0][0]
    assert n_dc == 1
    assert ltd.filter(pl.col("location_id") != "DC01").height == expected
    assert df.height == ltd.height * run.summary["horizon_periods"]
    assert (df.select(pl.col(pl.Float64)).min().min_horizontal().item()) >= 0
    sources = dict(ltd.group_by("location_id").agg(pl.col("lead_time_source").unique()).iter_rows())
    assert set(sources["DC01"]) <= {"receipts:product", "receipts:supplier", "nominal"}
    assert all(set(v) == {"transfers"} for k, v in sources.items() if k != "DC01")
    assert run.summary["horizon_days"] >= 56
