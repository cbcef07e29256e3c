"""External signals and calendar events: availability at an origin, no look-ahead, and gating per category.

Real parts: the small demo's warehouse (its generator writes ``calendar/events`` and ``external/signals``: a
regional temperature with 7-day forecasts, holidays, local events and a pure-noise control), built by dbt.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pytest
from scipy import sparse

from ml.forecasting import ForecastConfig, gbm
from ml.forecasting import backtest as bt
from ml.forecasting import signals as sig
from ml.forecasting.panel import load_panel, mart_as_of


def _series(known: list[int], days: list[int], values: list[float], n_days: int = 10) -> sig.SignalSeries:
    key = np.array(days)
    order = np.lexsort((np.array(known), key))
    return sig.SignalSeries("x", np.array([0]), 1, key[order], np.array(known)[order],
                            np.array(values, dtype=np.float64)[order])


def test_a_value_is_used_only_once_known_and_the_latest_vintage_wins() -> None:
    # day 5: a forecast known on day 1 (10.0), a newer forecast known on day 3 (12.0), the observation on day 6
    s = _series(known=[1, 3, 6, 2], days=[5, 5, 5, 2], values=[10.0, 12.0, 11.0, 7.0])
    values_at_0, _ = sig._daily(s, origin_day=0, n_days=10)
    assert np.isnan(values_at_0).all()
    at_2, _ = sig._daily(s, 2, 10)
    assert at_2[0, 5] == 10.0 and at_2[0, 2] == 7.0
    assert sig._daily(s, 4, 10)[0][0, 5] == 12.0
    assert sig._daily(s, 6, 10)[0][0, 5] == 11.0
    assert np.isnan(sig._daily(s, 6, 10)[0][0, [0, 1, 3, 4, 6, 7, 8, 9]]).all()


def test_gating_keeps_a_group_that_cuts_the_error_and_rejects_noise() -> None:
    rng = np.random.default_rng(0)
    n_units, h = 6, 28
    category = np.array(["A", "A", "A", "B", "B", "B"])
    errors = []
    for _ in range(3):
        base = rng.gamma(2.0, 10.0, (n_units, h))
        helpful = base.copy()
        helpful[category == "A"] *= 1.25  # without the group, category A's errors are 25% larger
        noise = base * rng.uniform(0.97, 1.03, base.shape)  # without: as good, give or take
        errors.append(sig.GatingErrors(base, {"signal:help": helpful, "signal:noise": noise},
                                       np.ones((n_units, h), bool),
                                       {"signal:help": np.ones(h, bool), "signal:noise": np.ones(h, bool)}))
    gating = sig.decide(["signal:help", "signal:noise"], category, errors, seed=1, min_gain=0.005)
    assert gating.kept("signal:help") == {"A"}
    assert gating.kept("signal:noise") == set()
    row = next(r for r in gating.rows if r.group == "signal:help" and r.category == "A")
    assert row.gain == pytest.approx(0.2, abs=1e-9) and row.gain_ci_low > 0
    masks = gating.use_masks(np.array(["A", "B", "A"]))
    assert masks["signal:help"].tolist() == [True, False, True]
    assert not masks["signal:noise"].any()


@pytest.fixture(scope="module")
def corrupted_pair(small_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, date]:
    """Two copies of the small warehouse; in the second, every signal value that became known after an origin
    half a year before the end is replaced by nonsense."""
    folder = tmp_path_factory.mktemp("signals")
    clean, corrupt = folder / "clean.duckdb", folder / "corrupt.duckdb"
    shutil.copy(small_warehouse, clean)
    shutil.copy(small_warehouse, corrupt)
    with duckdb.connect(str(clean), read_only=True) as con:
        end = mart_as_of(con)
    origin = date.fromordinal(end.toordinal() - 120)
    with duckdb.connect(str(corrupt)) as con:
        changed = con.execute(
            "update staging.stg_external__signals set value = value * -37 + 1000 where known_date > ?", [origin]
        ).fetchone()[0]
    assert changed > 1000
    return clean, corrupt, origin


def _origin_forecast(warehouse: Path, origin: date) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    config = ForecastConfig(models=("seasonal_naive", "lightgbm"), lgbm_backtest_trees=40)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        panel = load_panel(con, config, mart_as_of(con))
    assert panel.signals is not None and "signal:temperature_c" in panel.signals.groups
    cutoff = int(np.searchsorted(panel.period_start, np.datetime64(origin), side="right"))
    fit = bt.fit_cutoff(panel, config, cutoff, 28, transform="scale", n_trees=40)
    hist = fit.history
    cols = gbm._columns(panel, config, hist, "scale", gbm.target_scale(panel, hist, "scale"), cutoff - 30, cutoff + 28)
    return fit.forecasts["lightgbm"], cols


def test_signal_values_known_after_the_origin_cannot_change_its_forecast(
        corrupted_pair: tuple[Path, Path, date]) -> None:
    clean, corrupt, origin = corrupted_pair
    fc_clean, cols_clean = _origin_forecast(clean, origin)
    fc_corrupt, cols_corrupt = _origin_forecast(corrupt, origin)
    np.testing.assert_array_equal(fc_clean, fc_corrupt)
    # the features really carry the signal: observed history and the 7-day forecast, then missing
    temp = cols_clean["sig_temperature_c"]
    np.testing.assert_array_equal(temp, cols_corrupt["sig_temperature_c"])
    store_rows = np.flatnonzero(~np.isnan(temp[:, 0]))
    assert len(store_rows) > 0
    future = temp[store_rows, 30:]
    assert (~np.isnan(future[:, :7])).all() and np.isnan(future[:, 7:]).all()


def test_a_corrupted_value_known_before_the_origin_does_change_it(corrupted_pair: tuple[Path, Path, date],
                                                                  tmp_path: Path) -> None:
    """The control for the test above: the same corruption one day before the origin reaches the forecast."""
    clean, _, origin = corrupted_pair
    early = tmp_path / "early.duckdb"
    shutil.copy(clean, early)
    with duckdb.connect(str(early)) as con:
        con.execute("update staging.stg_external__signals set value = value * -37 + 1000 where known_date > ?",
                    [date.fromordinal(origin.toordinal() - 10)])
    fc_clean, _ = _origin_forecast(clean, origin)
    fc_early, _ = _origin_forecast(early, origin)
    assert not np.array_equal(fc_clean, fc_early)


def test_the_forecast_gates_signals_per_category_and_a_re_fit_re_uses_the_stored_gate(
        warehouse_copy: Path) -> None:
    from ml.forecasting import run_forecasting

    config = ForecastConfig(lgbm_backtest_trees=60, lgbm_final_trees=60)
    with duckdb.connect(str(warehouse_copy), read_only=True) as con:
        as_of = mart_as_of(con)
        run = run_forecasting(con, config, progress=False)
    gating = run.summary["signal_gating"]
    groups = {r["group"] for r in gating}
    assert {"signal:temperature_c", "signal:social_buzz_index", "event:holiday", "event:local_event"} <= groups
    # the pure-noise control is never kept
    assert not [r for r in gating if r["group"] == "signal:social_buzz_index" and r["kept"]]
    for r in gating:
        if r["kept"]:
            assert r["gain"] >= 0.005 and r["gain_ci_low"] > 0
    rows = run.forecast_backtest.filter(run.forecast_backtest["level"] == "signal_gating")
    assert set(rows["metric"].unique()) >= {"gain", "gain_ci_low", "gain_ci_high", "mse_with", "mse_without"}
    assert rows.height >= len(gating) * 5
    assert not run.summary["signal_gating_reused"] and run.summary["signal_gating_decided_on"] == str(as_of)
    assert rows["origin"].unique().to_list() == [as_of]  # the decision is dated, so a later re-fit can re-use it

    # the next re-fit finds the gate in the warehouse and forecasts with its decisions, without gating again:
    # the same decisions give the same forecasts, backtest and lead-time demand
    with duckdb.connect(str(warehouse_copy)) as con:
        con.register("backtest", run.forecast_backtest)
        con.execute("create schema ml; create table ml.forecast_backtest as select * from backtest")
    with duckdb.connect(str(warehouse_copy), read_only=True) as con:
        again = run_forecasting(con, config, progress=False)
    assert again.summary["signal_gating_reused"] and again.summary["signal_gating"] == gating
    assert "signal_gating" in again.summary["seconds"]
    assert again.demand_forecast.equals(run.demand_forecast)
    assert again.forecast_backtest.equals(run.forecast_backtest)
    assert np.array_equal(again.lead_time_demand.samples, run.lead_time_demand.samples)


def _stored_gate(path: Path, decided_on: date, rows: list[tuple[str, str, float, float]]) -> Path:
    """A warehouse holding a gate: (group, category, gain, gain_ci_low) per row."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema ml; create table ml.forecast_backtest (origin date, split varchar, level varchar, "
                    "segment varchar, model varchar, metric varchar, value double, is_selected_model boolean)")
        for group, category, gain, low in rows:
            for metric, value in (("gain", gain), ("gain_ci_low", low), ("gain_ci_high", gain + 0.1),
                                  ("mse_with", 1.0), ("mse_without", 1.1), ("n_blocks", 40)):
                con.execute("insert into ml.forecast_backtest values (?, 'holdout', 'signal_gating', ?, ?, ?, ?, ?)",
                            [decided_on, category, group, metric, value, low > 0])
        con.execute("insert into ml.forecast_backtest values (?, 'holdout', 'overall', null, 'selected', 'mase', "
                    "0.8, true)", [decided_on])
    return path


