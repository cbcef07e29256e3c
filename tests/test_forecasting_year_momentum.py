"""The yearly-momentum feature of the global model: last year's shape, relative to last year's recent level, known
in advance (the horizon reads only last year), NaN where last year is unknown or was zero."""

from __future__ import annotations

import numpy as np

from ml.forecasting import gbm
from ml.forecasting.panel import NO_PROMO
from tests.test_forecasting_promotions import START, _panel


def _step_panel(n_hist: int = 500, n_future: int = 60):
    """Series 0: 10 a day, 30 a day on days 100-149 of the first year, 10 again after; series 1: 5 a day
    throughout; series 2: no sales in its first year."""
    total = n_hist + n_future
    sales = np.full((3, n_hist), 10.0)
    sales[0, 100:150] = 30.0
    sales[1] = 5.0
    sales[2, :364] = 0.0
    period_start = np.datetime64(START, "D") + np.arange(total)
    discount = np.zeros((3, total), np.float32)
    promo = np.full((3, total), NO_PROMO, np.int32)
    return _panel(sales, discount, promo, period_start, np.ones(total), grain="day", known_days=0)


def test_momentum_carries_last_years_rise_and_fall_as_a_ratio() -> None:
    panel = _step_panel()
    target = panel.sales.astype(np.float64)
    cutoff = panel.n_hist
    m = gbm.year_momentum(target, 0, panel, cutoff, 0, cutoff + 60)
    assert m.shape == (3, cutoff + 60)
    # the first year has no year-back value
    assert np.isnan(m[:, :364]).all()

    def ylag(i: int, t: int) -> float:  # the yearly lag: 7-day mean centred 364 days back
        return float(target[i, t - 367 : t - 360].mean())

    def reference(i: int, t: int) -> float:
        return ylag(i, t) / np.mean([ylag(i, u) for u in range(t - 28, t)])

    for t in (100 + 364 + 3, 130 + 364, 150 + 364 + 3, cutoff + 30):
        assert abs(float(m[0, t]) - reference(0, t)) < 1e-5
    assert m[0, 100 + 364 + 3] > 2.0 and m[0, 150 + 364 + 3] < 0.5  # the rise and the fall, as ratios
    assert np.allclose(m[1, 364 + 31:], 1.0)  # flat last year
    assert np.isnan(m[2, 364 + 31:]).all()  # zero last year: no ratio


def test_the_horizons_momentum_depends_on_last_year_only() -> None:
    panel = _step_panel()
    target = panel.sales.astype(np.float64)
    cutoff = panel.n_hist
    base = gbm.year_momentum(target, 0, panel, cutoff, cutoff, cutoff + 60)
    changed = target.copy()
    changed[:, cutoff - 20:] *= 7.0  # the last 20 days: a year (or 28 days more) back of none of the horizon
    assert np.array_equal(gbm.year_momentum(changed, 0, panel, cutoff, cutoff, cutoff + 60), base, equal_nan=True)
