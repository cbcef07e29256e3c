"""The fill rate the policy promises (``ml.inventory_policy.expected_fill_rate``) against what a day-by-day replay
of that policy delivers, when the demand distribution is known exactly: no forecast error is involved, so any gap
is the promise formula's. ``bench/fill_promise.py`` prints the full comparison (docs/backtest.md, "The promise
formula").

The policy is set as ``ml.policy.run.run_policy`` sets a fill-rate row: the draws of the demand over the
protection interval (``L + R - 1`` days: reviewed at the close, received at the opening) and over the part before
the order arrives (``L - 1`` days, the same draws); the target raised by the sampling optimism of choosing r on
these draws; the smallest r meeting it with the periodic-review (R, s, S) fill rate; the promise is that fill rate
less the optimism."""

from __future__ import annotations

import numpy as np
import pytest

from ml.policy import inventory_math as im
from ml.simulation.engine import CostParams, InitialState, LeadTimeModel, PolicySchedule, simulate

PROCESSES = {
    "smooth": lambda rng, size: rng.poisson(2.0, size).astype(float),
    "intermittent": lambda rng, size: ((rng.random(size) < 0.05) * rng.geometric(1 / 3.0, size)).astype(float),
    "lumpy": lambda rng, size: ((rng.random(size) < 0.03) * rng.negative_binomial(1, 1 / 8.0, size)).astype(float),
}


def _draws(draw, rng: np.random.Generator, n: int, k: int, lead_time: int, review: int):
    before = np.stack([draw(rng, (n, lead_time - 1)).sum(axis=1) for _ in range(k)], axis=1)
    after = np.stack([draw(rng, (n, review)).sum(axis=1) for _ in range(k)], axis=1)
    return before + after, before


def _promise_and_delivery(process: str, lead_time: int, review: int, target: float = 0.97,
                          ) -> tuple[float, float, float]:
    rng = np.random.default_rng(3)
    draw = PROCESSES[process]
    n, days, warm_up = 120, 1000, 100
    demand = draw(rng, (n, days))
    samples, before = _draws(draw, rng, n, 1000, lead_time, review)
    q = np.maximum(np.ceil(demand[:, warm_up:].mean(axis=1) * 14), 1.0)
    under = im.review_undershoot(samples - before, q)
    raised, optimism = im.raised_fill_targets(samples, before, is_fill_rate=np.ones(n, bool),
                                              target=np.full(n, target), q=q, undershoot=under)
    r, _ = im.reorder_points(samples, is_fill_rate=np.ones(n, bool), target=raised, q=q, csl_floor=0.0,
                             lead_samples=before, undershoot=under)
    weight = demand[:, warm_up:].sum(axis=1)
    fill = np.asarray(im.periodic_fill_rate_from_samples(samples, before, r, q, undershoot=under)) - optimism
    promise = float(np.sum(fill * weight) / weight.sum())
    schedule = PolicySchedule(plan_days=np.array([0]), reorder_point=r[None, :], order_up_to=(r + q)[None, :],
                              review_period=np.full((1, n), float(review)), rule="s_S")
    res = simulate(demand, schedule, LeadTimeModel.fixed(n, lead_time), InitialState(on_hand=r + q),
                   costs=CostParams(unit_cost=np.ones(n)), rng_seed=1, measure_from=warm_up)
    item = float(np.mean(res.served / np.maximum(res.demanded, 1e-12)))
    return promise, float(res.served.sum() / res.demanded.sum()), item


@pytest.mark.parametrize(("process", "lead_time", "review"), [
    ("smooth", 2, 1), ("smooth", 30, 7), ("intermittent", 2, 1), ("intermittent", 14, 1), ("lumpy", 2, 1),
    ("lumpy", 30, 7)])
def test_the_promise_is_what_the_replay_delivers(process: str, lead_time: int, review: int) -> None:
    """Within 1 point of the volume fill the replay delivers, for smooth, intermittent and lumpy demand, at a
    store's short lead time and daily review and at a supplier's lead time and weekly review. The continuous-review
    (r, Q) formula stockturn promised with before policy-1.6 missed by up to 27 points here (lumpy, L = 2)."""
    promise, delivered, _ = _promise_and_delivery(process, lead_time, review)
    assert delivered == pytest.approx(promise, abs=0.01)


def test_the_target_is_met_on_smooth_demand_without_buying_fill_that_was_already_there() -> None:
    """Smooth demand: the policy set for 97% delivers 97-98.5%, not the 99.7% the continuous-review formula's
    reorder point bought (it counted the lead time's demand as exposed when the next order was on its way)."""
    _, delivered, _ = _promise_and_delivery("smooth", 30, 7)
    assert 0.97 <= delivered <= 0.985


def test_the_continuous_review_formula_over_promises_lumpy_demand() -> None:
    """The measured cause, kept as a regression: on lumpy demand at a 2-day lead time, the (r, Q) formula says
    the periodic-review reorder point fills 97% or more, the replay delivers well below."""
    rng = np.random.default_rng(5)
    draw = PROCESSES["lumpy"]
    samples, before = _draws(draw, rng, 60, 1000, 2, 1)
    q = np.full(60, 3.0)
    r, _ = im.reorder_points(samples, is_fill_rate=np.ones(60, bool), target=np.full(60, 0.9), q=q, csl_floor=0.0,
                             lead_samples=before)
    old = np.asarray(im.fill_rate_from_samples(samples, r, q)).mean()
    new = np.asarray(im.periodic_fill_rate_from_samples(samples, before, r, q)).mean()
    assert old > new + 0.05
