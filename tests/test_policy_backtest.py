"""The policy backtest (issue 5): stockturn's planner in the simulator, inputs, scenarios by name, write-back."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from ml.simulation.backtest import (
    BACKTEST_COLUMNS,
    COMPARISON_COLUMNS,
    SCENARIOS,
    BacktestConfig,
    _impute,
    backtest_tables,
    build_scenario,
    promise_by_segment,
    replay_inputs,
    run_backtest,
    write_backtest,
)
from ml.simulation.engine import LeadTimeModel
from ml.simulation.stockturn_planner import ForecastSnapshot, daily_dispersion, lead_time_demand_for_simulation
from ml.warehouse import connect, read_frame

AS_OF = date(2025, 3, 31)


def _snapshot(rate: float, cv2: float, phi: float, horizon: int = 60) -> tuple[ForecastSnapshot, pl.DataFrame]:
    keys = pl.DataFrame({"product_id": ["P1", "P2"], "location_id": ["S1", "S1"]})
    days = [AS_OF + timedelta(days=d) for d in range(1, horizon + 1)]
    forecast = pl.DataFrame({
        "product_id": ["P1"] * horizon, "location_id": ["S1"] * horizon, "period_start": days, "period_end": days,
        "forecast": [rate] * horizon})  # P2 has no forecast
    disp = pl.DataFrame({"product_id": ["P1"], "location_id": ["S1"], "phi": [phi], "cv2": [cv2]})
    return ForecastSnapshot(forecast, disp), keys


@pytest.mark.parametrize("dispersion", ["quadratic", "linear"])
def test_lead_time_demand_over_the_simulation_interval_has_the_stated_moments(dispersion: str) -> None:
    rate, cv2, phi, lead, review = 2.0, 0.04, 3.0, 5, 1
    snap, keys = _snapshot(rate, cv2, phi)
    lt = LeadTimeModel.fixed(2, lead)
    ltd, rows = lead_time_demand_for_simulation(snap, keys, lt, np.full(2, review), AS_OF, n_samples=200_000,
                                                seed=1, dispersion=dispersion)
    assert rows.tolist() == [0]  # the series without a forecast is left to the fallback
    m = rate * (lead + review - 1)  # reviewed at the close, received at the opening (demand_distribution.exposure_days)
    var = m + cv2 * m**2 if dispersion == "quadratic" else phi * m
    s = ltd.samples[0]
    assert abs(s.mean() - m) < 0.05
    assert abs(s.var() - var) / var < 0.03
    assert ltd.lead_time_mean_days[0] == lead and ltd.review_period_days[0] == review


def test_mixed_dispersion_adds_daily_noise_linearly_and_the_level_error_quadratically() -> None:
    # pipeline samples over a 3-day interval: mean 6, variance 6 x 2 (daily noise phi_d = 2) + 0.05 x 36 (level)
    rate, lead, review, phi_d, c2 = 2.0, 9, 1, 2.0, 0.05
    snap, keys = _snapshot(rate, 0.0, 1.0)
    m_s = 3 * rate
    disp = snap.dispersion.with_columns(pl.lit(m_s).alias("ltd_mean"),
                                        pl.lit(phi_d * m_s + c2 * m_s**2).alias("ltd_var"))
    # a history with day-to-day index of dispersion 2 around a flat level (negative binomial days), no level moves
    rng = np.random.default_rng(0)
    hist = rng.poisson(rng.gamma(rate / (phi_d - 1), phi_d - 1, size=(2, 365))).astype(float)
    ltd, _ = lead_time_demand_for_simulation(ForecastSnapshot(snap.forecast, disp), keys, LeadTimeModel.fixed(2, lead),
                                             np.full(2, review), AS_OF, n_samples=200_000, seed=3,
                                             dispersion="mixed", history=hist)
    m = rate * (lead + review - 1)
    s = ltd.samples[0]
    assert abs(s.mean() - m) / m < 0.01
    # the flat history bounds the level error by the naive forecast's (only the noise of its 28-day level
    # estimate, ~phi_d rate / 28 x P^2 = 14): variance phi_d m + ~14, below phi_d m + c2 m^2 = 60
    assert 0.95 * phi_d * m < s.var() < 0.9 * (phi_d * m + c2 * m**2)
    # without a history to bound it the pipeline's level error is kept (daily noise then taken as Poisson)
    ltd2, _ = lead_time_demand_for_simulation(ForecastSnapshot(snap.forecast, disp), keys,
                                              LeadTimeModel.fixed(2, lead), np.full(2, review), AS_OF,
                                              n_samples=200_000, seed=3, dispersion="mixed")
    c2_level = (phi_d * m_s + c2 * m_s**2 - m_s) / m_s**2
    assert abs(ltd2.samples[0].var() - (m + c2_level * m**2)) / (m + c2_level * m**2) < 0.05


def test_daily_dispersion_ignores_level_moves() -> None:
    rng = np.random.default_rng(1)
    level = np.repeat([1.0, 10.0, 1.0, 10.0], 91)  # a season: the level moves, the days are Poisson around it
    x = rng.poisson(np.tile(level, (50, 1))).astype(float)
    phi = daily_dispersion(x)
    assert np.median(phi) < 1.5  # raw var / mean of these days is ~6; only the days around the steps count
    assert np.all(daily_dispersion(np.zeros((2, 100))) == 1.0)


def test_lead_time_demand_follows_the_forecast_path_and_extends_it() -> None:
    # a forecast that steps up on day 4, shorter than the lead time: days past the horizon repeat its last 28 days
    snap, keys = _snapshot(1.0, 1e-9, 1.0, horizon=10)
    f = snap.forecast.with_columns(pl.when(pl.col("period_start") > AS_OF + timedelta(days=3)).then(3.0)
                                   .otherwise(1.0).alias("forecast"))
    lt = LeadTimeModel.fixed(2, 14)
    ltd, _ = lead_time_demand_for_simulation(ForecastSnapshot(f, snap.dispersion), keys, lt, np.ones(2), AS_OF,
                                             n_samples=50_000, seed=2)
    expected = 3 * 1.0 + 7 * 3.0 + 4 * np.mean([1.0] * 3 + [3.0] * 7)  # 14 days: 10 forecast + 4 extended
    assert abs(ltd.samples[0].mean() - expected) / expected < 0.01


def test_impute_replaces_stockout_days_with_the_local_mean() -> None:
    sales = np.array([[2.0, 2.0, 0.0, 4.0, 4.0, 0.0]])
    stockout = np.array([[False, False, True, False, False, True]])
    out = _impute(sales, stockout, half_window=1)
    assert out[0].tolist() == [2.0, 2.0, 3.0, 4.0, 4.0, 4.0]


def test_the_promise_is_reported_against_delivery_by_demand_segment() -> None:
    """Single-echelon replays (sales-only data, real panels) report promised vs delivered fill overall and per
    Syntetos-Boylan segment of the series' history before the replay; a series without demand is left out."""
    days = 120
    smooth = np.full(days, 3.0)
    intermittent = np.zeros(days)
    intermittent[::15] = 2.0
    history = np.stack([smooth, smooth, intermittent, intermittent])
    rows = pl.DataFrame({
        "series": [3, 2, 1, 0],  # any order: rows are matched to the history by series index
        "units_demanded": [30.0, 0.0, 100.0, 300.0], "units_served": [15.0, 0.0, 90.0, 297.0],
        "promised_fill": [0.97, 0.95, 0.98, 0.99], "daily_demand_forecast": [0.1, 0.1, 1.0, 3.0],
    })
    table = {r["segment"]: r for r in promise_by_segment(rows, history, "location").iter_rows(named=True)}
    assert set(table) == {"all", "smooth", "intermittent"} and {r["echelon"] for r in table.values()} == {"location"}
    assert table["smooth"]["n_series"] == 2 and table["intermittent"]["n_series"] == 1  # series 2 had no demand
    assert table["smooth"]["delivered_volume"] == pytest.approx(387 / 400)
    assert (table["smooth"]["units_demanded"], table["smooth"]["units_short"]) == (400.0, 13.0)
    assert table["smooth"]["promised_volume"] == pytest.approx((0.99 * 3 + 0.98 * 1) / 4)
    assert table["intermittent"]["delivered_item_avg"] == pytest.approx(0.5)
    assert table["all"]["n_series"] == 3 and table["all"]["delivered_item_avg"] == pytest.approx((0.99 + 0.9 + 0.5) / 3)


