"""Tests for ``ml.policy.multi_echelon``.

1. Known answers from ``/work/shared/data/inventory_known_answers.md``: ``gsm_tree_ex6_5`` (exact, 1e-9) and
   ``ssm_ex6_1`` (Shang-Song heuristic to 1e-4). The file's *optimal* ``ssm_ex6_1`` levels/cost are not reproduced:
   our converged Clark-Scarf optimum is cheaper than the published levels both under exact evaluation and in a
   common-random-numbers Monte Carlo, and its stage-1 level equals the closed-form newsvendor value; see
   ``test_ssm_ex6_1_published_optimum`` (strict xfail, kept visible) and the tests around it.
2. Cross-checks: GSM tree DP == brute-force enumeration on random trees; the vectorised two-level GSM == the tree
   DP; Clark-Scarf with one stage == the newsvendor; METRIC on a hand-computed Poisson case.

hypothesis is not installed in the project venv, so the property tests use seeded random draws and parametrize.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest

from ml.policy import multi_echelon as me
from tests import inventory_textbook as tb

N = me.GSMNode


# ================================================================================================================
# 1. Known answers
# ================================================================================================================


def _ex6_5_nodes() -> dict[int, me.GSMNode]:
    return {
        1: N(holding_cost=1, processing_time=2, external_inbound_service_time=1),
        3: N(holding_cost=2, processing_time=1),
        2: N(holding_cost=3, processing_time=1, demand_sd=1, max_outbound_service_time=0),
        4: N(holding_cost=3, processing_time=1, demand_sd=1, max_outbound_service_time=1),
    }


EX6_5_EDGES = [(1, 3), (3, 2), (3, 4)]


def test_gsm_tree_ex6_5():
    """Case ``gsm_tree_ex6_5``. Source: Snyder & Shen, Fundamentals of Supply Chain Theory (2nd ed.), Example 6.5,
    as reproduced in the stockpyl test suite (LarrySnyder/stockpyl@0bae176c, tests/test_gsm_tree.py).
    Expected S = {1: 0, 2: 0, 3: 0, 4: 1}, cost 2 sqrt 2 + sqrt 6 + 3 = 8.277916867529369; tolerance 1e-9."""
    sol = me.gsm_tree(_ex6_5_nodes(), EX6_5_EDGES, safety_factor=1.0)
    assert sol.outbound_service_time == {1: 0, 2: 0, 3: 0, 4: 1}
    assert abs(sol.cost - 8.277916867529369) <= 1e-9
    assert abs(sol.cost - (2 * math.sqrt(2) + math.sqrt(6) + 3)) <= 1e-12
    assert sol.demand_sd[3] == pytest.approx(math.sqrt(2), abs=1e-15)  # root-sum-square of the two stores
    assert sol.demand_sd[1] == pytest.approx(math.sqrt(2), abs=1e-15)
    assert sol.inbound_service_time == {1: 1, 3: 0, 2: 0, 4: 0}
    assert sol.net_lead_time == {1: 3, 3: 1, 2: 1, 4: 0}
    # the optimum is unique: enumeration finds no other solution within 1e-9
    costs = _brute_force_gsm(_ex6_5_nodes(), EX6_5_EDGES, 1.0)
    best = min(costs.values())
    assert abs(best - sol.cost) <= 1e-12
    assert [s for s, c in costs.items() if c <= best + 1e-9] == [(0, 0, 0, 1)]  # order of nodes 1, 3, 2, 4


SSM_H = [3.0, 2.0, 2.0]  # echelon holding cost, stage 1 (customer-facing) first
SSM_L = [1.0, 1.0, 2.0]
SSM_P, SSM_MU, SSM_SIGMA = 37.12, 5.0, 1.0


def test_ssm_ex6_1_shang_song_heuristic():
    """Case ``ssm_ex6_1`` (heuristic). Source: Snyder & Shen (2nd ed.), Example 6.1, via stockpyl tests
    (LarrySnyder/stockpyl@0bae176c, tests/test_ssm_serial.py). h_ech = {1: 3, 2: 2, 3: 2}, L = {1: 1, 2: 1, 3: 2},
    p = 37.12, D ~ N(5, 1). Expected Shang-Song S = {1: 6.4909, 2: 12.0274, 3: 22.6340}; tolerance 1e-4."""
    s = me.shang_song_serial_normal(SSM_H, SSM_L, SSM_P, SSM_MU, SSM_SIGMA)
    np.testing.assert_allclose(s, [6.4909, 12.0274, 22.6340], rtol=0, atol=1e-4)


@pytest.fixture(scope="module")
def ssm_optimum() -> me.SerialBaseStock:
    return me.clark_scarf_serial_normal(SSM_H, SSM_L, SSM_P, SSM_MU, SSM_SIGMA, n_grid=4001)


@pytest.mark.xfail(strict=True, reason=(
    "published 'optimal' ssm_ex6_1 levels {6.5997, 11.9966, 22.7906}, cost 47.7747 are not reproduced: the "
    "converged Clark-Scarf optimum is {6.4909, 12.0177, 22.7055}, cost 47.6604, and the published levels cost "
    "0.028 more under exact evaluation and in a CRN Monte Carlo (see the tests below); S*_1 is a closed-form "
    "newsvendor level, 6.49088, not 6.5997"))
def test_ssm_ex6_1_published_optimum(ssm_optimum):
    """Case ``ssm_ex6_1`` (optimum), as published: S = {1: 6.5997, 2: 11.9966, 3: 22.7906}, cost 47.7747, ~1e-2."""
    np.testing.assert_allclose(ssm_optimum.echelon_base_stock, [6.5997, 11.9966, 22.7906], atol=1e-2)
    assert abs(ssm_optimum.cost - 47.7747) <= 1e-2


def test_ssm_ex6_1_exact_optimum_is_converged_and_consistent(ssm_optimum):
    """What the exact recursion gives for ``ssm_ex6_1`` and why it is right.

    - Stage 1's cost C_1(y) = h_1 E(y - D_1) + (p + h'_1) E(D_1 - y)+ is a newsvendor with critical ratio
      (p + h_2 + h_3) / (p + h'_1), so S*_1 = 5 + Phi^-1(41.12 / 44.12) = 6.490881 in closed form (it equals the
      Shang-Song level, whose two bounds coincide at stage 1).
    - The levels move by < 5e-4 and the cost by < 2e-3 when the grid is halved.
    - The cost of the Shang-Song levels is within 0.02% of the optimum and not below it; the published optimal
      levels cost 0.0278 more than ours.
    """
    s, cost = ssm_optimum
    s1_closed = 5.0 + float(tb.safety_stock_csl(41.12 / 44.12, 1.0))
    assert abs(s[0] - s1_closed) <= 1e-4
    np.testing.assert_allclose(s, [6.4909, 12.0177, 22.7055], atol=5e-4)
    assert abs(cost - 47.6604) <= 2e-3
    coarse = me.clark_scarf_serial_normal(SSM_H, SSM_L, SSM_P, SSM_MU, SSM_SIGMA, n_grid=2001)
    np.testing.assert_allclose(coarse.echelon_base_stock, s, atol=5e-4)
    assert abs(coarse.cost - cost) <= 2e-3

    heur = me.shang_song_serial_normal(SSM_H, SSM_L, SSM_P, SSM_MU, SSM_SIGMA)
    c_heur = me.clark_scarf_serial_normal(SSM_H, SSM_L, SSM_P, SSM_MU, SSM_SIGMA, n_grid=4001,
                                          echelon_base_stock=heur).cost
    assert cost - 1e-6 <= c_heur <= cost * 1.0002
    c_pub = me.clark_scarf_serial_normal(SSM_H, SSM_L, SSM_P, SSM_MU, SSM_SIGMA, n_grid=4001,
                                         echelon_base_stock=[6.5997, 11.9966, 22.7906]).cost
    assert c_pub - cost == pytest.approx(0.0278, abs=2e-3)


def _serial_cost_samples(levels, demand_draws) -> np.ndarray:
    """Monte Carlo of the serial system's steady state (Gallego-Zipkin / Chen-Zheng form): a unit's path from
    stage N down to stage 1 meets independent lead-time demands; IN_N = S_N - D_N, IN_j = min(S_j, IN_{j+1}) - D_j;
    cost = sum_j h_j IN_j + (p + h'_1) (IN_1)^-."""
    x = np.full(demand_draws[0].shape, np.inf)
    per = np.zeros_like(x)
    for j in reversed(range(len(levels))):
        x = np.minimum(levels[j], x) - demand_draws[j]
        per += SSM_H[j] * x
    return per + (SSM_P + sum(SSM_H)) * np.maximum(-x, 0.0)


def test_ssm_ex6_1_monte_carlo(ssm_optimum):
    """A common-random-numbers Monte Carlo (1M draws, seed 0) agrees with the recursion's cost, and ranks our
    optimum below the published levels and below the Shang-Song levels."""
    rng = np.random.default_rng(0)
    n = 1_000_000
    draws = [rng.normal(SSM_MU * lt, SSM_SIGMA * math.sqrt(lt), n) for lt in SSM_L]
    ours = _serial_cost_samples(ssm_optimum.echelon_base_stock, draws)
    se = ours.std() / math.sqrt(n)
    assert abs(ours.mean() - ssm_optimum.cost) <= 4 * se
    for other in ([6.5997, 11.9966, 22.7906], me.shang_song_serial_normal(SSM_H, SSM_L, SSM_P, SSM_MU, SSM_SIGMA)):
        diff = _serial_cost_samples(other, draws) - ours
        assert diff.mean() > 0
    pub = _serial_cost_samples([6.5997, 11.9966, 22.7906], draws) - ours
    assert pub.mean() > 10 * pub.std() / math.sqrt(n)


# ================================================================================================================
# 2. Serial model: more checks
# ================================================================================================================


@pytest.mark.parametrize(("h", "p", "lt", "mu", "sigma"), [(0.18, 0.7, 1.0, 50.0, 8.0), (2.0, 18.0, 3.0, 10.0, 4.0)])
def test_clark_scarf_single_stage_is_newsvendor(h, p, lt, mu, sigma):
    """N = 1: C_1(y) = h E(y - D)+ + p E(D - y)+, the newsvendor with D ~ N(mu L, sigma sqrt L)."""
    s_nv, c_nv = tb.newsvendor_normal(h=h, p=p, mu=mu * lt, sigma=sigma * math.sqrt(lt))
    sol = me.clark_scarf_serial_normal([h], [lt], p, mu, sigma, n_grid=4001)
    assert abs(sol.echelon_base_stock[0] - s_nv) <= 1e-3 * sigma * math.sqrt(lt)
    assert abs(sol.cost - c_nv) <= 1e-4 * max(1.0, c_nv)
    h_only = me.shang_song_serial_normal([h], [lt], p, mu, sigma)
    assert h_only[0] == pytest.approx(s_nv, abs=1e-9)


def test_shang_song_vectorised_over_products():
    h = np.array([[3.0, 2.0, 2.0], [1.0, 0.5, 0.25]])
    lt = np.array([[1.0, 1.0, 2.0], [2.0, 3.0, 1.0]])
    p, mu, sd = np.array([37.12, 9.0]), np.array([5.0, 20.0]), np.array([1.0, 6.0])
    both = me.shang_song_serial_normal(h, lt, p, mu, sd)
    assert both.shape == (2, 3)
    for i in range(2):
        np.testing.assert_allclose(both[i], me.shang_song_serial_normal(h[i], lt[i], p[i], mu[i], sd[i]), rtol=1e-15)
    assert np.all(np.diff(both, axis=1) > 0)  # echelon levels grow upstream


def test_clark_scarf_deterministic_demand():
    """sigma = 0: the optimum holds exactly the lead-time demand at every echelon; the only cost is echelon
    holding on the pipeline into stage 1: h_2 * mu * L_1 = 1 * 4 * 1 = 4 (stage 2's echelon stock includes it)."""
    sol = me.clark_scarf_serial_normal([1.0, 1.0], [1.0, 2.0], 10.0, 4.0, 0.0, n_grid=2001)
    np.testing.assert_allclose(sol.echelon_base_stock, [4.0, 12.0], atol=0.05)
    assert sol.cost == pytest.approx(4.0, abs=0.05)


# ================================================================================================================
# 3. Guaranteed-service model: cross-checks
# ================================================================================================================


def _brute_force_gsm(nodes, edges, z) -> dict[tuple[int, ...], float]:
    """Every feasible integer assignment of outbound service times -> total safety-stock holding cost."""
    keys = list(nodes)
    pred = {k: [a for a, b in edges if b == k] for k in keys}
    succ = {k: [b for a, b in edges if a == k] for k in keys}
    sd: dict = {}
    longest: dict = {}

    def node_sd(k):
        if k not in sd:
            sd[k] = math.sqrt(nodes[k].demand_sd ** 2 + sum(node_sd(j) ** 2 for j in succ[k]))
        return sd[k]

    def reach(k):
        if k not in longest:
            longest[k] = max([reach(i) for i in pred[k]], default=nodes[k].external_inbound_service_time) \
                + nodes[k].processing_time
        return longest[k]

    ranges = []
    for k in keys:
        cap = nodes[k].max_outbound_service_time
        if cap is None:
            cap = 0 if not succ[k] else reach(k)
        ranges.append(range(min(cap, reach(k)) + 1))
    out = {}
    for combo in itertools.product(*ranges):
        s = dict(zip(keys, combo, strict=True))
        total, ok = 0.0, True
        for k in keys:
            si = max([s[i] for i in pred[k]], default=nodes[k].external_inbound_service_time)
            nlt = si + nodes[k].processing_time - s[k]
            if nlt < 0:
                ok = False
                break
            total += nodes[k].holding_cost * z * node_sd(k) * math.sqrt(nlt)
        if ok:
            out[combo] = total
    return out


def _random_tree(rng: np.random.Generator, n: int):
    """A random tree with random edge directions (so assembly and distribution parts mix)."""
    edges = []
    for k in range(1, n):
        other = int(rng.integers(0, k))
        edges.append((other, k) if rng.random() < 0.6 else (k, other))
    succ = {k: [b for a, b in edges if a == k] for k in range(n)}
    nodes = {}
    for k in range(n):
        leaf = not succ[k]
        nodes[k] = N(
            holding_cost=float(rng.uniform(0.5, 5.0)),
            processing_time=int(rng.integers(0, 4)),
            demand_sd=float(rng.uniform(0.5, 3.0)) if leaf or rng.random() < 0.2 else 0.0,
            max_outbound_service_time=int(rng.integers(0, 3)) if leaf else None,
            external_inbound_service_time=int(rng.integers(0, 3)),
        )
    return nodes, edges


@pytest.mark.parametrize("seed", range(12))
def test_gsm_tree_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    nodes, edges = _random_tree(rng, int(rng.integers(2, 7)))
    sol = me.gsm_tree(nodes, edges, safety_factor=1.3)
    costs = _brute_force_gsm(nodes, edges, 1.3)
    assert abs(sol.cost - min(costs.values())) <= 1e-9 * max(1.0, sol.cost)
    assert abs(me.gsm_tree_cost(nodes, edges, sol.outbound_service_time, safety_factor=1.3).cost - sol.cost) <= 1e-12


def test_gsm_tree_rejects_cycles_and_bad_times():
    nodes = {1: N(1, 1), 2: N(1, 1, demand_sd=1), 3: N(1, 1, demand_sd=1)}
    with pytest.raises(ValueError, match="not a tree"):
        me.gsm_tree(nodes, [(1, 2), (2, 3), (3, 1)])
    with pytest.raises(ValueError, match="whole number"):
        me.gsm_tree({1: N(1, 1.5, demand_sd=1)}, [])
    with pytest.raises(ValueError, match="negative net lead time"):
        me.gsm_tree_cost(_ex6_5_nodes(), EX6_5_EDGES, {1: 5, 3: 0, 2: 0, 4: 0})


def _two_level_random(rng: np.random.Generator, n_p: int, n_s: int, *, integer: bool = True):
    def draw(lo, hi, shape):
        return rng.integers(lo, hi + 1, shape).astype(float) if integer else rng.uniform(lo, hi, shape)

    return dict(
        dc_holding_cost=rng.uniform(0.2, 2.0, n_p),
        dc_processing_time=draw(0, 6, n_p),
        dc_inbound_service_time=draw(0, 3, n_p),
        store_holding_cost=rng.uniform(0.5, 4.0, (n_p, n_s)),
        store_processing_time=draw(0, 3, (n_p, n_s)),
        store_demand_sd=np.where(rng.random((n_p, n_s)) < 0.1, 0.0, rng.uniform(0.1, 5.0, (n_p, n_s))),
        store_max_service_time=draw(0, 2, (n_p, n_s)),
        store_safety_factor=rng.uniform(0.8, 2.3, (n_p, n_s)),
        dc_safety_factor=rng.uniform(0.8, 2.3, n_p),
    )


def test_gsm_two_level_matches_tree_dp():
    rng = np.random.default_rng(42)
    args = _two_level_random(rng, 25, 4)
    sol = me.gsm_two_level(**args)
    assert sol.cost.shape == (25,) and sol.store_safety_stock.shape == (25, 4)
    for i in range(25):
        nodes = {"dc": N(args["dc_holding_cost"][i], int(args["dc_processing_time"][i]),
                         external_inbound_service_time=int(args["dc_inbound_service_time"][i]),
                         safety_factor=args["dc_safety_factor"][i])}
        for j in range(4):
            nodes[j] = N(args["store_holding_cost"][i, j], int(args["store_processing_time"][i, j]),
                         demand_sd=args["store_demand_sd"][i, j],
                         max_outbound_service_time=int(args["store_max_service_time"][i, j]),
                         safety_factor=args["store_safety_factor"][i, j])
        tree = me.gsm_tree(nodes, [("dc", j) for j in range(4)])
        assert abs(sol.cost[i] - tree.cost) <= 1e-9 * max(1.0, tree.cost)
        recomputed = (args["dc_holding_cost"][i] * sol.dc_safety_stock[i]
                      + np.sum(args["store_holding_cost"][i] * sol.store_safety_stock[i]))
        assert recomputed == pytest.approx(sol.cost[i], rel=1e-12)
    assert np.all(sol.dc_outbound_service_time == np.round(sol.dc_outbound_service_time))
    assert np.all(sol.store_net_lead_time >= 0) and np.all(sol.dc_net_lead_time >= 0)
    assert np.all(sol.store_outbound_service_time <= args["store_max_service_time"])


def test_gsm_two_level_real_times_beat_a_fine_grid():
    """Non-integer times: the breakpoint candidates are exact, so no S_dc on a fine grid does better."""
    rng = np.random.default_rng(7)
    args = _two_level_random(rng, 40, 6, integer=False)
    sol = me.gsm_two_level(**args)
    reach = args["dc_inbound_service_time"] + args["dc_processing_time"]
    grid = np.linspace(0.0, 1.0, 2001)[None, :] * reach[:, None]  # (n_p, 2001)
    slack = args["store_processing_time"] - args["store_max_service_time"]
    sd_dc = np.sqrt(np.sum(args["store_demand_sd"] ** 2, axis=1))
    dc_c = (args["dc_holding_cost"] * args["dc_safety_factor"] * sd_dc)[:, None] * np.sqrt(reach[:, None] - grid)
    st_coef = args["store_holding_cost"] * args["store_safety_factor"] * args["store_demand_sd"]
    st_c = np.sum(st_coef[:, None, :] * np.sqrt(np.maximum(grid[:, :, None] + slack[:, None, :], 0.0)), axis=2)
    assert np.all(sol.cost <= (dc_c + st_c).min(axis=1) + 1e-9)


def test_gsm_two_level_pooling_moves_stock_to_the_dc():
    """Many identical stores with a cheap DC: the DC should hold the stock (S_dc = 0) and stores quote s = 0 with
    NLT = T_store only; with one store and an expensive DC, all stock sits at the store (S_dc = SI + T)."""
    many = me.gsm_two_level(dc_holding_cost=1.0, dc_processing_time=4, dc_inbound_service_time=0,
                            store_holding_cost=np.full((1, 30), 1.2), store_processing_time=1,
                            store_demand_sd=np.ones((1, 30)), store_safety_factor=1.645, dc_safety_factor=1.645)
    assert many.dc_outbound_service_time[0] == 0
    np.testing.assert_allclose(many.store_net_lead_time, 1.0)
    assert many.dc_demand_sd[0] == pytest.approx(math.sqrt(30))
    one = me.gsm_two_level(dc_holding_cost=1.0, dc_processing_time=4, dc_inbound_service_time=0,
                           store_holding_cost=[[1.2]], store_processing_time=1, store_demand_sd=[[1.0]],
                           store_safety_factor=1.645, dc_safety_factor=1.645)
    assert one.dc_outbound_service_time[0] == 4 and one.dc_safety_stock[0] == 0.0
    np.testing.assert_allclose(one.store_net_lead_time, 5.0)


def test_gsm_two_level_is_fast_for_many_products():
    rng = np.random.default_rng(3)
    args = _two_level_random(rng, 5000, 50)
    t0 = time.perf_counter()
    sol = me.gsm_two_level(**args)
    assert time.perf_counter() - t0 < 10.0  # ~1 s on one core; generous for a shared machine
    assert np.all(np.isfinite(sol.cost))


def test_gsm_safety_stock():
    assert me.gsm_safety_stock(1.645, 10.0, 4.0) == pytest.approx(32.9)
    assert math.isnan(me.gsm_safety_stock(1.0, 1.0, -1.0))


# ================================================================================================================
# 4. METRIC-style DC delay
# ================================================================================================================


def test_metric_poisson_hand_case():
    """DC: lambda = 2 per period, L = 1, S = 2, so outstanding orders X ~ Poisson(2).
    E[B] = E(X - 2)+ = E[X] - 2 + E(2 - X)+ = 2 P(0) + 1 P(1) = 2e^-2 + 2e^-2 = 4e^-2 = 0.541341;
    W = E[B] / lambda = 2e^-2 = 0.270671; E[I] = S - lambda L + E[B] = 4e^-2; P(wait) = P(X >= 2) = 1 - 3e^-2."""
    e2 = math.exp(-2.0)
    d = me.metric_dc_delay(2, 2.0, 1.0)
    assert d.expected_backorders == pytest.approx(4 * e2, rel=1e-12)
    assert d.expected_delay == pytest.approx(2 * e2, rel=1e-12)
    assert d.expected_on_hand == pytest.approx(4 * e2, rel=1e-12)
    assert d.stockout_probability == pytest.approx(1 - 3 * e2, rel=1e-12)
    assert me.metric_store_lead_time(3.0, d.expected_delay) == pytest.approx(3.0 + 2 * e2, rel=1e-12)


def test_metric_limits_and_vectorisation():
    d = me.metric_dc_delay(np.array([0.0, 50.0]), np.array([3.0, 3.0]), 2.0)
    np.testing.assert_allclose(d.expected_delay, [2.0, 0.0], atol=1e-12)  # S = 0: every order waits the full L
    np.testing.assert_allclose(d.stockout_probability, [1.0, 0.0], atol=1e-12)
    zero = me.metric_dc_delay(1.0, 0.0, 2.0)
    assert zero.expected_delay == 0.0


def test_metric_normal_matches_integration():
    d = me.metric_dc_delay(110.0, 25.0, 4.0, distribution="normal", demand_sd=10.0)
    mu, sigma = 100.0, 20.0
    x = np.linspace(mu - 12 * sigma, mu + 12 * sigma, 400001)
    pdf = np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    ebo = np.trapezoid(np.maximum(x - 110.0, 0.0) * pdf, x)
    assert d.expected_backorders == pytest.approx(ebo, rel=1e-7)
    assert d.expected_delay == pytest.approx(ebo / 25.0, rel=1e-7)
    with pytest.raises(ValueError, match="demand_sd"):
        me.metric_dc_delay(1.0, 1.0, 1.0, distribution="normal")


# ---------------------------------------------------------------------------------------------------------------
# ml.policy.echelon: the METRIC placement used by run_policy (opt-in)
# ---------------------------------------------------------------------------------------------------------------


def test_expected_backorders_from_samples_is_the_average_loss_over_the_position() -> None:
    from ml.policy.echelon import expected_backorders_from_samples

    rng = np.random.default_rng(3)
    s = rng.poisson(40.0, size=(2, 20_000)).astype(float)
    r, q = np.array([38.0, 45.0]), np.array([1.0, 24.0])
    eb = expected_backorders_from_samples(s, r, q, points=24)
    assert eb[0] == pytest.approx(np.maximum(s[0] - 38.0, 0).mean())
    exact = np.mean([np.maximum(s[1] - y, 0).mean() for y in np.arange(46.0, 70.0)])  # y = r+1 .. r+Q
    assert eb[1] == pytest.approx(exact, rel=0.05)


def _one_dc_two_stores() -> tuple:
    """(keys, samples, own reorder points at 95%, order quantities, common placement arguments): a DC with 30 days
    of 20/day and a wide spread, two stores with 2 days of 10/day."""
    import polars as pl

    rng = np.random.default_rng(5)
    keys = pl.DataFrame({"product_id": ["P"] * 3, "location_id": ["DC", "S1", "S2"],
                         "replenished_from": [None, "DC", "DC"]})
    s = np.vstack([rng.gamma(9.0, 600.0 / 9.0, 4000), rng.poisson(20.0, 4000), rng.poisson(20.0, 4000)])
    r0 = np.ceil(np.quantile(s, 0.95, axis=1))
    common = dict(daily_demand=np.array([20.0, 10.0, 10.0]), protection_days=np.array([30.0, 2.0, 2.0]),
                  is_fill_rate=np.zeros(3, dtype=bool), target=np.full(3, 0.95), csl_floor=0.8)
    return keys, s, r0, np.array([200.0, 10.0, 10.0]), common


def test_placement_moves_protection_to_where_holding_is_cheaper() -> None:
    from ml.policy.echelon import place_safety_stock

    keys, s, r0, q, common = _one_dc_two_stores()
    dear_dc = place_safety_stock(keys, s, r0, q, holding_cost=np.array([10.0, 1.0, 1.0]), **common)
    cheap_dc = place_safety_stock(keys, s, r0, q, holding_cost=np.array([0.01, 10.0, 10.0]), **common)
    # an expensive DC gives up protection to its stores, which then wait longer and hold more
    assert dear_dc.reorder_point[0] < r0[0] and dear_dc.changed[0]
    assert np.all(dear_dc.reorder_point[1:] > r0[1:]) and np.all(dear_dc.wait_days[1:] > 0)
    # a nearly free DC keeps (at least) its own protection and the stores barely wait
    assert cheap_dc.reorder_point[0] >= r0[0]
    assert np.all(cheap_dc.wait_days[1:] < dear_dc.wait_days[1:])
    assert np.all(cheap_dc.stretch[1:] < dear_dc.stretch[1:]) and cheap_dc.stretch[0] == 1.0


def test_a_dc_facing_a_peak_keeps_more_protection_than_one_facing_flat_demand() -> None:
    """METRIC's mean wait assumes demand as it is over the DC's lead time; a season that peaks before the next
    plans' orders can land (``peak_ratio``) must not be met with a DC planned for the quiet weeks before it."""
    from ml.policy.echelon import place_safety_stock

    keys, s, r0, q, common = _one_dc_two_stores()
    # a unit costs three times as much to hold at a store (at twice, the stores' cheaper cover of the peak's wait,
    # mean x f plus safety stock x sqrt(f), keeps the DC at its lowest level in both cases)
    common["holding_cost"] = np.array([1.0, 3.0, 3.0])
    flat = place_safety_stock(keys, s, r0, q, **common)
    same = place_safety_stock(keys, s, r0, q, peak_ratio=np.ones(3), **common)
    peak = place_safety_stock(keys, s, r0, q, peak_ratio=np.array([2.0, 1.0, 1.0]), **common)
    np.testing.assert_array_equal(flat.reorder_point, same.reorder_point)  # a ratio of 1 changes nothing
    assert flat.reorder_point[0] < r0[0]  # flat demand: the expensive DC gives protection to its stores
    assert peak.reorder_point[0] > flat.reorder_point[0]  # a coming peak: the DC keeps more
    assert np.all(peak.wait_days[1:] > flat.wait_days[1:])  # and the wait is judged at the peak's rate


def test_the_peak_ratio_reads_the_busiest_four_weeks_the_dc_interval_reaches() -> None:
    import polars as pl

    from ml.policy.run import _peak_ratio

    days = np.arange(1, 121)
    # row 0 flat at 10 a day; row 1 10 a day, then 30 a day from day 41; row 2 (a store) like row 1
    m = np.r_[np.full(120, 10.0), np.where(days >= 41, 30.0, 10.0), np.where(days >= 41, 30.0, 10.0)]
    f = pl.DataFrame({"_i": np.repeat([0, 1, 2], 120).astype(np.uint32), "d0": np.tile(days, 3).astype(np.int64),
                      "len": np.ones(360), "m": m})
    ratio = _peak_ratio(f, 3, np.array([30.0, 30.0, 30.0]), rows=np.array([0, 1]))
    assert ratio[0] == pytest.approx(1.0)
    # row 1: the windows start on days 0..30, the busiest (days 29..56) holds 16 days at 30: 22.0 / 10
    assert ratio[1] == pytest.approx((12 * 10 + 16 * 30) / 28 / 10.0)
    assert ratio[2] == 1.0  # not a DC row
    short = _peak_ratio(f, 3, np.array([30.0, 10.0, 30.0]), rows=np.array([1]))
    assert short[1] == pytest.approx(1.0)  # its windows end by day 38: the rise on day 41 is beyond them


def test_a_dcs_samples_carry_its_stores_order_lots() -> None:
    """A DC is asked for its stores' whole lots: its samples gain the lots' rounding variance (q^2 / 6 per store,
    mean 0) and the undershoot of its reorder point (mean: half the demand-weighted lot), stay non-negative, and
    nothing else moves."""
    import polars as pl

    from ml.policy.echelon import with_store_order_lots

    keys = pl.DataFrame({"product_id": ["P", "P", "P", "Q", "Q"], "location_id": ["DC", "S1", "S2", "DC", "S1"],
                         "replenished_from": [None, "DC", "DC", None, "DC"]})
    rng = np.random.default_rng(1)
    s = np.vstack([rng.normal(500.0, 40.0, 20_000), rng.poisson(10.0, 20_000), rng.poisson(10.0, 20_000),
                   rng.normal(300.0, 20.0, 20_000), rng.poisson(5.0, 20_000)])
    q = np.array([200.0, 60.0, 30.0, 100.0, 1.0])  # Q's only store orders one unit at a time
    out = with_store_order_lots(keys, s, q)
    np.testing.assert_array_equal(out[1:3], s[1:3])  # stores unchanged
    np.testing.assert_array_equal(out[3], s[3])  # a DC whose store orders single units: unchanged
    assert abs(out[0].mean() - s[0].mean()) < 1.0  # the rounding error has mean 0
    extra = out[0].var() - s[0].var()
    assert extra == pytest.approx((60.0**2 + 30.0**2) / 6.0, rel=0.08)
    assert (out >= 0).all()
    np.testing.assert_array_equal(out, with_store_order_lots(keys, s, q))  # deterministic
    # with the stores' demand, the undershoot: the request that takes the DC to its reorder point overshoots it
    # by 0 .. X - 1 units of a lot X, the lot drawn in proportion to the stores' demand (S1 three times S2's)
    daily = np.array([40.0, 30.0, 10.0, 5.0, 5.0])
    under = with_store_order_lots(keys, s, q, daily_demand=daily)
    np.testing.assert_array_equal(under[1:4], s[1:4])
    expected_shift = 0.75 * (60.0 - 1.0) / 2.0 + 0.25 * (30.0 - 1.0) / 2.0
    assert under[0].mean() - s[0].mean() == pytest.approx(expected_shift, rel=0.05)
    assert under[0].var() > out[0].var()  # and its spread on top of the rounding's


def test_each_dc_gets_its_own_stores_lot_rounding_when_rows_interleave() -> None:
    """The lot errors are summed per DC row whatever the rows' order: stores of two DCs listed between them, each
    DC's added variance is its own stores' q^2 / 6, the stores are unchanged."""
    import polars as pl

    from ml.policy.echelon import with_store_order_lots

    keys = pl.DataFrame({"product_id": ["Q", "P", "P", "Q", "P", "Q"],
                         "location_id": ["S1", "S2", "DC", "DC", "S1", "S2"],
                         "replenished_from": ["DC", "DC", None, None, "DC", "DC"]})
    rng = np.random.default_rng(2)
    s = np.vstack([rng.poisson(5.0, 20_000), rng.poisson(10.0, 20_000), rng.normal(500.0, 30.0, 20_000),
                   rng.normal(300.0, 20.0, 20_000), rng.poisson(10.0, 20_000), rng.poisson(5.0, 20_000)])
    q = np.array([12.0, 30.0, 200.0, 100.0, 60.0, 24.0])
    out = with_store_order_lots(keys, s, q)
    np.testing.assert_array_equal(out[[0, 1, 4, 5]], s[[0, 1, 4, 5]])
    assert out[2].var() - s[2].var() == pytest.approx((60.0**2 + 30.0**2) / 6.0, rel=0.08)
    assert out[3].var() - s[3].var() == pytest.approx((12.0**2 + 24.0**2) / 6.0, rel=0.1)


def test_slow_stores_waiting_at_the_dc_do_not_buy_the_dc_a_years_stock() -> None:
    """A slow part: five stores selling a unit now and then hold one unit each, and their reorder point stays one
    unit even when they wait a week at the DC. Reading their reorder point as growing with the interval (one unit
    over a 1-day interval = seven units over a week) made the DC keep its top quantile, a draw at the forecast's
    cap (36 units for 3 expected); the store's reorder point is its mean, which grows with the interval, plus its
    safety stock, which grows with the square root."""
    import polars as pl

    from ml.policy.echelon import place_safety_stock

    rng = np.random.default_rng(2)
    k = 2000
    dc = rng.poisson(3.0, k).astype(float)
    dc[rng.random(k) < 0.015] = 36.0  # the DC's draws: 3 units expected, a few at the cap
    stores = (rng.random((5, k)) < 0.02).astype(float)
    keys = pl.DataFrame({"product_id": ["P"] * 6, "location_id": ["DC", "S1", "S2", "S3", "S4", "S5"],
                         "replenished_from": [None] + ["DC"] * 5})
    placed = place_safety_stock(
        keys, np.vstack([dc, stores]), np.array([8.0, 1, 1, 1, 1, 1]), np.array([4.0, 1, 1, 1, 1, 1]),
        daily_demand=np.array([0.08] + [0.02] * 5), protection_days=np.array([38.0] + [1.0] * 5),
        holding_cost=np.full(6, 76.0), is_fill_rate=np.zeros(6, dtype=bool), target=np.full(6, 0.92),
        csl_floor=0.8, min_level=0.9)
    assert placed.reorder_point[0] <= np.quantile(dc, 0.9, method="higher") + 1  # not the 36 at the cap
    np.testing.assert_array_equal(placed.reorder_point[1:], 1.0)  # the stores' own re-set: still one unit
    assert placed.wait_days[1] > 3.0  # they do wait
