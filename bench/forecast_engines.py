"""Forecasting on one process against a Dask cluster of 1 and of 2 workers, on the same warehouse.

    python bench/forecast_engines.py --warehouse W [--engines local,dask:1,dask:2] [--work DIR]

Each engine runs ``run_forecasting`` (default ``ForecastConfig``, or ``--forecast-setting key=value``) in its own
process: its wall time, its stage times, the peak memory of the process and its Dask workers together (sampled
every 0.5 s), the hold-out accuracy of the selected forecast, and how far its forecast is from the first engine's
(total and WAPE between the two forecasts). Nothing is written to the warehouse. Not part of the test suite;
results go to docs/benchmarks.md ("Forecasting on Dask").
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _settings(pairs: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key.strip()] = ast.literal_eval(value.strip())
    return out


def run_one(warehouse: str, engine: str, settings: dict[str, object], out: Path) -> dict[str, object]:
    """One forecasting run in this process (the child side)."""
    import logging

    import polars as pl

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("distributed").setLevel(logging.WARNING)

    from ml.forecasting import ForecastConfig, run_forecasting
    from ml.forecasting.distributed import close_clients
    from ml.warehouse import connect

    name, _, workers = engine.partition(":")
    config = ForecastConfig(**settings)
    if name == "dask":
        config = config.replace(engine="dask", dask_workers=int(workers or 2))
    t0 = time.perf_counter()
    with connect(warehouse, read_only=True) as con:
        run = run_forecasting(con, config, progress=True)
    seconds = time.perf_counter() - t0
    close_clients()
    run.demand_forecast.select("product_id", "location_id", "period_start", "forecast").write_parquet(out)
    bt = run.forecast_backtest
    pooled = bt.filter(level="overall", split="holdout", model="selected").filter(pl.col("origin").is_null())
    metrics = dict(pooled.select("metric", "value").iter_rows())
    return {
        "engine": engine, "seconds": round(seconds, 1), "stages": run.summary["seconds"],
        "series": run.lead_time_demand.n_series,
        **{k: round(float(metrics[k]), 4) for k in ("mase", "rmsse", "wape", "bias", "coverage_80") if k in metrics},
    }


def _peak_tree_rss(proc: subprocess.Popen, stop: threading.Event, peak: list[float]) -> None:
    import psutil

    root = psutil.Process(proc.pid)
    while not stop.is_set():
        try:
            procs = [root, *root.children(recursive=True)]
            total = 0
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            peak[0] = max(peak[0], total / 2**30)
        except psutil.Error:
            return
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--engines", default="local,dask:1,dask:2")
    parser.add_argument("--work", default="bench_forecast_engines")
    parser.add_argument("--forecast-setting", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    settings = _settings(args.forecast_setting)
    if args.child:
        result = run_one(args.warehouse, args.child, settings, work / f"{args.child.replace(':', '_')}.parquet")
        (work / f"{args.child.replace(':', '_')}.json").write_text(json.dumps(result))
        return 0

    import numpy as np
    import polars as pl

    results = []
    for engine in args.engines.split(","):
        cmd = [sys.executable, __file__, "--warehouse", args.warehouse, "--work", str(work), "--child", engine]
        for pair in args.forecast_setting:
            cmd += ["--forecast-setting", pair]
        peak = [0.0]
        stop = threading.Event()
        proc = subprocess.Popen(cmd)
        watcher = threading.Thread(target=_peak_tree_rss, args=(proc, stop, peak), daemon=True)
        watcher.start()
        code = proc.wait()
        stop.set()
        watcher.join()
        if code:
            print(f"{engine}: failed with exit code {code}", file=sys.stderr)
            return code
        result = json.loads((work / f"{engine.replace(':', '_')}.json").read_text())
        result["peak_rss_gib"] = round(peak[0], 2)
        results.append(result)
    first = pl.read_parquet(work / f"{results[0]['engine'].replace(':', '_')}.parquet")
    keys = ["product_id", "location_id", "period_start"]
    for result in results:
        other = pl.read_parquet(work / f"{result['engine'].replace(':', '_')}.parquet")
        both = first.join(other, on=keys, suffix="_other")
        a, b = both["forecast"].to_numpy(), both["forecast_other"].to_numpy()
        result["total_vs_first"] = round(float(b.sum() / a.sum()), 4)
        result["wape_vs_first"] = round(float(np.abs(a - b).sum() / a.sum()), 4)
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