def test_a_stored_gate_is_re_used_only_when_recent_earlier_and_on_the_same_groups(tmp_path: Path) -> None:
    decided = date(2025, 3, 2)
    rows = [("signal:t", "A", 0.05, 0.01), ("signal:t", "B", 0.002, 0.001), ("event:h", "A", -0.1, -0.2),
            ("event:h", "B", 0.2, 0.1)]
    wh = _stored_gate(tmp_path / "w.duckdb", decided, rows)
    groups, cats = ["signal:t", "event:h"], ["A", "B"]
    with duckdb.connect(str(wh), read_only=True) as con:
        def gate(as_of: date, max_age: int = 28, g: list[str] = groups, c: list[str] = cats,
                 min_gain: float = 0.005) -> tuple[sig.Gating | None, str]:
            return sig.stored_gating(con, as_of, max_age, g, c, min_gain)

        reused, why = gate(date(2025, 3, 9))
        assert reused is not None and reused.reused and reused.decided_on == decided and "7 days" in why
        # kept is derived again from the stored gain and its interval, with the current minimum gain
        assert {(r.group, r.category) for r in reused.rows if r.kept} == {("signal:t", "A"), ("event:h", "B")}
        assert {(r.group, r.category) for r in gate(date(2025, 3, 9), min_gain=0.001)[0].rows if r.kept} == {
            ("signal:t", "A"), ("signal:t", "B"), ("event:h", "B")}
        assert gate(date(2025, 3, 30))[0] is not None  # 28 days: still re-used
        assert gate(date(2025, 3, 31))[0] is None and "29 days old" in gate(date(2025, 3, 31))[1]
        assert gate(date(2025, 3, 1))[0] is None and "after the as-of date" in gate(date(2025, 3, 1))[1]
        assert gate(date(2025, 3, 9), max_age=0)[0] is None
        assert gate(date(2025, 3, 9), g=[*groups, "signal:new"])[0] is None  # a new feed: gate afresh
        assert gate(date(2025, 3, 9), c=["A", "B", "C"])[0] is None  # a new category: gate afresh
    with duckdb.connect(str(tmp_path / "empty.duckdb")) as con:
        assert sig.stored_gating(con, decided, 28, groups, cats, 0.005)[0] is None  # nothing stored yet


