"""Per-period interval calibration: the tie-corrected coverage of integer demand and the per-segment recalibration
of intervals whose residuals come from a pool wider than the segment."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ml.forecasting import calibration, metrics
from ml.forecasting.calibration import Calibrator, origin_errors


def test_tie_coverage_by_hand():
    """G with an atom of 0.9 at 0: the interval [0, 0] at 80% holds 0.9 of the mass, so a zero counts 0.8 / 0.9;
    [0, 2] with P(0 < Y < 2) = 0.05 and atoms 0.9 at 0 and 0.03 at 2 counts a zero or a 2 as
    (0.8 - 0.05) / 0.93; a 1 inside counts 1; a 3 outside 0; a bound without an atom counts 1."""
    y = np.array([0.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.5])
    lo = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5])
    hi = np.array([0.0, 0.0, 2.0, 2.0, 2.0, 2.0, 2.5])
    g_lo_below = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1])
    g_lo = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1])
    g_hi_below = np.array([0.0, 0.0, 0.95, 0.95, 0.95, 0.95, 0.9])
    g_hi = np.array([0.9, 0.9, 0.98, 0.98, 0.98, 0.98, 0.9])
    hit = metrics.interval_tie_coverage(y, lo, hi, g_lo_below, g_lo, g_hi_below, g_hi, level=0.8)
    w = (0.8 - 0.05) / 0.93
    assert hit == pytest.approx([0.8 / 0.9, 0.0, w, 1.0, w, 0.0, 1.0])
    # an interval that holds no integer covers nothing
    assert metrics.interval_tie_coverage(np.array([0.0]), np.array([1.0]), np.array([0.0]), np.zeros(1),
                                         np.zeros(1), np.zeros(1), np.zeros(1), level=0.8).tolist() == [0.0]


def test_tie_coverage_of_exact_poisson_quantiles_is_nominal_while_the_plain_share_is_above():
    """Poisson demand forecast with its exact distribution: the central interval of exact quantiles covers more
    than nominal (its bounds are atoms), the tie-corrected coverage is nominal."""
    rng = np.random.default_rng(1)
    n, h = 4000, 10
    lam = np.exp(rng.normal(-0.5, 1.2, n))[:, None] * np.ones((1, h))
    y = rng.poisson(lam).astype(np.float64)
    for c in (0.8, 0.95):
        lo = stats.poisson.ppf((1 - c) / 2, lam)
        hi = stats.poisson.ppf((1 + c) / 2, lam)
        g = [stats.poisson.cdf(v, lam) for v in (lo - 1, lo, hi - 1, hi)]
        tie = metrics.interval_tie_coverage(y, lo, hi, *g, level=c).mean()
        plain = ((y >= lo) & (y <= hi)).mean()
        assert tie == pytest.approx(c, abs=0.01)
        assert plain > c + 0.03
        # through series_quantile_metrics: plain and tie-corrected side by side
        m = metrics.series_quantile_metrics({}, {c: (lo, hi)}, y, np.ones_like(y, bool), np.ones(n),
                                            {c: (lo, hi, *g)})
        key = round(c * 100)
        assert m[f"_hits_{key}"].sum() / y.size == pytest.approx(plain)
        assert m[f"_tie_hits_{key}"].sum() / y.size == pytest.approx(tie)


def _nb_panel(rng: np.random.Generator, n: int, h: int, shape: float = 2.0):
    mean = np.exp(rng.normal(-0.5, 1.3, n))
    fc = np.broadcast_to(mean[:, None], (n, h)).astype(np.float32)

    def draw() -> np.ndarray:
        return rng.poisson(rng.gamma(shape, np.broadcast_to(mean[:, None], (n, h)) / shape)).astype(np.float32)

    return mean, fc, draw


def test_interval_cdf_reads_the_calibrator_like_the_true_distribution():
    """Negative-binomial demand, the true mean as the forecast: the tie-corrected coverage of the calibrator's
    intervals computed with its own predictive distribution (the residual pool read on the integers) is within
    1.5 points of the same coverage computed with the true distribution, and the plain coverage is unchanged."""
    rng = np.random.default_rng(3)
    n, h, shape = 1500, 28, 2.0
    mean, fc, draw = _nb_panel(rng, n, h, shape)
    seg = np.where(mean > 1.5, "smooth", "intermittent").astype(object)
    errs = [origin_errors(k * h, fc, (y := draw()), y, np.ones((n, h), bool), mean, seg, np.ones(n, bool), h)
            for k in range(3)]
    cal = Calibrator(errs, n_volume_bands=3, bucket_edges=[7, 14, 28], horizon=h, levels=(0.1, 0.9),
                     until_index=3 * h)
    iv = cal.period_intervals(fc, mean, seg)
    cdf = cal.interval_cdf(fc, mean, seg, iv)
    y = draw()
    p = shape / (shape + mean[:, None])
    for c in (0.8, 0.95):
        lo, hi = cdf[c][:2]
        own = metrics.interval_tie_coverage(y, *cdf[c], level=c).mean()
        true = metrics.interval_tie_coverage(y, lo, hi, *[stats.nbinom.cdf(v, shape, p) for v in
                                                          (lo - 1, lo, hi - 1, hi)], level=c).mean()
        assert own == pytest.approx(true, abs=0.015)
        assert ((y >= lo) & (y <= hi)).mean() == pytest.approx(((y >= iv[c][0] - 1e-5) & (y <= iv[c][1] + 1e-5))
                                                               .mean())


def _two_segment_errors(rng: np.random.Generator, n_big: int, n_small: int, h: int, origins: int):
    """A large intermittent segment (Poisson-like, narrow Pearson residuals) and a small erratic one (mean 20,
    negative binomial with shape 0.8: Pearson residuals about 5 times wider)."""
    mean = np.concatenate([np.exp(rng.normal(0.0, 0.6, n_big)), np.full(n_small, 20.0)])
    shape = np.concatenate([np.full(n_big, 5.0), np.full(n_small, 0.8)])
    seg = np.array(["intermittent"] * n_big + ["erratic"] * n_small, dtype=object)
    n = n_big + n_small
    fc = np.broadcast_to(mean[:, None], (n, h)).astype(np.float32)

    def draw() -> np.ndarray:
        lam = rng.gamma(shape[:, None], np.broadcast_to((mean / shape)[:, None], (n, h)))
        return rng.poisson(lam).astype(np.float32)

    errs = [origin_errors(k * h, fc, (y := draw()), y, np.ones((n, h), bool), mean, seg, np.ones(n, bool), h)
            for k in range(origins)]
    return mean, seg, fc, draw, errs


@pytest.mark.parametrize("recalibrate", [False, True])
def test_segment_borrowing_the_whole_pool_is_recalibrated_on_its_own_cells(monkeypatch, recalibrate):
    """The erratic segment (6 series, 126 cells per horizon bucket) borrows the whole pool, dominated by narrow
    intermittent residuals: its borrowed intervals cover far less than nominal; rescaled on its own 252 earlier
    cells they cover nominal within 4 points on 20 held-out windows; the intermittent segment is untouched."""
    monkeypatch.setattr(calibration, "RECALIBRATE_BORROWED", recalibrate)
    rng = np.random.default_rng(17)
    h = 14
    mean, seg, fc, draw, errs = _two_segment_errors(rng, 800, 6, h, 3)
    cal = Calibrator(errs, n_volume_bands=3, bucket_edges=[7, 14], horizon=h, levels=(0.1, 0.9),
                     until_index=3 * h)
    erratic = seg == "erratic"
    assert (cal._src_level[np.unique(calibration.group_ids(seg[erratic], mean[erratic], cal.cuts))]
            == calibration.FALLBACK_ORDER.index("all")).all()
    iv = cal.period_intervals(fc, mean, seg)
    cover = {c: {"erratic": [], "intermittent": []} for c in iv}
    for _ in range(20):
        y = draw()
        for c, (lo, hi) in iv.items():
            hit = (y >= lo - 1e-5) & (y <= hi + 1e-5)
            cover[c]["erratic"].append(hit[erratic].mean())
            cover[c]["intermittent"].append(hit[~erratic].mean())
    for c in iv:
        got = float(np.mean(cover[c]["erratic"]))
        if recalibrate:
            assert got == pytest.approx(c, abs=0.04)
            assert cal.recalibration[("erratic", c)][1] == 6 * h * 3
        else:
            assert got < c - 0.1
            assert not cal.recalibration
        assert float(np.mean(cover[c]["intermittent"])) == pytest.approx(c, abs=0.03)


def test_integer_bounds_reach_nominal_tie_split_coverage():
    """Negative-binomial count demand, the true mean as the forecast: with ``integer_bounds`` the intervals are
    integers whose tie-split coverage on held-out windows is nominal within 2 points at 80 and 95%, while their
    plain share is above nominal; the default (continuous) intervals are nominal in the plain share and under
    nominal tie-split."""
    rng = np.random.default_rng(23)
    n, h, shape = 1500, 28, 2.0
    mean, fc, draw = _nb_panel(rng, n, h, shape)
    seg = np.where(mean > 1.5, "smooth", "intermittent").astype(object)
    errs = [origin_errors(k * h, fc, (y := draw()), y, np.ones((n, h), bool), mean, seg, np.ones(n, bool), h)
            for k in range(3)]
    kw = dict(n_volume_bands=3, bucket_edges=[7, 14, 28], horizon=h, levels=(0.1, 0.9), until_index=3 * h)
    integer = Calibrator(errs, integer_bounds=True, **kw)
    default = Calibrator(errs, **kw)
    y = draw()
    for cal, kind in ((integer, "integer"), (default, "continuous")):
        iv = cal.period_intervals(fc, mean, seg)
        cdf = cal.interval_cdf(fc, mean, seg, iv)
        m = metrics.series_quantile_metrics({}, iv, y, np.ones_like(y, bool), mean, cdf)
        for c in (0.8, 0.95):
            key = round(c * 100)
            plain, tie = m[f"_hits_{key}"].sum() / y.size, m[f"_tie_hits_{key}"].sum() / y.size
            if kind == "integer":
                assert np.array_equal(iv[c][1], np.round(iv[c][1]))
                assert tie == pytest.approx(c, abs=0.02)
                assert plain > c + 0.02
            else:
                assert plain == pytest.approx(c, abs=0.02)
                assert tie < c - 0.02
