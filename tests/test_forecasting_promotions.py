"""Promotions honestly (issue 8): "known: no promotion" is not "not known".

Beyond the horizon where promotions are known (by default derived from the data: how far ahead the export lists
them), the discount feature carries the series' historical promotion intensity, not 0, and a warning says when
the history has promotions that the forecast period cannot see. Small synthetic panels (pure numpy, or a tiny
warehouse where the derivation from the promotion tables is under test).
"""

from __future__ import annotations

import calendar
import logging
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from scipy import sparse

from ml.forecasting import gbm
from ml.forecasting.backtest import corrected_history
from ml.forecasting.config import ForecastConfig
from ml.forecasting.panel import NO_PROMO, Panel, _static_codes, known_promotion_days, load_panel
from tests.forecasting_helpers import write_warehouse

START = date(2023, 1, 2)
NO_FUTURE_PROMOTION = "promotions are in the history but none is listed for the forecast period"


def _panel(sales: np.ndarray, discount: np.ndarray, promo_start: np.ndarray, period_start: np.ndarray,
           period_len: np.ndarray, *, grain: str, known_days: int) -> Panel:
    """A panel of base series at one location from arrays (history = sales' columns, future = the rest)."""
    n, n_hist = sales.shape
    keys = pl.DataFrame({
        "product_id": [f"P{i:03d}" for i in range(n)], "location_id": ["S1"] * n, "location_type": ["store"] * n,
        "category": ["C0"] * n, "supplier_id": ["SUP1"] * n, "is_aggregate": [False] * n, "is_output": [True] * n,
    })
    period_len = np.asarray(period_len, dtype=np.int64)
    first_day = period_start[0].astype(object)
    as_of = (period_start[n_hist - 1] + period_len[n_hist - 1] - 1).astype(object)
    return Panel(
        keys=keys, n_base=n, agg=sparse.csr_matrix((0, n), dtype=np.float32), grain=grain, native_grain=grain,
        as_of=as_of, first_day=first_day, period_start=period_start, period_len=period_len,
        n_hist=n_hist, sales=sales.astype(np.float32), censored=np.zeros(sales.shape, dtype=bool),
        first=np.zeros(n, dtype=np.int64), price=np.full(discount.shape, 10.0, dtype=np.float32),
        discount=discount.astype(np.float32), promo_start=promo_start.astype(np.int32), static=_static_codes(keys),
        promotion_known_days=known_days,
    )


def _promote(discount: np.ndarray, promo_start: np.ndarray, i: int, first: int, days: int, depth: float) -> None:
    discount[i, first : first + days] = depth
    promo_start[i, first : first + days] = first


def _daily_panel(*, known_days: int = 0, n_hist: int = 400, n_future: int = 100) -> Panel:
    """Three daily series: 0 promoted every 50 days (and a promotion running over the as-of date), 1 never
    promoted, 2 promoted every 100 days; no promotion listed after the as-of date (a past-only export)."""
    total = n_hist + n_future
    discount = np.zeros((3, total), np.float32)
    promo_start = np.full((3, total), NO_PROMO, np.int32)
    for t in range(5, n_hist - 10, 50):
        _promote(discount, promo_start, 0, t, 10, 0.2)
    for t in range(20, n_hist - 10, 100):
        _promote(discount, promo_start, 2, t, 7, 0.3)
    _promote(discount, promo_start, 0, n_hist - 3, 8, 0.25)  # started before as_of, runs 5 days into the future
    sales = np.random.default_rng(0).poisson(5.0, (3, n_hist))
    period_start = np.datetime64(START, "D") + np.arange(total)
    return _panel(sales, discount, promo_start, period_start, np.ones(total), grain="day", known_days=known_days)


def _intensity(panel: Panel, cutoff: int) -> np.ndarray:
    """The documented intensity: mean per-period discount over the last year before the cutoff."""
    return panel.discount[:, max(cutoff - 365, 0) : cutoff].mean(axis=1)


# ------------------------------------------------------------------------------ (a) past-only promotions


