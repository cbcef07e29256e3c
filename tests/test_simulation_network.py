"""The two-echelon network simulator (``ml.simulation.network``): reduction to the single-echelon engine, fair-share
allocation, conservation, common random numbers, block invariance and a serial known answer.

Known answer (two-stage serial system, Poisson(lambda) demand, backorders at both stages, installation base-stock
levels S2 at the DC and S1 at the store, daily review, fixed supplier lead time L2 and transfer lead time L1, with
this simulator's day order): the DC orders each day what the store requested, so its closing net inventory is
S2 - D_{L2} and it owes the store B2 = (D_{L2} - S2)+. The store's closing net inventory L1 days after a close is
S1 - B2 - D_{L1} (everything shipped by then has arrived; what the DC still owed has not), with D_{L1} independent
of B2. So with X = (P_{L2} - S2)+ + P_{L1} (P_k ~ Poisson(k lambda), independent):
average closing on hand at the store = E[(S1 - X)+]; store fill = 1 - (E[(X - S1)+] - E[(X' - S1)+]) / lambda
with X' = (P_{L2} - S2)+ + P_{L1 - 1} (the backlog left after the morning's receipts); the DC's same-day fill =
1 - (E[(P_{L2} - S2)+] - E[(P_{L2 - 1} - S2)+]) / lambda and the mean wait at the DC = E[B2] / lambda (Little's
law). This is the classical exact evaluation of a serial base-stock system with Poisson demand (the downstream
stage's lead-time demand plus the upstream stage's backorders: Axsater, *Inventory Control*, 3rd ed., ch. 10;
Snyder & Shen, *Fundamentals of Supply Chain Theory*, 2nd ed., ch. 6). The serial case of
``../shared/data/inventory_known_answers.md`` (Snyder & Shen Ex. 6.1) is not used here: it has three stages,
normal demand and gives the *optimal* echelon levels and cost from a dynamic programme, which is a check for a
placement optimiser, not for a two-echelon replay.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ml.simulation.engine import CostParams, InitialState, LeadTimeModel, PolicySchedule, simulate
from ml.simulation.kpis import compare
from ml.simulation.network import (
    NETWORK_DAILY_FIELDS,
    allocate_fair_share,
    dc_rng_seed,
    simulate_network,
)

Z_TOL = 4.5
_FIELDS = ("demanded", "served", "short", "stockout_days", "empty_days", "first_stockout_day", "cycles",
           "cycles_ok", "on_hand_sum", "orders", "units_ordered", "units_received", "order_sumsq", "demand_sumsq",
           "week_order_sum", "week_order_sumsq", "week_demand_sum", "week_demand_sumsq", "end_on_hand",
           "end_pipeline", "end_backorders", "holding_cost", "shortage_cost", "lost_margin")


def _costs(n: int) -> CostParams:
    return CostParams(np.ones(n))


def _assert_mc(per_series: np.ndarray, exact: float, what: str) -> None:
    est = float(np.mean(per_series))
    se = float(np.std(per_series, ddof=1) / np.sqrt(per_series.size))
    assert abs(est - exact) <= Z_TOL * se + 1e-9, f"{what}: simulated {est:.5f} vs exact {exact:.5f} (se {se:.5f})"


def _never(n: int) -> PolicySchedule:
    """A DC policy that never orders (order-up-to far below any position)."""
    return PolicySchedule.base_stock(-1e9, n_series=n, name="never")


def _network(n_s: int, n_d: int, days: int, seed: int, lam: float = 3.0):
    rng = np.random.default_rng(seed)
    demand = rng.negative_binomial(2, 2 / (2 + lam), (n_s, days)).astype(float)
    parent = rng.integers(0, n_d, n_s)
    lt_s = LeadTimeModel.from_pmfs({"near": [0, 0.3, 0.5, 0.2], "far": [0, 0, 0.2, 0.3, 0.3, 0.2]},
                                   np.where(np.arange(n_s) % 3 == 0, "far", "near"))
    lt_d = LeadTimeModel.from_pmfs({"a": [0] * 4 + [0.2, 0.5, 0.3], "b": [0] * 8 + [0.5, 0.25, 0.25]},
                                   np.where(np.arange(n_d) % 2 == 0, "a", "b"))
    return demand, parent, lt_s, lt_d


# ================================================================================================================
# allocation rule
# ================================================================================================================


def test_fair_share_by_hand() -> None:
    # DC 0 holds 10 for requests 4, 6, 7 (17): quotas 2.35, 3.53, 4.12 -> floors 2, 3, 4, the one unit left goes to
    # the largest fractional part (3.53). DC 1 holds enough: every request in full.
    ship = allocate_fair_share([4, 6, 7, 5, 1], [0, 0, 0, 1, 1], [10.0, 6.0])
    assert ship.tolist() == [2, 4, 4, 5, 1]
    # equal fractional parts: the earlier entry first; nothing available: nothing shipped
    assert allocate_fair_share([1, 1, 1], [0, 0, 0], [2.0]).tolist() == [1, 1, 0]
    assert allocate_fair_share([3, 2], [0, 0], [0.0]).tolist() == [0, 0]
    # fractional stock: only whole units are allocated
    assert allocate_fair_share([2, 2], [0, 0], [2.5]).tolist() == [1, 1]


def test_fair_share_properties() -> None:
    rng = np.random.default_rng(0)
    m, n_g = 5000, 300
    need = rng.integers(0, 30, m).astype(float)
    grp = rng.integers(0, n_g, m)
    avail = rng.integers(0, 400, n_g).astype(float)
    ship = allocate_fair_share(need, grp, avail)
    tot_need = np.bincount(grp, need, n_g)
    tot_ship = np.bincount(grp, ship, n_g)
    assert np.all(ship >= 0) and np.all(ship <= need) and np.all(ship == np.round(ship))
    assert np.array_equal(tot_ship, np.minimum(tot_need, avail))  # integer stock: all of it goes out when short
    with np.errstate(all="ignore"):
        quota = np.where(tot_need[grp] > avail[grp], need * avail[grp] / tot_need[grp], need)
    assert np.all(np.abs(ship - quota) < 1.0)


# ================================================================================================================
# reduction to the single-echelon engine
# ================================================================================================================


@pytest.mark.parametrize("lost_sales", [True, False])
def test_infinite_dc_reproduces_single_echelon_engine(lost_sales: bool) -> None:
    n_s, n_d, days = 400, 37, 220
    demand, parent, lt_s, lt_d = _network(n_s, n_d, days, seed=1)
    pol = PolicySchedule(np.array([0, 90]), np.full((2, n_s), 8.0), order_quantity=np.full((2, n_s), 11.0),
                         review_period=np.array([[1] * n_s, [3] * n_s]), review_offset=np.arange(n_s) % 3,
                         moq=6, pack_size=4, rule="s_nQ", name="stores")
    init = InitialState(np.full(n_s, 12.0), in_transit=np.full((n_s, 3), 1.0))
    single = simulate(demand, pol, lt_s, init, costs=_costs(n_s), rng_seed=5, lost_sales=lost_sales,
                      measure_from=10, record_daily=True)
    net = simulate_network(demand, parent, pol, _never(n_d), lt_s, lt_d, init, InitialState.at_level(1e9, n_d),
                           store_costs=_costs(n_s), dc_costs=_costs(n_d), rng_seed=5, store_lost_sales=lost_sales,
                           measure_from=10, record_daily=True)
    st = net.stores
    for f in _FIELDS:
        assert np.array_equal(getattr(st, f), getattr(single, f)), f
    assert st.n_weeks == single.n_weeks
    for k in ("on_hand", "short", "orders", "receipts"):
        assert np.array_equal(st.daily[k], single.daily[k]), k
    for k in ("demand", "served", "on_hand_units", "units_ordered", "receipts"):
        assert np.allclose(st.daily_totals[k], single.daily_totals[k]), k
    # the DC shipped every request the day it came, and never ordered
    assert np.array_equal(net.dc.served, net.dc.demanded) and net.dc.short.sum() == 0
    assert net.dc.orders.sum() == 0 and net.store_owed_sum.sum() == 0


# ================================================================================================================
# a short DC: fair share, owed units shipped first later, conservation
# ================================================================================================================


def test_short_dc_splits_by_fair_share_and_ships_owed_units_first() -> None:
    days = 6
    demand = np.zeros((3, days))
    demand[:, 0] = [4, 6, 7]
    demand[2, 2] = 4
    lt1 = LeadTimeModel.fixed(3, 1)
    # the DC holds 10 and receives 9 at the opening of day 2; it never orders
    dc_init = InitialState([10.0], in_transit=np.array([[0.0, 0.0, 9.0]]))
    net = simulate_network(demand, np.zeros(3, dtype=np.int64), PolicySchedule.base_stock(10.0, n_series=3),
                           _never(1), lt1, LeadTimeModel.fixed(1, 5), InitialState.at_level(10.0, 3), dc_init,
                           store_costs=_costs(3), dc_costs=_costs(1), rng_seed=0, record_daily=True)
    st, dc = net.stores, net.dc
    shipped = st.daily["shipped"]
    # day 0: requests 4, 6, 7 (17) against 10 on hand -> fair share 2, 4, 4; owed 2, 2, 3
    assert shipped[:, 0].tolist() == [2, 4, 4]
    assert st.daily["owed"][:, 0].tolist() == [2, 2, 3] and st.daily["owed"][:, 1].tolist() == [2, 2, 3]
    # day 1: the stores' positions count what they are owed: no new request
    assert st.daily["orders"][:, 1].tolist() == [0, 0, 0]
    # day 2: 9 arrive; the 7 owed ship first, the new request of store 2 (4) gets the 2 left and 2 stay owed
    assert st.daily["orders"][:, 2].tolist() == [0, 0, 4]
    assert shipped[:, 2].tolist() == [2, 2, 5]
    assert st.daily["owed"][:, 2].tolist() == [0, 0, 2]
    # transfers arrive one day after shipping
    assert np.array_equal(st.daily["receipts"][:, 1:], shipped[:, :-1])
    assert st.end_on_hand.tolist() == [10, 10, 8] and st.short.sum() == 0
    # DC: demand = requests (17 + 4), served the same day 10 + 2, short 7 + 2 (backordered), shipped 19
    assert dc.demanded.tolist() == [21] and dc.served.tolist() == [12] and dc.short.tolist() == [9]
    assert dc.stockout_days.tolist() == [2] and not dc.lost_sales
    assert net.dc_shipped.tolist() == [19] and dc.end_on_hand.tolist() == [0] and dc.end_backorders.tolist() == [2]
    assert dc.daily["shipped"][0].tolist() == [10, 0, 9, 0, 0, 0]
    # owed units summed over the closes: store 0: 2 + 2, store 1: 2 + 2, store 2: 3 + 3 + 2 x 4
    assert net.store_owed_sum.tolist() == [4, 4, 14] and net.dc_owed_sum.tolist() == [22]
    assert net.dc_mean_wait[0] == pytest.approx(22 / 21)


def test_units_are_conserved_across_the_network() -> None:
    n_s, n_d, days = 600, 80, 300
    demand, parent, lt_s, lt_d = _network(n_s, n_d, days, seed=2)
    st_pol = PolicySchedule(np.array([0]), np.full(n_s, 10.0), order_up_to=np.full(n_s, 22.0), pack_size=2,
                            review_period=2, review_offset=np.arange(n_s) % 2)
    n_per_dc = np.bincount(parent, minlength=n_d)
    # a lean DC: it is often short
    dc_pol = PolicySchedule(np.array([0]), 6.0 * n_per_dc, order_quantity=np.maximum(8.0 * n_per_dc, 1), moq=10,
                            pack_size=5, rule="s_nQ")
    st_init = InitialState(np.full(n_s, 15.0), in_transit=np.full((n_s, 2), 2.0))
    dc_init = InitialState(10.0 * n_per_dc, in_transit=np.full((n_d, 4), 3.0))
    net = simulate_network(demand, parent, st_pol, dc_pol, lt_s, lt_d, st_init, dc_init, store_costs=_costs(n_s),
                           dc_costs=_costs(n_d), rng_seed=3, record_daily=True)
    st, dc = net.stores, net.dc
    assert dc.short.sum() > 0.05 * dc.demanded.sum() and dc.stockout_days.sum() > 100  # not vacuous
    # stores: shelf, transit and orders
    assert np.allclose(st_init.on_hand + st.units_received, st.served + st.end_on_hand)
    assert np.allclose(4.0 + net.store_shipped, st.units_received + net.store_end_in_transit)
    assert np.allclose(st.units_ordered, net.store_shipped + net.store_end_owed)
    assert np.allclose(st.end_pipeline, net.store_end_in_transit + net.store_end_owed)
    assert np.allclose(st.served + st.short, st.demanded)
    # DC: stock flow and supplier pipeline
    assert np.allclose(dc_init.on_hand + dc.units_received, net.dc_shipped + dc.end_on_hand)
    assert np.allclose(12.0 + dc.units_ordered, dc.units_received + dc.end_pipeline)
    # between the echelons: what the DC shipped is what its stores were sent, requests and owed units match
    assert np.allclose(np.bincount(parent, net.store_shipped, n_d), net.dc_shipped)
    assert np.allclose(np.bincount(parent, st.units_ordered, n_d), dc.demanded)
    assert np.allclose(np.bincount(parent, net.store_end_owed, n_d), dc.end_backorders)
    assert np.allclose(dc.served + dc.short, dc.demanded)
    assert np.allclose(st.daily_totals["shipped"], dc.daily_totals["shipped"])
    assert np.allclose(st.daily_totals["owed"], dc.daily_totals["owed"])
    # a DC that owes anything at the close holds nothing (owed units are shipped before anything is kept)
    owing = dc.daily["owed"] > 0
    assert owing.any() and np.all(dc.daily["on_hand"][owing] == 0)
    assert np.all(dc.daily["on_hand"][dc.daily["short"] > 0] == 0)
    assert np.all(st.daily["shipped"] == np.round(st.daily["shipped"]))
    # customer-demand sums per DC series: the stores' demand aggregated
    assert np.allclose(net.dc_customer_demand_sum, np.bincount(parent, st.demanded, n_d))
    # the KPIs of the single-echelon engine work on either echelon unchanged
    table = compare({"stores": st, "dc": dc})
    assert table["units_demanded"].to_list() == pytest.approx([st.demanded.sum(), dc.demanded.sum()])
    assert table["fill_rate_volume"][1] == pytest.approx(dc.served.sum() / dc.demanded.sum())


# ================================================================================================================
# random numbers and blocks
# ================================================================================================================


def _expected_receipts(sent: np.ndarray, model: LeadTimeModel, seed: int) -> np.ndarray:
    """Receipts implied by shipments/orders (n, days) if each (day, series) takes ``model.sample(seed, day)``."""
    n, days = sent.shape
    out = np.zeros_like(sent, dtype=np.float64)
    for t in range(days):
        a = t + model.sample(seed, t)
        ok = (sent[:, t] > 0) & (a < days)
        np.add.at(out, (np.flatnonzero(ok), a[ok]), sent[ok, t])
    return out


def test_common_random_numbers_across_policies() -> None:
    n_s, n_d, days, seed = 300, 40, 160, 11
    demand, parent, lt_s, lt_d = _network(n_s, n_d, days, seed=4)
    n_per_dc = np.bincount(parent, minlength=n_d)
    dc_pol = PolicySchedule.base_stock(12.0 * n_per_dc)
    runs = []
    for level in (12.0, 20.0):
        runs.append(simulate_network(
            demand, parent, PolicySchedule.base_stock(level, n_series=n_s), dc_pol, lt_s, lt_d,
            InitialState.at_level(level, n_s), InitialState.at_level(8.0 * n_per_dc), store_costs=_costs(n_s),
            dc_costs=_costs(n_d), rng_seed=seed, record_daily=True))
    for net in runs:
        st, dc = net.stores, net.dc
        # every transfer shipped on day t to store i takes lt_s.sample(seed, t)[i]; every supplier order of DC j
        # lt_d.sample(dc_rng_seed(seed), t)[j]: the draws depend on (seed, day, series) only, not on the policy
        assert np.allclose(st.daily["receipts"], _expected_receipts(st.daily["shipped"], lt_s, seed))
        assert np.allclose(dc.daily["receipts"], _expected_receipts(dc.daily["orders"], lt_d, dc_rng_seed(seed)))
    a, b = runs
    both = (a.stores.daily["shipped"] > 0) & (b.stores.daily["shipped"] > 0)
    assert both.sum() > 1000 and not np.array_equal(a.stores.daily["shipped"], b.stores.daily["shipped"])


def test_determinism_and_block_invariance() -> None:
    n_s, n_d, days = 500, 70, 150
    demand, parent, lt_s, lt_d = _network(n_s, n_d, days, seed=5)
    n_per_dc = np.bincount(parent, minlength=n_d)
    st_pol = PolicySchedule(np.array([0]), np.full(n_s, 9.0), order_up_to=np.full(n_s, 20.0), review_period=2,
                            review_offset=np.arange(n_s) % 2, pack_size=3)
    dc_pol = PolicySchedule(np.array([0]), 5.0 * n_per_dc, order_up_to=14.0 * n_per_dc, moq=6)

    def run(seed: int, block: int):
        return simulate_network(demand, parent, st_pol, dc_pol, lt_s, lt_d, InitialState.at_level(15.0, n_s),
                                InitialState.at_level(6.0 * n_per_dc), store_costs=_costs(n_s),
                                dc_costs=_costs(n_d), rng_seed=seed, block_size=block, measure_from=5,
                                record_daily=("orders", "shipped"))

    a, b, c, d, e = run(1, 4096), run(1, 4096), run(1, 1), run(1, 37), run(2, 4096)
    assert a.dc.short.sum() > 0
    for other in (b, c, d):
        for f in ("served", "on_hand_sum", "units_ordered", "cycles", "first_stockout_day", "order_sumsq"):
            assert np.array_equal(getattr(a.stores, f), getattr(other.stores, f)), f
            assert np.array_equal(getattr(a.dc, f), getattr(other.dc, f)), f
        assert np.array_equal(a.store_owed_sum, other.store_owed_sum)
        assert np.array_equal(a.dc_customer_demand_sumsq, other.dc_customer_demand_sumsq)
        assert np.array_equal(a.stores.daily["shipped"], other.stores.daily["shipped"])
        assert np.array_equal(a.dc.daily["orders"], other.dc.daily["orders"])
        assert np.allclose(a.dc.daily_totals["on_hand_units"], other.dc.daily_totals["on_hand_units"])
    assert not np.array_equal(a.stores.on_hand_sum, e.stores.on_hand_sum)


# ================================================================================================================
# known answers
# ================================================================================================================


def test_two_stage_serial_base_stock_matches_exact_poisson_evaluation() -> None:
    lam, l1, l2, s1, s2 = 3.0, 2, 3, 9, 8
    n, days, warm = 1500, 1200, 40
    demand = np.random.default_rng(6).poisson(lam, (n, days)).astype(float)
    net = simulate_network(demand, np.arange(n), PolicySchedule.base_stock(float(s1), n_series=n),
                           PolicySchedule.base_stock(float(s2), n_series=n), LeadTimeModel.fixed(n, l1),
                           LeadTimeModel.fixed(n, l2), InitialState.at_level(float(s1), n),
                           InitialState.at_level(float(s2), n), store_costs=_costs(n), dc_costs=_costs(n),
                           rng_seed=0, store_lost_sales=False, measure_from=warm)
    k = np.arange(400)

    def pois(m: float) -> np.ndarray:
        return stats.poisson.pmf(k, m) if m > 0 else (k == 0).astype(float)

    p2 = pois(l2 * lam)
    b2 = np.zeros(k.size)  # pmf of the DC's backorders (P_{L2} - S2)+
    b2[0] = p2[: s2 + 1].sum()
    b2[1: k.size - s2] = p2[s2 + 1:]

    def x_pmf(days_demand: int) -> np.ndarray:
        return np.convolve(b2, pois(days_demand * lam))[: k.size]

    def e_pos(pmf: np.ndarray, level: float) -> float:
        return float(pmf @ np.maximum(k - level, 0.0))

    x, x_morning = x_pmf(l1), x_pmf(l1 - 1)
    fill_store = 1.0 - (e_pos(x, s1) - e_pos(x_morning, s1)) / lam
    on_hand_store = float(x @ np.maximum(s1 - k, 0.0))
    fill_dc = 1.0 - (e_pos(p2, s2) - e_pos(pois((l2 - 1) * lam), s2)) / lam
    on_hand_dc = float(p2 @ np.maximum(s2 - k, 0.0))
    wait_dc = e_pos(p2, s2) / lam
    st, dc = net.stores, net.dc
    days_m = st.measured_days
    assert fill_dc < 0.95 and fill_store < 0.95  # both stages run short regularly
    _assert_mc(1.0 - st.short / (lam * days_m), fill_store, "store fill")
    _assert_mc(st.avg_on_hand, on_hand_store, "store on hand")
    _assert_mc(1.0 - dc.short / (lam * days_m), fill_dc, "DC same-day fill")
    _assert_mc(dc.avg_on_hand, on_hand_dc, "DC on hand")
    _assert_mc(net.dc_owed_sum / (lam * days_m), wait_dc, "mean wait at the DC")
    # base stock with backorders passes demand through unchanged: no bullwhip at either echelon
    assert np.allclose(net.store_bullwhip, 1.0) and np.allclose(net.dc_bullwhip, 1.0)
    assert net.bullwhip_pooled()["dc"] == pytest.approx(1.0)


def test_bullwhip_of_batched_dc_orders_exceeds_one() -> None:
    n_s, n_d, days = 400, 50, 400
    demand, parent, lt_s, lt_d = _network(n_s, n_d, days, seed=7)
    n_per_dc = np.bincount(parent, minlength=n_d)
    dc_pol = PolicySchedule(np.array([0]), 8.0 * n_per_dc, order_quantity=np.maximum(20.0 * n_per_dc, 1),
                            rule="s_nQ")
    net = simulate_network(demand, parent, PolicySchedule.base_stock(25.0, n_series=n_s), dc_pol, lt_s, lt_d,
                           InitialState.at_level(25.0, n_s), InitialState.at_level(30.0 * n_per_dc),
                           store_costs=_costs(n_s), dc_costs=_costs(n_d), rng_seed=1, measure_from=30)
    pooled = net.bullwhip_pooled()
    assert pooled["dc"] > 3.0 and pooled["dc_weekly"] > 1.0  # (s, nQ) batches amplify the variance upstream
    # lost-sales base stock at the stores: each day's request is exactly the day's sales, so no amplification
    assert np.allclose(net.stores.units_ordered, net.stores.served) and pooled["store"] <= 1.0
    assert np.nanmedian(net.dc_bullwhip) > 3.0


def test_input_validation() -> None:
    n = 3
    args = dict(store_costs=_costs(n), dc_costs=_costs(1), rng_seed=0)
    pol = PolicySchedule.base_stock(5.0, n_series=n)
    lt = LeadTimeModel.fixed(n, 1)
    base = (np.ones((n, 5)), np.zeros(n, dtype=np.int64), pol, _never(1), lt, LeadTimeModel.fixed(1, 2),
            InitialState.at_level(5.0, n), InitialState.at_level(5.0, 1))
    simulate_network(*base, **args)
    with pytest.raises(ValueError, match="parent"):
        simulate_network(base[0], np.array([0, 1, 0]), *base[2:], **args)
    with pytest.raises(ValueError, match="rules"):
        simulate_network(base[0], base[1], PolicySchedule.perfect_foresight(n), *base[3:], **args)
    with pytest.raises(ValueError, match="record_daily"):
        simulate_network(*base, **args, record_daily=("nope",))
    assert "shipped" in NETWORK_DAILY_FIELDS and "owed" in NETWORK_DAILY_FIELDS


def test_a_dc_on_its_echelon_position_orders_when_its_stores_run_low() -> None:
    """Echelon stock (``PolicySchedule.echelon_offset``): the DC (r 20, S 40, daily review, 25 on hand) compares its
    own position plus its stores' positions, less the offset, with its reorder point. Two stores hold 2 each and do
    not order (no demand): on its own position (25 > 20) the DC does not order; with the stores planned to hold 10
    each (offset 20) its echelon position is 25 + 4 - 20 = 9, so it orders 40 - 9 = 31 on day 0; with the offset
    equal to what the stores hold (4) it behaves exactly as on its own position; NaN means its own position."""
    days = 10
    demand = np.zeros((2, days))
    parent = np.zeros(2, dtype=np.int64)

    def run(offset):
        dc = PolicySchedule(plan_days=np.array([0]), reorder_point=np.array([20.0]), order_up_to=np.array([40.0]),
                            rule="s_S", name="dc", echelon_offset=None if offset is None else np.array([offset]))
        return simulate_network(demand, parent, _never(2), dc, LeadTimeModel.fixed(2, 1), LeadTimeModel.fixed(1, 5),
                                InitialState(np.array([2.0, 2.0])), InitialState(np.array([25.0])),
                                store_costs=_costs(2), dc_costs=_costs(1), rng_seed=0, record_daily=True).dc

    own = run(None)
    assert own.daily["orders"][0].sum() == 0  # 25 > 20 all along
    echelon = run(20.0)
    assert echelon.daily["orders"][0, 0] == 31 and echelon.daily["orders"][0, 1:].sum() == 0  # then 40 on order
    assert echelon.daily["receipts"][0, 5] == 31
    for same in (run(4.0), run(float("nan"))):
        assert np.array_equal(same.daily["orders"], own.daily["orders"])
        assert np.array_equal(same.daily["on_hand"], own.daily["on_hand"])


def test_an_empty_dc_orders_whatever_its_stores_hold() -> None:
    """Two stores hold 50 each against a planned 10 each (offset 20); the DC (r 20, S 40) holds nothing and has
    nothing on order. Its echelon reading is 0 + 100 - 20 = 80 > 20, but an empty DC cannot serve either store's
    next request, so it reads the lower of its own position (0) and the echelon's: it orders 40 on day 0. With 5
    units of its own the echelon reading (85) decides and it waits."""
    days = 10
    demand = np.zeros((2, days))
    parent = np.zeros(2, dtype=np.int64)

    def run(dc_on_hand: float, offset: float | None):
        dc = PolicySchedule(plan_days=np.array([0]), reorder_point=np.array([20.0]), order_up_to=np.array([40.0]),
                            rule="s_S", name="dc", echelon_offset=None if offset is None else np.array([offset]))
        return simulate_network(demand, parent, _never(2), dc, LeadTimeModel.fixed(2, 1), LeadTimeModel.fixed(1, 5),
                                InitialState(np.array([50.0, 50.0])), InitialState(np.array([dc_on_hand])),
                                store_costs=_costs(2), dc_costs=_costs(1), rng_seed=0, record_daily=True).dc

    empty = run(0.0, 20.0)
    assert empty.daily["orders"][0, 0] == 40 and empty.daily["orders"][0, 1:].sum() == 0
    assert np.array_equal(empty.daily["orders"], run(0.0, None).daily["orders"])  # as on its own position
    assert run(5.0, 20.0).daily["orders"][0].sum() == 0  # something of its own: the echelon decides
