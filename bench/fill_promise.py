"""Does the fill rate stockturn promises hold when the demand distribution is known exactly?

Known demand processes (no forecasting at all): for every series the lead-time-demand samples are drawn from the
true process with the pipeline's timing (reviewed at the close of a day, received at the opening: an order covers
``L + R - 1`` days, ``L - 1`` of them before it arrives; ``ml.demand_distribution.exposure_days``), the reorder
point is set for a fill-rate target exactly as the pipeline sets it (``ml.policy.inventory_math.reorder_points``
with the demand before arrival, order quantity Q given in days of mean demand), and the promise is the one the
pipeline writes to ``ml.inventory_policy.expected_fill_rate`` (``periodic_fill_rate_from_samples``: the
periodic-review (R, s, S) fill rate with the long-run undershoot of the position at a review; the target raised,
and the promise lowered, by ``fill_rate_sampling_optimism``, as ``ml.policy.run`` does). The policy is then
replayed day by day (``ml.simulation.engine.simulate``: periodic review every R days, order up to r + Q, fixed
lead time L, lost sales) and the delivered volume fill is compared with the promise.

Columns: ``promised`` (as the pipeline writes it), ``fresh`` (the same r judged on independent draws),
``optimism`` (the cross-fitted sampling optimism taken off the promise), the delivered fill, and the
continuous-review (r, Q) formula ``1 - E[min((D - r)+, Q)] / Q`` that stockturn promised with before policy-1.6.

    python bench/fill_promise.py --lead-time 30 --review 7
    python bench/fill_promise.py --lead-time 2 --review 1 --target 0.97 --q-days 14

Not part of the test suite (tests/test_fill_promise.py holds the acceptance the promise has to meet).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.policy import inventory_math as im  # noqa: E402
from ml.simulation.engine import CostParams, InitialState, LeadTimeModel, PolicySchedule, simulate  # noqa: E402

Generator = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]

#: daily demand processes: (name, draw(rng, shape) -> units per day)
PROCESSES: dict[str, Generator] = {
    "smooth (Poisson 2/day)": lambda rng, size: rng.poisson(2.0, size).astype(float),
    "intermittent (5% of days, mean 3)": lambda rng, size: ((rng.random(size) < 0.05)
                                                           * rng.geometric(1 / 3.0, size)).astype(float),
    "lumpy (3% of days, mean 7, CV 1)": lambda rng, size: ((rng.random(size) < 0.03)
                                                           * rng.negative_binomial(1, 1 / 8.0, size)).astype(float),
}


def replay(demand: np.ndarray, r: np.ndarray, q: np.ndarray, lead_time: int, review: int, rule: str,
           warm_up: int) -> float:
    n = demand.shape[0]
    kwargs = {"order_up_to": (r + q)[None, :]} if rule == "s_S" else {"order_quantity": q[None, :]}
    schedule = PolicySchedule(plan_days=np.array([0]), reorder_point=r[None, :],
                              review_period=np.full((1, n), float(review)), rule=rule, **kwargs)
    res = simulate(demand, schedule, LeadTimeModel.fixed(n, lead_time), InitialState(on_hand=r + q),
                   costs=CostParams(unit_cost=np.ones(n)), rng_seed=1, measure_from=warm_up)
    return float(res.served.sum() / res.demanded.sum())


def draws(draw: Generator, rng: np.random.Generator, n: int, n_samples: int, lead_time: int, review: int,
          ) -> tuple[np.ndarray, np.ndarray]:
    """(demand over L + R - 1 days, demand over the first L - 1 of them) from the same daily draws."""
    before = np.stack([draw(rng, (n, lead_time - 1)).sum(axis=1) for _ in range(n_samples)], axis=1)
    after = np.stack([draw(rng, (n, review)).sum(axis=1) for _ in range(n_samples)], axis=1)
    return before + after, before


def study(lead_time: int, review: int, target: float, q_days: float, n_series: int, n_samples: int, days: int,
          seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    warm_up = max(3 * (lead_time + review), 60)
    out = []
    for name, draw in PROCESSES.items():
        demand = draw(rng, (n_series, days))
        protection, before = draws(draw, rng, n_series, n_samples, lead_time, review)
        fresh, fresh_before = draws(draw, rng, n_series, n_samples, lead_time, review)
        mean_daily = demand[:, warm_up:].mean(axis=1)
        q = np.maximum(np.ceil(mean_daily * q_days), 1.0)
        under = im.review_undershoot(protection - before, q)
        raised, optimism = im.raised_fill_targets(protection, before, is_fill_rate=np.ones(n_series, bool),
                                                  target=np.full(n_series, target), q=q, undershoot=under)
        r, _ = im.reorder_points(protection, is_fill_rate=np.ones(n_series, bool), target=raised, q=q,
                                 csl_floor=0.0, lead_samples=before, undershoot=under)
        weight = np.maximum(mean_daily, 1e-12)

        def weighted(x: np.ndarray, weight: np.ndarray = weight) -> float:
            return float(np.sum(np.asarray(x) * weight) / weight.sum())

        out.append({"process": name,
                    "promise": weighted(np.asarray(im.periodic_fill_rate_from_samples(protection, before, r, q,
                                                                                      undershoot=under)) - optimism),
                    "optimism": weighted(optimism),
                    "fresh": weighted(im.periodic_fill_rate_from_samples(fresh, fresh_before, r, q)),
                    "delivered_s_S": replay(demand, r, q, lead_time, review, "s_S", warm_up),
                    "continuous_rq": weighted(im.fill_rate_from_samples(protection, r, q))})
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lead-time", type=int, default=30)
    p.add_argument("--review", type=int, default=7)
    p.add_argument("--target", type=float, default=0.97)
    p.add_argument("--q-days", type=float, default=14.0, help="order quantity in days of mean demand")
    p.add_argument("--series", type=int, default=200, help="series per demand process")
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--days", type=int, default=1500)
    p.add_argument("--seed", type=int, default=3)
    a = p.parse_args()
    rows = study(a.lead_time, a.review, a.target, a.q_days, a.series, a.samples, a.days, a.seed)
    print(f"lead time {a.lead_time} d, review every {a.review} d, fill target {a.target:.0%}, Q = {a.q_days:g} days "
          f"of mean demand; {a.series} series per process, volume fill")
    print(f"{'process':<36}{'promised':>9}{'fresh':>8}{'optimism':>9}{'(s,S)':>8}   (r, Q) formula before policy-1.6")
    for r in rows:
        print(f"{r['process']:<36}{r['promise']:>9.3f}{r['fresh']:>8.3f}{r['optimism']:>9.3f}{r['delivered_s_S']:>8.3f}"
              f"   {r['continuous_rq']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
