"""Tests for ``ml.policy.inventory_math``.

1. Known answers: every case of ``/work/shared/data/inventory_known_answers.md`` (published numbers from Snyder &
   Shen via the stockpyl test suite, and Chopra & Meindl Exercise 11-4) at the tolerance stated there.
2. Supplementary known answers taken from the stockpyl test suite itself (cases not in the shared file).
3. Properties: loss-function identities, inverse round trips, Monte Carlo agreement of the sample-based functions
   with the normal formulas, order-rounding invariants, vectorised == elementwise.

hypothesis is not installed in the project venv, so the property tests use seeded random draws and parametrize.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from ml.policy import inventory_math as im
from tests import inventory_textbook as tb


def assert_close(got, expected, rel: float) -> None:
    """The known-answer file's tolerance: |got - expected| <= rel * max(1, |expected|), elementwise."""
    got_a, exp_a = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    bound = rel * np.maximum(1.0, np.abs(exp_a))
    assert got_a.shape == exp_a.shape
    assert np.all(np.abs(got_a - exp_a) <= bound), f"got {got_a!r}, expected {exp_a!r} (tolerance {bound!r})"


# ================================================================================================================
# 1. Known answers (/work/shared/data/inventory_known_answers.md)
# ================================================================================================================


def test_eoq_ex3_1():
    """Case ``eoq_ex3_1``. Source: Snyder & Shen, Fundamentals of Supply Chain Theory (2nd ed.), Example 3.1, via
    stockpyl tests (LarrySnyder/stockpyl@0bae176c, tests/test_eoq.py). K=8, h=0.225, lambda=1300.
    Expected Q*=304.0467800264368, g(Q*)=68.41052550594827, g(250)=69.725; relative 1e-7."""
    q_star = im.eoq(ordering_cost=8, holding_cost=0.225, demand_rate=1300)
    assert_close(q_star, 304.0467800264368, 1e-7)
    assert_close(tb.eoq_cost(q_star, 8, 0.225, 1300), 68.41052550594827, 1e-7)
    assert_close(tb.eoq_cost(250, 8, 0.225, 1300), 69.725, 1e-7)


def test_nv_normal_ex4_3():
    """Case ``nv_normal_ex4_3``. Source: Snyder & Shen (2nd ed.), Example 4.3 (= 4.1), via stockpyl tests
    (LarrySnyder/stockpyl@0bae176c, tests/test_newsvendor.py). h=0.18, p=0.7, D ~ N(50, 8).
    Expected S*=56.60395592743389, g(S*)=1.997605193176645, g(40)=7.356131552870388, g(60)=2.156131552870387;
    relative 1e-7."""
    s_star, cost = tb.newsvendor_normal(h=0.18, p=0.7, mu=50, sigma=8)
    assert_close(s_star, 56.60395592743389, 1e-7)
    assert_close(cost, 1.997605193176645, 1e-7)
    assert_close(tb.newsvendor_cost_normal(s_star, 0.18, 0.7, 50, 8), 1.997605193176645, 1e-7)
    assert_close(tb.newsvendor_cost_normal(40, 0.18, 0.7, 50, 8), 7.356131552870388, 1e-7)
    assert_close(tb.newsvendor_cost_normal(60, 0.18, 0.7, 50, 8), 2.156131552870387, 1e-7)


def test_loss_std_normal():
    """Case ``loss_std_normal``. Source: Snyder & Shen (2nd ed.) app. C, via stockpyl tests
    (LarrySnyder/stockpyl@0bae176c, tests/test_loss_functions.py). z = -1.4, 0.3, 3.1;
    L = 1.436668142708465, 0.26676124211721, 0.0002672490952231408;
    L_bar = 0.036668142708465, 0.56676124211721, 3.100267249095223; relative 1e-9."""
    z = np.array([-1.4, 0.3, 3.1])
    assert_close(tb.standard_normal_loss(z), [1.436668142708465, 0.26676124211721, 0.0002672490952231408], 1e-9)
    assert_close(tb.complementary_normal_loss(z), [0.036668142708465, 0.56676124211721, 3.100267249095223], 1e-9)


def test_loss_normal():
    """Case ``loss_normal``. Source: Snyder & Shen (2nd ed.) app. C, via stockpyl tests
    (LarrySnyder/stockpyl@0bae176c, tests/test_loss_functions.py). (x, mu, sigma) = (11, 8, 3), (10.5, 15, 5);
    n = 0.249946411763059, 5.002155685433356; n_bar = 3.249946411763059, 0.502155685433356; relative 1e-9."""
    x, mu, sigma = np.array([11.0, 10.5]), np.array([8.0, 15.0]), np.array([3.0, 5.0])
    assert_close(im.normal_loss(x, mu, sigma), [0.249946411763059, 5.002155685433356], 1e-9)
    assert_close(im.normal_loss_complement(x, mu, sigma), [3.249946411763059, 0.502155685433356], 1e-9)


def test_loss_poisson():
    """Case ``loss_poisson``. Source: Snyder & Shen (2nd ed.) app. C, via stockpyl tests
    (LarrySnyder/stockpyl@0bae176c, tests/test_loss_functions.py). (x, mean) = (220, 200), (5, 7);
    n = 0.536005857158494, 2.292600125697305; n_bar = 20.536005857158482, 0.292600125697305; relative 1e-9."""
    x, mean = np.array([220.0, 5.0]), np.array([200.0, 7.0])
    assert_close(im.poisson_loss(x, mean), [0.536005857158494, 2.292600125697305], 1e-9)
    assert_close(tb.poisson_loss_complement(x, mean), [20.536005857158482, 0.292600125697305], 1e-9)


def test_rq_ex5_5_eoqss():
    """Case ``rq_ex5_5_eoqss``. Source: Snyder & Shen (2nd ed.), Example 5.5, via stockpyl tests
    (LarrySnyder/stockpyl@0bae176c, tests/test_rq.py). h=0.225, p=7.5, K=8, lambda=1300/yr, sd 150/yr,
    L=1/12 yr, so lead-time demand ~ N(lambda L, sd sqrt(L)). Expected r=190.3369965715624,
    Q=304.0467800264368; relative 1e-7."""
    lead_time = 0.08333333333333333
    mean_ltd, sigma_ltd = im.lead_time_demand_normal(1300, 150, lead_time)
    r, q = tb.rq_eoq_ss_normal(0.225, 7.5, 8, 1300, mean_ltd, sigma_ltd)
    assert_close(r, 190.3369965715624, 1e-7)
    assert_close(q, 304.0467800264368, 1e-7)


