"""Benchmark of the inventory simulator: 30,000 product-locations x 365 days x 2 policies (target < 2 minutes).

Synthetic workload: 3,000 products x 10 locations; daily demand a mix of Poisson (smooth) and negative binomial
(over-dispersed, intermittent) series with a weekly pattern; a year of history before the simulated year;
20 suppliers with shifted-gamma lead times (2 to ~60 days); MOQs and pack sizes. Both policies are re-planned
monthly from the data before each planning date (:func:`ml.simulation.planning.schedule_from_planner`):

- ``classical``: weekly review, normal reorder point with z = 1.64, order up to s + 7 days of demand;
- ``rq_daily``: daily review, (s, nQ) with z = 1.28 and Q = 14 days of demand.

Run it under GNU time for the peak resident memory of the whole process:

    /usr/bin/time -v .venv/bin/python bench/simulate_speed.py
    /usr/bin/time -v .venv/bin/python bench/simulate_speed.py --series 3000 --oracle

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.simulation.engine import CostParams, InitialState, LeadTimeModel, PolicySchedule, simulate  # noqa: E402
from ml.simulation.kpis import compare  # noqa: E402
from ml.simulation.planning import (  # noqa: E402
    PlanningContext,
    PlanParams,
    classical_planner,
    plan_days_every,
    schedule_from_planner,
)


def synthetic(n_series: int, n_hist: int, n_days: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    total = n_hist + n_days
    level = rng.lognormal(0.0, 1.2, n_series)  # mean units/day, from ~0.1 to ~20
    weekly = 1.0 + 0.25 * np.sin(2 * np.pi * np.arange(total) / 7.0)
    mean = level[:, None] * weekly[None, :]
    nb = rng.random(n_series) < 0.5
    k = rng.uniform(0.3, 3.0, n_series)[:, None]  # NB dispersion: variance = m + m^2 / k
    demand = np.empty((n_series, total), dtype=np.float32)
    demand[~nb] = rng.poisson(mean[~nb])
    demand[nb] = rng.negative_binomial(k[nb], k[nb] / (k[nb] + mean[nb]))
    n_sup = 20
    params = {f"SUP{j:02d}": (float(s), 4.0, float(m) / 4.0) for j, (s, m) in
              enumerate(zip(rng.uniform(1, 20, n_sup), rng.uniform(1, 15, n_sup), strict=True))}
    supplier = rng.choice(list(params), n_series)
    lead = LeadTimeModel.shifted_gamma(params, supplier, max_days=120)
    pack = rng.choice([1.0, 1.0, 4.0, 6.0, 12.0], n_series)
    moq = pack * rng.choice([0.0, 1.0, 2.0], n_series)
    cost = rng.uniform(0.5, 50.0, n_series)
    return {"demand": demand, "lead": lead, "pack": pack, "moq": moq, "cost": cost, "level": level}


def rq_planner(z: float, lead: LeadTimeModel, q_days: float, moq: np.ndarray, pack: np.ndarray):
    mean_lt, sd_lt = lead.mean_days(), lead.sd_days()

    def plan(ctx: PlanningContext) -> PlanParams:
        obs = ctx.observed[:, -180:]
        mu, sd = obs.mean(axis=1), obs.std(axis=1, ddof=1)
        s = mu * mean_lt + z * np.sqrt(mean_lt * sd**2 + mu**2 * sd_lt**2)
        return PlanParams(reorder_point=np.ceil(s), order_quantity=np.maximum(np.ceil(q_days * mu), 1.0),
                          moq=moq, pack_size=pack, review_period=1)

    return plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=30_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--history", type=int, default=365)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--oracle", action="store_true", help="also time the perfect-foresight bound")
    args = parser.parse_args(argv)

    t_all = time.perf_counter()
    t0 = time.perf_counter()
    data = synthetic(args.series, args.history, args.days, args.seed)
    t_data = time.perf_counter() - t0
    n = args.series
    obs = data["demand"]
    sim_demand = obs[:, args.history:]
    lead = data["lead"]
    plan_days = plan_days_every(args.days, 30)
    costs = CostParams(data["cost"], holding_rate=0.25, ordering_cost=10.0, unit_price=data["cost"] * 1.5)
    initial = InitialState(np.ceil(data["level"] * (lead.mean_days() + 7)))
    offsets = np.arange(n) % 7

    policies = {
        "classical": lambda: schedule_from_planner(
            plan_days, obs, classical_planner(1.64, lead_time_mean=lead.mean_days(), lead_time_sd=lead.sd_days(),
                                              review_period=7, window_days=180, order_quantity_days=7.0,
                                              moq=data["moq"], pack_size=data["pack"]),
            n_history=args.history, lead_times=lead, review_offset=offsets, name="classical"),
        "rq_daily": lambda: schedule_from_planner(
            plan_days, obs, rq_planner(1.28, lead, 14.0, data["moq"], data["pack"]), n_history=args.history,
            lead_times=lead, rule="s_nQ", name="rq_daily"),
    }
    if args.oracle:
        policies["perfect_foresight"] = lambda: PolicySchedule.perfect_foresight(
            n, review_period=7, review_offset=offsets, moq=data["moq"], pack_size=data["pack"])

    timings: dict[str, dict[str, float]] = {}
    results = {}
    for name, make in policies.items():
        t0 = time.perf_counter()
        sched = make()
        t_plan = time.perf_counter() - t0
        t0 = time.perf_counter()
        results[name] = simulate(sim_demand, sched, lead, initial, costs=costs, rng_seed=args.seed)
        timings[name] = {"plan_seconds": round(t_plan, 2), "simulate_seconds": round(time.perf_counter() - t0, 2)}
    t0 = time.perf_counter()
    table = compare(results)
    t_kpi = time.perf_counter() - t0
    wall = time.perf_counter() - t_all
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2

    print(table.select("policy", "fill_rate_volume", "fill_rate_item_avg", "cycle_service_pooled",
                       "avg_inventory_value", "turnover", "days_of_supply", "orders", "bullwhip_weekly_median"))
    print(json.dumps({
        "bench": "simulate_speed", "series": n, "days": args.days, "policies": list(policies),
        "data_seconds": round(t_data, 2), "policy_timings": timings, "kpi_seconds": round(t_kpi, 2),
        "wall_seconds": round(wall, 2), "peak_rss_gib": round(peak_gib, 3),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
