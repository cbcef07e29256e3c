"""The simulation engine (``ml.simulation.engine``): known answers, rounding, no look-ahead, determinism.

Known answers (Poisson demand, order-up-to level S, fixed lead time L = receipt day - order day; an order placed
at the close of day t is on the shelf at the opening of day t + L):

1. Backorders, review every R days: the closing net inventory j days into a cycle is S - D_{L+j} (D_k = demand
   over k days, Poisson(k lambda)), j = 0 .. R-1. So the average closing on hand is
   (1/R) sum_j E[(S - D_{L+j})+] and the units short per cycle telescope to E[(D_{L+R-1} - S)+] - E[(D_{L-1} - S)+],
   giving fill = 1 - [n(S; (L+R-1) lambda) - n(S; (L-1) lambda)] / (R lambda). This is the periodic-review
   base-stock model of Snyder & Shen, *Fundamentals of Supply Chain Theory* (2nd ed.), ch. 4, whose lead time is
   our L - 1 (demand over their L + 1 periods = our L days); the per-period shortfall as the difference of
   expected backorders is the standard fill-rate argument (Axsater, *Inventory Control*, 3rd ed., ch. 5; Zipkin,
   *Foundations of Inventory Management*, ch. 6).
2. Lost sales, L = 1, review every R days: every cycle opens with exactly S on hand and is a newsvendor over R
   days: fill = E[min(S, D_R)] / (R lambda) = 1 - n(S; R lambda) / (R lambda), average closing on hand =
   (1/R) sum_{j=1..R} E[(S - D_j)+], cycle service = P(D_R <= S | D_R > 0) (a period without demand places no
   order, so its cycle runs on into the next period), stock-out days per day =
   (1/R) sum_j P(D_j > S) (Snyder & Shen ch. 4, the newsvendor's expected sales / leftover).
3. Lost sales, L = 2, daily review: the on hand at the opening, x, is a Markov chain on 0..S with
   x' = (x - d)+ + (S - x) (the order placed yesterday is S - x); its stationary law gives fill and stock exactly
   (the exact Markov-chain / DP formulation of the lost-sales model, e.g. Zipkin, "Old and new methods for
   lost-sales inventory systems", Operations Research 56(5), 2008).

n(x; m) and E[(x - D)+] are ``ml.policy.inventory_math.poisson_loss`` /
``tests.inventory_textbook.poisson_loss_complement``.
Monte Carlo tolerance: series are independent, so the standard error is the spread of per-series estimates
over sqrt(n_series); the tests allow 4.5 standard errors.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ml.policy import inventory_math as im
from ml.simulation.engine import (
    CostParams,
    InitialState,
    LeadTimeModel,
    PolicySchedule,
    ReceiptOutage,
    simulate,
    uniforms,
)
from ml.simulation.planning import classical_planner, plan_days_every, schedule_from_planner
from tests import inventory_textbook as tb

Z_TOL = 4.5


def _poisson(n: int, days: int, lam: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).poisson(lam, (n, days)).astype(np.float64)


def _costs(n: int, **kw) -> CostParams:
    return CostParams(np.ones(n), **kw)


def _assert_mc(per_series: np.ndarray, exact: float, what: str) -> None:
    est = float(np.mean(per_series))
    se = float(np.std(per_series, ddof=1) / np.sqrt(per_series.size))
    assert abs(est - exact) <= Z_TOL * se + 1e-9, f"{what}: simulated {est:.5f} vs exact {exact:.5f} (se {se:.5f})"


# ================================================================================================================
# known answers
# ================================================================================================================


@pytest.mark.parametrize(("lam", "lead", "review", "level"), [(4.0, 3, 1, 16), (2.5, 2, 3, 14)])
def test_backorder_base_stock_matches_closed_form(lam: float, lead: int, review: int, level: int) -> None:
    n, days, warm = 1500, 1600, 60
    demand = _poisson(n, days, lam, seed=1)
    pol = PolicySchedule.base_stock(level, n_series=n, review_period=review)
    res = simulate(demand, pol, LeadTimeModel.fixed(n, lead), InitialState.at_level(level, n), costs=_costs(n),
                   rng_seed=0, lost_sales=False, measure_from=warm)
    n_lo, n_hi = im.poisson_loss(level, lam * (lead - 1)), im.poisson_loss(level, lam * (lead + review - 1))
    fill_exact = 1.0 - (n_hi - n_lo) / (review * lam)
    on_hand_exact = np.mean([tb.poisson_loss_complement(level, lam * (lead + j)) for j in range(review)])
    # per-series fill = 1 - short/demand; its mean is close to the ratio of means (short is small, demand ~ days)
    _assert_mc(1.0 - res.short / (lam * res.measured_days), fill_exact, "fill rate")
    _assert_mc(res.avg_on_hand, on_hand_exact, "average on hand")
    # every series ordered on each review day in the window, and (backorders) exactly the demand since the last one
    assert res.units_ordered.sum() == pytest.approx(res.demanded.sum(), rel=0.01)


@pytest.mark.parametrize(("lam", "review", "level"), [(4.0, 1, 6), (3.0, 4, 15)])
def test_lost_sales_newsvendor_cycles_match_closed_form(lam: float, review: int, level: int) -> None:
    n, days, warm = 1500, 1601, 1
    demand = _poisson(n, days, lam, seed=2)
    pol = PolicySchedule.base_stock(level, n_series=n, review_period=review)
    res = simulate(demand, pol, LeadTimeModel.fixed(n, 1), InitialState.at_level(level, n), costs=_costs(n),
                   rng_seed=0, lost_sales=True, measure_from=warm)
    d_r = lam * review
    fill_exact = 1.0 - im.poisson_loss(level, d_r) / d_r
    on_hand_exact = np.mean([tb.poisson_loss_complement(level, lam * j) for j in range(1, review + 1)])
    # a review period without demand places no order, so its cycle runs on into the next period (same stock S):
    # a cycle is the first review period with demand, CSL = P(D_R <= S | D_R > 0)
    p0 = stats.poisson.pmf(0, d_r)
    csl_exact = (stats.poisson.cdf(level, d_r) - p0) / (1.0 - p0)
    so_exact = np.mean([stats.poisson.sf(level, lam * j) for j in range(1, review + 1)])
    _assert_mc(res.served / (lam * res.measured_days), fill_exact, "fill rate")
    _assert_mc(res.avg_on_hand, on_hand_exact, "average on hand")
    _assert_mc(res.cycle_service_level, csl_exact, "cycle service level")
    _assert_mc(res.stockout_days / res.measured_days, so_exact, "stock-out days per day")
    # receipts every R days from day 1 on (unless a period had no demand): complete cycles = receipts - 1
    assert np.all(res.cycles <= (days - 1) // review - 1)
    assert res.cycles.mean() == pytest.approx(((days - 1) // review - 1) * (1.0 - p0), rel=0.01)


def test_lost_sales_lead_time_two_matches_markov_chain() -> None:
    lam, level, n, days, warm = 3.0, 8, 2000, 1500, 30
    # exact: x' = (x - d)+ + S - x on 0..S
    xs = np.arange(level + 1)
    pmf = stats.poisson.pmf(np.arange(level + 1), lam)
    trans = np.zeros((level + 1, level + 1))
    for x in xs:
        for d in range(x + 1):
            p = pmf[d] if d < x else stats.poisson.sf(x - 1, lam)  # d >= x: all of it sold
            trans[x, x - d + level - x] += p
    w, v = np.linalg.eig(trans.T)
    pi = np.real(v[:, np.argmin(np.abs(w - 1))])
    pi = pi / pi.sum()
    exp_sales = float(pi @ (lam - np.array([im.poisson_loss(x, lam) for x in xs])))
    exp_close = float(pi @ np.array([tb.poisson_loss_complement(x, lam) for x in xs]))

    demand = _poisson(n, days, lam, seed=3)
    pol = PolicySchedule.base_stock(level, n_series=n)
    init = InitialState(np.full(n, level / 2), in_transit=np.column_stack([np.zeros(n), np.full(n, level / 2)]))
    res = simulate(demand, pol, LeadTimeModel.fixed(n, 2), init, costs=_costs(n), rng_seed=0, measure_from=warm)
    _assert_mc(res.served / res.measured_days, exp_sales, "sales per day")
    _assert_mc(res.avg_on_hand, exp_close, "average closing on hand")


# ================================================================================================================
# rounding, rules, bookkeeping
# ================================================================================================================


def test_moq_and_pack_rounding_s_S() -> None:
    days = 40
    demand = np.full((1, days), 3.0)
    pol = PolicySchedule(np.array([0]), [10.0], order_up_to=[30.0], moq=[24.0], pack_size=[12.0], name="sS")
    res = simulate(demand, pol, LeadTimeModel.fixed(1, 2), InitialState.at_level([20.0]), costs=_costs(1),
                   rng_seed=0, record_daily=True)
    q = res.daily["orders"][0]
    placed = q[q > 0]
    assert placed.size > 0
    assert np.all(placed % 12 == 0) and np.all(placed >= 24)
    # by hand: stock 20 - 3/day, IP <= 10 first at the close of day 3 (20 - 12 = 8): need 22 -> MOQ 24 -> 24
    assert np.flatnonzero(q)[0] == 3 and q[3] == 24
    ip = 20.0 - 3 * np.arange(1, days + 1) + np.cumsum(q)
    assert np.all(ip[q > 0] - q[q > 0] <= 10) and np.all(ip >= 8)
    assert res.short.sum() == 0


def test_s_nQ_rule_orders_whole_multiples() -> None:
    n, days = 50, 200
    demand = _poisson(n, days, 6.0, seed=4)
    pol = PolicySchedule(np.array([0]), np.full(n, 15.0), order_quantity=np.full(n, 10.0), pack_size=4.0,
                         rule="s_nQ")
    res = simulate(demand, pol, LeadTimeModel.fixed(n, 3), InitialState.at_level(30.0, n), costs=_costs(n),
                   rng_seed=0, record_daily=("orders",))
    q = res.daily["orders"]
    assert np.all(q[q > 0] % 12 == 0)  # Q = 10 rounded to packs of 4 -> 12, ordered in multiples n x 12


def test_fast_rounding_matches_inventory_math() -> None:
    from ml.simulation.engine import _round_packs

    raw = np.random.default_rng(5).gamma(2.0, 5.0, 1000)
    idx = np.arange(1000)
    assert np.array_equal(_round_packs(raw, np.zeros(1000), np.ones(1000), idx, True), im.round_to_pack(raw, 0, 1))
    moq, pack = np.full(1000, 6.0), np.full(1000, 4.0)
    assert np.array_equal(_round_packs(raw, moq, pack, idx, False), im.round_to_pack(raw, moq, pack))


def test_stock_and_units_are_conserved() -> None:
    n, days = 300, 250
    demand = np.random.default_rng(6).negative_binomial(2, 0.3, (n, days)).astype(float)
    lt = LeadTimeModel.from_pmfs({"a": [0, 0.2, 0.5, 0.3], "b": [0, 0, 0, 0.1, 0.2, 0.4, 0.3]},
                                 np.where(np.arange(n) % 2 == 0, "a", "b"))
    pol = PolicySchedule(np.array([0, 100]), np.full((2, n), 8.0), order_up_to=np.full((2, n), 25.0),
                         review_period=np.array([[1] * n, [7] * n]), moq=5, pack_size=3)
    init = InitialState(np.full(n, 10.0), in_transit=np.full((n, 3), 2.0))
    res = simulate(demand, pol, lt, init, costs=_costs(n), rng_seed=7)
    assert np.allclose(init.on_hand + res.units_received, res.served + res.end_on_hand)
    assert np.allclose(6.0 + res.units_ordered, res.units_received + res.end_pipeline)
    assert np.allclose(res.served + res.short, res.demanded)
    assert np.allclose(res.daily_totals["served"].sum(), res.served.sum())


def test_cycle_service_definition_by_hand() -> None:
    # lead time 1, review every 5 days, S = 10: opening stock 10 on days 1, 6, 11, ...
    demand = np.array([[0, 2, 2, 2, 2, 2,  3, 3, 3, 3, 0,  1, 1, 1, 1, 1,  9, 0, 0, 0, 5]], dtype=float)
    pol = PolicySchedule.base_stock([10.0], review_period=5)
    res = simulate(demand, pol, LeadTimeModel.fixed(1, 1), InitialState.at_level([10.0]), costs=_costs(1),
                   rng_seed=0, record_daily=("receipts",))
    # day 0: no demand, position = S, no order; day 5 orders 10 (arrives day 6), day 10 orders 12, day 15 orders 5.
    # Receipts on days 6, 11, 16. Days 0..5 come before the first receipt (not a cycle); cycle [6..10] runs out on
    # day 9 (demand 12 > 10); cycle [11..15] is fine; [16..20] is still open at the end (day 20 runs short too).
    assert np.flatnonzero(res.daily["receipts"][0]).tolist() == [6, 11, 16]
    assert res.cycles[0] == 2 and res.cycles_ok[0] == 1
    assert res.stockout_days[0] == 2 and res.first_stockout_day[0] == 9
    assert res.short[0] == 2.0 + 4.0


def test_bullwhip_of_base_stock_with_fixed_lead_time_is_one() -> None:
    n, days = 400, 500
    demand = _poisson(n, days, 5.0, seed=8)
    pol = PolicySchedule.base_stock(30.0, n_series=n)
    res = simulate(demand, pol, LeadTimeModel.fixed(n, 4), InitialState.at_level(30.0, n), costs=_costs(n),
                   rng_seed=0, lost_sales=False)
    assert np.allclose(res.bullwhip, 1.0, atol=1e-12)  # backorders: the order replaces exactly the day's demand
    assert np.allclose(res.bullwhip_weekly, 1.0, atol=1e-12)
    # lost sales: the order replaces the day's sales, = demand when stock-outs are rare (S well above D_4)
    res_ls = simulate(demand, PolicySchedule.base_stock(45.0, n_series=n), LeadTimeModel.fixed(n, 4),
                      InitialState.at_level(45.0, n), costs=_costs(n), rng_seed=0, lost_sales=True)
    assert res_ls.short.sum() / res_ls.demanded.sum() < 1e-4
    assert np.nanmean(res_ls.bullwhip) == pytest.approx(1.0, abs=0.005)


# ================================================================================================================
# lead times
# ================================================================================================================


def test_lead_time_draws_follow_the_pmf_and_are_common_across_policies() -> None:
    pmfs = {"a": [0, 0.1, 0.6, 0.3], "b": [0, 0, 0, 0, 0.25, 0.25, 0.25, 0.25]}
    n = 40_000
    groups = np.where(np.arange(n) < n // 2, "a", "b")
    lt = LeadTimeModel.from_pmfs(pmfs, groups)
    draws = lt.sample(11, 5)
    for name, rows in (("a", slice(0, n // 2)), ("b", slice(n // 2, n))):
        p = np.asarray(pmfs[name])
        counts = np.bincount(draws[rows], minlength=p.size)
        keep = p > 0
        chi2 = (((counts[keep] - p[keep] * n / 2) ** 2) / (p[keep] * n / 2)).sum()
        assert chi2 < stats.chi2.ppf(0.999, keep.sum() - 1)
        assert counts[~keep].sum() == 0
    assert np.array_equal(draws, lt.sample(11, 5))
    assert not np.array_equal(draws, lt.sample(12, 5))
    u = uniforms(3, 7, np.arange(100_000))
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.005


def test_shifted_gamma_pmf_matches_the_demo_generator_rule() -> None:
    shift, shape, scale = 4.5, 6.25, 0.72
    lt = LeadTimeModel.shifted_gamma({"S": (shift, shape, scale)}, ["S"], max_days=60)
    rng = np.random.default_rng(0)
    draws = np.clip(np.rint(shift + rng.gamma(shape, scale, 400_000)), 1, 60).astype(int)
    emp = np.bincount(draws, minlength=61) / draws.size
    assert np.abs(emp - lt.pmf[0]).max() < 0.004
    assert lt.mean_days()[0] == pytest.approx(draws.mean(), abs=0.02)


def test_outage_holds_receipts_until_it_ends() -> None:
    n, days = 20, 120
    demand = _poisson(n, days, 3.0, seed=9)
    lt = LeadTimeModel.from_pmfs({"A": [0, 0, 0.5, 0.5], "B": [0, 0, 1.0]}, ["A"] * 10 + ["B"] * 10)
    lt_out = LeadTimeModel(lt.pmf, lt.group, lt.group_names, outages=(ReceiptOutage(("A",), 30, 44),))
    pol = PolicySchedule.base_stock(15.0, n_series=n)
    kw = dict(costs=_costs(n), rng_seed=1, record_daily=True)
    base = simulate(demand, pol, lt, InitialState.at_level(15.0, n), **kw)
    out = simulate(demand, pol, lt_out, InitialState.at_level(15.0, n), **kw)
    rec = out.daily["receipts"]
    assert rec[:10, 30:44].sum() == 0 and rec[:10, 44].sum() > 0
    assert np.array_equal(rec[10:], base.daily["receipts"][10:])  # supplier B untouched
    assert np.array_equal(rec[:10, :30], base.daily["receipts"][:10, :30])


# ================================================================================================================
# no look-ahead, determinism
# ================================================================================================================


def test_no_look_ahead_with_replanning() -> None:
    n, hist, days, t0 = 200, 120, 180, 95
    rng = np.random.default_rng(10)
    observed = rng.poisson(4.0, (n, hist + days)).astype(float)
    changed = observed.copy()
    changed[:, hist + t0 + 1:] = rng.poisson(9.0, (n, days - t0 - 1))  # the future changes after day t0
    lt = LeadTimeModel.from_pmfs({"s": [0, 0, 0.3, 0.4, 0.3]}, ["s"] * n)
    plan = classical_planner(1.3, lead_time_mean=lt.mean_days(), lead_time_sd=lt.sd_days(), review_period=3,
                             window_days=90, moq=4, pack_size=2)
    days_plan = plan_days_every(days, 30)
    runs = []
    for obs in (observed, changed):
        sched = schedule_from_planner(days_plan, obs, plan, n_history=hist, lead_times=lt)
        runs.append((sched, simulate(obs[:, hist:], sched, lt, InitialState.at_level(20.0, n), costs=_costs(n),
                                     rng_seed=4, record_daily=True)))
    (s_a, r_a), (s_b, r_b) = runs
    visible = days_plan <= t0 + 1  # a plan made on day t0 + 1 sees days up to t0 only
    assert np.array_equal(s_a.reorder_point[visible], s_b.reorder_point[visible])
    assert not np.array_equal(s_a.reorder_point[~visible], s_b.reorder_point[~visible])
    assert np.array_equal(r_a.daily["orders"][:, : t0 + 1], r_b.daily["orders"][:, : t0 + 1])
    assert not np.array_equal(r_a.daily["orders"], r_b.daily["orders"])


def test_planner_cannot_write_or_see_the_future() -> None:
    seen = []

    def planner(ctx):
        seen.append(ctx.observed.shape[1])
        with pytest.raises(ValueError):
            ctx.observed[0, 0] = 1.0
        from ml.simulation.planning import PlanParams
        return PlanParams(reorder_point=1.0, order_up_to=2.0)

    obs = np.zeros((3, 50 + 60))
    schedule_from_planner([0, 20, 40], obs, planner, n_history=50)
    assert seen == [50, 70, 90]


def test_determinism_and_block_invariance() -> None:
    n, days = 700, 150
    demand = np.random.default_rng(12).negative_binomial(1.5, 0.25, (n, days)).astype(float)
    lt = LeadTimeModel.from_pmfs({"x": [0, 0.1, 0.2, 0.4, 0.2, 0.1], "y": [0] * 8 + [0.5, 0.5]},
                                 np.where(np.arange(n) % 3 == 0, "x", "y"))
    pol = PolicySchedule(np.array([0]), np.full(n, 12.0), order_up_to=np.full(n, 40.0), review_period=2,
                         review_offset=np.arange(n) % 2, pack_size=5)
    init = InitialState.at_level(30.0, n)
    run = lambda seed, block: simulate(demand, pol, lt, init, costs=_costs(n), rng_seed=seed,  # noqa: E731
                                       block_size=block, record_daily=("orders",))
    a, b, c, d = run(1, 4096), run(1, 4096), run(1, 97), run(2, 4096)
    for f in ("served", "on_hand_sum", "units_ordered", "cycles", "first_stockout_day"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
        assert np.array_equal(getattr(a, f), getattr(c, f))
    assert np.array_equal(a.daily["orders"], c.daily["orders"])
    assert not np.array_equal(a.on_hand_sum, d.on_hand_sum)


# ================================================================================================================
# perfect foresight
# ================================================================================================================


def test_perfect_foresight_serves_everything_with_no_stock_left_at_cycle_end() -> None:
    n, days, lead, review = 300, 200, 3, 7
    demand = _poisson(n, days, 5.0, seed=13)
    # opening stock covers the days before the first order can arrive (days 0 .. lead)
    init = InitialState(demand[:, : lead + 1].sum(axis=1))
    pol = PolicySchedule.perfect_foresight(n, review_period=review)
    res = simulate(demand, pol, LeadTimeModel.fixed(n, lead), init, costs=_costs(n), rng_seed=0,
                   record_daily=("on_hand", "receipts"))
    assert res.short.sum() == 0
    on_hand, rec = res.daily["on_hand"], res.daily["receipts"]
    arrivals = np.flatnonzero(rec.sum(axis=0) > 0)
    assert np.all(on_hand[:, arrivals[1:] - 1] == 0)  # every cycle closes with nothing left
    # with a daily review and pack 1 the closing stock is zero every day after the first arrival
    daily = simulate(demand, PolicySchedule.perfect_foresight(n), LeadTimeModel.fixed(n, lead), init,
                     costs=_costs(n), rng_seed=0, measure_from=lead + 1)
    assert daily.short.sum() == 0 and daily.on_hand_sum.sum() == 0
    # a real policy at the same service holds more
    bs = simulate(demand, PolicySchedule.base_stock(60.0, n_series=n, review_period=review),
                  LeadTimeModel.fixed(n, lead), init, costs=_costs(n), rng_seed=0)
    assert bs.on_hand_sum.sum() > res.on_hand_sum.sum()


def test_costs_are_charged_as_documented() -> None:
    n, days = 10, 100
    demand = _poisson(n, days, 2.0, seed=14)
    costs = CostParams(np.full(n, 4.0), holding_rate=0.365, ordering_cost=7.0, unit_price=np.full(n, 10.0))
    res = simulate(demand, PolicySchedule.base_stock(3.0, n_series=n), LeadTimeModel.fixed(n, 2),
                   InitialState.at_level(3.0, n), costs=costs, rng_seed=0)
    assert np.allclose(res.holding_cost, res.on_hand_sum * 4.0 * 0.001)
    assert np.allclose(res.ordering_cost, res.orders * 7.0)
    assert np.allclose(res.shortage_cost, res.short * 6.0) and np.allclose(res.lost_margin, res.short * 6.0)
    assert res.short.sum() > 0


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="plan_days"):
        PolicySchedule(np.array([1, 5]), np.zeros((2, 3)), order_up_to=np.ones((2, 3)))
    with pytest.raises(ValueError, match="order_up_to"):
        PolicySchedule(np.array([0]), np.zeros(3))
    with pytest.raises(ValueError, match="sum to 1"):
        LeadTimeModel(np.array([[0.0, 0.5]]), np.zeros(2, dtype=int), ("a",))
    with pytest.raises(ValueError, match="no lead-time distribution"):
        LeadTimeModel.from_pmfs({"a": [0, 1]}, ["a", "b"])
    pol = PolicySchedule.base_stock(5.0, n_series=2)
    with pytest.raises(ValueError, match="non-negative"):
        simulate(np.array([[1.0, -1.0], [0, 0]]), pol, LeadTimeModel.fixed(2, 1), InitialState.at_level(1.0, 2),
                 costs=_costs(2), rng_seed=0)


def test_forced_orders_replace_the_rule_on_their_days_and_are_checked() -> None:
    from ml.simulation.engine import ForcedOrders

    n, days = 3, 30
    pmf = np.zeros((1, 8))
    pmf[0, 5] = 1.0
    lead = LeadTimeModel(pmf, np.zeros(n, np.int64), ("S",))
    policy = PolicySchedule(plan_days=np.array([0]), reorder_point=np.full(n, 12.0), order_quantity=np.full(n, 20.0),
                            review_period=np.ones(n), rule="s_nQ")
    costs = CostParams(np.full(n, 10.0), 0.25, 0.0, None, np.full(n, 16.0))
    start = InitialState.at_level(np.full(n, 12.0))
    plain = simulate(np.full((n, days), 2.0), policy, lead, start, costs=costs, rng_seed=1, record_daily=["orders"])
    forced = simulate(np.full((n, days), 2.0), policy, lead, start, costs=costs, rng_seed=1, record_daily=["orders"],
                      forced_orders=ForcedOrders([0, 1, 2], [0, 0, 3], [0.0, 50.0, 7.0]))
    assert plain.daily["orders"][:, 0].tolist() == [20.0, 20.0, 20.0]
    # series 0: nothing on day 0, the rule orders again the next day; series 1: 50 instead of 20
    assert forced.daily["orders"][0, :2].tolist() == [0.0, 20.0]
    assert forced.daily["orders"][1, 0] == 50.0
    # series 2: the rule's day-0 order stands, and day 3 gets the forced 7 although the rule would not order
    assert forced.daily["orders"][2, 0] == 20.0 and forced.daily["orders"][2, 3] == 7.0
    assert plain.daily["orders"][2, 3] == 0.0
    with pytest.raises(ValueError, match="at most one order per series and day"):
        ForcedOrders([0, 0], [1, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match="outside"):
        simulate(np.full((n, days), 2.0), policy, lead, start, costs=costs, rng_seed=1,
                 forced_orders=ForcedOrders([5], [0], [1.0]))
