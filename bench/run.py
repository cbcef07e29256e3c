"""Benchmark harness: time each pipeline stage at a named data size, with wall time and peak memory.

Every stage runs as its own process under ``/usr/bin/time -v`` (install Debian's ``time`` package), so the peak
resident memory is the stage's own. Results (one JSON line per run) are appended to ``bench/results.jsonl``;
``python bench/run.py --summary`` prints the median of the recorded runs per size and stage as a Markdown table
for docs/benchmarks.md.

    python bench/run.py --size demo --stages generate,build --repeat 3
    python bench/run.py --size m5 --stages generate,build --repeat 1 --workdir /work/bench_data
    python bench/run.py --size demo --stages train,policy,simulate,backtest
    python bench/run.py --summary

Benchmarks are not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.jsonl"
BIN = Path(sys.executable).parent

SIZES: dict[str, dict[str, int]] = {
    "demo": {"skus": 150, "stores": 5, "days": 1095},
    "m5": {"skus": 3049, "stores": 10, "days": 1941},  # 30,490 store x product series, as in the M5 competition
}


def stage_commands(size: str, workdir: Path, fmt: str) -> dict[str, list[str]]:
    params = SIZES[size]
    landing = workdir / size / "landing"
    warehouse = workdir / size / "warehouse.duckdb"
    stockturn = str(BIN / "stockturn")
    return {
        "generate": [
            stockturn, "generate", "--out", str(landing), "--skus", str(params["skus"]), "--stores",
            str(params["stores"]), "--days", str(params["days"]), "--format", fmt, "--quiet",
        ],
        "build": [stockturn, "build", "--landing", str(landing), "--warehouse", str(warehouse), "--quiet"],
        "run": [stockturn, "run", "--landing", str(landing), "--warehouse", str(warehouse)],
        "report": [stockturn, "report", "--warehouse", str(warehouse), "--out", str(workdir / size / "report")],
        # forecasting alone (default config) and forecasting (replay config) + policy, nothing written
        "train": [sys.executable, str(ROOT / "bench" / "stages.py"), "train", "--warehouse", str(warehouse)],
        "policy": [sys.executable, str(ROOT / "bench" / "stages.py"), "policy", "--warehouse", str(warehouse)],
        # the simulator alone: 30,000 product-locations x 365 days x 2 policies (synthetic, size-independent)
        "simulate": [sys.executable, str(ROOT / "bench" / "simulate_speed.py")],
        # the policy backtest (issue 5) on the generated data; forecasts cached beside the warehouse
        "backtest": [stockturn, "backtest", "--warehouse", str(warehouse), "--landing", str(landing)],
    }


_RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")
_WALL = re.compile(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)")


def _seconds(clock: str) -> float:
    parts = [float(p) for p in clock.split(":")]
    return sum(p * 60**i for i, p in enumerate(reversed(parts)))


def run_stage(name: str, cmd: list[str], log_dir: Path) -> dict:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    t0 = time.perf_counter()
    with log_path.open("w") as log:
        proc = subprocess.run(["/usr/bin/time", "-v", *cmd], stdout=log, stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - t0
    text = log_path.read_text()
    rss = _RSS.findall(text)
    clock = _WALL.findall(text)
    if proc.returncode != 0:
        tail = "\n".join(text.splitlines()[-30:])
        raise SystemExit(f"stage {name} failed (exit {proc.returncode}); log {log_path}:\n{tail}")
    return {
        "stage": name,
        "wall_seconds": _seconds(clock[-1]) if clock else wall,
        "peak_rss_gib": int(rss[-1]) / 1024**2 if rss else None,
        "log": str(log_path),
    }


def summary() -> str:
    if not RESULTS.exists():
        return "no results recorded yet"
    runs: dict[tuple[str, str, str], list[dict]] = {}
    for line in RESULTS.read_text().splitlines():
        rec = json.loads(line)
        runs.setdefault((rec["size"], rec["format"], rec["stage"]), []).append(rec)
    out = ["| size | format | stage | runs | median wall | median peak RSS |", "| --- | --- | --- | --- | --- | --- |"]
    for (size, fmt, stage), recs in sorted(runs.items()):
        wall = statistics.median(r["wall_seconds"] for r in recs)
        rss = statistics.median(r["peak_rss_gib"] for r in recs)
        out.append(f"| {size} | {fmt} | {stage} | {len(recs)} | {wall:,.1f} s | {rss:,.2f} GiB |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="demo")
    parser.add_argument("--stages", default="generate,build", help="comma-separated, in order")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--workdir", default=str(ROOT / "data" / "bench"))
    parser.add_argument("--summary", action="store_true", help="print the median table and exit")
    args = parser.parse_args(argv)
    if args.summary:
        print(summary())
        return 0
    if not Path("/usr/bin/time").exists():
        raise SystemExit("/usr/bin/time is missing: apt-get install -y time")
    workdir = Path(args.workdir)
    commands = stage_commands(args.size, workdir, args.format)
    for repeat in range(args.repeat):
        for stage in args.stages.split(","):
            rec = run_stage(stage, commands[stage], workdir / args.size / "logs" / f"run{repeat}")
            rec.update(
                size=args.size,
                format=args.format,
                params=SIZES[args.size],
                repeat=repeat,
                recorded_at=datetime.now(UTC).isoformat(timespec="seconds"),
                machine=f"{platform.node()} {os.cpu_count()} cpu",
            )
            print(f"{args.size} {stage} run {repeat}: {rec['wall_seconds']:,.1f} s, {rec['peak_rss_gib']:.2f} GiB")
            with RESULTS.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
    print(summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
