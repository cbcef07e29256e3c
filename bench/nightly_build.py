"""The nightly build at scale: the incremental load and `dbt build` for one new day of sales, against a full
rebuild of the mart (issue 11, section 1).

    python bench/nightly_build.py --landing /data/m5/landing --warehouse /data/m5/warehouse.duckdb \
        --work /tmp/nightly [--nights 3] [--full] [--transfers] [--ledger] [--night-threads 2]

Copies the landing folder and the warehouse (already built by `stockturn build`) into ``--work``. ``--full`` first
times `stockturn build --full-refresh`'s dbt part (every model from scratch, the landing unchanged). Then, night
after night, it writes one new day of sales lines (``bench/incremental_load.py``'s night: the last day's lines
moved one day on; with ``--transfers`` and ``--ledger`` also the transfers and the COGS postings of the latest
day, moved one day on, as a nightly ERP export lands them) and times `build_warehouse` on it: the incremental
load, then `dbt build`, in which the daily stock positions model adds only what changed. Prints each night's load,
dbt and its slowest models, and the medians. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from incremental_load import _ledger_night, _night, _transfer_night  # noqa: E402

from orchestration.dbt_cli import run_dbt  # noqa: E402
from orchestration.warehouse_build import ML_DOWNSTREAM_SELECTOR, build_warehouse  # noqa: E402


def _slowest_models(target_path: Path | None, n: int = 6) -> str:
    if target_path is None or not (target_path / "run_results.json").exists():
        return "(no run_results.json)"
    results = json.loads((target_path / "run_results.json").read_text())["results"]
    models = sorted((r for r in results if r["unique_id"].startswith("model.")),
                    key=lambda r: r["execution_time"], reverse=True)[:n]
    tests = sum(r["execution_time"] for r in results if r["unique_id"].startswith("test."))
    return ", ".join(f"{r['unique_id'].split('.')[-1]} {r['execution_time']:,.1f} s" for r in models) + (
        f"; data tests {tests:,.1f} s in all")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--landing", type=Path, required=True)
    p.add_argument("--warehouse", type=Path, required=True, help="a warehouse built from --landing")
    p.add_argument("--work", type=Path, required=True, help="scratch folder (the landing and warehouse copies)")
    p.add_argument("--nights", type=int, default=3)
    p.add_argument("--full", action="store_true", help="also time a full rebuild of every dbt model first")
    p.add_argument("--transfers", action="store_true",
                   help="each night also lands the transfers requested on the latest request day, moved one day on")
    p.add_argument("--night-threads", type=int, default=None,
                   help="dbt threads for the nights only (STOCKTURN_DBT_THREADS; the first build keeps the default)")
    p.add_argument("--ledger", action="store_true",
                   help="each night also lands the COGS postings of the latest posting day, moved one day on")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    landing = args.work / "landing"
    shutil.copytree(args.landing, landing)
    warehouse = args.work / "warehouse.duckdb"
    shutil.copy(args.warehouse, warehouse)
    # the first build records the copy's checksums and brings every incremental table to this version
    first = build_warehouse(landing, warehouse, progress=False)
    print(f"first build (brings the copy up to date): load {first.load.elapsed_seconds:,.1f} s, "
          f"dbt {first.dbt.seconds:,.1f} s", flush=True)
    if args.full:
        full = run_dbt(["build", "--exclude", ML_DOWNSTREAM_SELECTOR, "--full-refresh"], warehouse)
        print(f"full rebuild (dbt build --full-refresh): {full.seconds:,.1f} s; {_slowest_models(full.target_path)}",
              flush=True)
    if args.night_threads is not None:
        os.environ["STOCKTURN_DBT_THREADS"] = str(args.night_threads)
    loads, dbts, totals = [], [], []
    path = None
    for k in range(args.nights):
        path, rows = _night(landing, path)
        transfers = ""
        if args.transfers:
            transfer_path, transfer_rows = _transfer_night(landing)
            transfers = f" and {transfer_path.name} ({transfer_rows:,} transfers)"
        if args.ledger:
            ledger_path, ledger_rows = _ledger_night(landing)
            transfers += f" and {ledger_path.name} ({ledger_rows:,} postings)"
        t0 = time.perf_counter()
        result = build_warehouse(landing, warehouse, progress=False)
        total = time.perf_counter() - t0
        loads.append(result.load.elapsed_seconds)
        dbts.append(result.dbt.seconds)
        totals.append(total)
        print(f"night {k + 1}: {path.name} ({rows:,} lines){transfers}: load {result.load.elapsed_seconds:,.1f} s "
              f"+ dbt {result.dbt.seconds:,.1f} s = {total:,.1f} s; {_slowest_models(result.dbt.target_path)}",
              flush=True)
    print(f"median of {args.nights} nights: load {statistics.median(loads):,.1f} s, "
          f"dbt {statistics.median(dbts):,.1f} s, load + dbt {statistics.median(totals):,.1f} s")


if __name__ == "__main__":
    main()