def test_a_monthly_figure_published_weeks_later_is_missing_until_published() -> None:
    """A macro indicator for a whole month, published on the 20th of the next month: its days carry the value
    only at origins on or after the publication day. A series takes, per period, the most specific scope with a
    known value: North has its own January figure, and falls back to the national one for February."""
    import polars as pl

    first = date(2024, 1, 1)
    rows = pl.DataFrame({
        "scope": ["all", "all", "region"],
        "scope_id": ["", "", "North"],
        "d0": [date(2024, 1, 1), date(2024, 2, 1), date(2024, 1, 1)],
        "d1": [date(2024, 1, 31), date(2024, 2, 29), date(2024, 1, 31)],
        "known_date": [date(2024, 2, 20), date(2024, 3, 20), date(2024, 2, 25)],
        "value": [101.0, 102.5, 99.0],
    })
    series = pl.DataFrame({"location_id": ["S1", "S2"], "category": ["A", "A"], "region": ["North", "South"]})
    s = sig._signal_series("consumer_confidence", rows, series, first, n_days=120)
    ps = sig.PanelSignals(120, [s], [], np.zeros((0, 2, 120), bool), np.array([0, 1]))
    period_start = np.arange(120)
    no_agg = sparse.csr_matrix((0, 2))

    def values(origin: date) -> np.ndarray:  # (series S1 North / S2 South, day)
        day = origin.toordinal() - first.toordinal()
        return sig.feature_columns(ps, no_agg, period_start, np.ones(120, int), day, 0, 120)["sig_consumer_confidence"]

    before = values(date(2024, 2, 19))
    assert np.isnan(before[:, :60]).all()
    at = values(date(2024, 2, 20))  # the national January figure is out; North's own on the 25th
    assert (at[:, :31] == 101.0).all() and np.isnan(at[:, 31:60]).all()
    north_out = values(date(2024, 2, 25))
    assert (north_out[0, :31] == 99.0).all() and (north_out[1, :31] == 101.0).all()
    later = values(date(2024, 3, 20))  # February: no North figure, so North falls back to the national one
    assert (later[:, 31:60] == 102.5).all() and (later[0, :31] == 99.0).all()


