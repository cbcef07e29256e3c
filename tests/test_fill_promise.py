"""The fill rate the policy promises (``ml.inventory_policy.expected_fill_rate``) against what a day-by-day replay
of that policy delivers, when the demand distribution is known exactly: no forecast error is involved, so any gap
is the promise formula's. ``bench/fill_promise.py`` prints the full comparison (docs/backtest.md, "The promise
formula")."""

from __future__ import annotations

import numpy as np
import pytest

from ml.policy import inventory_math as im
from ml.simulation.engine import CostParams, InitialState, LeadTimeModel, PolicySchedule, simulate

PROCESSES = {
    "smooth": lambda rng, size: rng.poisson(2.0, size).astype(float),
    "lumpy": lambda rng, size: ((rng.random(size) < 0.03) * rng.negative_binomial(1, 1 / 8.0, size)).astype(float),
}


def _promise_and_delivery(process: str, lead_time: int, review: int) -> tuple[float, float]:
    rng = np.random.default_rng(3)
    draw = PROCESSES[process]
    n, days, warm_up = 120, 1000, 100
    demand = draw(rng, (n, days))
    samples = np.stack([draw(rng, (n, lead_time + review)).sum(axis=1) for _ in range(1000)], axis=1)
    q = np.maximum(np.ceil(demand[:, warm_up:].mean(axis=1) * 14), 1.0)
    r, _ = im.reorder_points(samples, is_fill_rate=np.ones(n, bool), target=np.full(n, 0.97), q=q, csl_floor=0.0)
    weight = demand[:, warm_up:].sum(axis=1)
    promise = float(np.sum(im.fill_rate_from_samples(samples, r, q) * weight) / weight.sum())
    schedule = PolicySchedule(plan_days=np.array([0]), reorder_point=r[None, :], order_up_to=(r + q)[None, :],
                              review_period=np.full((1, n), float(review)), rule="s_S")
    res = simulate(demand, schedule, LeadTimeModel.fixed(n, lead_time), InitialState(on_hand=r + q),
                   costs=CostParams(unit_cost=np.ones(n)), rng_seed=1, measure_from=warm_up)
    return promise, float(res.served.sum() / res.demanded.sum())


def test_the_replay_of_known_demand_meets_the_target_where_the_formula_holds() -> None:
    """Smooth demand with a supplier's lead time: the policy set for 97% delivers at least that."""
    promise, delivered = _promise_and_delivery("smooth", 30, 7)
    assert promise == pytest.approx(0.97, abs=0.01)
    assert delivered >= 0.97


@pytest.mark.xfail(strict=True, reason=(
    "issue 9 section 3, open: the continuous-review (r, Q) formula on lead time + review demand over-promises "
    "for lumpy demand (a lump larger than r + Q loses more than Q; measured 0.97 promised, 0.71 delivered at a "
    "2-day lead time) and under-promises for smooth demand (0.97 promised, 0.997 delivered); the periodic-review "
    "formula needs the demand over the lead time alone, which the pipeline does not sample yet"))
@pytest.mark.parametrize(("process", "lead_time", "review"), [("lumpy", 2, 1), ("smooth", 30, 7), ("lumpy", 30, 7)])
def test_the_promise_is_what_the_replay_delivers(process: str, lead_time: int, review: int) -> None:
    promise, delivered = _promise_and_delivery(process, lead_time, review)
    assert delivered == pytest.approx(promise, abs=0.01)