def test_chopra_ex11_4_hp():
    """Case ``chopra_ex11_4_hp``. Source: Chopra & Meindl, Supply Chain Management, Exercise 11-4 (Hewlett
    Packard at Sam's Club), published solution spreadsheet (scribd doc 457113184 '11-4'). D=250/week,
    sigma_D=150/week, L=2 weeks, Q=1000, ROP=600. Printed: mean_LTD=500, sigma_L=212, ss=100, CSL=0.68,
    ESC=43.86, fill rate=0.96 (tolerance: printed precision). Re-derived in the file: sigma_L=212.132,
    CSL=0.68131, ESC=43.86, fill rate=0.95614."""
    mean_ltd, sigma_l = im.lead_time_demand_normal(250, 150, 2)
    rop, q = 600.0, 1000.0
    ss = rop - mean_ltd
    csl = im.cycle_service_level_normal(ss, sigma_l)
    esc = tb.expected_shortage_per_cycle_normal(ss, sigma_l)
    fill = tb.fill_rate_from_safety_stock(ss, q, sigma_l)
    # as printed (rounded)
    assert mean_ltd == 500
    assert round(sigma_l) == 212
    assert ss == 100
    assert round(csl, 2) == 0.68
    assert round(esc, 2) == 43.86
    assert round(fill, 2) == 0.96
    # re-derived values (printed to 3 and 5 decimals in the file; the file's CSL 0.68131 is truncated: 0.681324)
    assert abs(sigma_l - 212.132) < 5e-4
    assert abs(csl - 0.68131) < 2e-5
    assert abs(fill - 0.95614) < 5e-6
    # ESC is the normal loss at the reorder point, and the exact (r,Q) fill rate agrees at this precision
    assert esc == pytest.approx(im.normal_loss(rop, mean_ltd, sigma_l), rel=1e-14)
    assert round(tb.fill_rate_from_safety_stock(ss, q, sigma_l, exact=True), 5) == 0.95614


# ================================================================================================================
# 2. Supplementary known answers from the stockpyl test suite (not in the shared file)
# ================================================================================================================

EX_5_1 = {"h": 0.225, "p": 7.5, "K": 8.0, "lam": 1300.0, "sd": 150.0, "L": 1.0 / 12.0}


def _ex_5_1_ltd() -> tuple[float, float]:
    return im.lead_time_demand_normal(EX_5_1["lam"], EX_5_1["sd"], EX_5_1["L"])


def test_second_order_loss_stockpyl():
    """Snyder & Shen app. C, eqs. (C.27)/(C.28), via stockpyl tests/test_loss_functions.py
    (TestStandardNormalSecondLoss, assertAlmostEqual = 7 places): z = -1.4, 0.3, 3.1;
    L2 = 1.465289370279040, 0.151030102587942, 6.956550901328958e-05;
    L2_bar = 0.014710629720960, 0.393969897412058, 5.304930434490987."""
    z = np.array([-1.4, 0.3, 3.1])
    assert_close(tb.second_order_normal_loss(z), [1.465289370279040, 0.151030102587942, 6.956550901328958e-05], 1e-9)
    assert_close(
        tb.complementary_second_order_normal_loss(z), [0.014710629720960, 0.393969897412058, 5.304930434490987], 1e-9
    )


def test_newsvendor_poisson_stockpyl():
    """Snyder & Shen Example 4.7 and Problem 4.8(a), via stockpyl tests/test_newsvendor.py
    (LarrySnyder/stockpyl@02802568): h=1, p=4, mean 6 -> S*=8, g=3.570106945770946, g(5)=6.590296024616344;
    h=200, p=270, mean 18 -> S*=19, g=786.0884409351115, g(13)=1445.751062891969 (7 places)."""
    s_star, cost = tb.newsvendor_poisson(1, 4, 6)
    assert s_star == 8
    assert cost == pytest.approx(3.570106945770946, abs=1e-7)
    assert tb.newsvendor_cost_poisson(5, 1, 4, 6) == pytest.approx(6.590296024616344, abs=1e-7)
    s_star, cost = tb.newsvendor_poisson(200, 270, 18)
    assert s_star == 19
    assert cost == pytest.approx(786.0884409351115, abs=1e-7)
    assert tb.newsvendor_cost_poisson(13, 200, 270, 18) == pytest.approx(1445.751062891969, abs=1e-7)


def test_newsvendor_lead_time_convention_stockpyl():
    """Snyder & Shen Example 4.4 (L=4, base-stock, demand summed over L+1 = 5 periods), via stockpyl
    tests/test_newsvendor.py: S*=264.7668943741548, g=4.466781004149578, g(180)=49.000164748034095."""
    mean_ltd, sigma_ltd = im.lead_time_demand_normal(50, 8, 4 + 1)
    s_star, cost = tb.newsvendor_normal(0.18, 0.7, mean_ltd, sigma_ltd)
    assert s_star == pytest.approx(264.7668943741548, abs=1e-7)
    assert cost == pytest.approx(4.466781004149578, abs=1e-7)
    assert tb.newsvendor_cost_normal(180, 0.18, 0.7, mean_ltd, sigma_ltd) == pytest.approx(49.000164748034095, abs=1e-7)


def test_rq_cost_stockpyl():
    """Snyder & Shen Example 5.1 (eq. (5.7)), via stockpyl tests/test_rq.py (LarrySnyder/stockpyl@0ff53e2e,
    TestrQCost, 7 places; stockpyl integrates numerically): g(126.8, 328.5) = 78.071162509282942,
    g(100, 250) = 87.346478028174985."""
    mean_ltd, sigma_ltd = _ex_5_1_ltd()
    cost = tb.rq_cost_normal([126.8, 100.0], [328.5, 250.0], 0.225, 7.5, 8, 1300, mean_ltd, sigma_ltd)
    assert_close(cost, [78.071162509282942, 87.346478028174985], 1e-9)


def test_rq_optimal_r_for_q_stockpyl():
    """Snyder & Shen Example 5.2 (eq. (5.9), g(r) = g(r+Q)), via stockpyl tests/test_rq.py
    (LarrySnyder/stockpyl@0ff53e2e, TestrQOptimalrForQ; stockpyl bisects to |g(r) - g(r+Q)| <= 1e-6, so compare
    at 1e-5): r(318)=127.7880348669655, r(150)=147.1949581740714, r(750)=99.85377339616528; and the doctest
    r(300)=129.4272799263067."""
    mean_ltd, sigma_ltd = _ex_5_1_ltd()
    r = tb.rq_optimal_r_for_q_normal([318.0, 150.0, 750.0, 300.0], 0.225, 7.5, mean_ltd, sigma_ltd)
    np.testing.assert_allclose(
        r, [127.7880348669655, 147.1949581740714, 99.85377339616528, 129.4272799263067], rtol=0, atol=1e-5
    )


# ================================================================================================================
# 3. Properties
# ================================================================================================================