def test_past_only_promotions_carry_the_historical_intensity_and_warn():
    panel = _daily_panel()
    config = ForecastConfig()
    assert config.promotion_known_days is None and known_promotion_days(panel, config) == 0
    T = panel.n_hist
    exo = gbm.known_exogenous(panel, config, T, T, T + 60)
    disc, unknown = exo["discount"], exo["promo_unknown"]
    intensity = _intensity(panel, T)
    assert intensity[0] > 0.03 and intensity[1] == 0 and intensity[2] > 0.01
    np.testing.assert_allclose(gbm.promotion_intensity(panel, np.array([T]))[:, 0], intensity, rtol=1e-5)
    # the promotion running over the as-of date is known for its remaining 5 days...
    assert np.allclose(disc[0, :5], 0.25) and np.all(unknown[0, :5] == 0)
    # ...then series 0 and 2 carry their intensity (not 0: "not listed" is not "no promotion"), flagged unknown
    np.testing.assert_allclose(disc[0, 5:], intensity[0], rtol=1e-5)
    np.testing.assert_allclose(disc[2], intensity[2], rtol=1e-5)
    assert np.all(disc[1] == 0)  # never promoted: intensity 0
    assert np.all(unknown[:, 5:] == 1) and np.all(unknown[2] == 1)
    # history periods keep their recorded discounts
    hist = gbm.known_exogenous(panel, config, T, T - 100, T)
    assert np.array_equal(hist["discount"], panel.discount[:, T - 100 : T]) and not hist["promo_unknown"].any()
    # the pipeline can report it
    warnings = gbm.exogenous_warnings(panel, config)
    assert len(warnings) == 1 and warnings[0].startswith(NO_FUTURE_PROMOTION)
    assert str(panel.as_of) in warnings[0]


def test_intensity_at_a_backtest_origin_uses_only_the_year_before_it():
    panel = _daily_panel()
    cutoff = 300
    exo = gbm.known_exogenous(panel, ForecastConfig(), cutoff, cutoff, cutoff + 30)
    # known horizon 0: series 2's promotion starting on day 320 is not known at the origin (end of day 299)
    np.testing.assert_allclose(exo["discount"][2], _intensity(panel, cutoff)[2], rtol=1e-5)
    # a year back from a young origin: only the periods there are
    np.testing.assert_allclose(gbm.promotion_intensity(panel, np.array([100]))[:, 0],
                               panel.discount[:, :100].mean(axis=1), rtol=1e-5)


def test_no_promotion_history_no_warning_and_no_unknown_training_rows():
    panel = _daily_panel()
    panel.discount[:] = 0
    panel.promo_start[:] = NO_PROMO
    config = ForecastConfig()
    assert gbm.exogenous_warnings(panel, config) == []
    cols = {"discount": np.zeros((3, 50), np.float32), "promo_unknown": np.zeros((3, 50), np.float32)}
    gbm._teach_unknown_promotions(panel, config, cols, panel.n_hist - 50, panel.n_hist)
    assert not cols["discount"].any() and not cols["promo_unknown"].any()


def test_training_rows_learn_the_unknown_case():
    panel = _daily_panel()
    config = ForecastConfig()
    lo, hi = panel.n_hist - 200, panel.n_hist
    cols = {"discount": panel.discount[:, lo:hi].copy(), "promo_unknown": np.zeros((3, hi - lo), np.float32)}
    gbm._teach_unknown_promotions(panel, config, cols, lo, hi)
    masked = cols["promo_unknown"] == 1
    assert 0.2 < masked.mean() < 0.4  # PROMO_UNKNOWN_TRAIN_SHARE of the rows
    trailing = gbm.promotion_intensity(panel, np.arange(lo, hi))
    np.testing.assert_allclose(cols["discount"][masked], trailing[masked])
    assert np.array_equal(cols["discount"][~masked], panel.discount[:, lo:hi][~masked])
    # promotions known over the whole horizon: nothing to learn
    cols = {"discount": panel.discount[:, lo:hi].copy(), "promo_unknown": np.zeros((3, hi - lo), np.float32)}
    gbm._teach_unknown_promotions(panel, config.replace(promotion_known_days=config.max_horizon_days), cols, lo, hi)
    assert not cols["promo_unknown"].any()


# ------------------------------------------------------------------------------ (b), (c): derived from the data


def _warehouse(path: Path, promotions: list[tuple[str, str, int, int, float]], n_days: int = 400) -> date:
    """Two products at S01 with ``n_days`` of sales; promotions (id, product, first day offset from the as-of
    date, days, discount) written to the promotion tables the panel reads. Returns the as-of date."""
    sales = np.random.default_rng(1).poisson(4.0, (2, n_days)).astype(float)
    write_warehouse(path, sales, start=START)
    as_of = START + timedelta(days=n_days - 1)
    con = duckdb.connect(str(path))
    try:
        for promotion_id, product, first, days, depth in promotions:
            begin = as_of + timedelta(days=first)
            con.execute("insert into staging.stg_sales__promotions values (?, ?)", [promotion_id, begin])
            for k in range(days):
                con.execute("insert into intermediate.int_promotion_days values (?, ?, 'S01', ?, ?)",
                            [begin + timedelta(days=k), product, promotion_id, depth])
    finally:
        con.close()
    return as_of


