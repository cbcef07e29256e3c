"""The two-echelon backtest (issue 9): the network the warehouse describes, stockturn's plan as written at both
echelons, the classical rule per location, scenarios on the network."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from ml.policy import PolicyConfig
from ml.simulation.backtest import BacktestConfig, build_scenario, replay_inputs
from ml.simulation.engine import LeadTimeModel
from ml.simulation.network_backtest import NetworkStockturnPlanner, apply_to_network, classical_location_planner
from ml.simulation.network_inputs import network_inputs, network_shape
from ml.simulation.planning import PlanningContext
from ml.simulation.stockturn_planner import NETWORK_POLICY_COLUMNS, pipeline_policy, replay_forecast_config
from ml.warehouse import connect, read_frame

CFG = BacktestConfig(days=60, history_days=150)
CHEAP_FORECAST = {"models": ["seasonal_naive", "moving_average", "tsb"], "n_samples": 200,
                  "calibration_sub_origins": 1, "min_train_days": 60}


@pytest.fixture(scope="module")
def net(small_landing: Path, small_warehouse: Path):
    with connect(small_warehouse, read_only=True) as con:
        rep = replay_inputs(con, small_landing, CFG, holding_rate=0.25, ordering_cost=15.0)
        return network_inputs(con, rep.inputs, rep.observed, rep.demand_basis, policy_config=PolicyConfig())


def test_the_network_is_the_one_the_warehouse_describes(net, small_warehouse: Path) -> None:
    start = net.stores.start
    with connect(small_warehouse, read_only=True) as con:
        loc = read_frame(con, "select location_id, replenished_from from marts.dim_location")
        shipped = read_frame(con, """
            select sum(transfers_out_units)::double as u from marts.fct_inventory_daily f
            join marts.dim_location l using (location_id)
            where l.location_type = 'dc' and date_day >= ? and date_day < ?""",
                             [start - timedelta(days=CFG.history_days), start])["u"][0]
        lanes = read_frame(con, """
            select from_location_id || '>' || to_location_id as lane,
                   avg(greatest(received_date - ordered_date, 0))::double as mean_lt
            from staging.stg_logistics__transfers
            where received_date < ? and ordered_date is not null and received_date >= ordered_date
            group by 1""", [start])
        dc_open = read_frame(con, """
            select product_id, location_id, greatest(on_hand_units, 0)::double as oh
            from marts.fct_inventory_daily where date_day = ?""", [start - timedelta(days=1)])
    feeds = dict(loc.iter_rows())
    skeys, dkeys = net.stores.keys, net.dc.keys
    # every store series is fed by the DC series of the same product at the store's replenishing DC
    parent_rows = dkeys[net.parent.tolist()]
    assert parent_rows["product_id"].to_list() == skeys["product_id"].to_list()
    assert parent_rows["location_id"].to_list() == [feeds[s] for s in skeys["location_id"]]
    assert net.n_dc == skeys.select("product_id", pl.col("location_id").replace_strict(feeds)).n_unique()
    # the DC's recorded demand is its shipments to stores
    assert net.dc_observed[:, : CFG.history_days].sum() == pytest.approx(shipped)
    # transfer lead times: the lanes' measured distribution (mean preserved exactly)
    lane_mean = dict(lanes.iter_rows())
    store_lanes = [f"{feeds[s]}>{s}" for s in skeys["location_id"]]
    assert np.allclose(net.stores.lead_times.mean_days(), [lane_mean[x] for x in store_lanes])
    # opening DC stock = the book on hand the day before the replay
    want = dkeys.select("product_id", "location_id").join(dc_open, on=["product_id", "location_id"], how="left")
    assert np.allclose(net.dc.initial.on_hand, want["oh"].fill_null(0.0).to_numpy())
    # terms: stores order transfers (transfer MOQ / pack / cost), the DC buys on the supplier's terms
    pc = PolicyConfig()
    assert (skeys["supplier_moq"] == pc.transfer_min_order_qty).all()
    assert np.allclose(net.stores.costs.ordering_cost, pc.transfer_cost_per_line)
    assert np.allclose(net.dc.costs.ordering_cost, pc.ordering_cost_per_line)
    assert net.dc.lead_times.mean_days().min() > net.stores.lead_times.mean_days().max()


def test_mixed_networks_are_refused_with_the_reason(small_warehouse: Path, tmp_path: Path) -> None:
    copy = tmp_path / "w.duckdb"
    shutil.copy(small_warehouse, copy)
    with connect(copy) as con:
        assert network_shape(con) == (True, "")
        store = con.execute("select location_id from marts.dim_location where is_selling_location "
                            "order by 1 limit 1").fetchone()[0]
        con.execute("update marts.dim_location set replenished_from = null where location_id = ?", [store])
        ok, why = network_shape(con)
    assert not ok and store in why and "mixed" in why


def test_stockturn_is_replayed_exactly_as_the_pipeline_writes_it(net, small_warehouse: Path,
                                                                 tmp_path: Path) -> None:
    fc, pc = replay_forecast_config(CHEAP_FORECAST), PolicyConfig()
    planner = NetworkStockturnPlanner(
        small_warehouse, net.stores.keys, net.dc.keys, net.stores.start, fc, pc,
        store_fallback=classical_location_planner(
            1.645, lead_times=net.stores.lead_times, unit_cost=net.stores.costs.unit_cost, ordering_cost=4.0,
            moq=np.zeros(net.n_store), pack_size=np.ones(net.n_store), review_period=1, window_days=28,
            policy_config=pc),
        dc_fallback=classical_location_planner(
            1.645, lead_times=net.dc.lead_times, unit_cost=net.dc.costs.unit_cost, ordering_cost=15.0,
            moq=np.zeros(net.n_dc), pack_size=np.ones(net.n_dc), review_period=7, window_days=28,
            policy_config=pc),
        cache_dir=tmp_path)
    as_of = net.stores.start - timedelta(days=1)
    with connect(small_warehouse, read_only=True) as con:
        pol, _ = pipeline_policy(con, fc, pc, as_of, None, columns=NETWORK_POLICY_COLUMNS)
    for echelon, keys, observed, plan in (("store", net.stores.keys, net.store_observed, planner.store_planner),
                                          ("dc", net.dc.keys, net.dc_observed, planner.dc_planner)):
        ctx = PlanningContext(0, observed[:, : CFG.history_days], CFG.history_days)
        p = plan(ctx)
        rows = keys.select("product_id", "location_id").join(pol, on=["product_id", "location_id"], how="left",
                                                             maintain_order="left")
        has = rows["reorder_point"].is_not_null().to_numpy()
        assert has.sum() > 0.5 * keys.height
        r = np.asarray(p.reorder_point)
        assert np.array_equal(r[has], rows["reorder_point"].to_numpy()[has])
        assert np.allclose((np.asarray(p.order_up_to) - r)[has], rows["order_quantity"].to_numpy()[has])
        assert np.array_equal(np.asarray(p.review_period)[has], rows["review_period_days"].to_numpy()[has])
        assert np.array_equal(np.asarray(p.moq)[has], rows["min_order_qty"].to_numpy()[has])
        assert set(rows.filter(pl.col("reorder_point").is_not_null())["location_type"]) == {echelon}
        stat = planner.stats[-1]
        assert stat["echelon"] == echelon and stat["series_fallback"] == int((~has).sum())
        assert stat["as_of"] == as_of.isoformat()


def test_the_classical_dc_plans_from_its_own_shipments_and_lead_time() -> None:
    shipments = np.full((2, 60), 10.0)
    shipments[1, ::2] = 0.0  # mean 5, sd > 0
    lt = LeadTimeModel.fixed(2, 5)
    plan = classical_location_planner(0.0, lead_times=lt, unit_cost=np.ones(2), ordering_cost=15.0,
                                      moq=np.zeros(2), pack_size=np.ones(2), review_period=7, window_days=56,
                                      policy_config=PolicyConfig())
    p = plan(PlanningContext(0, shipments, 60))
    # z = 0: the mean demand over lead time + review, 10 x 12 and 5 x 12
    assert np.allclose(p.reorder_point, [120.0, 60.0])
    up = classical_location_planner(1.0, lead_times=lt, unit_cost=np.ones(2), ordering_cost=15.0,
                                    moq=np.zeros(2), pack_size=np.ones(2), review_period=7, window_days=56,
                                    policy_config=PolicyConfig())(PlanningContext(0, shipments, 60))
    assert up.reorder_point[0] == 120.0 and up.reorder_point[1] > 60.0  # safety stock only where demand varies
    assert np.all(np.asarray(p.order_up_to) > np.asarray(p.reorder_point)) and np.all(np.asarray(p.review_period) == 7)


def test_scenarios_stress_the_echelon_they_describe(net) -> None:
    shock = build_scenario("demand_shock", {"start": "5", "weeks": "2", "pct": "50"}, net.stores)
    stressed = apply_to_network(shock, net)
    assert stressed.stores.demand.sum() > net.stores.demand.sum()
    assert stressed.dc is net.dc
    outage = build_scenario("supplier_outage", {"start": "5", "weeks": "2"}, net.stores)
    stressed = apply_to_network(outage, net)
    assert stressed.stores is net.stores
    assert len(stressed.dc.lead_times.outages) == 1 and not net.dc.lead_times.outages


def test_without_the_demo_truth_the_network_replays_recorded_sales(small_warehouse: Path) -> None:
    with connect(small_warehouse, read_only=True) as con:
        rep = replay_inputs(con, None, CFG, holding_rate=0.25, ordering_cost=15.0)
        assert not rep.single_echelon  # the stores are fed by the DC
        net = network_inputs(con, rep.inputs, rep.observed, rep.demand_basis, policy_config=PolicyConfig())
    assert net.demand_basis == "recorded_sales_stockouts_imputed"
    assert net.n_dc == net.stores.keys["product_id"].n_unique()  # one DC
    # supplier lead times measured from receipts, per DC series (its product's supplier)
    assert np.all(net.dc.lead_times.mean_days() >= 1) and net.dc.lead_times.n_series == net.n_dc


def test_a_policy_only_change_replans_from_the_cached_forecast(small_warehouse: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The backtest caches what run_policy reads from forecasting (lead-time-demand samples, the demand forecast)
    keyed by the forecast settings only: a study of another policy setting re-plans without forecasting again,
    and gets exactly the plan a fresh run gives."""
    import ml.forecasting as forecasting

    fc, as_of = replay_forecast_config(CHEAP_FORECAST), None
    with connect(small_warehouse, read_only=True) as con:
        as_of = con.execute("select max(date_day) from marts.fct_sales_daily").fetchone()[0] - timedelta(days=30)
        first, s1 = pipeline_policy(con, fc, PolicyConfig(), as_of, tmp_path)
        assert s1 > 0 and sorted(p.name.split("_")[0] for p in tmp_path.iterdir()) == ["demand", "ltd", "policy"]
        fresh, _ = pipeline_policy(con, fc, PolicyConfig(annual_holding_rate=0.40), as_of, None)
        calls = []
        real = forecasting.run_forecasting
        monkeypatch.setattr(forecasting, "run_forecasting", lambda *a, **k: calls.append(1) or real(*a, **k))
        cached, _ = pipeline_policy(con, fc, PolicyConfig(annual_holding_rate=0.40), as_of, tmp_path)
        assert calls == []  # the second policy setting did not forecast again
        assert cached.equals(fresh) and not cached.equals(first)  # ... and its plan is the fresh one
        pipeline_policy(con, replay_forecast_config({**CHEAP_FORECAST, "n_samples": 100}), PolicyConfig(), as_of,
                        tmp_path)
        assert calls == [1]  # another forecast setting does