Z_GRID = np.concatenate([np.linspace(-40, 38, 781), [-1e3, -1e6, 0.0, 1e-300, -1e-300]])


def test_loss_identities():
    """L(z) - L(-z) = -z, L_bar = z + L, L2 + L2_bar = (z^2 + 1)/2, L >= max(-z, 0), L decreasing."""
    z = Z_GRID
    lz, lmz = tb.standard_normal_loss(z), tb.standard_normal_loss(-z)
    scale = 1.0 + np.abs(z)
    assert np.all(np.abs((lz - lmz) + z) <= 4e-16 * scale * 4)
    assert np.all(np.abs(tb.complementary_normal_loss(z) - (z + lz)) <= 1e-15 * scale * 4)
    L2, L2b = tb.second_order_normal_loss(z), tb.complementary_second_order_normal_loss(z)
    np.testing.assert_allclose(L2 + L2b, 0.5 * (z**2 + 1), rtol=1e-14)
    assert np.all(lz >= np.maximum(-z, 0.0)) and np.all(L2 >= 0)
    zs = np.sort(np.linspace(-40, 38, 781))
    assert np.all(np.diff(tb.standard_normal_loss(zs)) <= 0)
    assert tb.standard_normal_loss(np.inf) == 0.0 and tb.standard_normal_loss(-np.inf) == np.inf
    assert np.isnan(tb.standard_normal_loss(np.nan))


@pytest.mark.parametrize("z", [-3.0, -0.7, 0.0, 0.4, 2.0, 5.0, 8.0])
def test_loss_functions_match_integrals(z):
    """L(z) = integral_z^inf (1 - Phi(u)) du and L2(z) = integral_z^inf L(u) du (numerical quadrature)."""
    l_quad = integrate.quad(lambda u: stats.norm.sf(u), z, np.inf, epsabs=0, epsrel=1e-12, limit=200)[0]
    l2_quad = integrate.quad(tb.standard_normal_loss, z, np.inf, epsabs=0, epsrel=1e-12, limit=200)[0]
    assert tb.standard_normal_loss(z) == pytest.approx(l_quad, rel=1e-10)
    assert tb.second_order_normal_loss(z) == pytest.approx(l2_quad, rel=1e-9)


@pytest.mark.parametrize("z", [12.0, 20.0, 30.0, 37.0])
def test_loss_tail_matches_asymptotic_series(z):
    """Far tail: L(z) = phi(z) sum_{n>=1} (-1)^(n+1) (2n-1)!! / z^(2n) (asymptotic, 10 terms) to 1e-10 relative,
    so no cancellation or underflow of 1-Phi(z) leaks into the loss (it stays accurate down to ~1e-300)."""
    series = sum((-1) ** (n + 1) * math.prod(range(1, 2 * n, 2)) / z ** (2 * n) for n in range(1, 11))
    phi = math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    assert tb.standard_normal_loss(z) == pytest.approx(phi * series, rel=1e-10)


