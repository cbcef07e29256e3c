"""The value of the planners' decisions, measured by replay (issue 12, section 3): known cases on synthetic demand
(an override that obviously hurts, one that fixes a known demand change) and the whole path on a real warehouse."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from ml.policy import run_policy, write_policy_run
from ml.simulation.decision_value import (
    Decisions,
    decision_value,
    replay_decisions,
    summarise,
    write_decision_value,
)
from ml.simulation.engine import CostParams, ForcedOrders, InitialState, LeadTimeModel
from ml.simulation.scenarios import SimulationInputs
from reports.build import build_report
from tests.policy_helpers import naive_lead_time_demand


def _inputs(demand: np.ndarray, opening: list[float]) -> SimulationInputs:
    n = demand.shape[0]
    pmf = np.zeros((1, 8))
    pmf[0, 5] = 1.0  # five days, always
    keys = pl.DataFrame({"product_id": [f"P{i}" for i in range(n)], "location_id": ["S1"] * n})
    return SimulationInputs(demand, keys, LeadTimeModel(pmf, np.zeros(n, np.int64), ("SUP",)),
                            InitialState.at_level(np.array(opening)),
                            CostParams(np.full(n, 10.0), 0.25, 0.0, None, np.full(n, 16.0)))


def test_a_huge_reorder_point_on_a_slow_item_is_a_loss_and_a_fix_for_a_demand_change_a_gain() -> None:
    rng = np.random.default_rng(1)
    days = 120
    slow = rng.poisson(0.2, days)
    doubled = rng.poisson(10.0, days)  # the item now sells 10 a day; the policy still plans for 5
    inputs = _inputs(np.vstack([slow, doubled]).astype(np.float64), [4.0, 40.0])
    lead = 5 + 1  # lead time + review period
    decisions = Decisions(
        reorder_point_policy=np.array([2.0, 5 * lead + 2 * np.sqrt(5 * lead)]),
        order_quantity_policy=np.array([4.0, 50.0]),
        reorder_point_planner=np.array([200.0, 10 * lead + 2 * np.sqrt(10 * lead)]),  # a typo / the real level
        order_quantity_planner=np.array([4.0, 50.0]),
        moq=np.zeros(2), pack_size=np.ones(2), review_period=np.ones(2))
    v = replay_decisions(inputs, decisions, holding_rate=0.25).to_dicts()
    huge, fix = v
    assert huge["verdict"] == "loss" and huge["net_value"] < 0
    assert huge["avg_inventory_value_planner"] > 20 * huge["avg_inventory_value_policy"]
    assert huge["fill_rate_planner"] >= huge["fill_rate_policy"] - 1e-12  # it buys (almost) nothing in service
    assert fix["verdict"] == "gain" and fix["lost_margin_saved"] > fix["extra_holding_cost"] > 0
    assert fix["fill_rate_planner"] > fix["fill_rate_policy"] + 0.1
    # the net value is the margin saved minus the holding cost added, both over the replayed days
    for row in v:
        assert row["net_value"] == pytest.approx(row["lost_margin_saved"] - row["extra_holding_cost"])
        extra = 0.25 * (row["avg_inventory_value_planner"] - row["avg_inventory_value_policy"]) * days / 365
        assert row["extra_holding_cost"] == pytest.approx(extra)


def test_identical_numbers_are_neutral() -> None:
    inputs = _inputs(np.full((1, 60), 3.0), [20.0])
    same = Decisions(np.array([20.0]), np.array([30.0]), np.array([20.0]), np.array([30.0]), np.zeros(1),
                     np.ones(1), np.ones(1))
    row = replay_decisions(inputs, same, holding_rate=0.25).row(0, named=True)
    assert row["verdict"] == "neutral" and row["net_value"] == 0.0


@pytest.mark.slow
def test_decisions_on_a_real_warehouse_are_replayed_per_planner(warehouse_copy: Path, tmp_path: Path) -> None:
    with duckdb.connect(str(warehouse_copy)) as con:
        (as_of,) = con.execute("select max(date_day) from marts.fct_inventory_daily").fetchall()[0]
        ltd = naive_lead_time_demand(con, as_of, n_samples=100)
        base = run_policy(con, ltd, None, as_of=as_of).inventory_policy
        stores = base.filter((pl.col("location_type") == "store") & (pl.col("daily_demand_forecast") > 0))
        slow = stores.sort("daily_demand_forecast").row(0, named=True)
        busy = stores.sort("daily_demand_forecast", descending=True).row(0, named=True)
        dc = base.filter(pl.col("location_type") != "store").row(0, named=True)
        con.execute("create or replace table planning.planner_overrides as select * from (values "
                    f"('{slow['product_id']}', '{slow['location_id']}', 'reorder_point', "
                    f"'{slow['reorder_point'] * 50 + 100:.0f}', 'typo', 'ann'), "
                    f"('{busy['product_id']}', '{busy['location_id']}', 'pack_size', '1', 'new packaging', 'bob'), "
                    f"('{dc['product_id']}', '{dc['location_id']}', 'reorder_point', "
                    f"'{dc['reorder_point'] + 1:.0f}', 'season', 'bob')"
                    ") t(product_id, location_id, field, value, reason, author)")
        write_policy_run(con, run_policy(con, ltd, None, as_of=as_of))
        values = decision_value(con, days=91)
        write_decision_value(con, values)
        too_long = decision_value(con, days=5000)  # more than the history holds: said, not an error
    assert not too_long["measured"].any()
    assert too_long.filter(pl.col("author") == "ann")["not_measured_reason"].item().startswith("not replayed: ")
    by = {(r["product_id"], r["location_id"]): r for r in values.to_dicts()}
    typo = by[(slow["product_id"], slow["location_id"])]
    assert typo["measured"] and typo["verdict"] == "loss" and typo["author"] == "ann"
    assert typo["avg_inventory_value_planner"] > typo["avg_inventory_value_policy"]
    pack = by[(busy["product_id"], busy["location_id"])]
    assert not pack["measured"] and "fact about the item" in pack["not_measured_reason"]
    at_dc = by[(dc["product_id"], dc["location_id"])]
    assert not at_dc["measured"] and "distribution centre" in at_dc["not_measured_reason"]
    table = summarise(values)
    assert table.filter(pl.col("author") == "ann")["losses"].item() == 1
    # the report shows it per planner and reason
    result = build_report(warehouse_copy, tmp_path / "report")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", (tmp_path / "report" / "report.html").read_text()))
    assert "What the planners&#x27; decisions changed: 1 decisions replayed" in text or \
        "What the planners' decisions changed: 1 decisions replayed" in text, result
    assert "ann" in text and "typo" in text and "2 other decisions are not replayable" in text


def test_a_rejected_order_the_demand_needed_is_a_loss_and_one_for_a_dead_item_a_gain() -> None:
    """Proposals replayed forward: both arms follow the same policy after the decision day; only day 0 differs."""
    days = 60
    busy = np.full(days, 10.0)  # sells 10 a day: the proposed order was needed
    dead = np.zeros(days)  # stopped selling: the planner knew, the policy did not yet
    inputs = _inputs(np.vstack([busy, dead, busy]), [40.0, 30.0, 40.0])
    r = np.array([60.0, 40.0, 60.0])  # position (on hand) is below the reorder point on day 0 for all three
    q = np.array([100.0, 100.0, 100.0])
    same = Decisions(r, q, r, q, np.zeros(3), np.ones(3), np.ones(3))
    proposed = ForcedOrders([0, 1, 2], [0, 0, 0], [100.0, 100.0, 100.0])
    # rejected and held for 20 days (the next approval), rejected for good, tripled
    decided = ForcedOrders([*([0] * 20), *([1] * days), 2], [*range(20), *range(days), 0],
                           [*([0.0] * 20), *([0.0] * days), 300.0])
    v = replay_decisions(inputs, same, holding_rate=0.25, forced_policy=proposed, forced_planner=decided).to_dicts()
    needed, dead_item, tripled = v
    assert needed["verdict"] == "loss" and needed["lost_margin_planner"] > needed["lost_margin_policy"]
    assert needed["fill_rate_planner"] < needed["fill_rate_policy"]
    assert dead_item["verdict"] == "gain" and dead_item["avg_inventory_value_planner"] < \
        dead_item["avg_inventory_value_policy"]
    assert dead_item["lost_margin_saved"] == 0.0 and dead_item["net_value"] > 0
    # three lots on a steady item: no service gained, stock added
    assert tripled["verdict"] == "loss" and tripled["lost_margin_saved"] == pytest.approx(0.0)
    assert tripled["avg_inventory_value_planner"] > tripled["avg_inventory_value_policy"]
    # the day-0 orders are what the arms differ by: forcing the proposal in both arms is neutral
    row = replay_decisions(inputs, same, holding_rate=0.25, forced_policy=proposed,
                           forced_planner=proposed).to_dicts()
    assert all(x["net_value"] == 0.0 and x["verdict"] == "neutral" for x in row)
    # a rejection held one day only costs (almost) nothing on the busy item: the next day's order comes in time
    one_day = replay_decisions(inputs, same, holding_rate=0.25, forced_policy=proposed,
                               forced_planner=ForcedOrders([0], [0], [0.0])).row(0, named=True)
    assert one_day["lost_margin_saved"] > needed["lost_margin_saved"]


def test_a_rejection_holds_until_the_items_next_approved_proposal() -> None:
    from datetime import date, datetime

    from ml.policy.proposals import ensure_decisions_table
    from ml.simulation.decision_value import read_proposal_decisions

    d0 = date(2025, 3, 1)
    rows = [  # seq, id, status, author, as_of, product, location, quantity, decided
        (1, "a", "rejected", "ann", d0, "P1", "S1", 10.0, 0.0),
        (2, "b", "approved", "rule:routine", d0 + timedelta(days=9), "P1", "S1", 12.0, 12.0),
        (3, "c", "approved", "bob", d0 + timedelta(days=20), "P1", "S1", 8.0, 8.0),
        (4, "d", "rejected", "ann", d0, "P2", "S1", 5.0, 0.0),
        (5, "e", "approved", "bob", d0, "P3", "S1", 5.0, 9.0),  # changed
        (6, "f", "approved", "bob", d0, "P4", "S1", 5.0, 5.0),  # as proposed: changes nothing
        (7, "g", "approved", "rule:routine", d0, "P5", "S1", 5.0, 5.0),
    ]
    with duckdb.connect() as con:
        ensure_decisions_table(con)
        for seq, pid, status, author, as_of, product, loc, qty, decided in rows:
            con.execute("insert into ml.proposal_decisions (decision_seq, proposal_id, status, author, decided_at, "
                        "product_id, location_id, proposal_as_of_date, quantity, decided_quantity) values "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [seq, pid, status, author, datetime(2025, 3, 1), product, loc, as_of, qty, decided])
        got = read_proposal_decisions(con)
    by = {r["proposal_id"]: r for r in got.to_dicts()}
    assert set(by) == {"a", "d", "e"}  # rules' approvals and unchanged approvals are not planner decisions
    assert by["a"]["next_approval_date"] == d0 + timedelta(days=9)  # the rule's approval, the first one after
    assert by["d"]["next_approval_date"] is None
    assert by["e"]["decision_kind"] == "changed_proposal" and by["e"]["quantity_decided"] == 9.0


@pytest.mark.slow
def test_rejected_and_changed_proposals_are_measured_forward_once_their_days_have_landed(
        warehouse_copy: Path, tmp_path: Path) -> None:
    from ml.policy import set_proposal_status
    from ml.policy.order_export import export_orders
    from ml.simulation.decision_value import CHANGED, REJECTED

    with duckdb.connect(str(warehouse_copy)) as con:
        (last,) = con.execute("select max(date_day) from marts.fct_inventory_daily").fetchall()[0]
        earlier = last - timedelta(days=60)
        write_policy_run(con, run_policy(con, naive_lead_time_demand(con, earlier, n_samples=100), None,
                                         as_of=earlier))
        props = pl.DataFrame(con.execute(
            "select p.proposal_id, p.proposal_type, p.quantity, p.location_id, l.location_type "
            "from ml.purchase_proposals p join marts.dim_location l using (location_id) "
            "order by p.value desc, p.proposal_id").df())
        stores = props.filter(pl.col("location_type") == "store")
        at_dc = props.filter(pl.col("location_type") != "store")
        assert stores.height >= 2 and at_dc.height >= 1, props
        rejected, changed, dc_rejected = stores["proposal_id"][0], stores["proposal_id"][1], at_dc["proposal_id"][0]
        proposed_changed = float(stores["quantity"][1])
        set_proposal_status(con, rejected, "rejected", "ann", "overstocked at the store")
        with pytest.raises(ValueError, match="needs a reason"):
            set_proposal_status(con, changed, "approved", "bob", quantity=proposed_changed * 3)
        with pytest.raises(ValueError, match="reject the proposal"):
            set_proposal_status(con, changed, "approved", "bob", "x", quantity=0)
        row = set_proposal_status(con, changed, "approved", "bob", "expecting a promotion",
                                  quantity=proposed_changed * 3)
        assert row["decided_quantity"] == proposed_changed * 3 and row["reorder_point"] is not None
        set_proposal_status(con, dc_rejected, "rejected", "bob", "supplier closed")
        # the export orders what the planner approved
        exported = export_orders(con, tmp_path / "erp")
        lines = pl.read_csv(next((tmp_path / "erp").glob("*/transfer_order_lines.csv")))
        assert lines.filter(pl.col("proposal_id") == changed)["quantity"].item() == pytest.approx(
            proposed_changed * 3), exported
        # a later night: a decision on today's plan has no demand after it yet
        write_policy_run(con, run_policy(con, naive_lead_time_demand(con, last, n_samples=100), None, as_of=last))
        today = con.execute("select proposal_id from ml.purchase_proposals order by value desc limit 1"
                            ).fetchall()[0][0]
        set_proposal_status(con, today, "rejected", "ann", "too early")
        values = decision_value(con, days=45)
        write_decision_value(con, values)
    by = {r["proposal_id"]: r for r in values.to_dicts() if r["proposal_id"]}
    rej, chg = by[rejected], by[changed]
    assert rej["decision_kind"] == REJECTED and rej["measured"] and rej["quantity_decided"] == 0.0
    assert chg["decision_kind"] == CHANGED and chg["measured"]
    for r in (rej, chg):
        assert r["replay_start"] == earlier and r["replay_days"] == 45 and r["decision_date"] == earlier
        assert r["verdict"] in {"gain", "loss", "neutral"}
        assert r["net_value"] == pytest.approx(r["lost_margin_saved"] - r["extra_holding_cost"])
    # ordering nothing cannot hold more stock, tripling the order cannot hold less
    assert rej["avg_inventory_value_planner"] <= rej["avg_inventory_value_policy"] + 1e-9
    assert rej["held_days"] == 45 and chg["held_days"] == 1  # nothing approved later for the rejected item
    assert chg["avg_inventory_value_planner"] > chg["avg_inventory_value_policy"]
    assert not by[dc_rejected]["measured"] and "distribution centre" in by[dc_rejected]["not_measured_reason"]
    assert not by[today]["measured"] and by[today]["not_measured_reason"].startswith("not measured yet: 0 days")
    table = summarise(values)
    assert set(table["decision_kind"]) == {REJECTED, CHANGED}
    result = build_report(warehouse_copy, tmp_path / "report")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", (tmp_path / "report" / "report.html").read_text()))
    assert "changed quantity" in text and "rejected proposal" in text, result
    assert "1 proposal decisions are too recent to measure yet" in text
