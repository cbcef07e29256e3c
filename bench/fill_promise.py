"""Does the fill rate stockturn promises hold when the demand distribution is known exactly?

Known demand processes (no forecasting at all): for every series the lead-time-demand samples are drawn from the
true process, the reorder point is set for a fill-rate target exactly as the pipeline sets it
(``ml.policy.inventory_math.reorder_points``, order quantity Q given in days of mean demand), and the promise is
the one the pipeline writes to ``ml.inventory_policy.expected_fill_rate``
(``inventory_math.fill_rate_from_samples``: the continuous-review (r, Q) formula on the demand over lead time +
review period). The policy is then replayed day by day (``ml.simulation.engine.simulate``: periodic review every
R days, order up to r + Q, or the smallest n Q above r, fixed lead time L, lost sales) and the delivered volume
fill is compared with the promise.

For reference it also prints the textbook periodic-review (R, s, nQ) promise (Hadley & Whitin; Silver, Pyke &
Thomas, ch. 7): shortage per review period ``B = [G2_{L+R}(s) - G2_{L+R}(s+Q) - G2_L(s) + G2_L(s+Q)] / Q`` with
``G2`` the second-order loss function of the samples, fill = 1 - B / E[D_R] (backorders), and its lost-sales
form 1 - B / (E[D_R] + B). It needs samples of the demand over the lead time alone, which the pipeline does not
keep today.

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


def g2(samples: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Second-order loss E[((D - x)+)^2] / 2 per row of samples."""
    return (np.maximum(samples - x[:, None], 0.0) ** 2).mean(axis=1) / 2


def replay(demand: np.ndarray, r: np.ndarray, q: np.ndarray, lead_time: int, review: int, rule: str,
           warm_up: int) -> float:
    n = demand.shape[0]
    kwargs = {"order_up_to": (r + q)[None, :]} if rule == "s_S" else {"order_quantity": q[None, :]}
    schedule = PolicySchedule(plan_days=np.array([0]), reorder_point=r[None, :],
                              review_period=np.full((1, n), float(review)), rule=rule, **kwargs)
    res = simulate(demand, schedule, LeadTimeModel.fixed(n, lead_time), InitialState(on_hand=r + q),
                   costs=CostParams(unit_cost=np.ones(n)), rng_seed=1, measure_from=warm_up)
    return float(res.served.sum() / res.demanded.sum())


def study(lead_time: int, review: int, target: float, q_days: float, n_series: int, n_samples: int, days: int,
          seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    warm_up = max(3 * (lead_time + review), 60)
    out = []
    for name, draw in PROCESSES.items():
        demand = draw(rng, (n_series, days))
        over_lead = np.stack([draw(rng, (n_series, lead_time)).sum(axis=1) for _ in range(n_samples)], axis=1)
        over_review = np.stack([draw(rng, (n_series, review)).sum(axis=1) for _ in range(n_samples)], axis=1)
        protection = over_lead + over_review  # demand over lead time + review period, as the pipeline samples it
        mean_daily = demand[:, warm_up:].mean(axis=1)
        q = np.maximum(np.ceil(mean_daily * q_days), 1.0)
        r, _ = im.reorder_points(protection, is_fill_rate=np.ones(n_series, bool), target=np.full(n_series, target),
                                 q=q, csl_floor=0.0)
        weight = np.maximum(mean_daily, 1e-12)
        promise = float(np.sum(im.fill_rate_from_samples(protection, r, q) * weight) / weight.sum())
        b = (g2(protection, r) - g2(protection, r + q) - g2(over_lead, r) + g2(over_lead, r + q)) / q
        per_review = np.maximum(over_review.mean(axis=1), 1e-12)
        hw_back = float(np.sum((1 - b / per_review) * weight) / weight.sum())
        hw_lost = float(np.sum((1 - b / (per_review + b)) * weight) / weight.sum())
        out.append({"process": name, "promise": promise, "delivered_s_S": replay(demand, r, q, lead_time, review,
                                                                                   "s_S", warm_up),
                    "delivered_s_nQ": replay(demand, r, q, lead_time, review, "s_nQ", warm_up),
                    "periodic_backorders": hw_back, "periodic_lost_sales": hw_lost})
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
    print(f"{'process':<36}{'promised':>9}{'(s,S)':>8}{'(s,nQ)':>8}   periodic formula: backorders / lost sales")
    for r in rows:
        print(f"{r['process']:<36}{r['promise']:>9.3f}{r['delivered_s_S']:>8.3f}{r['delivered_s_nQ']:>8.3f}"
              f"   {r['periodic_backorders']:.3f} / {r['periodic_lost_sales']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
