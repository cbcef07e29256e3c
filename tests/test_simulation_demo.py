"""The simulator on a small demo company's hidden truth (``ml.simulation.demo_truth``): inputs, a replay, bounds."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from ml.demo_company import GenerationSummary, generate
from ml.simulation.demo_truth import demo_inputs
from ml.simulation.engine import PolicySchedule, simulate
from ml.simulation.kpis import compare
from ml.simulation.planning import classical_planner, month_start_days, schedule_from_planner
from ml.simulation.scenarios import SimulationInputs, run_scenarios, supplier_outage


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[GenerationSummary, SimulationInputs]:
    summary = generate(tmp_path_factory.mktemp("sim") / "landing", skus=16, stores=2, days=240, seed=3,
                       progress=False)
    start = summary.first_day + timedelta(days=120)
    return summary, demo_inputs(summary.truth_dir, summary.out_dir, start=start, days=120, history_days=120)


def test_demo_inputs_match_the_truth(demo: tuple[GenerationSummary, SimulationInputs]) -> None:
    summary, inp = demo
    truth = pl.read_parquet(Path(summary.truth_dir) / "true_demand.parquet")
    assert inp.n_series == truth.select("product_id", "location_id").unique().height
    assert inp.demand.shape == (inp.n_series, 120) and inp.history.shape == (inp.n_series, 120)
    p, loc = inp.keys.row(3, named=True)["product_id"], inp.keys.row(3, named=True)["location_id"]
    one = truth.filter((pl.col("product_id") == p) & (pl.col("location_id") == loc)).sort("date")
    assert np.array_equal(inp.demand[3], one["demand"].to_numpy()[120:240])
    assert np.array_equal(inp.history[3], one["sold"].to_numpy()[:120])
    assert inp.initial.on_hand[3] == one["physical_on_hand_close"][119]
    assert set(inp.keys["supplier_id"]) <= set(inp.lead_times.group_names)
    assert np.all(inp.lead_times.mean_days() >= 1)


def test_replay_the_demo_with_baseline_and_bound(demo: tuple[GenerationSummary, SimulationInputs]) -> None:
    _, inp = demo
    n = inp.n_series
    offsets = np.arange(n) % 7

    def classical(z: float):
        def make(i: SimulationInputs) -> PolicySchedule:
            plan = classical_planner(z, lead_time_mean=i.lead_times.mean_days(), lead_time_sd=i.lead_times.sd_days(),
                                     review_period=7, window_days=90, order_quantity_days=7)
            return schedule_from_planner(month_start_days(i.start, i.n_days), i.observed(), plan,
                                         n_history=i.n_history, lead_times=i.lead_times, review_offset=offsets)
        return make

    run = lambda sched: simulate(inp.demand, sched, inp.lead_times, inp.initial, costs=inp.costs,  # noqa: E731
                                 rng_seed=2, record_daily=("short", "receipts"))
    base = run(classical(1.64)(inp))
    oracle = run(PolicySchedule.perfect_foresight(n, review_period=7, review_offset=offsets))
    tab = compare({"classical": base, "oracle": oracle})
    assert tab["fill_rate_volume"].is_between(0.5, 1.0).all()
    # the bound loses only what the opening stock cannot cover before its first receipt
    rec, short = oracle.daily["receipts"], oracle.daily["short"]
    first = np.where(rec.any(axis=1), rec.argmax(axis=1), inp.n_days)
    assert short[np.arange(inp.n_days)[None, :] >= first[:, None]].sum() == 0
    assert oracle.avg_inventory_value.sum() < base.avg_inventory_value.sum()

    sup = str(inp.keys["supplier_id"][0])
    rep = run_scenarios(inp, {"classical": classical(1.64)}, [supplier_outage(sup, 20, 4)], rng_seed=2)
    assert rep.kpis.height == 2
    assert (rep.breaks["supplier_id"] == sup).all()
