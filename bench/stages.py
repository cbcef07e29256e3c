"""Single pipeline stages for ``bench/run.py`` (each in its own process, so the peak memory is the stage's own).

    python bench/stages.py train --warehouse W     # run_forecasting at the marts' last day (default config)
    python bench/stages.py policy --warehouse W    # run_forecasting (replay config) then run_policy; prints both

Nothing is written to the warehouse. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("train", "policy"))
    parser.add_argument("--warehouse", required=True)
    args = parser.parse_args(argv)
    from ml.forecasting import ForecastConfig, run_forecasting
    from ml.policy import PolicyConfig, run_policy
    from ml.simulation.stockturn_planner import replay_forecast_config
    from ml.warehouse import connect

    out: dict[str, float | int] = {}
    with connect(args.warehouse, read_only=True) as con:
        t0 = time.perf_counter()
        cfg = ForecastConfig() if args.stage == "train" else replay_forecast_config()
        run = run_forecasting(con, cfg, progress=False)
        out["forecasting_seconds"] = round(time.perf_counter() - t0, 2)
        out["series"] = run.lead_time_demand.n_series
        if args.stage == "policy":
            t0 = time.perf_counter()
            pol = run_policy(con, run.lead_time_demand, run.demand_forecast, PolicyConfig())
            out["policy_seconds"] = round(time.perf_counter() - t0, 2)
            out["policy_rows"] = pol.inventory_policy.height
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
