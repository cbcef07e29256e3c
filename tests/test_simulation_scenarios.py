"""Stress scenarios, KPI roll-ups and matched-service comparison (``ml.simulation.scenarios/kpis/matching``)."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import polars as pl
import pytest

from ml.simulation.engine import CostParams, InitialState, LeadTimeModel, SimulationResult, simulate
from ml.simulation.kpis import compare, rollup, series_kpis
from ml.simulation.matching import Outcome, match_service
from ml.simulation.planning import classical_planner, month_start_days, plan_days_every, schedule_from_planner
from ml.simulation.scenarios import (
    SimulationInputs,
    demand_shock,
    lead_time_disruption,
    promotion_spike,
    run_scenarios,
    supplier_outage,
)

N_PROD, N_LOC, HIST, DAYS = 24, 3, 150, 120


@pytest.fixture(scope="module")
def inputs() -> SimulationInputs:
    rng = np.random.default_rng(0)
    n = N_PROD * N_LOC
    prod = np.repeat([f"P{i:02d}" for i in range(N_PROD)], N_LOC)
    loc = np.tile([f"S{j}" for j in range(N_LOC)], N_PROD)
    cat = np.repeat(np.array(["food", "toys", "garden"])[np.arange(N_PROD) % 3], N_LOC)
    sup = np.repeat(np.array(["SUP1", "SUP2"])[np.arange(N_PROD) % 2], N_LOC)
    mu = np.repeat(rng.gamma(2.0, 2.0, N_PROD), N_LOC)
    obs = rng.poisson(mu[:, None], (n, HIST + DAYS)).astype(float)
    keys = pl.DataFrame({"product_id": prod, "location_id": loc, "category": cat, "supplier_id": sup})
    lt = LeadTimeModel.from_pmfs({"SUP1": [0, 0, 0.2, 0.5, 0.3], "SUP2": [0] * 5 + [0.3, 0.4, 0.3]}, sup)
    cost = np.repeat(rng.uniform(1, 20, N_PROD), N_LOC)
    costs = CostParams(cost, ordering_cost=5.0, unit_price=cost * 1.5)
    return SimulationInputs(obs[:, HIST:], keys, lt, InitialState(np.ceil(mu * 10)), costs, history=obs[:, :HIST],
                            start=date(2025, 1, 1))


def planner(z: float):
    def make(inp: SimulationInputs):
        plan = classical_planner(z, lead_time_mean=inp.lead_times.mean_days(), lead_time_sd=inp.lead_times.sd_days(),
                                 review_period=7, window_days=90)
        return schedule_from_planner(plan_days_every(inp.n_days, 30), inp.observed(), plan, n_history=inp.n_history,
                                     lead_times=inp.lead_times, review_offset=np.arange(inp.n_series) % 7)
    return make


def _run(inp: SimulationInputs, z: float = 1.5, **kw) -> SimulationResult:
    return simulate(inp.demand, planner(z)(inp), inp.lead_times, inp.initial, costs=inp.costs, rng_seed=5, **kw)


# ================================================================================================================
# scenarios are pure transforms that change what they should and nothing else
# ================================================================================================================


def test_demand_shock_scales_only_the_category_window(inputs: SimulationInputs) -> None:
    before = inputs.demand.copy()
    sc = demand_shock("toys", 40, 20, 3)
    out = sc.apply(inputs)
    assert np.array_equal(inputs.demand, before)  # input untouched
    assert out.lead_times is inputs.lead_times and out.initial is inputs.initial and out.costs is inputs.costs
    rows = (inputs.keys["category"] == "toys").to_numpy()
    window = np.zeros(DAYS, dtype=bool)
    window[20:41] = True
    changed = out.demand != inputs.demand
    assert not changed[~rows].any() and not changed[:, ~window].any()
    assert np.all(out.demand == np.round(out.demand))  # integer demand stays integer
    ratio = out.demand[np.ix_(rows, window)].sum() / inputs.demand[np.ix_(rows, window)].sum()
    assert ratio == pytest.approx(1.4, abs=0.03)
    assert np.array_equal(sc.apply(inputs).demand, out.demand)  # deterministic


def test_promotion_spike_hits_products_locations_and_days(inputs: SimulationInputs) -> None:
    sc = promotion_spike(["P03", "P07"], 1.0, date(2025, 2, 1), 5, locations=["S1"])
    out = sc.apply(inputs)
    rows = sc.affected(inputs)
    assert rows.sum() == 2
    s = (date(2025, 2, 1) - date(2025, 1, 1)).days
    changed = out.demand != inputs.demand
    assert not changed[~rows].any()
    assert not changed[:, :s].any() and not changed[:, s + 5:].any()
    assert out.demand[rows, s:s + 5].sum() == pytest.approx(2 * inputs.demand[rows, s:s + 5].sum(), rel=0.15)


def test_lead_time_disruption_scales_only_the_supplier_window(inputs: SimulationInputs) -> None:
    sc = lead_time_disruption("SUP2", 2.0, 30, 2)
    out = sc.apply(inputs)
    assert np.array_equal(out.demand, inputs.demand) and inputs.lead_times.disruptions == ()
    sup2 = inputs.lead_times.group_mask(["SUP2"])
    for day in (10, 30, 43, 44):
        a, b = inputs.lead_times.sample(1, day), out.lead_times.sample(1, day)
        if 30 <= day < 44:
            assert np.array_equal(b[sup2], np.rint(a[sup2] * 2)) and np.array_equal(b[~sup2], a[~sup2])
        else:
            assert np.array_equal(a, b)
    # simulated: series of the other supplier are untouched (independent series, common random numbers)
    base, hit = _run(inputs), _run(out)
    assert np.array_equal(base.served[~sup2], hit.served[~sup2])
    assert not np.array_equal(base.on_hand_sum[sup2], hit.on_hand_sum[sup2])


def test_supplier_outage_blocks_receipts(inputs: SimulationInputs) -> None:
    sc = supplier_outage("SUP1", 40, 2)
    out = sc.apply(inputs)
    sup1 = sc.affected(inputs)
    base, hit = _run(inputs, record_daily=("receipts",)), _run(out, record_daily=("receipts",))
    rec = hit.daily["receipts"]
    assert rec[sup1, 40:54].sum() == 0 and base.daily["receipts"][sup1, 40:54].sum() > 0
    assert rec[sup1, 54].sum() > 0
    assert np.array_equal(rec[~sup1], base.daily["receipts"][~sup1])
    assert hit.short[sup1].sum() > base.short[sup1].sum()


def test_scenario_validation(inputs: SimulationInputs) -> None:
    with pytest.raises(ValueError, match="not a lead-time group"):
        supplier_outage("NOPE", 1, 1).apply(inputs)
    with pytest.raises(ValueError, match="no series in category"):
        demand_shock("nope", 10, 1, 1).apply(inputs)
    with pytest.raises(ValueError, match="start"):
        demand_shock("toys", 10, date(2025, 1, 5), 1).apply(dataclasses.replace(inputs, start=None))


def test_run_scenarios_reports_kpis_and_breaks(inputs: SimulationInputs) -> None:
    scen = [demand_shock("toys", 80, 30, 4), supplier_outage("SUP2", 50, 3)]
    rep = run_scenarios(inputs, {"classical": planner(1.64), "lean": planner(0.8)}, scen, rng_seed=5,
                        by=["category"], top_n=10)
    assert rep.kpis.height == 2 * 3
    base = rep.kpis.filter(pl.col("scenario") == "base")
    assert base["delta_fill_rate_volume"].to_list() == [0.0, 0.0]
    shocked = rep.kpis.filter(pl.col("scenario") == scen[0].name)
    assert (shocked["delta_units_short"] > 0).all()
    assert set(rep.kpis_by["category"].unique()) == {"food", "toys", "garden"}
    br = rep.breaks.filter(pl.col("scenario") == scen[0].name)
    # only the shocked category breaks (other series are independent and replanned from the same data)
    assert br.height > 0 and (br["category"] == "toys").all() and br["affected"].all()
    assert (br.filter(pl.col("first_break_day") >= 0)["first_break_day"] >= 30).all()
    assert br.group_by("policy").len()["len"].max() <= 10
    margins = br.filter(pl.col("policy") == "lean")["extra_lost_margin"].to_list()
    assert margins == sorted(margins, reverse=True)
    out = rep.breaks.filter(pl.col("scenario") == scen[1].name)
    assert (out["supplier_id"] == "SUP2").all()


# ================================================================================================================
# KPIs
# ================================================================================================================


def _result(**values) -> SimulationResult:
    """A SimulationResult with the given per-series arrays, zeros elsewhere (for exact KPI arithmetic)."""
    n = len(values["demanded"])
    kw = {}
    for f in dataclasses.fields(SimulationResult):
        if f.name in values:
            kw[f.name] = np.asarray(values[f.name], dtype=float if f.name != "cycles" else int)
        elif f.name in ("daily_totals", "daily"):
            kw[f.name] = {}
        elif f.name == "policy":
            kw[f.name] = "p"
        elif f.name in ("n_days", "measure_from", "n_weeks"):
            kw[f.name] = {"n_days": 100, "measure_from": 0, "n_weeks": 14}[f.name]
        elif f.name == "lost_sales":
            kw[f.name] = True
        else:
            kw[f.name] = np.zeros(n)
    return SimulationResult(**kw)


def test_kpi_definitions_by_hand() -> None:
    res = _result(demanded=[1000, 10, 0], served=[900, 5, 0], short=[100, 5, 0], on_hand_sum=[2000, 500, 300],
                  unit_cost=[2.0, 10.0, 1.0], cycles=[10, 4, 0], cycles_ok=[9, 1, 0], stockout_days=[3, 2, 0])
    keys = pl.DataFrame({"product_id": ["A", "B", "C"], "category": ["x", "y", "y"]})
    sk = series_kpis(res, keys)
    assert sk["fill_rate"].to_list()[:2] == [0.9, 0.5] and sk["fill_rate"][2] is None
    assert sk["avg_inventory_value"].to_list() == [40.0, 50.0, 3.0]
    assert sk["turnover"][0] == pytest.approx(900 * 2 * 365 / 100 / 40)
    assert sk["days_of_supply"][0] == pytest.approx(40 / (1800 / 100))
    tot = rollup(sk)
    assert tot["fill_rate_volume"][0] == pytest.approx(905 / 1010)
    assert tot["fill_rate_item_avg"][0] == pytest.approx(0.7)  # series without demand left out
    assert tot["cycle_service_pooled"][0] == pytest.approx(10 / 14)
    assert tot["cycle_service_item_avg"][0] == pytest.approx((0.9 + 0.25) / 2)
    assert tot["turnover"][0] == pytest.approx((1800 + 50) * 3.65 / 93)
    assert tot["days_of_supply"][0] == pytest.approx(93 / (1850 / 100))
    by = rollup(sk, ["category"])
    assert by.sort("category")["units_served"].to_list() == [900, 5]


def test_compare_rolls_up_simulated_policies(inputs: SimulationInputs) -> None:
    lean, rich = _run(inputs, 0.5), _run(inputs, 2.0)
    tab = compare({"lean": lean, "rich": rich}, inputs.keys, by=["category"])
    assert tab.height == 6
    tot = compare({"lean": lean, "rich": rich})
    lean_row, rich_row = tot.row(0, named=True), tot.row(1, named=True)
    assert rich_row["fill_rate_volume"] > lean_row["fill_rate_volume"]
    assert rich_row["avg_inventory_value"] > lean_row["avg_inventory_value"]
    assert rich_row["turnover"] < lean_row["turnover"]
    assert lean_row["units_served"] == pytest.approx(float(lean.served.sum()))


def test_month_start_days() -> None:
    assert month_start_days(date(2025, 1, 15), 60).tolist() == [0, 17, 45]


def test_replan_days_add_the_re_plans_between_the_forecasts() -> None:
    from ml.simulation.planning import forecast_day, replan_days

    days = replan_days(date(2025, 1, 15), 60, 7)
    assert days.tolist() == [0, 7, 14, 17, 21, 28, 35, 42, 45, 49, 56]
    assert replan_days(date(2025, 1, 15), 60, 0).tolist() == [0, 17, 45]  # the forecast days only
    forecasts = month_start_days(date(2025, 1, 15), 60)
    assert [forecast_day(d, forecasts) for d in (0, 16, 17, 44, 45, 59)] == [0, 0, 17, 17, 45, 45]


# ================================================================================================================
# matching
# ================================================================================================================


def _grid_outcomes(n: int, seed: int = 0) -> tuple[np.ndarray, dict[float, Outcome], np.ndarray]:
    """Baseline outcomes on a z grid: per-series fill rises smoothly with z, inventory linear in z."""
    rng = np.random.default_rng(seed)
    dem = rng.gamma(1.0, 200.0, n) + 1.0
    slope = rng.uniform(0.5, 2.0, n)
    a, b = rng.uniform(10, 100, n), rng.uniform(5, 50, n)
    grid = np.round(np.arange(0.0, 3.01, 0.1), 10)
    outs = {float(z): Outcome(dem, dem * (1.0 - 0.3 * np.exp(-slope * z)), a + b * z) for z in grid}
    return dem, outs, np.repeat(np.arange(n // 2), 2)


def test_match_recovers_a_known_saving() -> None:
    dem, outs, clusters = _grid_outcomes(400)
    z0 = 1.2
    cand = Outcome(dem, outs[z0].served, 0.9 * outs[z0].inventory)  # same service, 10 % less stock
    m = match_service(cand, outs, clusters, n_boot=300, seed=1)
    assert m.matched_param == pytest.approx(z0, abs=0.02)
    assert m.param_volume == pytest.approx(z0, abs=0.02) and m.param_item == pytest.approx(z0, abs=0.02)
    true_diff = 0.1 * outs[z0].inventory.sum()
    assert m.inventory_difference == pytest.approx(true_diff, rel=0.03)
    assert m.inventory_difference_pct == pytest.approx(10.0, abs=0.3)
    assert m.ci_low < m.inventory_difference < m.ci_high and m.ci_low > 0
    assert m.n_boot_failed == 0 and m.note == ""
    assert m.grid.height == 31


def test_match_gives_the_baseline_at_least_the_candidates_service_on_both_measures() -> None:
    dem, outs, clusters = _grid_outcomes(400)
    # candidate: volume fill of z = 1.5 but item-average fill of z = 0.8 (service moved to the big series)
    big = dem > np.median(dem)
    served = np.where(big, outs[1.5].served * 1.0, outs[0.8].served)
    srv_v = served.sum() / dem.sum()
    vol15 = outs[1.5].served.sum() / dem.sum()
    served[big] *= 1 + (vol15 - srv_v) * dem.sum() / served[big].sum()  # volume fill exactly that of z = 1.5
    cand = Outcome(dem, np.minimum(served, dem), outs[1.0].inventory)
    m = match_service(cand, outs, clusters, n_boot=0)
    assert m.param_item < m.param_volume
    assert m.matched_param == m.param_volume and m.binding == "volume"  # the cheapest setting matching both
    assert m.baseline_fill_volume == pytest.approx(m.candidate_fill_volume, abs=1e-6)
    assert m.baseline_fill_item >= m.candidate_fill_item - 1e-9
    assert m.inventory_at_param_item < m.baseline_inventory == pytest.approx(m.inventory_at_param_volume)


def test_match_outside_the_grid_says_so() -> None:
    dem, outs, _ = _grid_outcomes(50)
    cand = Outcome(dem, dem, outs[1.0].inventory)  # perfect service: beyond every baseline setting
    m = match_service(cand, outs, n_boot=20)
    assert np.isnan(m.matched_param) and "widen the grid" in m.note
    assert m.n_boot_failed == 20


def test_the_matchs_sensitivity_to_the_candidates_fill_follows_the_baselines_curve() -> None:
    dem, outs, clusters = _grid_outcomes(400)
    z0 = 1.2
    cand = Outcome(dem, outs[z0].served, 0.9 * outs[z0].inventory)
    m = match_service(cand, outs, clusters, n_boot=0)
    # at the candidate's own fills, the baseline's inventory is the matched one
    assert m.baseline_inventory_at(m.candidate_fill_volume, m.candidate_fill_item) == pytest.approx(
        m.baseline_inventory, rel=1e-9)
    s = m.fill_sensitivity(0.5)
    assert s["baseline_inventory_lower"] < m.baseline_inventory < s["baseline_inventory_higher"]
    assert s["reduction_pct_lower"] < m.inventory_difference_pct < s["reduction_pct_higher"]
    # by hand: the grid setting that reaches fills half a point higher on both measures, inventory interpolated
    grid = m.grid
    target_v, target_i = m.candidate_fill_volume + 0.005, m.candidate_fill_item + 0.005
    z_v = np.interp(target_v, grid["fill_rate_volume"].to_numpy(), grid["param"].to_numpy())
    z_i = np.interp(target_i, grid["fill_rate_item_avg"].to_numpy(), grid["param"].to_numpy())
    expected = np.interp(max(z_v, z_i), grid["param"].to_numpy(), grid["avg_inventory_value"].to_numpy())
    assert s["baseline_inventory_higher"] == pytest.approx(expected, rel=1e-6)
    # beyond the grid there is no answer, not an extrapolation
    assert np.isnan(m.baseline_inventory_at(1.01, 1.01))
