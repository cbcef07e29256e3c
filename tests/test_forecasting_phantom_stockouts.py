"""Stock-outs the book does not show (phantom stock) and stock-outs at a seasonal peak.

``censoring.phantom_stockouts`` finds runs without a sale that a series' neighbouring selling share makes
improbable; ``censoring.impute_censored`` with a ``YearIndex`` fills a peak's stock-outs at the peak's level. Small
synthetic arrays with known answers, then the whole correction on a demo panel against its true demand.
"""

from __future__ import annotations

import numpy as np
import pytest

from ml.forecasting import censoring

WINDOW = 28


def _fast_seller(t: int = 200, seed: int = 0, rate: float = 6.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.maximum(rng.poisson(rate, t), 1).astype(np.float32)  # sells every day


def _flags(values: np.ndarray, censored: np.ndarray | None = None, location: np.ndarray | None = None,
           max_probability: float = 0.001) -> np.ndarray:
    values = np.atleast_2d(values)
    if censored is None:
        censored = np.zeros(values.shape, dtype=bool)
    return censoring.phantom_stockouts(values, censored, window=WINDOW, max_probability=max_probability,
                                       location=location)


def test_a_fast_seller_that_stops_for_a_week_and_resumes_is_a_stock_out():
    y = _fast_seller()
    y[100:107] = 0.0
    flags = _flags(y)[0]
    assert flags[100:107].all()
    assert flags.sum() == 7


def test_normal_gaps_of_slow_and_lumpy_sellers_are_not_stock_outs():
    rng = np.random.default_rng(1)
    # sells on 30% of days in lots of 1-20: gaps of 8-12 days happen (0.7 ** 10 = 2.8%)
    lumpy = np.where(rng.random((200, 365)) < 0.3, rng.integers(1, 21, (200, 365)), 0).astype(np.float32)
    # three sales in a quarter: a 60-day gap bounded by two of them is normal
    slow = np.zeros((1, 120), dtype=np.float32)
    slow[0, [10, 70, 100]] = 1.0
    flags = _flags(lumpy)
    # max_probability is the false-alarm rate per run: runs judged phantom stay near it
    zero = (lumpy == 0).astype(np.int8)
    runs = ((np.diff(np.pad(zero, ((0, 0), (1, 0))), axis=1)) == 1).sum()
    flagged_runs = (np.diff(np.pad(flags.astype(np.int8), ((0, 0), (1, 0))), axis=1) == 1).sum()
    assert flagged_runs / runs < 0.003
    assert flags.mean() < 0.005
    assert not _flags(slow).any()


def test_a_run_still_open_at_the_end_is_not_judged():
    y = _fast_seller()
    y[180:] = 0.0  # may be a product that stopped selling
    assert not _flags(y).any()


def test_a_run_bounded_by_a_recorded_stock_out_is_judged():
    y = _fast_seller()
    censored = np.zeros(y.shape, dtype=bool)
    y[100:106] = 0.0
    censored[106:110] = True
    y[106:110] = 0.0
    flags = _flags(y, censored[None, :])[0]
    assert flags[100:106].all() and not flags[106:110].any()  # recorded ones stay recorded, not phantom


def test_closed_store_days_are_not_stock_outs_and_do_not_break_a_run():
    rng = np.random.default_rng(2)
    values = np.maximum(rng.poisson(6.0, (3, 200)), 1).astype(np.float32)
    location = np.array([0, 0, 1])
    values[:2, 50:53] = 0.0  # location 0 closed for three days: every series of it sells nothing
    values[0, 120:124] = 0.0
    values[1, 122] = 0.0  # location 0 closed on day 122 only
    values[:2, 122] = 0.0
    values[0, 124:127] = 0.0  # series 0: six days without a sale around the closure
    flags = _flags(values, location=location)
    assert not flags[:, 50:53].any()
    assert not flags[:, 122].any()
    assert flags[0, [120, 121, 123, 124, 125, 126]].all()
    # without the location the closure looks like a stock-out of every series
    assert _flags(values)[:2, 50:53].all()


def test_phantom_stock_outs_are_corrected_like_recorded_ones():
    y = _fast_seller()[None, :]
    y[0, 100:107] = 0.0
    censored = np.zeros(y.shape, dtype=bool)
    phantom = _flags(y)
    kw = dict(window=WINDOW, season=1, phase=None)
    without, _ = censoring.correct(y, censored, "impute", **kw)
    with_, weight = censoring.correct(y, censored, "impute", phantom=phantom, **kw)
    assert (without[0, 100:107] == 0).all()
    assert with_[0, 100:107] == pytest.approx(np.full(7, y[0, 60:140][y[0, 60:140] > 0].mean()), rel=0.15)
    excluded, w_exc = censoring.correct(y, censored, "exclude", phantom=phantom, **kw)
    assert (w_exc[0, 100:107] == 0).all() and (weight[0, 100:107] == 1).all()


def test_the_yearly_index_fills_a_peak_stock_out_at_the_peak_level():
    t, n = 728, 30
    weeks = np.minimum((np.arange(t) % 364) // 7, 51)
    index = np.ones(52)
    index[46:51] = [2.0, 3.0, 4.0, 3.0, 2.0]
    index /= index.mean()
    rng = np.random.default_rng(3)
    demand = rng.poisson(np.broadcast_to(4.0 * index[weeks], (n, t))).astype(np.float32)
    censored = np.zeros((n, t), dtype=bool)
    censored[:, 364 + 7 * 48 : 364 + 7 * 48 + 7] = True  # the peak week of the second year sold out
    sold = np.where(censored, 0.0, demand).astype(np.float32)
    kw = dict(window=WINDOW, season=1, phase=None)
    plain, _ = censoring.correct(sold, censored, "impute", **kw)
    year = censoring.YearIndex(index[None, :], np.zeros(n, dtype=np.int64), weeks)
    seasonal, _ = censoring.correct(sold, censored, "impute", year=year, **kw)
    truth = demand[censored].sum()
    assert plain[censored].sum() / truth < 0.75  # the quieter weeks around the peak pull it down
    assert seasonal[censored].sum() / truth == pytest.approx(1.0, abs=0.1)
    # off-peak stock-outs are not inflated by the index
    off = np.zeros((n, t), dtype=bool)
    off[:, 364 + 7 * 20 : 364 + 7 * 20 + 5] = True
    sold_off = np.where(off, 0.0, demand).astype(np.float32)
    seasonal_off, _ = censoring.correct(sold_off, off, "impute", year=year, **kw)
    assert seasonal_off[off].sum() / demand[off].sum() == pytest.approx(1.0, abs=0.1)


def _two_store_panel(stock_known: np.ndarray | None):
    """Six fast sellers at two stores, 120 days; series 0 sells nothing on days 60-66 (the shelf was empty while
    the book said otherwise)."""
    from datetime import date

    import polars as pl
    from scipy import sparse

    from ml.forecasting.panel import NO_PROMO, Panel, _static_codes

    n, t = 6, 120
    start = date(2024, 1, 1)
    period_start = np.datetime64(start, "D") + np.arange(t + 7)
    sales = np.stack([_fast_seller(t, seed=i) for i in range(n)])
    sales[0, 60:67] = 0.0
    keys = pl.DataFrame({"product_id": [f"P{i}" for i in range(n)], "location_id": ["S1"] * 3 + ["S2"] * 3,
                         "location_type": ["store"] * n, "category": ["C"] * n, "supplier_id": ["SUP"] * n,
                         "is_aggregate": [False] * n, "is_output": [True] * n})
    return Panel(
        keys=keys, n_base=n, agg=sparse.csr_matrix((0, n), dtype=np.float32), grain="day", native_grain="day",
        as_of=period_start[t - 1].astype(object), first_day=start, period_start=period_start,
        period_len=np.ones(t + 7, dtype=np.int64), n_hist=t, sales=sales, censored=np.zeros(sales.shape, bool),
        first=np.zeros(n, dtype=np.int64), price=np.full((n, t + 7), 5.0, np.float32),
        discount=np.zeros((n, t + 7), np.float32), promo_start=np.full((n, t + 7), NO_PROMO, np.int32),
        static=_static_codes(keys), promotion_known_days=0, stock_known=stock_known)


def test_only_series_with_stock_records_get_phantom_stock_outs_and_they_are_not_scored():
    from ml.forecasting.backtest import corrected_history, evaluation_actuals, phantom_stockouts
    from ml.forecasting.config import ForecastConfig

    config = ForecastConfig(num_threads=1)
    with_book = _two_store_panel(np.ones(6, dtype=bool))
    found = phantom_stockouts(with_book, config, 0, with_book.n_hist)
    assert found[0, 60:67].all() and found.sum() == 7
    history = corrected_history(with_book, config, with_book.n_hist)
    assert (history.target[0, 60:67] > 2.0).all()  # filled at the series' level, not left at zero
    assert not evaluation_actuals(with_book, config).mask[0, 60:67].any()  # and not scored as zero demand
    # sales-only data has no book to be wrong: the same gap stays demand
    sales_only = _two_store_panel(np.zeros(6, dtype=bool))
    assert phantom_stockouts(sales_only, config, 0, sales_only.n_hist) is None
    assert (corrected_history(sales_only, config, sales_only.n_hist).target[0, 60:67] == 0).all()
    off = ForecastConfig(num_threads=1, phantom_max_probability=None)
    assert phantom_stockouts(with_book, off, 0, with_book.n_hist) is None
