"""The nightly chain at scale, end to end: `stockturn run --job stockturn_nightly` for one new day of sales (issue
11, section 1: at most 3 minutes at M5 size).

    python bench/nightly_chain.py --landing <work>/landing --warehouse <work>/warehouse.duckdb [--nights 3]
    python bench/nightly_chain.py --landing <work>/landing --warehouse <work>/warehouse.duckdb --weekly 3 --nights 0

Works **in place** on a scratch copy (for example the one `bench/nightly_build.py --work` leaves behind): it writes
new days of sales lines into ``--landing`` and runs against ``--warehouse``. When the warehouse holds no forecast
yet, it first runs the weekly job (`stockturn run`, forecasting re-fitted) and reports its time. Then, night after
night, it writes one new day (``bench/incremental_load.py``'s night) and times the nightly job as a user runs it:
load, dbt, the policy re-planned from the stored forecast as of the new day, orders, the models on the plan and the
report, in one Dagster run. Prints each night's wall time and the median. ``--weekly N`` first times the weekly job
(`stockturn run`: forecasting re-fitted and backtested) N times, each after one new day. Not part of the test
suite.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))

from incremental_load import _night  # noqa: E402


def _has_forecast(warehouse: Path) -> bool:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return bool(con.execute("select count(*) from information_schema.tables where table_schema = 'ml' "
                                "and table_name = 'lead_time_demand_samples'").fetchall()[0][0])


def _run(args: list[str], log: Path) -> float:
    t0 = time.perf_counter()
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(args)}\n")
        out.flush()
        subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--landing", type=Path, required=True, help="a scratch landing folder (new days are written here)")
    p.add_argument("--warehouse", type=Path, required=True, help="a scratch warehouse built from --landing")
    p.add_argument("--nights", type=int, default=3)
    p.add_argument("--weekly", type=int, default=0, help="first time the weekly job this many times (one new day "
                   "before each)")
    args = p.parse_args()
    log = args.warehouse.parent / "nightly_chain.log"
    base = ["stockturn", "run", "--landing", str(args.landing), "--warehouse", str(args.warehouse)]
    path = None
    if not args.weekly and not _has_forecast(args.warehouse):
        seconds = _run(base, log)
        print(f"weekly run first (no stored forecast; load, dbt, forecasting re-fitted, policy, report): "
              f"{seconds:,.1f} s", flush=True)
    weeks = []
    for k in range(args.weekly):
        path, rows = _night(args.landing, path)
        weeks.append(_run(base, log))
        print(f"weekly run {k + 1}: {path.name} ({rows:,} lines): stockturn_pipeline {weeks[-1]:,.1f} s", flush=True)
    if weeks:
        print(f"median of {len(weeks)} weekly runs: {statistics.median(weeks):,.1f} s", flush=True)
    walls = []
    for k in range(args.nights):
        path, rows = _night(args.landing, path)
        seconds = _run([*base, "--job", "stockturn_nightly"], log)
        walls.append(seconds)
        print(f"night {k + 1}: {path.name} ({rows:,} lines): stockturn_nightly {seconds:,.1f} s", flush=True)
    if walls:
        print(f"median of {args.nights} nights: {statistics.median(walls):,.1f} s (step times: {log})")


if __name__ == "__main__":
    main()
