"""Unit tests of ``ml.forecasting`` on small synthetic arrays and panels (no warehouse, no model fits)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from ml.demand_distribution import exposure_days
from ml.forecasting import baselines, censoring, metrics, segments
from ml.forecasting.calibration import Calibrator, origin_errors
from ml.forecasting.config import ForecastConfig
from ml.forecasting.lead_time import LeadTimeData, LeadTimes, lead_times_at
from ml.forecasting.ltd import realised_demand, sample_lead_time_demand

WEEKDAY = np.arange(700) % 7


# ------------------------------------------------------------------------------------------------ censoring


def _censored_series(seed: int = 0, level: float = 5.0, n: int = 40, t: int = 700):
    """Poisson(level x weekday profile) demand; ~15% of days are stock-outs that cut sales to a random part."""
    rng = np.random.default_rng(seed)
    profile = np.array([0.8, 0.9, 0.9, 1.0, 1.1, 1.4, 0.9])
    mu = level * profile[WEEKDAY[:t]] / profile.mean()
    demand = rng.poisson(np.broadcast_to(mu, (n, t))).astype(np.float32)
    censored = rng.random((n, t)) < 0.15
    sold = np.where(censored, np.floor(demand * rng.random((n, t))), demand).astype(np.float32)
    return demand, sold, censored, mu


def test_impute_recovers_the_level_and_none_underestimates():
    demand, sold, censored, mu = _censored_series()
    kw = {"window": 28, "season": 7, "phase": WEEKDAY}
    imputed, w_imp = censoring.correct(sold, censored, "impute", **kw)
    raw, _ = censoring.correct(sold, censored, "none", **kw)
    excluded, w_exc = censoring.correct(sold, censored, "exclude", **kw)
    true_mean = float(np.broadcast_to(mu, demand.shape)[censored].mean())
    # 'none' trains on cut sales: far below the level on stock-out days
    assert raw[censored].mean() < 0.6 * true_mean
    # 'impute' recovers the level on stock-out days (never below what was sold)
    assert imputed[censored].mean() == pytest.approx(true_mean, rel=0.08)
    assert np.all(imputed >= sold)
    assert np.array_equal(imputed[~censored], sold[~censored])
    # weekday shape kept: Saturdays imputed higher than Mondays
    sat, mon = censored & (WEEKDAY == 5), censored & (WEEKDAY == 0)
    assert imputed[sat].mean() > 1.3 * imputed[mon].mean()
    # 'exclude': same values for the features, censored days are not training targets
    assert np.array_equal(excluded, imputed)
    assert np.all(w_exc[censored] == 0) and np.all(w_exc[~censored] == 1) and np.all(w_imp == 1)


def test_imputation_uses_only_the_history_it_is_given():
    _, sold, censored, _ = _censored_series(seed=1)
    full, _ = censoring.correct(sold, censored, "impute", window=28, season=7, phase=WEEKDAY)
    cut = 500
    head, _ = censoring.correct(sold[:, :cut], censored[:, :cut], "impute", window=28, season=7,
                                phase=WEEKDAY[:cut])
    changed = sold.copy()
    changed[:, cut:] *= 10  # the future changes...
    again, _ = censoring.correct(changed[:, :cut], censored[:, :cut], "impute", window=28, season=7,
                                 phase=WEEKDAY[:cut])
    assert np.array_equal(head, again)  # ...the history's imputation does not
    assert not np.array_equal(head[:, -20:], full[:, cut - 20 : cut])  # (the full run sees past the cut)


# ------------------------------------------------------------------------------------------------ segments and models


def test_syntetos_boylan_classes():
    t = 364
    smooth = np.full(t, 5.0)
    erratic = np.where(np.arange(t) % 2 == 0, 1.0, 20.0)
    intermittent = np.where(np.arange(t) % 4 == 0, 3.0, 0.0)
    lumpy = np.where(np.arange(t) % 4 == 0, np.where(np.arange(t) % 8 == 0, 1.0, 30.0), 0.0)
    zero = np.zeros(t)
    y = np.vstack([smooth, erratic, intermittent, lumpy, zero])
    got = segments.classify(y, np.ones_like(y), 364)
    assert got.tolist() == ["smooth", "erratic", "intermittent", "lumpy", "zero"]


def test_local_methods_on_known_histories():
    y = np.array([[1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4, 5, 6, 7.0]])
    w = np.ones_like(y)
    assert baselines.seasonal_naive(y, 7, 9).tolist() == [[1, 2, 3, 4, 5, 6, 7, 1, 2]]
    assert baselines.moving_average(y, w, 7, 3).tolist() == [[4.0, 4.0, 4.0]]
    # exclude mode: a zero-weight period does not enter the mean
    w2 = w.copy()
    w2[0, -1] = 0
    assert baselines.moving_average(y, w2, 7, 1)[0, 0] == pytest.approx(np.mean([1, 2, 3, 4, 5, 6]))
    # demand of 4 every 4th period: SBA = (1 - a/2) * size / interval = 0.95 * 4 / 4
    inter = np.tile([4.0, 0, 0, 0], 100)[None, :]
    wi = np.ones_like(inter)
    assert baselines.croston_sba(inter, wi, 0.1, 1)[0, 0] == pytest.approx(0.95, rel=1e-3)
    # TSB's probability in steady state just after a demand: p = 0.9^4 p + 0.1, then three zeros decay it by 0.9^3
    p_after = 0.1 / (1 - 0.9**4)
    assert baselines.tsb(inter, wi, 0.1, 0.1, 1)[0, 0] == pytest.approx(4 * p_after * 0.9**3, rel=1e-3)


# ------------------------------------------------------------------------------------------------ metrics


def test_metrics_by_hand():
    history = np.array([[1.0, 3.0, 2.0, 4.0, 3.0]])
    observed = np.ones_like(history, dtype=bool)
    mae_s, rms_s = metrics.insample_scales(history, observed, season=1)
    # in-sample naive errors |2|, |1|, |2|, |1| -> MAE 1.5, RMS sqrt((4 + 1 + 4 + 1) / 4)
    assert mae_s[0] == pytest.approx(1.5)
    assert rms_s[0] == pytest.approx(np.sqrt(2.5))
    actual = np.array([[2.0, 0.0, 4.0, 10.0]])
    fc = np.array([[3.0, 1.0, 1.0, 0.0]])
    mask = np.array([[True, True, True, False]])  # the last period is censored: not scored
    m = metrics.series_point_metrics(fc, actual, mask, mae_s, rms_s)
    # errors 1, 1, -3 -> MAE 5/3, RMSE sqrt(11/3); actual total 6
    assert m["mase"][0] == pytest.approx((5 / 3) / 1.5)
    assert m["rmsse"][0] == pytest.approx(np.sqrt(11 / 3) / np.sqrt(2.5))
    assert m["wape"][0] == pytest.approx(5 / 6)
    assert m["bias"][0] == pytest.approx(-1 / 6)
    quantiles = {0.1: np.array([[1.0, 0.0, 0.0, 0.0]]), 0.9: np.array([[3.0, 1.0, 3.0, 0.0]])}
    q = metrics.series_quantile_metrics(quantiles, {0.8: (quantiles[0.1], quantiles[0.9])}, actual, mask, mae_s)
    # pinball: level 0.1: (2-1)*0.1, 0, (4-0)*0.1 -> mean 0.5/3; level 0.9: (3-2)*0.1, (1-0)*0.1, (4-3)*0.9
    pin = (0.5 / 3 + 1.1 / 3) / 2
    assert q["spl"][0] == pytest.approx(pin / 1.5)
    # covered: 2 in [1, 3] yes, 0 in [0, 1] yes, 4 in [0, 3] no -> 2/3
    assert q["coverage_80"][0] == pytest.approx(2 / 3)
    hits = metrics.ltd_hits(np.array([5.0, 7.0]), np.array([[4.0, 6.0], [7.0, 8.0]]))
    assert hits.tolist() == [[0.0, 1.0], [1.0, 1.0]]  # 5 > 4, 5 <= 6; 7 <= 7, 7 <= 8


# ------------------------------------------------------------------------------------------------ lead-time demand


def _lead_times(values: list[list[float]], weights: list[list[float]] | None = None, review: float = 0.0):
    flat = [v for vs in values for v in vs]
    w = [x for ws in weights for x in ws] if weights else [1.0] * len(flat)
    ends = np.cumsum([len(v) for v in values])
    return LeadTimes(np.array(flat, float), np.cumsum(w), ends - [len(v) for v in values], ends,
                     np.array(["test"] * len(values), dtype=object), np.full(len(values), review))


def test_ltd_constant_demand_fixed_lead_time():
    """Reviewed at the close, received at the opening: an order covers L + R - 1 days, L - 1 of them before it
    arrives (demand_distribution.exposure_days)."""
    d, lead, review = 3.0, 5.0, 2.0
    lt = _lead_times([[lead], [lead]], review=review)
    fc = np.full((2, 30), d, dtype=np.float32)
    paths = np.zeros((1, 31), np.float32)
    s, before = sample_lead_time_demand(fc, np.ones(2), np.zeros(2, int), np.ones(2, int), paths, lt, x0=0.0,
                                        days_per_period=1.0, tail_periods=7, n_samples=200,
                                        rng=np.random.default_rng(0), return_lead=True)
    assert s.shape == before.shape == (2, 200)
    assert np.allclose(s, d * (lead + review - 1)) and np.allclose(before, d * (lead - 1))
    assert exposure_days(np.array([0.0, 1.0, 4.0]), np.array([1.0, 1.0, 7.0]))[0].tolist() == [1.0, 1.0, 10.0]


def test_ltd_random_lead_time_mixture_moments():
    d = 2.0
    lt = _lead_times([[2.0, 10.0]], weights=[[1.0, 1.0]], review=1.0)  # L = 2 or 10 with probability 1/2
    fc = np.full((1, 20), d, dtype=np.float32)
    paths = np.zeros((1, 21), np.float32)
    s, before = sample_lead_time_demand(fc, np.ones(1), np.zeros(1, int), np.ones(1, int), paths, lt, x0=0.0,
                                        days_per_period=1.0, tail_periods=7, n_samples=40_000,
                                        rng=np.random.default_rng(1), return_lead=True)
    s, before = s[0], before[0]
    assert s.mean() == pytest.approx(d * 6.0, rel=0.02)
    assert s.var() == pytest.approx(d**2 * 16.0, rel=0.05)
    assert set(np.unique(s)) == {4.0, 20.0}
    assert np.all(s - before == d)  # the same lead-time draw: one review day after the arrival
    # beyond the horizon the forecast continues at its tail mean
    long = _lead_times([[25.0]], review=1.0)
    s2 = sample_lead_time_demand(fc, np.ones(1), np.zeros(1, int), np.ones(1, int), paths, long, x0=0.0,
                                 days_per_period=1.0, tail_periods=7, n_samples=10, rng=np.random.default_rng(2))
    assert np.allclose(s2, d * 25.0)


def test_ltd_fractional_periods_at_week_grain():
    # 7 units per week, lead time 10 days + review 5 - 1 = 2 weeks -> 14 units; starting half-way into the week:
    # same
    lt = _lead_times([[10.0]], review=5.0)
    fc = np.full((1, 8), 7.0, dtype=np.float32)
    paths = np.zeros((1, 9), np.float32)
    for x0 in (0.0, 0.5):
        s = sample_lead_time_demand(fc, np.ones(1), np.zeros(1, int), np.ones(1, int), paths, lt, x0=x0,
                                    days_per_period=7.0, tail_periods=4, n_samples=5, rng=np.random.default_rng(3))
        assert np.allclose(s, 14.0)
    assert realised_demand(np.array([[1.0, 2.0, 3.0]]), np.array([1.5]))[0] == pytest.approx(2.0)
    # a relative error of +50% (Z = 0.5 from the first period on) over half a week: 3.5 + half of the first
    # week's error 3.5 -> 5.25 (the error, not Z and its scale separately, is interpolated inside a period)
    half = _lead_times([[3.5]], review=1.0)
    paths = np.full((1, 9), 0.5, np.float32)
    paths[:, 0] = 0.0
    s = sample_lead_time_demand(fc, np.ones(1), np.zeros(1, int), np.ones(1, int), paths, half, x0=0.0,
                                days_per_period=7.0, tail_periods=4, n_samples=3, rng=np.random.default_rng(4))
    assert np.allclose(s, 3.5 + 0.5 * 3.5)


def test_weighted_lead_time_sampling_and_quantiles():
    lt = _lead_times([[1.0, 5.0], [3.0]], weights=[[3.0, 1.0], [1.0]], review=0.0)
    draws = lt.sample(np.random.default_rng(4), 20_000)
    assert (draws[0] == 1.0).mean() == pytest.approx(0.75, abs=0.02)
    assert np.all(draws[1] == 3.0)
    assert lt.mean().tolist() == pytest.approx([2.0, 3.0])
    assert lt.quantile(0.5).tolist() == [1.0, 3.0] and lt.quantile(0.9).tolist() == [5.0, 3.0]


# ------------------------------------------------------------------------------------------------ calibration


def test_calibration_covers_a_known_distribution():
    """Negative-binomial demand of 600 series with known means: a calibrator built from 3 origins' errors of the
    true-mean forecast covers held-out origins at the nominal levels, per period and over lead times."""
    rng = np.random.default_rng(5)
    n, h = 600, 28
    mean = np.exp(rng.normal(0.5, 0.8, n))
    seg = np.where(mean > 2, "smooth", "intermittent").astype(object)

    def draw(k: int) -> np.ndarray:
        return rng.poisson(rng.gamma(4.0, np.broadcast_to(mean[:, None], (n, k)) / 4.0)).astype(np.float32)

    fc = np.broadcast_to(mean[:, None], (n, h)).astype(np.float32)
    usable = np.ones(n, bool)
    errs = []
    for k in range(3):
        y = draw(h)
        errs.append(origin_errors(k * h, fc, y, y, np.ones((n, h), bool), mean, seg, usable, h))
    cal = Calibrator(errs, n_volume_bands=3, bucket_edges=[7, 14, 28], horizon=h, levels=(0.1, 0.9, 0.025, 0.975),
                     until_index=3 * h)
    iv = cal.period_intervals(fc, mean, seg)
    hits80 = hits95 = 0.0
    ltd_hits = []
    lt = _lead_times([[3.0, 9.0]], review=1.0)
    lt = LeadTimes(lt.values, lt.cum_weight, np.zeros(n, int), np.full(n, 2), lt.source.repeat(n), np.ones(n))
    for _ in range(4):
        y = draw(h)
        hits80 += metrics.series_quantile_metrics({}, {0.8: iv[0.8]}, y, np.ones_like(y, bool), mean)[
            "coverage_80"].mean() / 4
        hits95 += metrics.series_quantile_metrics({}, {0.95: iv[0.95]}, y, np.ones_like(y, bool), mean)[
            "coverage_95"].mean() / 4
        start, count = cal.path_pool(seg, mean)
        s = sample_lead_time_demand(fc, mean, start, count, cal.paths, lt, x0=0.0, days_per_period=1.0,
                                    tail_periods=7, n_samples=500, rng=rng)
        qs = np.quantile(s, [0.8, 0.95], axis=1).T
        x = lt.sample(rng, 1)[:, 0]  # L + R - 1 days with R = 1
        ltd_hits.append(metrics.ltd_hits(realised_demand(y, x), qs))
    ltd = np.concatenate(ltd_hits).mean(axis=0)
    assert hits80 == pytest.approx(0.80, abs=0.025)
    assert hits95 == pytest.approx(0.95, abs=0.02)
    assert ltd[0] == pytest.approx(0.80, abs=0.03)
    assert ltd[1] == pytest.approx(0.95, abs=0.02)


def test_config_from_dict_and_validation():
    cfg = ForecastConfig.from_dict({"horizon_days": 56, "lags_days": [7, 14], "censoring": "none"})
    assert cfg.horizon_days == 56 and cfg.lags_days == (7, 14) and cfg.censoring == "none"
    assert ForecastConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown forecast config"):
        ForecastConfig.from_dict({"horizon": 3})
    with pytest.raises(ValueError):
        ForecastConfig(n_origins=2)
    with pytest.raises(ValueError):
        ForecastConfig(models=("lightgbm",))


# ------------------------------------------------------------------------------------------------ lead times


def _lead_time_data(receipts: list[tuple]) -> LeadTimeData:
    """Receipts (product_id, supplier_id, line, received_date, lt, units) for products P1, P2 of supplier S1."""
    import polars as pl

    frame = pl.DataFrame(receipts, schema=["product_id", "supplier_id", "line", "received_date", "lt", "w"],
                         orient="row")
    locations = pl.DataFrame({"location_id": ["DC"], "replenished_from": [None]},
                             schema={"location_id": pl.String, "replenished_from": pl.String})
    products = pl.DataFrame({"product_id": ["P1", "P2"], "supplier_id": ["S1", "S1"], "nominal": [10.0, 10.0]})
    transfers = pl.DataFrame(schema={"from_location_id": pl.String, "to_location_id": pl.String,
                                     "received_date": pl.Date, "lt": pl.Float64, "w": pl.Float64})
    return LeadTimeData(locations, products, frame, transfers)


def test_lead_time_counts_order_lines_split_by_units():
    """Each order line is one observation, spread over its receipts by units: a small late remainder of a split
    delivery is a small share, and one big order does not outweigh nine small ones."""
    import polars as pl

    day = date(2025, 6, 1)
    rec = [("P1", "S1", f"L{k}", day, 20.0, 10.0) for k in range(9)]  # nine on-time lines of 10 units
    rec += [("P1", "S1", "BIG", day, 20.0, 900.0), ("P1", "S1", "BIG", day, 200.0, 100.0)]  # 10% of a line late
    keys = pl.DataFrame({"product_id": ["P1", "P2"], "location_id": ["DC", "DC"]})
    cfg = ForecastConfig(min_receipts_product=8, lead_time_prior_lines=0)
    lt = lead_times_at(_lead_time_data(rec), keys, cfg, date(2025, 12, 31))
    assert lt.source.tolist() == ["receipts:product", "receipts:supplier"]
    # 10 lines; the late remainder is 0.1 of one line: mean 20 + 0.01 x 180 = 21.8, p95 and p99 stay on time
    assert lt.mean()[0] == pytest.approx(21.8)
    assert lt.quantile(0.95)[0] == 20.0 and lt.quantile(0.995)[0] == 200.0
    # weighting every receipt by its units (the old rule) would have put 100 / 1090 = 9% of the mass at 200 days
    draws = lt.sample(np.random.default_rng(0), 20_000)[0]
    assert (draws == 200.0).mean() == pytest.approx(0.01, abs=0.004)
    # too few lines for the product's own distribution: the supplier's (same lines here), then nominal
    few = lead_times_at(_lead_time_data(rec[:5]), keys, cfg, date(2025, 12, 31))
    assert few.source.tolist() == ["nominal", "nominal"] and few.mean().tolist() == [10.0, 10.0]
    # the lookback window: receipts after as_of are never used
    early = lead_times_at(_lead_time_data(rec), keys, cfg, date(2025, 5, 31))
    assert early.source[0] == "nominal"


def test_lead_time_prior_mixes_the_supplier_distribution():
    import polars as pl

    day = date(2025, 6, 1)
    rec = [("P1", "S1", f"A{k}", day, 40.0, 5.0) for k in range(8)]  # P1: 8 lines at 40 days
    rec += [("P2", "S1", f"B{k}", day, 10.0, 5.0) for k in range(24)]  # P2: 24 lines at 10 days
    keys = pl.DataFrame({"product_id": ["P1", "P2"], "location_id": ["DC", "DC"]})
    lt = lead_times_at(_lead_time_data(rec), keys, ForecastConfig(lead_time_prior_lines=8), date(2025, 12, 31))
    # supplier S1: 32 lines, mean (8 x 40 + 24 x 10) / 32 = 17.5, worth 8 lines next to each product's own
    assert lt.mean()[0] == pytest.approx((8 * 40 + 8 * 17.5) / 16)
    assert lt.mean()[1] == pytest.approx((24 * 10 + 8 * 17.5) / 32)
    own = lead_times_at(_lead_time_data(rec), keys, ForecastConfig(lead_time_prior_lines=0), date(2025, 12, 31))
    assert own.mean().tolist() == pytest.approx([40.0, 10.0])


def test_ltd_pit_coverage_splits_ties():
    """A calibrated forecast of an integer quantity covers its quantiles at nominal under the tie-corrected
    coverage, while the plain share at or below the quantile overshoots by the tie mass."""
    rng = np.random.default_rng(7)
    n = 4000
    lam = np.where(np.arange(n) % 2 == 0, 0.4, 3.0)  # half the series mostly zero
    samples = rng.poisson(lam[:, None], (n, 2000)).astype(np.float32)
    y = rng.poisson(lam).astype(np.float64)
    levels = (0.5, 0.8, 0.95)
    pit = metrics.ltd_pit_coverage(y, samples, levels).mean(axis=0)
    qs = np.quantile(samples, levels, axis=1, method="inverted_cdf").T
    plain = metrics.ltd_hits(y, qs).mean(axis=0)
    assert pit == pytest.approx(levels, abs=0.02)
    assert plain[0] > 0.6  # P(Y <= median) of Poisson(0.4) is 0.67 and of Poisson(3) 0.65
    # continuous samples without ties: the plain share (up to a realised value landing exactly on a level)
    cont = rng.normal(size=(2000, 1000))
    yc = rng.normal(size=2000)
    qc = np.quantile(cont, levels, axis=1, method="inverted_cdf").T
    same = metrics.ltd_pit_coverage(yc, cont, levels) == metrics.ltd_hits(yc, qc)
    assert same.mean() > 0.995


def test_ltd_shortage_sees_a_thin_tail_that_coverage_misses():
    """Samples of the right distribution expect the shortage that comes beyond their quantiles (ratio 1). Demand
    with the same coverage but rare lumps far beyond the quantile (a spare part's one big order) comes out far
    above 1, and an over-wide distribution below 1: what pooled coverage does not see, in units."""
    rng = np.random.default_rng(11)
    n, m = 6000, 2000
    lam = np.where(np.arange(n) % 3 == 0, 0.5, 4.0)
    samples = rng.poisson(lam[:, None], (n, m)).astype(np.float32)
    levels = metrics.LTD_SHORTAGE_LEVELS

    def ratio(y: np.ndarray, s: np.ndarray = samples) -> np.ndarray:
        real, expected = metrics.ltd_shortage(y, s, np.quantile(s, levels, axis=1, method="inverted_cdf").T)
        assert real.shape == expected.shape == (n, len(levels)) and (real >= 0).all() and (expected >= 0).all()
        return real.sum(axis=0) / expected.sum(axis=0)

    right = rng.poisson(lam).astype(np.float64)
    assert ratio(right)[:3] == pytest.approx(1.0, abs=0.12)  # p80, p90, p95 (p98 is noisier)
    lumps = right.copy()
    hit = rng.random(n) < 0.02  # 2% of the windows carry one order of 30 units on top
    lumps[hit] += 30.0
    cov_right = (right[:, None] <= np.quantile(samples, levels, axis=1, method="inverted_cdf").T).mean(axis=0)
    cov_lumps = (lumps[:, None] <= np.quantile(samples, levels, axis=1, method="inverted_cdf").T).mean(axis=0)
    assert np.abs(cov_lumps - cov_right).max() < 0.03  # coverage barely moves ...
    assert (ratio(lumps)[1:] > 2.0).all()  # ... the shortage beyond p90 and above is more than twice the promise
    wide = samples * 2.0  # twice the spread and level: shortages expected that never come
    assert (ratio(right, wide) < 0.5).all()


def test_ltd_calibration_with_random_lead_times_and_ties_within_two_points():
    """Known demand (negative binomial, a third of the series mostly zero) and a known lead-time distribution: the
    calibrator built from 3 origins' errors of the true-mean forecast gives lead-time-demand quantiles whose
    tie-corrected coverage of 6,000 held-out windows is within 2 points of every level, p50 included."""
    rng = np.random.default_rng(11)
    n, h = 1500, 40
    mean = np.exp(rng.normal(0.3, 1.0, n))
    seg = np.where(mean > 1.0, "smooth", "intermittent").astype(object)

    def draw(k: int) -> np.ndarray:
        return rng.poisson(rng.gamma(3.0, np.broadcast_to(mean[:, None], (n, k)) / 3.0)).astype(np.float32)

    fc = np.broadcast_to(mean[:, None], (n, h)).astype(np.float32)
    errs = []
    for k in range(3):
        y = draw(h)
        errs.append(origin_errors(k * h, fc, y, y, np.ones((n, h), bool), mean, seg, np.ones(n, bool), h))
    cal = Calibrator(errs, n_volume_bands=3, bucket_edges=[7, 14, 40], horizon=h, levels=(0.5,), until_index=3 * h)
    base = _lead_times([[2.0, 4.0, 7.0, 12.0]], weights=[[4.0, 3.0, 2.0, 1.0]], review=1.0)
    lt = LeadTimes(base.values, base.cum_weight, np.zeros(n, int), np.full(n, 4), base.source.repeat(n), np.ones(n))
    levels = (0.5, 0.8, 0.9, 0.95, 0.99)
    cover = []
    start, count = cal.path_pool(seg, mean)
    for _ in range(4):
        y = draw(h)
        s = sample_lead_time_demand(fc, mean, start, count, cal.paths, lt, x0=0.0, days_per_period=1.0,
                                    tail_periods=7, n_samples=500, rng=rng)
        realised = realised_demand(y, lt.sample(rng, 1)[:, 0])  # L + R - 1 days with R = 1
        cover.append(metrics.ltd_pit_coverage(realised, s, levels))
    cov = np.concatenate(cover).mean(axis=0)
    assert cov == pytest.approx(levels, abs=0.02)
