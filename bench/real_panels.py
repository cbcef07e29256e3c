"""Does the plan hold off the demo? Forecast quality, calibration, guards and the policy backtest on one warehouse.

    # Online Retail (real daily transactions, sales only)
    stockturn import-transactions --source ../shared/data/online_retail/uci_online_retail_transactions.parquet \\
        --out /tmp/or/landing
    stockturn build --landing /tmp/or/landing --warehouse /tmp/or/w.duckdb
    python bench/real_panels.py --warehouse /tmp/or/w.duckdb --days 120 --history-days 250

    # carparts (real intermittent monthly spare parts; lead time and unit cost are assumptions of the import)
    stockturn import-series --source ../shared/data/carparts/carparts_monthly.csv --out /tmp/cp/landing \\
        --lead-time-days 30 --unit-cost 1
    stockturn build --landing /tmp/cp/landing --warehouse /tmp/cp/w.duckdb
    python bench/real_panels.py --warehouse /tmp/cp/w.duckdb --horizon-days 182 --days 365 --history-days 730

Prints, with the settings a user would give (``--horizon-days``, ``--grain``):

1. hold-out accuracy of the selected forecast against the seasonal naive and Croston SBA (MASE, RMSSE, WAPE,
   bias), overall and per Syntetos-Boylan segment; the hold-out origins are the last ones, so with a 182-day
   horizon the last origin's window is the last 6 months;
2. calibration: coverage of the 80/95% per-period intervals (plain, and with ties on a bound split:
   ``metrics.interval_tie_coverage``), the scaled pinball loss of the quantiles, and the coverage of the
   lead-time-demand quantiles, overall and per segment; and the lead-time demand in units
   (``ltd_level_ratio``: realised over predicted; ``ltd_shortage_ratio_p90/p95``: realised demand beyond the
   predicted quantile over what the samples expected beyond it, the unit loss a fill rate is computed from);
3. the plan: safety stock and expected average inventory against the classical columns beside them, the guards'
   counts (``ml.policy.guards``, the collapsed-level guard), reorder points above 5x the classical one;
4. the policy backtest (``ml.simulation.backtest.run_backtest``) on the recorded sales: stockturn's policy as the
   pipeline writes it at each monthly planning date vs the classical baseline at matched fill on both measures.

Works on a copy of the warehouse (nothing is written to it). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import polars as pl  # noqa: E402

from ml.forecasting import ForecastConfig, run_forecasting  # noqa: E402
from ml.policy import PolicyConfig, run_policy  # noqa: E402
from ml.simulation.backtest import BacktestConfig, run_backtest  # noqa: E402

SEGMENTS = ("overall", "smooth", "erratic", "intermittent", "lumpy")


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _f(v: object, digits: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and v != v) else f"{float(v):.{digits}f}"


def _holdout(bt: pl.DataFrame) -> pl.DataFrame:
    rows = bt.filter((pl.col("split") == "holdout") & pl.col("origin").is_null() & (pl.col("level") != "series"))
    return rows.with_columns(pl.coalesce("segment", pl.lit("overall")).alias("seg"))


def accuracy_table(bt: pl.DataFrame) -> list[dict]:
    h = _holdout(bt)
    out = []
    for seg in SEGMENTS:
        row: dict = {"segment": seg}
        for model in ("selected", "seasonal_naive", "croston_sba"):
            m = {r["metric"]: r["value"] for r in h.filter((pl.col("seg") == seg) & (pl.col("model") == model))
                 .iter_rows(named=True)}
            for k in ("mase", "rmsse", "wape", "bias", "n_series"):
                row[f"{model}_{k}"] = m.get(k)
            if model == "selected":
                for k in ("coverage_80", "coverage_95", "coverage_tie_80", "coverage_tie_95", "spl",
                          "ltd_coverage_p80", "ltd_coverage_p90", "ltd_coverage_p95", "ltd_level_ratio",
                          "ltd_shortage_ratio_p90", "ltd_shortage_ratio_p95"):
                    row[k] = m.get(k)
        out.append(row)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--warehouse", required=True, type=Path)
    p.add_argument("--horizon-days", type=int, default=None)
    p.add_argument("--grain", default=None)
    p.add_argument("--days", type=int, default=365, help="backtest: days replayed")
    p.add_argument("--history-days", type=int, default=365, help="backtest: history before the replay")
    p.add_argument("--n-boot", type=int, default=500)
    p.add_argument("--skip-backtest", action="store_true")
    p.add_argument("--json", type=Path, default=None, help="append the figures as one JSON line here")
    p.add_argument("--forecast-setting", action="append", default=[], metavar="KEY=VALUE",
                   help="any ForecastConfig field (repeatable; a JSON value: true, 0.5, \"week\")")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    fchanges = {k: v for k, v in (("horizon_days", args.horizon_days), ("grain", args.grain)) if v is not None}
    for item in args.forecast_setting:
        key, _, value = item.partition("=")
        fchanges[key.strip()] = json.loads(value)
    if args.horizon_days and args.horizon_days > ForecastConfig().max_horizon_days:
        fchanges["max_horizon_days"] = args.horizon_days
    fcfg = ForecastConfig().replace(**fchanges)
    pcfg = PolicyConfig()
    result: dict = {"warehouse": str(args.warehouse), "forecast_settings": fchanges}
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "w.duckdb"
        shutil.copy(args.warehouse, copy)
        t0 = time.perf_counter()
        with duckdb.connect(str(copy)) as con:
            fr = run_forecasting(con, fcfg)
            result["forecast_seconds"] = round(time.perf_counter() - t0, 1)
            pr = run_policy(con, fr.lead_time_demand, fr.demand_forecast, pcfg)
        s = fr.summary
        result.update({k: s.get(k) for k in ("grain", "horizon_periods", "n_series", "selected_model_by_segment",
                                              "selected_vs_seasonal_naive", "guards", "warnings", "selection")})
        result["accuracy"] = accuracy_table(fr.forecast_backtest)
        pol = pr.inventory_policy
        ratio = pol["reorder_point"] / pol["classical_reorder_point"].clip(lower_bound=1)
        result["plan"] = {**pr.summary["inventory"], **pr.summary["guards"],
                          "reorder_point_above_5x_classical": int((ratio > 5).sum()),
                          "reorder_point_above_5x_without_exception": int(
                              ((ratio > 5) & ~pol["is_above_references"] & ~pol["is_safety_stock_guarded"]).sum()),
                          "series": pol.height}
        print(f"\n== {args.warehouse}: {s['n_series']:,} series, grain {s['grain']}, horizon {s['horizon_periods']} "
              f"periods, forecasting {result['forecast_seconds']:.0f} s")
        print("hold-out accuracy (selected vs seasonal naive vs Croston SBA) and calibration:")
        print("(cov = plain share of periods inside the interval; tie = ties on a bound split, "
              "metrics.interval_tie_coverage)")
        print(f"{'segment':<13}{'n':>7} {'MASE sel/sn/sba':>22} {'RMSSE sel/sn/sba':>22} {'bias sel':>9} "
              f"{'cov80':>6} {'cov95':>6} {'tie80':>6} {'tie95':>6} {'SPL':>6} {'ltd80':>6} {'ltd90':>6} "
              f"{'ltd95':>6} {'level':>6} {'sh90':>6} {'sh95':>6}")
        print("(level = realised / predicted lead-time demand; sh90 / sh95 = realised / predicted demand beyond the "
              "p90 / p95 quantile)")
        for r in result["accuracy"]:
            if r["selected_n_series"] is None:
                continue
            print(f"{r['segment']:<13}{int(r['selected_n_series']):>7} "
                  f"{_f(r['selected_mase'])}/{_f(r['seasonal_naive_mase'])}/{_f(r['croston_sba_mase']):>6} "
                  f"{_f(r['selected_rmsse'])}/{_f(r['seasonal_naive_rmsse'])}/{_f(r['croston_sba_rmsse']):>6} "
                  f"{_f(r['selected_bias']):>9} {_f(r['coverage_80']):>6} {_f(r['coverage_95']):>6} "
                  f"{_f(r['coverage_tie_80']):>6} {_f(r['coverage_tie_95']):>6} {_f(r['spl']):>6} "
                  f"{_f(r['ltd_coverage_p80']):>6} {_f(r['ltd_coverage_p90']):>6} {_f(r['ltd_coverage_p95']):>6} "
                  f"{_f(r['ltd_level_ratio']):>6} {_f(r['ltd_shortage_ratio_p90']):>6} "
                  f"{_f(r['ltd_shortage_ratio_p95']):>6}")
        pl_ = result["plan"]
        print(f"plan: safety stock {pl_['safety_stock_value']:,.0f} vs classical "
              f"{pl_['classical_safety_stock_value']:,.0f} (before the guards "
              f"{pl_['safety_stock_value_before_guard']:,.0f}); expected average inventory "
              f"{pl_['expected_avg_inventory_value']:,.0f} vs {pl_['classical_expected_avg_inventory_value']:,.0f}")
        print(f"guards: level {s['guards']['level_guard_series']:,} series; safety stock capped "
              f"{pl_['safety_stock_guard']:,}; reorder point above references {pl_['reorder_point_above_references']:,}"
              f"; reorder points > 5x classical {pl_['reorder_point_above_5x_classical']:,} "
              f"({pl_['reorder_point_above_5x_without_exception']} without an exception)")
        for w in s.get("warnings") or []:
            print("warning:", w)
        if not args.skip_backtest:
            t1 = time.perf_counter()
            bcfg = BacktestConfig(days=args.days, history_days=args.history_days, n_boot=args.n_boot,
                                  forecast=fchanges, cache_dir=Path(tmp) / "cache")
            res = run_backtest(copy, None, bcfg, policy_config=pcfg)
            b = res.summary
            m = res.match
            result["backtest"] = {
                k: b.get(k) for k in ("n_series", "replay_start", "replay_days", "planner_mode", "review_period_days",
                                      "target_fill_rate_volume", "target_fill_rate_item_avg", "stockturn_fill_volume",
                                      "stockturn_fill_item_avg", "matched_z", "binding", "inventory_reduction_pct",
                                      "ci_pct", "stockturn_inventory_value", "baseline_inventory_value")}
            result["backtest"].update({"baseline_fill_volume": m.baseline_fill_volume,
                                       "baseline_fill_item_avg": m.baseline_fill_item,
                                       "z_volume": m.param_volume, "z_item": m.param_item,
                                       "inventory_at_z_volume": m.inventory_at_param_volume,
                                       "inventory_at_z_item": m.inventory_at_param_item,
                                       "seconds": round(time.perf_counter() - t1, 1)})
            bb = result["backtest"]
            print(f"backtest ({bb['planner_mode']}, review {bb['review_period_days']} d, {bb['n_series']:,} series x "
                  f"{bb['replay_days']} days from {bb['replay_start']}): stockturn fill "
                  f"{_f(bb['stockturn_fill_volume'])} / {_f(bb['stockturn_fill_item_avg'])} (promise "
                  f"{_f(bb['target_fill_rate_volume'])} / "
                  f"{_f(bb['target_fill_rate_item_avg'])}) holding {bb['stockturn_inventory_value']:,.0f}; classical "
                  f"matched on both at z = {_f(bb['matched_z'], 2)} ({bb['binding']} binds): fill "
                  f"{_f(bb['baseline_fill_volume'])} / {_f(bb['baseline_fill_item_avg'])} holding "
                  f"{bb['baseline_inventory_value']:,.0f}; stockturn holds {-bb['inventory_reduction_pct']:+.1f}% "
                  f"(95% CI {-bb['ci_pct'][1]:+.1f}% .. {-bb['ci_pct'][0]:+.1f}%)")
            result["backtest"]["promise"] = b.get("promise") or []
            print("promise vs delivered by segment (stockturn; volume / item average):")
            for row in result["backtest"]["promise"]:
                print(f"  {row['segment']:<13} n={row['n_series']:>6,}  promised {row['promised_volume']:.3f} / "
                      f"{row['promised_item_avg']:.3f}, delivered {row['delivered_volume']:.3f} / "
                      f"{row['delivered_item_avg']:.3f}; {row['units_short']:,.0f} of {row['units_demanded']:,.0f} "
                      "units short")
    result["peak_rss_gib"] = round(_peak_gib(), 2)
    if args.json:
        with args.json.open("a") as fh:
            fh.write(json.dumps(result, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