def test_a_shorter_forecast_is_the_start_of_a_longer_one_and_variants_share_a_history(
        small_warehouse: Path) -> None:
    """What the signal gate's shortcuts rely on (``pipeline._without_each_group`` forecasts only the periods it
    scores, and ``gbm.predict`` computes a history's columns once for all its variants): a recursive forecast's
    first periods do not depend on how far it runs, and a history passed with several signal masks gives, per
    mask, the forecast it gives alone. The control: the masks really change the forecast."""
    config = ForecastConfig(models=("seasonal_naive", "lightgbm"), lgbm_backtest_trees=40)
    with duckdb.connect(str(small_warehouse), read_only=True) as con:
        panel = load_panel(con, config, mart_as_of(con))
    cutoff = panel.n_hist - 60
    fit = bt.fit_cutoff(panel, config, cutoff, 28, transform="scale", n_trees=40)
    model, hist = fit.models["scale"], fit.history
    groups = panel.signals.groups
    every = {g: np.ones(panel.n_series, bool) for g in groups}
    variants = [every] + [{**every, g: np.zeros(panel.n_series, bool)} for g in groups]
    together = gbm.predict(model, panel, config, [hist] * len(variants), 28, uses=variants)
    for variant, joint in zip(variants, together, strict=True):
        alone_short = gbm.predict(model, panel, config, [hist], 7, uses=[variant])[0]
        np.testing.assert_array_equal(joint[:, :7], alone_short)
    np.testing.assert_array_equal(together[0], gbm.predict(model, panel, config, [hist], 28, uses=[every])[0])
    assert any(not np.array_equal(together[0], other) for other in together[1:])
