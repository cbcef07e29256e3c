"""Benchmark of the two-echelon network simulator: 30,000 store-products + their DC series x 365 days x 3 policies.

Issue 9's target: 30,000 store-products plus their DC, 365 days, 2 policies in at most 2 minutes on 2 cores.

Synthetic workload: ``--products`` products x ``--stores`` stores (default 3,000 x 10 = 30,000 store series) fed by
one DC (3,000 DC series); daily demand a mix of Poisson and negative binomial series with a weekly pattern;
transfer lead times of 1-4 days (3 store groups), 20 suppliers with shifted-gamma lead times (2 to ~60 days); DC
MOQs and packs. Each policy has 12 monthly plans (the parameters change every month, as re-planning does):

- ``lean``: stores (s, S) reviewed weekly with staggered review days, the DC (s, nQ) daily, small safety factors;
- ``rich``: stores (s, S) daily, the DC (s, S) weekly, larger safety factors;
- ``echelon``: ``rich`` with the DC on its echelon position (``PolicySchedule.echelon_offset``: its stores'
  planned stock, the sum of their (s + S) / 2), as stockturn's DC rows order since policy-1.12.

Only :func:`ml.simulation.network.simulate_network` is timed (plans are built outside the timer).

    .venv/bin/python bench/network_speed.py
    .venv/bin/python bench/network_speed.py --block 30000

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

from ml.simulation.engine import CostParams, InitialState, LeadTimeModel, PolicySchedule  # noqa: E402
from ml.simulation.network import simulate_network  # noqa: E402


def synthetic(n_prod: int, n_store: int, n_days: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n_s = n_prod * n_store
    parent = np.repeat(np.arange(n_prod), n_store)  # store series (product p, store k) -> DC series p
    level = rng.lognormal(-0.3, 1.1, n_s)
    weekly = 1.0 + 0.25 * np.sin(2 * np.pi * np.arange(n_days) / 7.0)
    mean = level[:, None] * weekly[None, :]
    nb = rng.random(n_s) < 0.5
    k = rng.uniform(0.3, 3.0, n_s)[:, None]
    demand = np.empty((n_s, n_days), dtype=np.float32)
    demand[~nb] = rng.poisson(mean[~nb])
    demand[nb] = rng.negative_binomial(k[nb], k[nb] / (k[nb] + mean[nb]))
    transfer = LeadTimeModel.from_pmfs({"t1": [0, 0.7, 0.3], "t2": [0, 0, 0.5, 0.5], "t3": [0, 0, 0.2, 0.4, 0.4]},
                                       rng.choice(["t1", "t2", "t3"], n_s))
    params = {f"SUP{j:02d}": (float(s), 4.0, float(m) / 4.0) for j, (s, m) in
              enumerate(zip(rng.uniform(1, 20, 20), rng.uniform(1, 15, 20), strict=True))}
    supplier = LeadTimeModel.shifted_gamma(params, rng.choice(list(params), n_prod), max_days=120)
    dc_level = np.bincount(parent, weights=level, minlength=n_prod)
    return {"demand": demand, "parent": parent, "transfer": transfer, "supplier": supplier, "level": level,
            "dc_level": dc_level, "pack": rng.choice([1.0, 4.0, 6.0, 12.0], n_prod),
            "cost": rng.uniform(0.5, 50.0, n_prod)}


def schedules(data: dict, name: str, n_plans: int, seed: int) -> tuple[PolicySchedule, PolicySchedule]:
    rng = np.random.default_rng(seed)
    mu_s, mu_d = data["level"], data["dc_level"]
    n_s, n_d = mu_s.size, mu_d.size
    plan_days = np.arange(n_plans) * 30
    wobble_s = rng.uniform(0.8, 1.2, (n_plans, n_s))
    wobble_d = rng.uniform(0.8, 1.2, (n_plans, n_d))
    lt_d = data["supplier"].mean_days()
    if name == "lean":
        s_s = np.ceil(mu_s * 6 * wobble_s)
        stores = PolicySchedule(plan_days, s_s, order_up_to=s_s + np.ceil(mu_s * 7), review_period=7,
                                review_offset=np.arange(n_s) % 7, name=name)
        s_d = np.ceil(mu_d * (lt_d + 2) * wobble_d)
        dc = PolicySchedule(plan_days, s_d, order_quantity=np.maximum(np.ceil(mu_d * 14), 1), moq=data["pack"],
                            pack_size=data["pack"], rule="s_nQ", name=name)
    else:
        s_s = np.ceil(mu_s * 5 * wobble_s)
        stores = PolicySchedule(plan_days, s_s, order_up_to=s_s + 1, name=name)
        s_d = np.ceil(mu_d * (lt_d + 10) * wobble_d)
        offset = None
        if name == "echelon":  # per plan and DC series: the sum over its stores of (s + S) / 2
            offset = np.stack([np.bincount(data["parent"], weights=s_s[k] + 0.5, minlength=n_d)
                               for k in range(n_plans)])
        dc = PolicySchedule(plan_days, s_d, order_up_to=s_d + np.ceil(mu_d * 7), moq=data["pack"],
                            pack_size=data["pack"], review_period=7, name=name, echelon_offset=offset)
    return stores, dc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=3_000)
    parser.add_argument("--stores", type=int, default=10)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--block", type=int, default=None, help="block_size (default: the simulator's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = synthetic(args.products, args.stores, args.days, args.seed)
    n_s, n_d = data["level"].size, data["dc_level"].size
    st_init = InitialState(np.ceil(data["level"] * 10))
    dc_init = InitialState(np.ceil(data["dc_level"] * (data["supplier"].mean_days() + 10)))
    st_costs = CostParams(np.repeat(data["cost"], args.stores))
    dc_costs = CostParams(data["cost"])
    kw = {} if args.block is None else {"block_size": args.block}
    out = {}
    total = 0.0
    for i, name in enumerate(("lean", "rich", "echelon")):
        stores, dc = schedules(data, name, int(np.ceil(args.days / 30)), i)
        t0 = time.perf_counter()
        res = simulate_network(data["demand"], data["parent"], stores, dc, data["transfer"], data["supplier"],
                               st_init, dc_init, store_costs=st_costs, dc_costs=dc_costs, rng_seed=args.seed, **kw)
        sec = time.perf_counter() - t0
        total += sec
        bw = res.bullwhip_pooled()
        out[name] = {"seconds": round(sec, 2),
                     "store_fill": round(float(res.stores.served.sum() / res.stores.demanded.sum()), 4),
                     "dc_same_day_fill": round(float(res.dc.served.sum() / res.dc.demanded.sum()), 4),
                     "bullwhip_store": round(bw["store"], 3), "bullwhip_dc": round(bw["dc"], 3)}
    print(json.dumps({"bench": "network_speed", "store_series": n_s, "dc_series": n_d, "days": args.days,
                      "block_size": args.block, "policies": out, "total_seconds": round(total, 2),
                      "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