def test_named_scenarios_take_parameters_and_reject_unknown_ones(small_landing: Path, small_warehouse: Path) -> None:
    cfg = BacktestConfig(days=60, history_days=150)
    with connect(small_warehouse, read_only=True) as con:
        rep = replay_inputs(con, small_landing, cfg, holding_rate=0.25, ordering_cost=15.0)
    inp = rep.inputs
    for name in SCENARIOS:
        sc = build_scenario(name, {"start": "10"}, inp)
        assert sc.name == name and sc.start_day(inp) == 10
        assert sc.affected(inp).any()
    shock = build_scenario("demand_shock", {"pct": "50", "weeks": "2", "start": "7"}, inp)
    out = shock.apply(inp)
    rows = shock.affected(inp)
    assert out.demand[rows, 7:21].sum() > inp.demand[rows, 7:21].sum()
    assert np.array_equal(out.demand[:, :7], inp.demand[:, :7])
    with pytest.raises(ValueError, match="unknown parameters"):
        build_scenario("supplier_outage", {"factor": "2"}, inp)
    with pytest.raises(ValueError, match="unknown scenario"):
        build_scenario("meteor", {}, inp)


def test_inputs_without_truth_replay_recorded_sales_with_stockouts_imputed(small_landing: Path,
                                                                         small_warehouse: Path) -> None:
    cfg = BacktestConfig(days=60, history_days=150)
    with connect(small_warehouse, read_only=True) as con:
        demo = replay_inputs(con, small_landing, cfg, holding_rate=0.25, ordering_cost=15.0)
        rec = replay_inputs(con, None, cfg, holding_rate=0.25, ordering_cost=15.0)
    assert demo.demand_basis.startswith("true_demand")
    assert rec.demand_basis == "recorded_sales_stockouts_imputed"
    assert rec.inputs.start == demo.inputs.start and rec.inputs.n_days == 60
    # recorded sales are what the planners of the demo study see; imputation only adds on stock-out days
    assert rec.inputs.demand.sum() >= 0.95 * demo.observed[:, 150:].sum()
    assert np.all(rec.inputs.lead_times.mean_days() >= 1)