def test_the_match_can_pool_several_lead_time_draws(net, small_warehouse: Path, tmp_path: Path) -> None:
    """With replay_seeds = 2 every policy the match compares is replayed under two lead-time draws: fills pooled,
    inventory the mean of the two, the bootstrap over products with both their replays."""
    from ml.simulation.network import simulate_network
    from ml.simulation.network_backtest import network_outcome, run_network_study

    cfg = BacktestConfig(days=60, history_days=150, n_boot=20, z_grid=(0.0, 1.0, 2.0, 3.0), replay_seeds=2,
                         dc_z_grid=(1.0, 2.0), max_z=5.0, include_perfect_foresight=False)
    study = run_network_study(small_warehouse, net, cfg, forecast_config=replay_forecast_config(CHEAP_FORECAST),
                              policy_config=PolicyConfig(), cache_dir=tmp_path)
    ss, ds = study.schedules["stockturn"]
    st, dc = net.stores, net.dc
    outs = [network_outcome(simulate_network(st.demand, net.parent, ss, ds, st.lead_times, dc.lead_times,
                                             st.initial, dc.initial, store_costs=st.costs, dc_costs=dc.costs,
                                             rng_seed=seed)) for seed in (cfg.rng_seed, cfg.rng_seed + 1)]
    m = study.match
    assert m.candidate_inventory == pytest.approx(np.mean([o.inventory.sum() for o in outs]), rel=1e-9)
    assert m.candidate_fill_volume == pytest.approx(
        sum(o.served.sum() for o in outs) / sum(o.demanded.sum() for o in outs), rel=1e-9)
    # the two draws differ (else pooling would be pointless), and the reported run is the first draw
    assert outs[0].inventory.sum() != pytest.approx(outs[1].inventory.sum(), rel=1e-6)
    assert study.runs["stockturn"].stores.served.sum() == pytest.approx(outs[0].served.sum())
    assert m.grid.height >= 4 and np.isfinite(m.grid["avg_inventory_value"].to_numpy()).all()
