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
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from ml.forecasting import ForecastConfig, run_forecasting  # noqa: E402
from ml.forecasting.lead_time import lead_times_at, read_lead_time_data  # noqa: E402
from ml.forecasting.metrics import ltd_pit_coverage  # noqa: E402
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
    rows = [[k, _fmt(v)] for k, v in cov.items() if not k.startswith("ltd_windows")]
    lines += ["", f"Calibrated coverage on held-out origins (LTD windows: {int(cov.get('ltd_windows', 0)):,}, of "
                  f"which {int(cov.get('ltd_windows_realised_lead_time', 0)):,} with the lead time that really "
                  "followed; ltd_coverage = ties split (randomised PIT), ltd_at_or_below = plain share; "
                  "coverage_XX = plain share of periods inside the interval, coverage_tie_XX = ties on a bound "
                  "split; ltd_level_ratio = realised / predicted lead-time demand, ltd_shortage_ratio_pXX = "
                  "realised / predicted demand beyond the pXX quantile, 1 = right)",
              _table(rows, ["metric", "empirical"])]
    seg_rows = backtest.filter(level="segment", split="holdout").filter(pl.col("origin").is_null())
    sel = seg_rows.filter(model="selected")
    if sel.height:
        wide = sel.pivot(on="metric", index="segment", values="value")
        naive_seg = seg_rows.filter(model="seasonal_naive").pivot(on="metric", index="segment", values="value")
        nv = {r["segment"]: r for r in naive_seg.iter_rows(named=True)}
        rows = []
        for r in wide.iter_rows(named=True):
            n = nv.get(r["segment"], {})
            rows.append([r["segment"], summary["selected_model_by_segment"].get(r["segment"], "-"),
                         str(summary["series_by_segment"].get(r["segment"], 0)), _fmt(r.get("mase")),
                         _fmt(n.get("mase")), _fmt(r.get("rmsse")), _fmt(n.get("rmsse")), _fmt(r.get("wape")),
                         _fmt(r.get("bias")), _fmt(r.get("coverage_80")), _fmt(r.get("coverage_95")),
                         _fmt(r.get("coverage_tie_80")), _fmt(r.get("coverage_tie_95")),
                         _fmt(r.get("ltd_coverage_p50")), _fmt(r.get("ltd_coverage_p80")),
                         _fmt(r.get("ltd_coverage_p95"))])
        lines += ["", "Per segment (held out; selected model vs seasonal naive; series = output series as of as_of)",
                  _table(rows, ["segment", "model", "series", "MASE", "naive", "RMSSE", "naive", "WAPE", "bias",
                                "cov80", "cov95", "tie80", "tie95", "ltd50", "ltd80", "ltd95"])]
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


LT_LEVELS = (0.5, 0.8, 0.9, 0.95)


def lead_time_check(con: duckdb.DuckDBPyConnection, config: ForecastConfig, step_days: int = 60,
                    window_days: int = 90, settle_days: int = 200) -> dict | None:
    """Out-of-sample check of the supplier lead-time distributions: at forecast dates every ``step_days`` (the
    last one ``settle_days`` before the data ends, so that the orders scored have arrived), the distribution known
    then (``lead_times_at``) vs the unit-weighted lead time of every purchase-order line ordered in the next
    ``window_days`` (``fct_purchase_order_lines.lead_time_weighted_days``). Returns the coverage of the predicted
    quantiles (tie-corrected and plain share at or below) and the mean CRPS in days; None without receipts."""
    from datetime import timedelta

    import polars as pl

    lines = con.sql("select product_id, order_date, lead_time_weighted_days as lt from marts.fct_purchase_order_lines "
                    "where lead_time_weighted_days is not null").pl()
    if lines.height == 0:
        return None
    end = lines["order_date"].max()
    data = read_lead_time_data(con, end + timedelta(days=10_000))
    day = lines["order_date"].min() + timedelta(days=180)
    pit, le, crps, n = np.zeros(len(LT_LEVELS)), np.zeros(len(LT_LEVELS)), 0.0, 0
    rng = np.random.default_rng(0)
    while day <= end - timedelta(days=settle_days):
        fut = lines.filter((pl.col("order_date") > day) & (pl.col("order_date") <= day + timedelta(days=window_days)))
        keys = fut.select("product_id").unique(maintain_order=True).with_columns(location_id=pl.lit(None, pl.String))
        if fut.height:
            fut = fut.join(keys.with_row_index("i").drop("location_id"), on="product_id")
            lt = lead_times_at(data, keys, config, day)
            i, y = fut["i"].to_numpy(), fut["lt"].to_numpy()
            samples = lt.sample(rng, 2000)[i]
            pit += ltd_pit_coverage(y, samples, LT_LEVELS).sum(axis=0)
            qs = np.stack([lt.quantile(q)[i] for q in LT_LEVELS], axis=1)
            le += (y[:, None] <= qs + 1e-9).sum(axis=0)
            crps += float((np.abs(samples - y[:, None]).mean(axis=1)
                           - 0.5 * np.abs(samples[:, :1000] - samples[:, 1000:]).mean(axis=1)).sum())
            n += len(y)
        day += timedelta(days=step_days)
    if not n:
        return None
    return {"lines": n, "crps_days": crps / n, **{f"coverage_p{round(q * 100)}": v / n for q, v in
                                                   zip(LT_LEVELS, pit, strict=True)},
            **{f"at_or_below_p{round(q * 100)}": v / n for q, v in zip(LT_LEVELS, le, strict=True)}}


def report_lead_time(check: dict | None) -> str:
    if not check:
        return "Lead-time check: no purchase-order receipts"
    rows = [[f"p{round(q * 100)}", _fmt(check[f"coverage_p{round(q * 100)}"]),
             _fmt(check[f"at_or_below_p{round(q * 100)}"])] for q in LT_LEVELS]
    return "\n".join([f"Supplier lead times out of sample ({check['lines']:,} order lines, CRPS "
                      f"{check['crps_days']:.2f} days)", _table(rows, ["quantile", "coverage", "at or below"])])


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
        t0, c0 = time.perf_counter(), time.process_time()
        run = run_forecasting(con, config, as_of=args.as_of, progress=not args.quiet)
        result["run_seconds"] = time.perf_counter() - t0
        result["run_cpu_seconds"] = time.process_time() - c0
        result["run_peak_gib"] = _peak_gib()
        result["summary"] = run.summary
        print(report_run(run.summary, run.forecast_backtest))
        print(f"run_forecasting: {result['run_seconds']:.1f} s wall, {result['run_cpu_seconds']:.1f} s CPU, peak RSS "
              f"so far {result['run_peak_gib']:.2f} GiB")
        result["lead_time_check"] = lead_time_check(con, config)
        print()
        print(report_lead_time(result["lead_time_check"]))
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