HISTORY_PROMOTIONS = [
    ("H1", "P0000", -300, 10, 0.2), ("H2", "P0000", -200, 10, 0.2), ("H3", "P0000", -100, 10, 0.2),
    ("H4", "P0001", -250, 14, 0.3), ("H5", "P0001", -60, 14, 0.3),
]


def test_promotions_listed_30_days_ahead(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    planned = [("F1", "P0000", 6, 8, 0.3), ("F2", "P0001", 30, 10, 0.25)]  # the latest starts 30 days ahead
    as_of = _warehouse(tmp_path / "wh.duckdb", HISTORY_PROMOTIONS + planned)
    config = ForecastConfig(grain="day")
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con, \
            caplog.at_level(logging.WARNING, logger="stockturn.forecasting"):
        panel = load_panel(con, config, as_of)
    assert panel.promotion_known_days == 30 and known_promotion_days(panel, config) == 30
    assert NO_FUTURE_PROMOTION not in caplog.text
    T = panel.n_hist
    exo = gbm.known_exogenous(panel, config, T, T, T + 60)
    disc, unknown = exo["discount"], exo["promo_unknown"]
    intensity = _intensity(panel, T)
    assert intensity[0] > 0 and intensity[1] > 0
    # future column j is the day as_of + j + 1; days up to as_of + 30 are known
    within = slice(0, 30)
    expected0 = np.zeros(30)
    expected0[5:13] = 0.3  # F1: as_of + 6 ... as_of + 13
    np.testing.assert_allclose(disc[0, within], expected0, rtol=1e-6)
    assert np.all(disc[1, :29] == 0)  # known: no promotion
    assert not unknown[:, within].any()
    # F2 starts on the last known day, so it is known for all its 10 days, even past the horizon
    np.testing.assert_allclose(disc[1, 29:39], 0.25, rtol=1e-6)
    assert not unknown[1, 29:39].any()
    # later days: the intensity, flagged unknown
    np.testing.assert_allclose(disc[0, 30:], intensity[0], rtol=1e-5)
    np.testing.assert_allclose(disc[1, 39:], intensity[1], rtol=1e-5)
    assert np.all(unknown[0, 30:] == 1) and np.all(unknown[1, 39:] == 1)
    # listed 30 days ahead, less than the 91-day horizon: said so, and not as "none listed"
    warnings = gbm.exogenous_warnings(panel, config)
    assert len(warnings) == 1 and "listed only 30 days ahead" in warnings[0]


def test_derived_horizon_is_zero_when_every_promotion_starts_by_the_as_of_date(
        tmp_path: Path, caplog: pytest.LogCaptureFixture):
    # the latest starts on the as-of date and runs 9 days past it: running, but nothing is planned after as_of
    as_of = _warehouse(tmp_path / "wh.duckdb", [*HISTORY_PROMOTIONS, ("R1", "P0001", 0, 10, 0.25)])
    config = ForecastConfig(grain="day")
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con, \
            caplog.at_level(logging.WARNING, logger="stockturn.forecasting"):
        panel = load_panel(con, config, as_of)
    assert panel.promotion_known_days == 0 and known_promotion_days(panel, config) == 0
    assert NO_FUTURE_PROMOTION in caplog.text  # logged once by load_panel
    assert gbm.exogenous_warnings(panel, config)[0].startswith(NO_FUTURE_PROMOTION)
    exo = gbm.known_exogenous(panel, config, panel.n_hist, panel.n_hist, panel.n_hist + 20)
    np.testing.assert_allclose(exo["discount"][1, :9], 0.25, rtol=1e-6)  # the running promotion stays known
    np.testing.assert_allclose(exo["discount"][1, 9:], _intensity(panel, panel.n_hist)[1], rtol=1e-5)


def test_no_promotions_at_all_derive_zero_without_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    as_of = _warehouse(tmp_path / "wh.duckdb", [])
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con, \
            caplog.at_level(logging.WARNING, logger="stockturn.forecasting"):
        panel = load_panel(con, ForecastConfig(grain="day"), as_of)
    assert panel.promotion_known_days == 0 and "promotion" not in caplog.text
    assert gbm.exogenous_warnings(panel, ForecastConfig()) == []
    assert panel.subset_products(1, seed=0).promotion_known_days == 0


# ------------------------------------------------------------------------------ (d) an explicit int forces it


def test_an_explicit_known_horizon_forces_it():
    panel = _daily_panel(known_days=0)
    config = ForecastConfig.from_dict({"promotion_known_days": 10})
    assert known_promotion_days(panel, config) == 10
    T = panel.n_hist
    exo = gbm.known_exogenous(panel, config, T, T, T + 30)
    intensity = _intensity(panel, T)
    # days as_of + 1 ... as_of + 10 are read as known: series 2 has none listed there, so 0
    assert np.all(exo["discount"][2, :10] == 0) and not exo["promo_unknown"][2, :10].any()
    np.testing.assert_allclose(exo["discount"][2, 10:], intensity[2], rtol=1e-5)
    assert np.all(exo["promo_unknown"][2, 10:] == 1)
    # a forced horizon longer than the data lists is reported (the old fixed-56-days bias)
    warnings = gbm.exogenous_warnings(panel, config)
    assert any("promotion_known_days=10 is forced" in w for w in warnings)
    # 0 forces "nothing known" even when the export lists promotions ahead
    listed = _daily_panel(known_days=45)
    assert known_promotion_days(listed, ForecastConfig(promotion_known_days=0)) == 0
    assert known_promotion_days(listed, ForecastConfig()) == 45


# ------------------------------------------------------------------------------ (e) end to end


def _monthly(n: int = 80, n_hist: int = 60, n_future: int = 8, seed: int = 0):
    """Monthly series: in 30% of the months a promotion covers 30-100% of the month at 20-30% off and lifts
    demand by the covered share (x2 over a whole month); a 20% yearly season."""
    rng = np.random.default_rng(seed)
    total = n_hist + n_future
    months = [date(2019 + k // 12, k % 12 + 1, 1) for k in range(total)]
    period_start = np.array(months, dtype="datetime64[D]")
    period_len = np.array([calendar.monthrange(m.year, m.month)[1] for m in months])
    day0 = (period_start - period_start[0]).astype(np.int64)
    promoted = rng.random((n, total)) < 0.3
    cover = np.where(promoted, rng.uniform(0.3, 1.0, (n, total)), 0.0)
    discount = cover * rng.choice([0.2, 0.25, 0.3], (n, total))
    promo_start = np.where(promoted, day0 + ((1 - cover) * period_len).astype(np.int64), NO_PROMO)
    base = np.exp(rng.normal(3.5, 0.6, n))[:, None] * (1 + 0.2 * np.sin(2 * np.pi * np.arange(total) / 12))
    sales = rng.poisson(base * (1 + cover))[:, :n_hist]
    return sales, discount, promo_start, period_start, period_len, base * (1 + cover[:, :n_hist].mean())


def test_past_only_promotions_are_not_biased_low_end_to_end():
    """A past-only promotion export must forecast about the average promotional level (as the same data
    without promotions does), not the level without promotion (the old "not listed = none" reading)."""
    sales, discount, promo_start, period_start, period_len, expected = _monthly()
    n_hist, horizon = sales.shape[1], 6
    as_of_day = int((period_start[n_hist] - period_start[0]).astype(np.int64)) - 1
    past = promo_start <= as_of_day  # the export lists past promotions only
    config = ForecastConfig(censoring="none", num_threads=1)
    truth = expected[:, n_hist : n_hist + horizon].sum()

    def bias(disc: np.ndarray, start: np.ndarray, cfg: ForecastConfig) -> float:
        panel = _panel(sales, disc, start, period_start, period_len, grain="month", known_days=0)
        hist = corrected_history(panel, cfg, n_hist)
        model = gbm.fit(panel, cfg, hist, transform="scale", n_trees=120)
        return float(gbm.predict(model, panel, cfg, [hist], horizon)[0].sum() / truth - 1)

    past_only = bias(np.where(past, discount, 0), np.where(past, promo_start, NO_PROMO), config)
    without = bias(np.zeros_like(discount), np.full(promo_start.shape, NO_PROMO), config)
    old_reading = bias(np.where(past, discount, 0), np.where(past, promo_start, NO_PROMO),
                       config.replace(promotion_known_days=400))  # every unlisted month read as "no promotion"
    assert past_only > without - 0.05, (past_only, without)
    assert abs(past_only) < 0.08, past_only
    assert old_reading < past_only - 0.08, (old_reading, past_only)  # what the issue measured (-23% there)
