"""ml.policy on a real warehouse built by the CLI (the shared small demo company, see conftest.py), with the seeds
loaded by dbt into planning.*. The lead-time demand is the naive test helper, not the production forecaster."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from scipy import stats

from ml.policy import PolicyConfig, run_policy, set_proposal_status, write_policy_run
from tests.policy_helpers import naive_lead_time_demand

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def planned(small_warehouse: Path):
    with duckdb.connect(str(small_warehouse), read_only=True) as con:
        (as_of,) = con.execute("select max(date_day) from marts.fct_inventory_daily").fetchall()[0]
        ltd = naive_lead_time_demand(con, as_of, n_samples=300)
        run = run_policy(con, ltd, None, PolicyConfig(), as_of=as_of)
    return ltd, run


def test_seeds_come_from_the_planning_schema(small_warehouse: Path, caplog):
    with duckdb.connect(str(small_warehouse), read_only=True) as con, caplog.at_level(logging.WARNING):
        tables = {t for (t,) in con.execute("select table_name from information_schema.tables "
                                            "where table_schema = 'planning'").fetchall()}
        assert {"service_levels", "planner_overrides"} <= tables, "dbt seed did not load the seeds"
        (as_of,) = con.execute("select max(date_day) from marts.fct_inventory_daily").fetchall()[0]
        run_policy(con, naive_lead_time_demand(con, as_of, n_samples=50), None, as_of=as_of)
    assert "reading" not in caplog.text  # no fallback to the CSV files


def test_every_series_gets_a_policy_that_meets_its_target_on_the_samples(planned):
    ltd, run = planned
    p = run.inventory_policy
    assert p.height == ltd.n_series and p["reorder_point"].null_count() == 0
    assert p["service_target_source"].unique().to_list() == ["seed"]
    csl = p.filter(pl.col("service_metric") == "cycle_service_level")
    fill = p.filter(pl.col("service_metric") == "fill_rate")
    assert csl.height and fill.height
    # a planner override or the safety-stock guard (ml.policy.guards: the samples asked for more than twice the
    # evidence) sets the reorder point on purpose; every other series meets its target on its samples
    # ml.policy.echelon sets a DC's reorder point below its own target where the stores cover the wait more
    # cheaply (the stores' targets still hold, on samples stretched by that wait)
    overridden = (pl.col("reorder_point_basis").is_in(["override", "safety_stock_guard"])
                  | ((pl.col("reorder_point_basis") == "multi_echelon") & (pl.col("location_type") == "dc")))
    assert (csl.filter(~overridden)["expected_cycle_service_level"] >= csl.filter(~overridden)["service_target"]
            - 1e-9).all()
    assert (fill.filter(~overridden)["expected_fill_rate"] >= fill.filter(~overridden)["service_target"] - 1e-9).all()
    guarded = p.filter(pl.col("is_safety_stock_guarded"))
    assert (guarded["reorder_point_basis"] == "safety_stock_guard").all()
    assert set(guarded["product_id"]) <= set(run.exceptions.filter(
        pl.col("exception_type") == "safety_stock_guard")["product_id"])
    assert (fill.filter(~overridden)["expected_cycle_service_level"] >= 0.8 - 1e-9).all()  # the slow-mover floor
    # the placement is on by default: every store carries the expected wait at its DC
    assert p.filter(pl.col("location_type") == "store")["echelon_wait_days"].null_count() == 0
    assert (p["safety_stock"] - (p["reorder_point"] - p["ltd_mean"])).abs().max() < 1e-9
    assert (p["order_up_to_level"] - p["reorder_point"] - p["order_quantity"]).abs().max() == 0
    assert set(p["abc_class"]) <= {"A", "B", "C"} and set(p["xyz_class"]) <= {"X", "Y", "Z"}


def test_multi_echelon_placement_keeps_the_stores_targets_and_moves_dc_stock(small_warehouse: Path, planned):
    ltd, placed_run = planned  # the default places safety stock across the echelons
    with duckdb.connect(str(small_warehouse), read_only=True) as con:
        (as_of,) = con.execute("select max(date_day) from marts.fct_inventory_daily").fetchall()[0]
        before = run_policy(con, ltd, None, PolicyConfig(multi_echelon=False), as_of=as_of).inventory_policy
    p = placed_run.inventory_policy
    assert before["echelon_wait_days"].null_count() == before.height  # each location on its own target
    dc = p.filter(pl.col("location_type") == "dc")
    stores = p.filter(pl.col("location_type") == "store")
    placed = dc.filter(pl.col("reorder_point_basis") == "multi_echelon")
    assert placed.height > 0
    # a placed DC reorder point differs from the one it had on its own, which is kept beside it
    assert (placed["reorder_point"] != placed["reorder_point_before_placement"]).all()
    assert (dc.filter(pl.col("reorder_point_basis") != "multi_echelon")["reorder_point_before_placement"]
            .null_count() == dc.height - placed.height)
    # stores carry the expected wait at their DC and still meet their own targets on the stretched samples
    assert (stores["echelon_wait_days"] >= 0).all() and stores["echelon_wait_days"].null_count() == 0
    own_target = ~pl.col("reorder_point_basis").is_in(["override", "safety_stock_guard"])
    csl = stores.filter(own_target & (pl.col("service_metric") == "cycle_service_level"))
    assert (csl["expected_cycle_service_level"] >= csl["service_target"] - 1e-9).all()
    fill = stores.filter(own_target & (pl.col("service_metric") == "fill_rate"))
    assert (fill["expected_fill_rate"] >= fill["service_target"] - 1e-9).all()
    # a longer wait never lowers a store's reorder point
    joined = stores.join(before.select("product_id", "location_id", pl.col("reorder_point").alias("r0")),
                         on=["product_id", "location_id"])
    assert (joined["reorder_point"] >= joined["r0"]).all()


def test_classical_baseline_is_the_normal_formula(planned):
    _, run = planned
    p = run.inventory_policy.filter(pl.col("service_metric") == "cycle_service_level",
                                    pl.col("classical_ltd_std") > 0)
    z = stats.norm.ppf(p["service_target"].to_numpy())
    expected = np.ceil(p["classical_ltd_mean"].to_numpy() + z * p["classical_ltd_std"].to_numpy() - 1e-9)
    assert np.array_equal(np.maximum(expected, 0), p["classical_reorder_point"].to_numpy())
    t = p["classical_lead_time_days"] + p["review_period_days"]
    assert ((p["classical_ltd_mean"] - p["daily_demand_hist_mean"] * t).abs() < 1e-9).all()
    assert ((p["classical_ltd_std"] - p["daily_demand_hist_std"] * t.sqrt()).abs() < 1e-9).all()
    dc = run.inventory_policy.filter(pl.col("replenishment_source") == "supplier")
    assert dc.height and (dc["classical_lead_time_basis"] == "nominal").all()


def test_proposals_respect_the_network_and_the_order_rules(planned, small_warehouse: Path):
    _, run = planned
    props = run.purchase_proposals.join(run.inventory_policy, on=["product_id", "location_id"], suffix="_p")
    assert props.height > 0
    po = props.filter(pl.col("proposal_type") == "purchase_order")
    tr = props.filter(pl.col("proposal_type") == "transfer")
    assert (po["replenishment_source"] == "supplier").all() and po["supplier_id"].null_count() == 0
    assert (tr["replenishment_source"] == "transfer").all() and tr["source_location_id"].null_count() == 0
    assert (props["ordering_position_units"] <= props["reorder_point"]).all()
    # the proposal carries the position it tops up (a DC's echelon position less its stores' planned stock)
    assert (props["ordering_position_units"] - props["ordering_position_units_p"]).abs().max() < 1e-9
    assert ((props["quantity"] >= props["order_up_to_level"] - props["ordering_position_units"] - 1e-9)
            & (props["quantity"] < props["order_up_to_level"] - props["ordering_position_units"]
               + props["pack_size"].clip(lower_bound=props["min_order_qty"]))).all()
    assert ((props["quantity"] / props["pack_size"]).round(9) % 1 == 0).all()
    assert (props["quantity"] >= props["min_order_qty"]).all()
    assert (props["value"] - props["quantity"] * props["unit_cost"]).abs().max() < 1e-6
    # stores order on their own position; the DCs on their echelon position (theirs and their stores', less the
    # stock the stores' plans hold)
    assert tr["reason"].str.contains(r"^position [\d.,]+ <= reorder point [\d.,]+; order ").all()
    assert po["reason"].str.contains(r"^echelon position [\d.,-]+ \(own [\d.,-]+ \+ its stores' [\d.,-]+\) less the "
                                     r"stores' planned [\d.,]+ = [\d.,-]+ <= reorder point [\d.,]+; order ").all()
    dc = run.inventory_policy.filter(pl.col("location_type") == "dc")
    as_of = run.inventory_policy["as_of_date"][0]
    with duckdb.connect(str(small_warehouse), read_only=True) as con:
        book = pl.DataFrame(con.execute(
            "select product_id, location_id, greatest(on_hand_units, 0) + in_transit_units as stock "
            "from marts.fct_inventory_daily where date_day = ?", [as_of]).fetchall(),
            schema=["product_id", "location_id", "stock"], orient="row")
    stores = run.inventory_policy.filter(pl.col("location_type") == "store").join(
        book, on=["product_id", "location_id"], how="left")
    # the stores' stock in the echelon: on hand and in transit from the DC (not their requests it has not shipped)
    by_dc = stores.group_by("product_id", pl.col("source_location_id").alias("location_id")).agg(
        (pl.col("reorder_point") + pl.col("order_quantity") / 2).sum().alias("target"),
        pl.col("stock").sum().alias("stores_stock"))
    check = dc.join(by_dc, on=["product_id", "location_id"], how="inner")
    assert check.height == dc.height > 0
    assert (check["echelon_store_target_units"] - check["target"]).abs().max() < 1e-9
    own_and_stores = check["inventory_position_units"] + check["stores_stock"]
    assert (check["echelon_position_units"] - own_and_stores).abs().max() < 1e-9
    reading = check["echelon_position_units"] - check["target"]
    own = check["inventory_position_units"]
    expected = pl.select(pl.when(own <= 0).then(pl.min_horizontal(own, reading)).otherwise(reading)).to_series()
    assert (check["ordering_position_units"] - expected).abs().max() < 1e-9  # an empty DC: the lower of the two
    assert run.summary["proposals"]["count"] == props.height
    assert run.summary["proposals"]["value"] == pytest.approx(props["value"].sum())


def test_exceptions_are_ranked_and_explained(planned):
    _, run = planned
    ex = run.exceptions
    assert ex.height > 0 and ex["rank"].to_list() == list(range(1, ex.height + 1))
    assert ex["reason"].null_count() == 0 and (ex["reason"].str.len_chars() > 20).all()
    assert ex["exception_id"].n_unique() == ex.height
    summary = run.summary["exceptions"]["by_type"]
    assert sum(v["count"] for v in summary.values()) == ex.height


def test_headline_numbers_add_up(planned):
    _, run = planned
    p, inv = run.inventory_policy, run.summary["inventory"]
    assert inv["expected_avg_inventory_value"] == pytest.approx(p["expected_avg_inventory_value"].sum())
    assert inv["change_vs_classical"] == pytest.approx(inv["freed_vs_classical"] * -1 + inv["added_vs_classical"])
    assert math.isfinite(run.summary["service"]["expected_fill_rate_volume_weighted"])


def test_write_decide_and_rerun_on_a_copy(warehouse_copy: Path):
    with duckdb.connect(str(warehouse_copy)) as con:
        (as_of,) = con.execute("select max(date_day) from marts.fct_inventory_daily").fetchall()[0]
        ltd = naive_lead_time_demand(con, as_of, n_samples=100)
        run = run_policy(con, ltd, None, as_of=as_of)
        write_policy_run(con, run)
        pid = run.purchase_proposals["proposal_id"][0]
        set_proposal_status(con, pid, "approved", "planner@example.com", "checked with the buyer")
        again = run_policy(con, ltd, None, as_of=as_of)
        status = again.purchase_proposals.filter(pl.col("proposal_id") == pid)["status"].item()
        assert status == "approved"
        n = con.execute("select count(*) from ml.proposal_decisions").fetchall()[0][0]
        assert n == 1


def test_the_level_shift_follows_the_forecast_over_the_interval_that_starts_on_the_plans_day() -> None:
    from datetime import date, timedelta

    from ml.policy.run import MAX_LEVEL_SHIFT, _forecast_rows, forecast_level_shift

    made = date(2025, 3, 1)
    days = [made + timedelta(days=k) for k in range(1, 61)]
    # row 0 flat at 10; row 1 10 a day, then 30 from day 21 on; row 2 falls from 50 to 1 (a season ending);
    # row 3 without a forecast
    level = {"A": [10.0] * 60, "B": [10.0] * 20 + [30.0] * 40, "C": [50.0] * 10 + [1.0] * 50}
    forecast = pl.DataFrame({
        "product_id": [p for p in level for _ in days], "location_id": ["S1"] * 180, "period_start": days * 3,
        "forecast": [v for p in level for v in level[p]]})
    keys = pl.DataFrame({"product_id": ["A", "B", "C", "D"], "location_id": ["S1"] * 4}).with_row_index("_i")
    cfg = PolicyConfig()
    window = np.full(4, 10.0)

    def shift(as_of: date, made_on: date | None = made) -> np.ndarray:
        return forecast_level_shift(forecast, keys, made_on, as_of, _forecast_rows(forecast, keys, as_of, cfg),
                                    window, cfg)

    later = shift(made + timedelta(days=20))  # the interval of days 21..30 against that of days 1..10
    assert later[0] == pytest.approx(1.0)
    assert later[1] == pytest.approx(3.0)
    assert later[2] == pytest.approx(1.0 / MAX_LEVEL_SHIFT)  # 1/50, bounded
    assert later[3] == 1.0
    np.testing.assert_array_equal(shift(made), 1.0)  # a plan on the forecast's own day
    np.testing.assert_array_equal(shift(made + timedelta(days=20), None), 1.0)  # no forecast day given
    assert shift(made + timedelta(days=15))[1] == pytest.approx((5 * 10 + 5 * 30) / 10 / 10.0)


def test_a_re_plan_from_an_older_forecast_moves_the_reorder_points_with_its_level(small_warehouse: Path) -> None:
    """``run_policy(forecast_as_of=...)``: the plan made a week after the forecast protects the interval that
    starts on its own day. A forecast that doubles from then on doubles the draws; a flat one changes nothing."""
    from datetime import timedelta

    with duckdb.connect(str(small_warehouse), read_only=True) as con:
        (as_of,) = con.execute("select max(date_day) from marts.fct_inventory_daily").fetchall()[0]
        made = as_of - timedelta(days=7)
        ltd = naive_lead_time_demand(con, made, n_samples=300)
        keys = ltd.keys.select("product_id", "location_id")
        days = [made + timedelta(days=k) for k in range(1, 200)]
        base = np.maximum(ltd.daily_demand_mean, 0.01)

        def frame(after_day_7: float) -> pl.DataFrame:
            return pl.DataFrame({
                "product_id": np.repeat(keys["product_id"].to_numpy(), len(days)),
                "location_id": np.repeat(keys["location_id"].to_numpy(), len(days)),
                "period_start": days * keys.height,
                "forecast": np.concatenate([[b] * 7 + [b * after_day_7] * (len(days) - 7) for b in base])})

        cfg = PolicyConfig(multi_echelon=False)  # the stores' draws as they come, without the wait at their DC
        flat = run_policy(con, ltd, frame(1.0), cfg, as_of=as_of, forecast_as_of=made)
        same = run_policy(con, ltd, frame(1.0), cfg, as_of=as_of)
        up = run_policy(con, ltd, frame(2.0), cfg, as_of=as_of, forecast_as_of=made)
    r_flat = flat.inventory_policy["ltd_mean"].to_numpy()
    np.testing.assert_allclose(r_flat, same.inventory_policy["ltd_mean"].to_numpy())
    r_up = up.inventory_policy["ltd_mean"].to_numpy()
    # the stores' interval (a few days) that starts a week later lies wholly in the doubled part: their mean
    # doubles (a DC's draws are its stores' lots, which a doubled forecast also resizes)
    stores = (up.inventory_policy["location_type"] == "store").to_numpy() & (r_flat > 0)
    np.testing.assert_allclose(r_up[stores], 2.0 * r_flat[stores], rtol=1e-9)
    assert (up.inventory_policy["reorder_point"].to_numpy() >= flat.inventory_policy["reorder_point"].to_numpy()).all()
