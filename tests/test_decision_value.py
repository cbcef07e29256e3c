"""The value of the planners' decisions, measured by replay (issue 12, section 3): known cases on synthetic demand
(an override that obviously hurts, one that fixes a known demand change) and the whole path on a real warehouse."""

from __future__ import annotations

import re
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
from ml.simulation.engine import CostParams, InitialState, LeadTimeModel
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
    assert "What the planners&#x27; overrides changed: 1 decisions replayed" in text or \
        "What the planners' overrides changed: 1 decisions replayed" in text, result
    assert "ann" in text and "typo" in text and "2 other overrides are not replayable" in text
