"""Forecast quality and cost on one warehouse: ``run_forecasting`` and, for the demo company, the censoring
correction measured against the hidden true demand (``evaluate_against_truth``).

    python bench/forecast_quality.py --warehouse /tmp/fc/w.duckdb --truth /tmp/fc/landing_truth
    python bench/forecast_quality.py --warehouse /tmp/fc/or.duckdb --json /tmp/fc/or_quality.json
    /usr/bin/time -v python bench/forecast_quality.py --warehouse /tmp/fc/m5.duckdb --skip-truth

Prints: held-out accuracy of every model and of the per-segment selection vs seasonal naive (MASE, RMSSE, WAPE,
bias), calibrated coverage (80/95% per-period intervals, lead-time-demand quantiles), the model chosen per
segment, per-stage wall time and peak memory; with ``--truth``: accuracy against true demand per censoring
mode (how much the correction helps). Opens the warehouse read-only. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import polars as pl  # noqa: E402

from ml.forecasting import ForecastConfig, run_forecasting  # noqa: E402
from ml.forecasting.truth import evaluate_against_truth  # noqa: E402


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    line = "  ".join(f"{h:<{w}}" for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(f"{x:<{w}}" for x, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def _fmt(v: float | None, digits: int = 3) -> str:
    return "-" if v is None or v != v else f"{v:.{digits}f}"


def report_run(summary: dict, backtest: pl.DataFrame) -> str:
    lines = [f"as of {summary['as_of']}, grain {summary['grain']} (native {summary['native_grain']}), "
             f"{summary['n_series']:,} series ({summary['n_aggregate_series']:,} aggregates), horizon "
             f"{summary['horizon_periods']} periods, origins {', '.join(summary['origins'])} "
             f"(held out: {', '.join(summary['holdout_origins'])}), backtest on {summary.get('backtest_series')} "
             f"series, lightgbm transform {summary['lightgbm_transform']}, censoring {summary['censoring']}"]
    acc = summary["holdout_accuracy"]
    naive = acc["seasonal_naive"]
    rows = []
    for model, m in acc.items():
        rows.append([model, _fmt(m["mase"]), _fmt(m["rmsse"]), _fmt(m["wape"]), _fmt(m["bias"], 3),
                     _fmt(m["mase"] / naive["mase"]), _fmt(m["rmsse"] / naive["rmsse"]),
                     _fmt(m["wape"] / naive["wape"])])
    lines += ["", "Held-out accuracy (pooled over the held-out origins)",
              _table(rows, ["model", "MASE", "RMSSE", "WAPE", "bias", "MASE/naive", "RMSSE/naive", "WAPE/naive"])]
    cov = summary["holdout_coverage"]
    rows = [[k, _fmt(v)] for k, v in cov.items() if k != "ltd_windows"]
    lines += ["", f"Calibrated coverage on held-out origins (LTD windows: {int(cov.get('ltd_windows', 0)):,})",
              _table(rows, ["metric", "empirical"])]
    seg = backtest.filter(level="segment", split="holdout", model="selected").filter(pl.col("origin").is_null())
    if seg.height:
        wide = seg.pivot(on="metric", index="segment", values="value")
        rows = [[r["segment"], summary["selected_model_by_segment"].get(r["segment"], "-"),
                 str(summary["series_by_segment"].get(r["segment"], 0)), _fmt(r.get("rmsse")),
                 _fmt(r.get("wape")), _fmt(r.get("coverage_80")), _fmt(r.get("coverage_95")),
                 _fmt(r.get("ltd_coverage_p80")), _fmt(r.get("ltd_coverage_p95"))] for r in wide.iter_rows(named=True)]
        lines += ["", "Per segment (held out, selected model)",
                  _table(rows, ["segment", "model", "series", "RMSSE", "WAPE", "cov80", "cov95", "ltd80", "ltd95"])]
    lines += ["", "Stage wall times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in summary["seconds"].items())
              + f"; total {summary['seconds_total']:.1f}"]
    return "\n".join(lines)


def report_truth(df: pl.DataFrame) -> str:
    sel = df.filter(model="selected", target="demand")
    rows = []
    for (mode, series), g in sel.group_by("censoring", "series", maintain_order=True):
        m = dict(g.select("metric", "value").iter_rows())
        rows.append([mode, series, _fmt(m["wape"]), _fmt(m["bias"]), _fmt(m["rmsse"]), _fmt(m["mase"])])
    rows.sort(key=lambda r: (r[1], r[0]))
    exp = df.filter(model="selected", target="expected_demand", series="all")
    rows2 = []
    for (mode,), g in exp.group_by("censoring", maintain_order=True):
        m = dict(g.select("metric", "value").iter_rows())
        rows2.append([mode, _fmt(m["wape"]), _fmt(m["bias"]), _fmt(m["rmsse"])])
    return "\n".join([
        "Accuracy of the held-out forecasts against TRUE demand (stock-out days included), per censoring mode",
        _table(rows, ["censoring", "series", "WAPE", "bias", "RMSSE", "MASE"]), "",
        "Against expected demand (the noise-free mean), all series",
        _table(rows2, ["censoring", "WAPE", "bias", "RMSSE"]),
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", required=True, type=Path)
    parser.add_argument("--truth", type=Path, help="demo truth folder (<landing>_truth): also evaluate censoring")
    parser.add_argument("--config", default="{}", help="ForecastConfig overrides as JSON")
    parser.add_argument("--as-of", type=date.fromisoformat)
    parser.add_argument("--json", type=Path, help="write the summary (and truth table) as JSON here")
    parser.add_argument("--skip-truth", action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)-5s %(message)s", datefmt="%H:%M:%S")
    config = ForecastConfig.from_dict(json.loads(args.config))
    result: dict = {"warehouse": str(args.warehouse), "config": config.to_dict()}
    with duckdb.connect(str(args.warehouse), read_only=True) as con:
        t0 = time.perf_counter()
        run = run_forecasting(con, config, as_of=args.as_of, progress=not args.quiet)
        result["run_seconds"] = time.perf_counter() - t0
        result["run_peak_gib"] = _peak_gib()
        result["summary"] = run.summary
        print(report_run(run.summary, run.forecast_backtest))
        print(f"run_forecasting: {result['run_seconds']:.1f} s wall, peak RSS so far {result['run_peak_gib']:.2f} GiB")
        if args.truth and not args.skip_truth:
            t0 = time.perf_counter()
            truth = evaluate_against_truth(con, args.truth, config, as_of=args.as_of, progress=not args.quiet)
            result["truth_seconds"] = time.perf_counter() - t0
            result["truth"] = truth.to_dicts()
            print()
            print(report_truth(truth))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