def test_backtest_end_to_end_on_a_small_warehouse(small_landing: Path, small_warehouse: Path,
                                                  tmp_path: Path) -> None:
    # the small demo: 48 store x product series; two planning dates (day 0 and the first of the next month)
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(small_warehouse, warehouse)
    landing = tmp_path / "landing"
    landing.symlink_to(small_landing, target_is_directory=True)
    (tmp_path / "landing_truth").symlink_to(small_landing.parent / "landing_truth", target_is_directory=True)
    cfg = BacktestConfig(days=40, history_days=150, n_boot=40, z_grid=(-1.0, 0.0, 1.0, 2.0, 3.0, 4.0),
                         forecast={"models": ["seasonal_naive", "moving_average", "tsb"], "n_samples": 200,
                                   "calibration_sub_origins": 1, "min_train_days": 60},
                         cache_dir=tmp_path / "cache", promise_warmup_days=10)
    result = run_backtest(warehouse, landing, cfg, scenarios=[("supplier_outage", {"start": "5", "weeks": "3"})],
                          progress=False)
    start = result.comparison["replay_start"][0]
    stats = result.summary["planner_stats"]
    # no look-ahead: each plan is made as of the day before it takes effect
    assert [s["as_of"] for s in stats] == [(start + timedelta(days=s["day"] - 1)).isoformat() for s in stats]
    assert len(stats) >= 2 and stats[0]["day"] == 0
    pb = result.policy_backtest
    assert set(pb["policy"]) >= {"stockturn", "classical", "perfect_foresight"}
    assert set(pb["level"]) == {"overall", "category", "echelon", "location", "product_location"}
    assert set(pb["study"]) == {"matched_service", "supplier_outage"}
    overall = pb.filter((pl.col("level") == "overall") & (pl.col("study") == "matched_service"))
    assert overall["fill_rate_volume"].is_between(0.0, 1.0).all()
    pf = overall.filter(pl.col("policy") == "perfect_foresight").row(0, named=True)
    st = overall.filter(pl.col("policy") == "stockturn").row(0, named=True)
    assert pf["avg_inventory_value"] < st["avg_inventory_value"]
    pl_rows = pb.filter((pl.col("level") == "product_location") & (pl.col("policy") == "stockturn")
                        & (pl.col("study") == "matched_service"))
    # the demo's stores are fed by its DC: both echelons are replayed (issue 9), one row per store and DC series
    s = result.summary
    assert s["planner_mode"] == "network_as_written"
    assert pl_rows.height == 48 + s["n_dc_series"] and pl_rows["product_id"].null_count() == 0
    assert set(pl_rows.filter(pl.col("location_id").str.starts_with("DC"))["product_id"]) <= set(pl_rows["product_id"])
    echelon = pb.filter((pl.col("level") == "echelon") & (pl.col("study") == "matched_service")
                        & (pl.col("policy") == "stockturn"))
    assert sorted(echelon["location_id"]) == ["dc", "store"]
    total = overall.filter(pl.col("policy") == "stockturn")["avg_inventory_value"][0]
    assert total == pytest.approx(echelon["avg_inventory_value"].sum())  # network inventory = stores + DC
    assert set(s["bullwhip"]["stockturn"]) >= {"store", "dc", "store_weekly", "dc_weekly"}
    assert {r["echelon"] for r in s["promise"]} == {"store", "dc"}
    # the promise is also measured once the plan's first supplier orders can have arrived
    assert s["warmup_days"] == 10
    sens = s["fill_sensitivity"]
    assert sens["points"] == 0.1 and set(sens) >= {"baseline_inventory_lower", "baseline_inventory_higher"}
    for row in s["promise"]:
        assert row["warmup_days"] == s["warmup_days"] and 0 < row["n_series_after_warmup"] <= row["n_series"]
        assert 0.0 <= row["delivered_volume_after_warmup"] <= 1.0
    assert s["matched_z_dc"] in BacktestConfig().dc_z_grid or not np.isfinite(s["matched_z_dc"])
    assert pb.filter(pl.col("level") == "overall")["product_id"].null_count() == pb.filter(
        pl.col("level") == "overall").height
    comp = result.comparison
    assert comp["study"].to_list() == ["matched_service", "supplier_outage"]

    tables = backtest_tables(result, as_of=start + timedelta(days=39), inputs={"test": 1})
    with connect(warehouse) as con:
        write_backtest(con, tables)
        back = read_frame(con, "select * from ml.policy_backtest")
        back_c = read_frame(con, "select * from ml.policy_backtest_comparison")
    assert back.columns[:3] == ["run_id", "as_of_date", "model_version"]
    assert list(BACKTEST_COLUMNS) == back.columns[3:]
    assert back_c.columns[:2] == ["run_id", "as_of_date"] and list(COMPARISON_COLUMNS) == back_c.columns[2:]
    assert back_c.height == 2 and back["run_id"].n_unique() == 1


def test_cli_lists_scenarios_and_explains_backtest(capsys: pytest.CaptureFixture[str]) -> None:
    from orchestration.cli import main

    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SCENARIOS)
    with pytest.raises(SystemExit):
        main(["backtest", "--help"])
    helptext = capsys.readouterr().out
    assert "--scenario" in helptext and "--param" in helptext and "matched service" in helptext
    assert main(["backtest", "--warehouse", "/nonexistent/w.duckdb"]) == 2
    assert main(["backtest", "--warehouse", "/nonexistent/w.duckdb", "--param", "weeks=2"]) == 2
