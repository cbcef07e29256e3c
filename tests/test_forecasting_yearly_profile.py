"""The pooled yearly profile (issue 9 section 4): a seasonal index per week of the year learnt from every item of a
category, and the forecast that rises into the season and falls when it ends."""

from __future__ import annotations

import numpy as np

from ml.forecasting.baselines import pooled_year_profile, seasonal_level, year_bins

DAYS = np.arange(np.datetime64("2022-01-03"), np.datetime64("2024-12-30"))  # 3 x 52 weeks


def _season(days: np.ndarray) -> np.ndarray:
    week = year_bins(days, "day")[0]
    return np.where((week >= 18) & (week < 30), 3.0, 0.5)  # a summer item: 12 high weeks


def test_the_profile_is_the_categorys_pooled_share_of_the_year_whatever_the_scale_or_trend() -> None:
    bins, n_bins = year_bins(DAYS, "day")
    season = _season(DAYS)
    trend = np.linspace(1.0, 2.0, DAYS.size)  # demand doubles over three years
    y = np.vstack([scale * season * trend for scale in (1.0, 7.0, 40.0)])
    prof = pooled_year_profile(y, np.ones_like(y), bins, n_bins, np.zeros(3, dtype=np.int64), 364, smooth=0)
    assert prof.shape == (1, 52) and np.isclose(prof.mean(), 1.0)
    want = np.where((np.arange(52) >= 18) & (np.arange(52) < 30), 3.0, 0.5)
    want = want / want.mean()
    # within a year the trend moves the level by at most a third: the index stays within 15% of the truth
    assert np.allclose(prof[0], want, rtol=0.15)


def test_groups_without_a_whole_year_get_a_flat_profile() -> None:
    bins, n_bins = year_bins(DAYS, "day")
    y = np.vstack([_season(DAYS), _season(DAYS)])
    y[1, :-300] = np.nan  # the second group's only item has 300 days of history
    w = (~np.isnan(y)).astype(np.float32)
    prof = pooled_year_profile(y, w, bins, n_bins, np.array([0, 1]), 364)
    assert np.ptp(prof[0]) > 1.0 and np.allclose(prof[1], 1.0)


def test_a_young_item_follows_its_categorys_season_down_after_the_peak() -> None:
    bins, n_bins = year_bins(DAYS, "day")
    season = _season(DAYS)
    # as of the last day of week 25 of the last year (inside the season): the next 10 weeks cross its end (week 30)
    cut = int(np.flatnonzero(bins == 25)[-1]) + 1
    old = np.vstack([5.0 * season, 9.0 * season])
    young = np.full(DAYS.size, np.nan)
    young[cut - 120:] = 2.0 * season[cut - 120:]  # launched this spring: one partial season
    y = np.vstack([old, young])
    w = (~np.isnan(y)).astype(np.float32)
    prof = pooled_year_profile(y[:, :cut], w[:, :cut], bins[:cut], n_bins, np.zeros(3, dtype=np.int64), 364,
                               smooth=0)
    fut = bins[cut : cut + 70]
    fc = seasonal_level(y[:, :cut], w[:, :cut], prof[[0, 0, 0]], bins[:cut], fut, 28)
    truth = np.vstack([5.0 * season, 9.0 * season, 2.0 * season])[:, cut : cut + 70]
    assert np.allclose(fc[:2], truth[:2], rtol=0.05)
    in_season, after = fut < 30, fut >= 30
    young_fc = fc[2]
    assert young_fc[after].mean() < 0.3 * young_fc[in_season].mean()  # the forecast falls when the season ends


def test_month_grain_bins_are_months() -> None:
    days = np.array(["2024-01-01", "2024-02-01", "2024-12-01"], dtype="datetime64[D]")
    bins, n = year_bins(days, "month")
    assert n == 12 and bins.tolist() == [0, 1, 11]