def test_normal_loss_scaling_and_degenerate_sigma():
    """n(x) = sigma L((x - mu)/sigma); sigma = 0 is the point mass at mu; sigma < 0 is NaN."""
    rng = np.random.default_rng(3)
    x, mu, sigma = rng.normal(0, 10, 50), rng.normal(0, 10, 50), rng.uniform(0.1, 5, 50)
    z = (x - mu) / sigma
    np.testing.assert_allclose(im.normal_loss(x, mu, sigma), sigma * tb.standard_normal_loss(z), rtol=1e-14)
    np.testing.assert_allclose(
        im.normal_loss_complement(x, mu, sigma) - im.normal_loss(x, mu, sigma), x - mu, rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(
        tb.normal_second_order_loss(x, mu, sigma), sigma**2 * tb.second_order_normal_loss(z), rtol=1e-14
    )
    assert im.normal_loss(3.0, 5.0, 0.0) == 2.0 and im.normal_loss(7.0, 5.0, 0.0) == 0.0
    assert im.normal_loss(5.0, 5.0, 0.0) == 0.0
    assert im.normal_loss_complement(7.0, 5.0, 0.0) == 2.0
    assert tb.normal_second_order_loss(3.0, 5.0, 0.0) == 2.0
    assert np.isnan(im.normal_loss(1.0, 0.0, -1.0))


def _poisson_brute(x: float, mean: float) -> tuple[float, float]:
    """E[(X - x)+] and E[(x - X)+] by summing the pmf over mean +- 15 sd (plus the whole lower range)."""
    hi = int(mean + 15 * math.sqrt(mean) + max(x, 0) + 30)
    lo = max(0, int(mean - 15 * math.sqrt(mean)) - 30)
    k = np.arange(lo, hi + 1, dtype=float)
    pmf = stats.poisson.pmf(k, mean)
    return float(np.sum(np.maximum(k - x, 0) * pmf)), float(np.sum(np.maximum(x - k, 0) * pmf))


@pytest.mark.parametrize("mean", [0.3, 3.0, 20.0, 250.0, 1.0e6])
def test_poisson_loss_equals_exact_sum(mean):
    """The closed form equals the exact sum, for integer, non-integer and negative x, up to mean 1e6."""
    sd = math.sqrt(mean)
    xs = [-2.0, 0.0, 0.5, mean - 3 * sd, math.floor(mean), mean + 0.37, mean + 2 * sd, mean + 6 * sd]
    for x in xs:
        n_exact, nbar_exact = _poisson_brute(x, mean)
        assert im.poisson_loss(x, mean) == pytest.approx(n_exact, rel=1e-9, abs=1e-12 * max(1.0, mean))
        assert tb.poisson_loss_complement(x, mean) == pytest.approx(nbar_exact, rel=1e-9, abs=1e-12 * max(1.0, mean))
    assert im.poisson_loss(3.0, 0.0) == 0.0 and im.poisson_loss(-3.0, 0.0) == 3.0


def test_inverse_standard_normal_loss_round_trips():
    """L(L^-1(t)) = t over t in [1e-300, 1e8] and L^-1(L(z)) = z over z in [-1e4, 37]; edge values."""
    t = np.logspace(-300, 8, 400)
    z = im.inverse_standard_normal_loss(t)
    np.testing.assert_allclose(tb.standard_normal_loss(z), t, rtol=1e-12)
    zz = np.concatenate([np.linspace(-50, 37, 500), [-1e4, -1e3]])
    np.testing.assert_allclose(im.inverse_standard_normal_loss(tb.standard_normal_loss(zz)), zz, rtol=1e-10, atol=1e-10)
    assert im.inverse_standard_normal_loss(1 / math.sqrt(2 * math.pi)) == pytest.approx(0.0, abs=1e-14)
    assert im.inverse_standard_normal_loss(0.0) == np.inf
    assert im.inverse_standard_normal_loss(np.inf) == -np.inf
    assert np.isnan(im.inverse_standard_normal_loss(-1.0)) and np.isnan(im.inverse_standard_normal_loss(np.nan))


def test_csl_safety_stock_and_reorder_point():
    """ss = Phi^-1(csl) sigma_L, r = mean_L + ss, and CSL(ss) inverts it; sigma_L = 0 gives ss = 0, CSL 1."""
    csl = np.array([0.5, 0.8, 0.9, 0.95, 0.99])
    ss = tb.safety_stock_csl(csl, 10.0)
    np.testing.assert_allclose(ss, stats.norm.ppf(csl) * 10.0, rtol=1e-14)
    np.testing.assert_allclose(tb.reorder_point_csl(csl, 100.0, 10.0), 100.0 + ss, rtol=1e-14)
    np.testing.assert_allclose(im.cycle_service_level_normal(ss, 10.0), csl, rtol=1e-12)
    assert tb.safety_stock_csl(0.99, 0.0) == 0.0 and im.cycle_service_level_normal(0.0, 0.0) == 1.0


@pytest.mark.parametrize("exact", [False, True])
def test_fill_rate_safety_factor_round_trip(exact):
    """fill_rate_from_safety_stock(k sigma, Q, sigma) returns the target for the k from
    safety_factor_for_fill_rate (textbook and exact), when k is inside the range."""
    rng = np.random.default_rng(5)
    fr = rng.uniform(0.8, 0.999, 300)
    q = rng.uniform(1.0, 200.0, 300)
    sigma = rng.uniform(0.5, 60.0, 300)
    res = im.safety_factor_for_fill_rate(fr, q, sigma, k_min=-np.inf, k_max=np.inf, exact=exact)
    back = tb.fill_rate_from_safety_stock(res.k * sigma, q, sigma, exact=exact)
    np.testing.assert_allclose(back, fr, rtol=0, atol=1e-10)
    assert not np.any(res.met_by_order_quantity) and not np.any(res.capped)


def test_fill_rate_exact_needs_no_more_safety_stock_than_textbook():
    """The exact (r,Q) expression charges at most Q per cycle, so its k is never above the textbook k, and the
    two agree when Q >> sigma_L (Chopra's case) but not when Q is small relative to sigma_L."""
    fr = np.array([0.9, 0.95, 0.99, 0.95, 0.95])
    q = np.array([50.0, 50.0, 50.0, 5.0, 1000.0])
    sigma = np.array([20.0, 20.0, 20.0, 20.0, 212.132])
    k_text = im.safety_factor_for_fill_rate(fr, q, sigma, k_min=-np.inf).k
    k_exact = im.safety_factor_for_fill_rate(fr, q, sigma, k_min=-np.inf, exact=True).k
    assert np.all(k_exact <= k_text + 1e-12)
    assert k_text[3] - k_exact[3] > 0.05  # Q = sigma/4: textbook over-protects
    assert abs(k_text[4] - k_exact[4]) < 1e-6


def test_fill_rate_safety_factor_flags_slow_movers_and_caps():
    """Slow mover (Q = 50 >> sigma_L = 1.5): the textbook formula wants k = -1.65 (reorder point below the mean);
    k is clipped to k_min = 0 and flagged met_by_order_quantity, and zero safety stock indeed already gives the
    fill rate. A target out of reach within k_max is clipped and flagged capped."""
    res = im.safety_factor_for_fill_rate(0.95, 50.0, 1.5)
    assert res.k == 0.0 and res.met_by_order_quantity and not res.capped
    assert res.k_unclipped < -1.6
    assert tb.fill_rate_from_safety_stock(0.0, 50.0, 1.5) >= 0.95
    assert im.cycle_service_level_normal(res.k_unclipped * 1.5, 1.5) < 0.06  # what the unclipped formula implies
    # a CSL floor as k_min
    floor = float(stats.norm.ppf(0.9))
    res_floor = im.safety_factor_for_fill_rate(0.95, 50.0, 1.5, k_min=floor)
    assert res_floor.k == pytest.approx(floor) and res_floor.met_by_order_quantity
    # out of reach within k_max
    res_cap = im.safety_factor_for_fill_rate(0.99999, 1.0, 100.0, k_max=3.0)
    assert res_cap.k == 3.0 and res_cap.capped and not res_cap.met_by_order_quantity
    # deterministic demand, fill rate 1, invalid input
    det = im.safety_factor_for_fill_rate(0.99, 10.0, 0.0)
    assert det.k == 0.0 and det.met_by_order_quantity
    assert im.safety_factor_for_fill_rate(1.0, 10.0, 5.0).capped
    assert np.isnan(im.safety_factor_for_fill_rate(1.5, 10.0, 5.0).k)


def test_rq_cost_matches_quadrature():
    """g(r,Q) in closed form (second-order loss) equals [K lambda + integral_r^{r+Q} g(y) dy] / Q by quadrature."""
    mean_ltd, sigma_ltd = _ex_5_1_ltd()
    for r, q in [(126.8, 328.5), (-40.0, 100.0), (300.0, 20.0), (108.0, 5000.0)]:
        integral = integrate.quad(
            lambda y: tb.newsvendor_cost_normal(y, 0.225, 7.5, mean_ltd, sigma_ltd), r, r + q, epsabs=0, epsrel=1e-12
        )[0]
        expected = (8 * 1300 + integral) / q
        got = tb.rq_cost_normal(r, q, 0.225, 7.5, 8, 1300, mean_ltd, sigma_ltd)
        assert got == pytest.approx(expected, rel=1e-10)


def test_rq_optimal_r_for_q_is_stationary_and_has_fill_rate_p_over_p_plus_h():
    """At r(Q), dg/dr = 0 (finite differences) and the exact fill rate equals p / (p + h); sigma_L = 0 limit."""
    mean_ltd, sigma_ltd = _ex_5_1_ltd()
    h, p = 0.225, 7.5
    for q in [50.0, 318.0, 750.0]:
        r = tb.rq_optimal_r_for_q_normal(q, h, p, mean_ltd, sigma_ltd)
        d = 1e-3
        g_plus = tb.rq_cost_normal(r + d, q, h, p, 8, 1300, mean_ltd, sigma_ltd)
        g_minus = tb.rq_cost_normal(r - d, q, h, p, 8, 1300, mean_ltd, sigma_ltd)
        assert abs(g_plus - g_minus) / (2 * d) < 1e-7
        fr = tb.fill_rate_from_safety_stock(r - mean_ltd, q, sigma_ltd, exact=True)
        assert fr == pytest.approx(p / (p + h), abs=1e-12)
    assert tb.rq_optimal_r_for_q_normal(100.0, 1.0, 3.0, 50.0, 0.0) == pytest.approx(50.0 - 25.0)


def test_eoq_and_newsvendor_are_minimisers():
    """Q* minimises g(Q) with g(Q*) = sqrt(2 K lambda h); S* minimises the normal and Poisson newsvendor costs."""
    q_star = im.eoq(8, 0.225, 1300)
    grid = np.linspace(0.5, 2.0, 301) * q_star
    assert np.all(tb.eoq_cost(grid, 8, 0.225, 1300) >= tb.eoq_cost(q_star, 8, 0.225, 1300) - 1e-12)
    assert tb.eoq_cost(q_star, 8, 0.225, 1300) == pytest.approx(math.sqrt(2 * 8 * 1300 * 0.225), rel=1e-14)
    s_star, cost = tb.newsvendor_normal(0.18, 0.7, 50, 8)
    s_grid = s_star + np.linspace(-10, 10, 201)
    assert np.all(tb.newsvendor_cost_normal(s_grid, 0.18, 0.7, 50, 8) >= cost - 1e-12)
    for h, p, mean in [(1.0, 4.0, 6.0), (2.0, 1.0, 0.4), (1.0, 19.0, 350.0)]:
        s_p, c_p = tb.newsvendor_poisson(h, p, mean)
        ks = np.arange(0, int(mean + 10 * math.sqrt(mean) + 10))
        costs = tb.newsvendor_cost_poisson(ks, h, p, mean)
        assert s_p == ks[np.argmin(costs)] and c_p == pytest.approx(costs.min(), rel=1e-12)
        first = ks[np.argmax(stats.poisson.cdf(ks, mean) >= p / (p + h))]
        assert s_p == first


# ---------------------------------------------------------------------------------------------------------------
# sample-based (distribution-free) functions
# ---------------------------------------------------------------------------------------------------------------

MU, SIGMA, Q_ORDER = 100.0, 20.0, 50.0
N_MC = 400_000


@pytest.fixture(scope="module")
def normal_samples() -> np.ndarray:
    """Four identical-distribution rows of N(100, 20) lead-time demand samples."""
    return np.random.default_rng(11).normal(MU, SIGMA, size=(4, N_MC))


def test_expected_shortage_and_fill_rate_from_samples_converge_to_normal(normal_samples):
    """With many normal samples, E[(D-r)+] -> n(r) and the sample fill rate -> the exact normal (r,Q) fill rate,
    within 5 Monte Carlo standard errors."""
    r = np.array([80.0, 100.0, 125.0, 150.0])
    d = normal_samples
    esc = im.expected_shortage_from_samples(d, r)
    se_esc = np.maximum(d - r[:, None], 0).std(axis=1) / math.sqrt(N_MC)
    assert np.all(np.abs(esc - im.normal_loss(r, MU, SIGMA)) <= 5 * se_esc)
    fr = im.fill_rate_from_samples(d, r, Q_ORDER)
    se_fr = np.clip(d - r[:, None], 0, Q_ORDER).std(axis=1) / math.sqrt(N_MC) / Q_ORDER
    expected = tb.fill_rate_from_safety_stock(r - MU, Q_ORDER, SIGMA, exact=True)
    assert np.all(np.abs(fr - expected) <= 5 * se_fr)


def test_reorder_point_from_samples_matches_normal_quantile(normal_samples):
    """Empirical csl-quantile ~ mu + sigma Phi^-1(csl) within 5 asymptotic standard errors
    sqrt(p(1-p)/n) / f(x_p)."""
    csl = np.array([0.5, 0.9, 0.95, 0.99])
    got = im.reorder_point_from_samples(normal_samples, csl)
    expected = tb.reorder_point_csl(csl, MU, SIGMA)
    se = np.sqrt(csl * (1 - csl) / N_MC) / stats.norm.pdf(expected, MU, SIGMA)
    assert np.all(np.abs(got - expected) <= 5 * se)


@pytest.mark.parametrize("method", ["inverted_cdf", "linear"])
def test_reorder_point_from_samples_equals_numpy_quantile(method):
    """Per-row csl and scalar csl give numpy's quantile of each row; inverted_cdf is the smallest sample value
    with empirical CSL >= csl."""
    rng = np.random.default_rng(2)
    d = rng.poisson(7.0, size=(40, 37)).astype(float)
    csl = rng.uniform(0.0, 1.0, 40)
    csl[:3] = [0.0, 1.0, 0.5]
    got = im.reorder_point_from_samples(d, csl, method=method)
    expected = np.array([np.quantile(row, c, method=method) for row, c in zip(d, csl, strict=True)])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    got_scalar = im.reorder_point_from_samples(d, 0.9, method=method)
    np.testing.assert_allclose(got_scalar, np.quantile(d, 0.9, axis=1, method=method), rtol=1e-12)
    if method == "inverted_cdf":
        achieved = (d <= got[:, None]).mean(axis=1)
        assert np.all(achieved >= csl - 1e-12)
    assert np.isnan(im.reorder_point_from_samples(d, 1.5)[0])
    assert isinstance(im.reorder_point_from_samples(d[0], 0.9, method=method), float)


@pytest.mark.parametrize("method", ["inverted_cdf", "linear"])
@pytest.mark.parametrize("n_levels", [1, 3, 65, 120])
def test_reorder_point_from_samples_by_level_is_exact(method, n_levels):
    """A few levels (one partition each) and a level per series (one sort) give numpy's quantile of each row, rows
    in any order of levels: to the bit for inverted_cdf (an order statistic), to rounding for linear."""
    rng = np.random.default_rng(n_levels)
    d = rng.gamma(0.6, 9.0, size=(120, 251)).round(2)
    levels = rng.uniform(0.0, 1.0, n_levels)
    csl = levels[rng.integers(0, n_levels, 120)] if n_levels < 120 else levels
    got = im.reorder_point_from_samples(d, csl, method=method)
    expected = np.array([np.quantile(row, c, method=method) for row, c in zip(d, csl, strict=True)])
    if method == "inverted_cdf":
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_reorder_point_for_fill_rate_from_samples_is_smallest_meeting_target():
    """Continuous: the result meets the target and a point just below it does not; step=1: the smallest whole
    number meeting it. Row-vectorised results equal one-row calls; fill_rate=1 gives max(D); invalid is NaN."""
    rng = np.random.default_rng(4)
    d = rng.gamma(0.8, 6.0, size=(60, 500))  # intermittent-looking, skewed
    fr = rng.uniform(0.7, 0.995, 60)
    q = rng.uniform(1.0, 40.0, 60)
    r = im.reorder_point_for_fill_rate_from_samples(d, fr, q)
    assert np.all(im.fill_rate_from_samples(d, r, q) >= fr - 1e-12)
    span = d.max(axis=1) - d.min(axis=1) + q
    assert np.all(im.fill_rate_from_samples(d, r - 1e-6 * span, q) < fr)
    r_int = im.reorder_point_for_fill_rate_from_samples(d, fr, q, step=1.0)
    assert np.all(r_int == np.round(r_int))
    assert np.all(im.fill_rate_from_samples(d, r_int, q) >= fr)
    assert np.all(im.fill_rate_from_samples(d, r_int - 1.0, q) < fr)
    one_by_one = np.array(
        [im.reorder_point_for_fill_rate_from_samples(d[i], fr[i], q[i], step=1.0) for i in range(len(d))]
    )
    np.testing.assert_array_equal(r_int, one_by_one)
    assert im.reorder_point_for_fill_rate_from_samples(d[0], 1.0, 5.0) == pytest.approx(d[0].max(), rel=1e-6)
    assert np.isnan(im.reorder_point_for_fill_rate_from_samples(d[0], 0.0, 5.0))
    assert np.isnan(im.reorder_point_for_fill_rate_from_samples(d[0], 0.9, 0.0))


def test_reorder_point_for_fill_rate_from_samples_matches_normal(normal_samples):
    """On normal samples the sample-based fill-rate reorder point matches the exact normal solution
    r = mu + k sigma, L(k) - L(k + Q/sigma) = (1 - fr) Q / sigma, within 5 Monte Carlo standard errors
    (fill-rate SE divided by the slope d fill / d r = (Phi(k + Q/sigma) - Phi(k)) / Q)."""
    fr = np.array([0.9, 0.95, 0.98, 0.99])
    got = im.reorder_point_for_fill_rate_from_samples(normal_samples, fr, Q_ORDER)
    k = np.asarray(im.safety_factor_for_fill_rate(fr, Q_ORDER, SIGMA, k_min=-np.inf, exact=True).k)
    expected = MU + k * SIGMA
    se_fr = np.clip(normal_samples - expected[:, None], 0, Q_ORDER).std(axis=1) / math.sqrt(N_MC) / Q_ORDER
    slope = (stats.norm.cdf(k + Q_ORDER / SIGMA) - stats.norm.cdf(k)) / Q_ORDER
    assert np.all(np.abs(got - expected) <= 5 * se_fr / slope)


def test_quantile_inputs():
    """Quantile grids: the interpolated quantile function hits the grid values, sorts crossed quantiles, holds
    flat outside the grid, and the midpoint 'samples' of a fine normal grid reproduce the normal answers."""
    levels = np.array([0.1, 0.5, 0.9])
    qv = np.array([[10.0, 20.0, 40.0], [5.0, 3.0, 9.0]])  # second row crossed
    np.testing.assert_allclose(tb.reorder_point_from_quantiles(levels, qv, 0.5), [20.0, 5.0])
    np.testing.assert_allclose(tb.reorder_point_from_quantiles(levels, qv, [0.7, 0.99]), [30.0, 9.0])
    np.testing.assert_allclose(tb.reorder_point_from_quantiles(levels, qv, 0.01), [10.0, 3.0])
    samples = tb.quantiles_to_samples(levels, qv, n_samples=10)
    assert samples.shape == (2, 10) and np.all(np.diff(samples, axis=1) >= 0)
    with pytest.raises(ValueError):
        tb.reorder_point_from_quantiles([0.5, 0.1, 0.9], qv, 0.5)

    fine = np.linspace(0.0005, 0.9995, 1999)
    normal_q = stats.norm.ppf(fine, MU, SIGMA)[None, :]
    s = tb.quantiles_to_samples(fine, normal_q, n_samples=4000)
    assert im.reorder_point_from_samples(s, 0.95) == pytest.approx(tb.reorder_point_csl(0.95, MU, SIGMA), rel=1e-3)
    exact_fr = tb.fill_rate_from_safety_stock(10.0, Q_ORDER, SIGMA, exact=True)
    assert im.fill_rate_from_samples(s, MU + 10.0, Q_ORDER) == pytest.approx(exact_fr, abs=1e-3)


def test_cycle_service_from_samples_is_the_share_at_or_below_r():
    """P(D <= r) per row; a 1-D series gives a float; the inverted-cdf reorder point achieves its csl."""
    rng = np.random.default_rng(12)
    d = rng.poisson(5.0, size=(50, 300)).astype(float)
    r = rng.integers(0, 12, 50).astype(float)
    np.testing.assert_array_equal(im.cycle_service_from_samples(d, r), (d <= r[:, None]).mean(axis=1))
    assert im.cycle_service_from_samples(d[0], r[0]) == (d[0] <= r[0]).mean()
    csl = rng.uniform(0.5, 0.99, 50)
    assert np.all(im.cycle_service_from_samples(d, im.reorder_point_from_samples(d, csl)) >= csl)


def test_reorder_points_by_rule_and_stockout_over_lead_time():
    """CSL rows: the empirical quantile rounded up to units; fill-rate rows: the smallest whole-unit r meeting the
    sample fill rate, floored by the csl_floor quantile (basis says which). Stock-out over the lead time alone:
    P(f D > x) and E[(f D - x)+] from the protection-interval samples."""
    rng = np.random.default_rng(13)
    d = rng.poisson(rng.uniform(0.3, 20.0, (60, 1)), size=(60, 400)).astype(float) + 0.25
    is_fill = np.arange(60) % 2 == 1
    target = np.where(is_fill, 0.97, 0.9)
    q = rng.integers(1, 60, 60).astype(float)
    r, basis = im.reorder_points(d, is_fill_rate=is_fill, target=target, q=q, csl_floor=0.6)
    csl_rows = ~is_fill
    np.testing.assert_array_equal(r[csl_rows], np.ceil(np.quantile(d[csl_rows], 0.9, axis=1, method="inverted_cdf")))
    assert set(basis[csl_rows]) == {im.BASIS_CSL}
    fill = np.asarray(im.fill_rate_from_samples(d[is_fill], r[is_fill], q[is_fill]))
    floor = np.ceil(np.quantile(d[is_fill], 0.6, axis=1, method="inverted_cdf"))
    by_fill = basis[is_fill] == im.BASIS_FILL
    assert set(basis[is_fill]) <= {im.BASIS_FILL, im.BASIS_FLOOR} and by_fill.any() and (~by_fill).any()
    assert np.all(fill >= 0.97) and np.all(r[is_fill] >= floor)
    assert np.all(r[is_fill][~by_fill] == floor[~by_fill])
    worse = np.asarray(im.fill_rate_from_samples(d[is_fill][by_fill], r[is_fill][by_fill] - 1.0, q[is_fill][by_fill]))
    assert np.all(worse < 0.97)

    pos = np.array([5.0, -3.0, np.nan, 10.0])
    lead = d[:4] * np.array([0.5, 0.5, 0.5, 0.0])[:, None]
    p_out, short = im.stockout_over_lead_time(lead, pos)
    assert p_out[0] == np.mean(0.5 * d[0] > 5.0)
    assert short[0] == pytest.approx(np.mean(np.maximum(0.5 * d[0] - 5.0, 0.0)), rel=1e-12)
    assert (p_out[1], short[1]) == (1.0, pytest.approx(np.mean(np.maximum(0.5 * d[1] + 3.0, 0.0)), rel=1e-12))
    assert np.isnan(p_out[2]) and np.isnan(short[2])
    assert (p_out[3], short[3]) == (0.0, 0.0)  # no lead time: no demand before the order lands


# ---------------------------------------------------------------------------------------------------------------
# order quantities
# ---------------------------------------------------------------------------------------------------------------


def test_ceil_units_ignores_floating_noise():
    """Round up to whole units, but 1e-9 (relative) of floating noise is not a unit."""
    x = np.array([10.000000001, 10.1, 10.0, 0.1 + 0.2, -0.5, -2.000000001, 0.0, 1e6 + 0.5])
    np.testing.assert_array_equal(im.ceil_units(x), [10.0, 11.0, 10.0, 1.0, -0.0, -2.0, 0.0, 1e6 + 1.0])


def test_round_to_pack_invariants():
    """For q > 0: result >= q, result >= moq, result is a whole number of packs, and it is the smallest such."""
    rng = np.random.default_rng(9)
    n = 5000
    q = np.where(rng.random(n) < 0.5, rng.integers(1, 500, n), rng.uniform(0.01, 500, n))
    moq = np.where(rng.random(n) < 0.3, 0.0, rng.integers(0, 300, n).astype(float))
    pack = rng.choice([1.0, 6.0, 12.0, 24.0, 0.5, 2.5, 100.0], n)
    out = im.round_to_pack(q, moq, pack)
    tol = 1e-9 * np.maximum(1.0, out)
    assert np.all(out >= q - tol) and np.all(out >= moq - tol)
    n_packs = out / pack
    np.testing.assert_allclose(n_packs, np.round(n_packs), rtol=0, atol=1e-9)
    assert np.all(out - pack < np.maximum(q, moq))


def test_round_to_pack_edge_cases():
    """Pack 0/NaN/negative count as 1; NaN MOQ as 0; q <= 0 orders nothing; NaN q stays NaN; float noise."""
    assert im.round_to_pack(3.2, 0, 0) == 4.0
    assert im.round_to_pack(3.2, 0, np.nan) == 4.0
    assert im.round_to_pack(3.2, np.nan, -5) == 4.0
    assert im.round_to_pack(7, 10, 4) == 12.0  # MOQ 10 rounded up to whole packs
    assert im.round_to_pack(0.0, 10, 4) == 0.0 and im.round_to_pack(-3.0, 10, 4) == 0.0
    assert np.isnan(im.round_to_pack(np.nan, 10, 4))
    assert im.round_to_pack(0.1 + 0.2, 0, 0.1) == pytest.approx(0.3)
    assert im.round_to_pack(24.0, 0, 12) == 24.0


def test_order_up_to_and_rq_order_quantities():
    """Order-up-to: nothing when the position is at/above S, else the pack-rounded gap (position + order >= S).
    (r, nQ): the smallest multiple of Q lifting the position above r."""
    pos = np.array([120.0, 100.0, 37.0, -20.0])
    qty = tb.order_up_to_quantity(pos, 100.0, moq=0, pack_size=12)
    np.testing.assert_array_equal(qty, [0.0, 0.0, 72.0, 120.0])
    assert np.all((pos >= 100) | (pos + qty >= 100))
    rq = tb.rq_order_quantity(np.array([60.0, 50.0, 49.0, -75.0]), 50.0, 25.0)
    np.testing.assert_array_equal(rq, [0.0, 25.0, 25.0, 150.0])


# ---------------------------------------------------------------------------------------------------------------
# vectorisation
# ---------------------------------------------------------------------------------------------------------------

_RNG = np.random.default_rng(21)
_N = 25
_VECTOR_CASES = {
    "standard_normal_loss": (tb.standard_normal_loss, [_RNG.normal(0, 3, _N)]),
    "complementary_normal_loss": (tb.complementary_normal_loss, [_RNG.normal(0, 3, _N)]),
    "second_order_normal_loss": (tb.second_order_normal_loss, [_RNG.normal(0, 3, _N)]),
    "inverse_standard_normal_loss": (im.inverse_standard_normal_loss, [_RNG.lognormal(-1, 2, _N)]),
    "normal_loss": (im.normal_loss, [_RNG.normal(10, 5, _N), 10.0, _RNG.uniform(0, 4, _N)]),
    "normal_loss_complement": (im.normal_loss_complement, [_RNG.normal(10, 5, _N), 10.0, _RNG.uniform(0, 4, _N)]),
    "poisson_loss": (im.poisson_loss, [_RNG.uniform(-2, 30, _N), _RNG.uniform(0, 20, _N)]),
    "poisson_loss_complement": (tb.poisson_loss_complement, [_RNG.uniform(-2, 30, _N), _RNG.uniform(0, 20, _N)]),
    "safety_stock_csl": (tb.safety_stock_csl, [_RNG.uniform(0.5, 0.999, _N), _RNG.uniform(0, 10, _N)]),
    "eoq": (im.eoq, [_RNG.uniform(1, 50, _N), 0.3, _RNG.uniform(10, 5000, _N)]),
    "newsvendor_cost_normal": (
        tb.newsvendor_cost_normal,
        [_RNG.uniform(20, 80, _N), 0.2, _RNG.uniform(0.5, 3, _N), 50.0, _RNG.uniform(1, 10, _N)],
    ),
    "rq_cost_normal": (
        tb.rq_cost_normal,
        [_RNG.uniform(50, 200, _N), _RNG.uniform(50, 400, _N), 0.225, 7.5, 8.0, 1300.0, 108.3, 43.3],
    ),
    "rq_optimal_r_for_q_normal": (
        tb.rq_optimal_r_for_q_normal,
        [_RNG.uniform(10, 800, _N), 0.225, _RNG.uniform(1, 10, _N), 108.3, _RNG.uniform(0, 60, _N)],
    ),
    "fill_rate_from_safety_stock": (
        tb.fill_rate_from_safety_stock,
        [_RNG.normal(0, 10, _N), _RNG.uniform(1, 100, _N), _RNG.uniform(0, 30, _N)],
    ),
    "round_to_pack": (im.round_to_pack, [_RNG.uniform(-5, 100, _N), _RNG.integers(0, 40, _N), 6.0]),
    "rq_order_quantity": (tb.rq_order_quantity, [_RNG.uniform(-50, 100, _N), 40.0, _RNG.uniform(5, 30, _N)]),
}


@pytest.mark.parametrize("name", sorted(_VECTOR_CASES))
def test_vectorised_equals_elementwise(name):
    """Array calls (with scalar arguments broadcast) equal scalar calls element by element; scalars give float."""
    fn, args = _VECTOR_CASES[name]
    vec = fn(*args)
    assert isinstance(vec, np.ndarray) and vec.shape == (_N,)
    for i in range(_N):
        scalar_args = [a[i] if isinstance(a, np.ndarray) else a for a in args]
        one = fn(*scalar_args)
        assert isinstance(one, float)
        assert one == pytest.approx(vec[i], rel=1e-12, abs=1e-12, nan_ok=True)


def test_vectorised_tuple_results_and_samples_rows():
    """NamedTuple results broadcast too, and sample-based functions treat each row independently."""
    fr = np.array([0.9, 0.99, 0.95])
    res = im.safety_factor_for_fill_rate(fr, 50.0, np.array([20.0, 5.0, 1.0]), exact=True)
    for i in range(3):
        one = im.safety_factor_for_fill_rate(fr[i], 50.0, [20.0, 5.0, 1.0][i], exact=True)
        assert one.k == pytest.approx(res.k[i], rel=1e-12, abs=1e-12)
        assert one.met_by_order_quantity == res.met_by_order_quantity[i] and one.capped == res.capped[i]
    nv = tb.newsvendor_normal(0.18, 0.7, np.array([50.0, 60.0]), 8.0)
    assert nv.level[1] == pytest.approx(tb.newsvendor_normal(0.18, 0.7, 60.0, 8.0).level)
    rng = np.random.default_rng(8)
    d = rng.poisson(4.0, size=(30, 200)).astype(float)
    r = rng.integers(0, 10, 30).astype(float)
    vec = im.fill_rate_from_samples(d, r, 6.0)
    one = [im.fill_rate_from_samples(d[i], r[i], 6.0) for i in range(30)]
    np.testing.assert_allclose(vec, one, rtol=1e-14)
    np.testing.assert_allclose(
        im.expected_shortage_from_samples(d, r), [im.expected_shortage_from_samples(d[i], r[i]) for i in range(30)]
    )


def test_many_series_at_once():
    """30,000 series in one call (the production scale) without a per-row loop: shapes and sanity only."""
    rng = np.random.default_rng(0)
    n = 30_000
    d = rng.gamma(1.2, 3.0, size=(n, 64))
    q = rng.uniform(2, 40, n)
    r = im.reorder_point_for_fill_rate_from_samples(d, 0.95, q, step=1.0)
    assert r.shape == (n,) and np.all(np.isfinite(r))
    assert np.all(im.fill_rate_from_samples(d, r, q) >= 0.95)
    k = im.safety_factor_for_fill_rate(rng.uniform(0.8, 0.99, n), q, rng.uniform(0.5, 20, n), exact=True)
    assert np.asarray(k.k).shape == (n,) and np.all(np.isfinite(k.k))


def test_a_level_shift_adds_customers_not_larger_orders():
    """``level_shifted_interval``: a level above 1 adds independent intervals of the row's own draws (whole, and a
    share of one more), so the mean moves by the factor and a slow item's one-unit sale stays one unit; below 1
    the draws are scaled; 1 leaves them as they are."""
    rng = np.random.default_rng(0)
    s = (rng.random((4, 40_000)) < 0.05).astype(float)  # a slow item: one unit now and then
    lead = s * (rng.random((4, 40_000)) < 0.5)
    f = np.array([1.0, 1.2, 2.5, 0.5])
    out, out_lead = im.level_shifted_interval(s, lead, f)
    np.testing.assert_array_equal(out[0], s[0])
    np.testing.assert_array_equal(out_lead[0], lead[0])
    np.testing.assert_allclose(out.mean(axis=1), f * s.mean(axis=1), rtol=0.05)
    np.testing.assert_allclose(out_lead.mean(axis=1), f * lead.mean(axis=1), rtol=0.07)
    assert (out_lead <= out + 1e-12).all()
    # a 20% higher level: more than one unit in an interval only when the added share of an interval sold too
    # (5% x 5%), where scaled draws make every sale 1.2 units
    assert (out[1] > 1.0).mean() < 0.01  # more than one unit only when the added interval sold too (5% x 5%)
    assert ((1.2 * s[1]) > 1.0).mean() > 0.04
    # a row's result does not depend on the other rows
    alone, _ = im.level_shifted_interval(s[2:3], lead[2:3], f[2:3])
    np.testing.assert_array_equal(alone[0], out[2])


def test_the_undershoot_chain_of_a_row_does_not_depend_on_the_rows_beside_it():
    """``review_undershoot`` runs its chain a block of rows at a time (for the cache): a row's draws are the same
    whether it is passed alone or among 2,100 rows, on either side of a block's edge, and stay in [0, Q)."""
    rng = np.random.default_rng(3)
    n = 2 * im._UNDERSHOOT_BLOCK_ROWS + 52
    d = rng.gamma(0.4, 4.0, size=(n, 200))
    q = rng.integers(1, 40, n).astype(float)
    together = im.review_undershoot(d, q)
    assert together.shape == d.shape
    assert (together >= 0).all() and (together < q[:, None]).all()
    edge = im._UNDERSHOOT_BLOCK_ROWS
    for i in (0, edge - 1, edge, 2 * edge, n - 1):
        np.testing.assert_array_equal(im.review_undershoot(d[i:i + 1], q[i:i + 1])[0], together[i])


def test_stretched_draws_of_a_row_do_not_depend_on_which_rows_are_stretched():
    """``stretched_interval`` over every row with a factor of 1 where nothing is stretched gives the stretched rows
    exactly as stretching those rows alone does, and leaves the others as they are (the policy stretches all
    rows in one call instead of copying the stretched rows out and back)."""
    rng = np.random.default_rng(4)
    s = rng.poisson(3.0, size=(6, 500)).astype(float)
    lead = np.floor(s * rng.random((6, 500)))
    f = np.array([1.0, 1.7, 1.0, 3.2, 0.6, 1.0])
    all_rows, all_lead = im.stretched_interval(s, lead, f)
    moved = np.flatnonzero(f != 1.0)
    some, some_lead = im.stretched_interval(s[moved], lead[moved], f[moved])
    np.testing.assert_array_equal(all_rows[moved], some)
    np.testing.assert_array_equal(all_lead[moved], some_lead)
    kept = np.flatnonzero(f == 1.0)
    np.testing.assert_array_equal(all_rows[kept], s[kept])
    np.testing.assert_array_equal(all_lead[kept], lead[kept])
