"""The policy step alone at a warehouse's size, as ``stockturn replan`` runs it: forecasting once, then ``run_policy``
three times on the draws read back the way the replan reads them (``LeadTimeDemand.from_samples_frame``).

    python bench/policy_step.py --warehouse path/to/m5.duckdb [--forecast-days-before 7]

``--forecast-days-before N``: the nightly re-plan N days after the weekly forecast: forecasting as of the latest day
less N, the policy as of the latest day (``run_policy(forecast_as_of=...)``: the draws moved with the forecast's
level). Prints each run, the median and the process's peak RSS (forecasting included). Nothing is written to the
warehouse. Not part of the test suite; docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.demand_distribution import LeadTimeDemand  # noqa: E402
from ml.forecasting import ForecastConfig, run_forecasting  # noqa: E402
from ml.policy import PolicyConfig, run_policy  # noqa: E402
from ml.warehouse import connect  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--warehouse", required=True)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--forecast-days-before", type=int, default=0, metavar="N",
                   help="forecast N days before the latest day and re-plan as of the latest day (default 0)")
    a = p.parse_args()
    with connect(a.warehouse, read_only=True) as con:
        (latest,) = con.execute("select max(date_day) from marts.fct_inventory_daily").fetchall()[0]
        made = latest - timedelta(days=a.forecast_days_before)
        t = time.perf_counter()
        fr = run_forecasting(con, ForecastConfig(), as_of=made, progress=False)
        print(f"forecasting {time.perf_counter() - t:,.1f} s, {fr.lead_time_demand.n_series:,} series", flush=True)
        stored = LeadTimeDemand.from_samples_frame(fr.lead_time_demand.to_samples_frame())
        times = []
        for _ in range(a.runs):
            t = time.perf_counter()
            pr = run_policy(con, stored, fr.demand_forecast, PolicyConfig(), as_of=latest,
                            forecast_as_of=made if made < latest else None)
            times.append(time.perf_counter() - t)
            print(f"run_policy {times[-1]:.2f} s ({pr.inventory_policy.height:,} rows)", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"median {statistics.median(times):.2f} s; peak RSS {peak:.2f} GB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
