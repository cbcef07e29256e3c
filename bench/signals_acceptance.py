"""External signals against the demo's true demand, by category: the shipped (gated) forecast with signals and
the forecast without any, at held-out origins (issue 12, section 1 acceptance).

    python bench/signals_acceptance.py --root /tmp/demo    # <root>/warehouse.duckdb, <root>/landing_truth

1. The gating decision is made once, by ``run_forecasting`` as of ``--decide-as-of`` (default 2025-02-28): its
   backtest origins all lie before the evaluation origins, so the evaluation is held out.
2. At every evaluation origin (every ``--step`` days from ``--first`` to ``--last``) LightGBM is fitted on the
   history before it (signals as known at the origin) and forecasts twice: with the signals the gate kept for
   each category, and with every signal and event blanked.
3. Both are scored on the store series against the true demand of the next ``--days`` days (uncensored, from
   the truth folder that no pipeline step reads; ``--target expected_demand``: its expected value, without the
   sampling noise): RMSSE per series (the scale is the in-sample RMS of one-step
   differences of recorded sales) and bias per category, with a paired 95% bootstrap interval of the RMSSE
   difference over series x origins.

Not part of the test suite (a few minutes on the default demo).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.forecasting import (  # noqa: E402
    ForecastConfig,
    gbm,  # noqa: E402
    run_forecasting,
)
from ml.forecasting import backtest as bt  # noqa: E402
from ml.forecasting import signals as sig  # noqa: E402
from ml.forecasting.metrics import insample_scales  # noqa: E402
from ml.forecasting.panel import load_panel, mart_as_of  # noqa: E402
from ml.warehouse import connect  # noqa: E402


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, required=True, help="folder with warehouse.duckdb and landing_truth/")
    p.add_argument("--decide-as-of", type=_date, default=dt.date(2025, 2, 28))
    p.add_argument("--first", type=_date, default=dt.date(2025, 3, 14))
    p.add_argument("--last", type=_date, default=dt.date(2025, 11, 14))
    p.add_argument("--step", type=int, default=14, help="days between evaluation origins")
    p.add_argument("--days", default="7,28", help="windows after each origin to score")
    p.add_argument("--target", choices=("demand", "expected_demand"), default="demand",
                   help="true demand drawn (default) or its expected value (no sampling noise)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    windows = [int(x) for x in args.days.split(",")]
    config = ForecastConfig()
    with connect(args.root / "warehouse.duckdb", read_only=True) as con:
        decision = run_forecasting(con, config, as_of=args.decide_as_of, progress=False)
        panel = load_panel(con, config, mart_as_of(con))
    gating = sig.Gating([sig.DecisionRow(**r) for r in decision.summary["signal_gating"]])
    kept = {g: sorted(gating.kept(g)) for g in sorted({r.group for r in gating.rows})}
    print(f"gating decided as of {args.decide_as_of}: " + "; ".join(f"{g}: {', '.join(c) or 'none'}"
                                                                     for g, c in kept.items()))
    categories = panel.keys["category"].to_numpy().astype(str)
    shipped = gating.use_masks(categories)
    blank = {g: np.zeros(panel.n_series, bool) for g in shipped}
    truth = pl.read_parquet(args.root / "landing_truth" / "true_demand.parquet",
                            columns=["date", "product_id", "location_id", args.target])
    base = panel.keys[: panel.n_base].with_row_index("i").select("i", "product_id", "location_id")
    horizon = max(windows)
    rows = []
    origin = args.first
    while origin <= args.last:
        cutoff = int(np.searchsorted(panel.period_start, np.datetime64(origin), side="right"))
        fit = bt.fit_cutoff(panel, config.replace(models=("seasonal_naive", "lightgbm")), cutoff, horizon,
                            transform="scale", n_trees=config.lgbm_backtest_trees)
        with_sig, without = gbm.predict(fit.models["scale"], panel, config, [fit.history] * 2, horizon,
                                        uses=[shipped, blank])
        days = [origin + dt.timedelta(days=k) for k in range(1, horizon + 1)]
        t = truth.filter(pl.col("date").is_in(days)).join(base, on=["product_id", "location_id"])
        actual = np.full((panel.n_base, horizon), np.nan)
        actual[t["i"].to_numpy(), [(d - origin).days - 1 for d in t["date"].to_list()]] = t[args.target].to_numpy()
        hist = panel.sales[:, :cutoff]
        observed = ~np.isnan(hist) & ~panel.censored[:, :cutoff]
        _, rms_scale = insample_scales(np.where(observed, hist, np.nan), observed, 1)
        for w in windows:
            a = actual[:, :w]
            ok = ~np.isnan(a).any(axis=1) & fit.active[: panel.n_base] & (rms_scale > 0)
            for name, fc in (("with", with_sig), ("without", without)):
                f = fc[: panel.n_base, :w]
                rmse = np.sqrt(np.nanmean((f - a) ** 2, axis=1))
                rows.append(pl.DataFrame({
                    "origin": origin, "window": w, "variant": name, "category": categories[: panel.n_base][ok],
                    "series": np.flatnonzero(ok), "rmsse": (rmse / rms_scale)[ok],
                    "forecast": f[ok].sum(axis=1), "actual": a[ok].sum(axis=1),
                }))
        print(f"  origin {origin}: fitted and scored", flush=True)
        origin += dt.timedelta(days=args.step)
    scores = pl.concat(rows)
    wide = scores.pivot(on="variant", index=["origin", "window", "category", "series"],
                        values=["rmsse", "forecast", "actual"])
    rng = np.random.default_rng(0)
    print("\ncategory       window  RMSSE with  without  change (95% CI)          bias with  without   signals kept")
    for (w, cat), g in sorted(wide.group_by(["window", "category"]), key=lambda x: x[0]):
        d = (g["rmsse_with"] - g["rmsse_without"]).to_numpy()
        base_mean = g["rmsse_without"].mean()
        idx = rng.integers(0, len(d), (4000, len(d)))
        lo, hi = np.quantile(d[idx].mean(axis=1) / base_mean, [0.025, 0.975])
        bias_w = g["forecast_with"].sum() / g["actual_with"].sum() - 1
        bias_wo = g["forecast_without"].sum() / g["actual_without"].sum() - 1
        used = ", ".join(k.split(":", 1)[1] for k, c in kept.items() if cat in c) or "-"
        print(f"{cat:<14} {w:>6}  {g['rmsse_with'].mean():>10.4f} {base_mean:>8.4f}  "
              f"{d.mean() / base_mean:>+7.2%} ({lo:+.2%} .. {hi:+.2%})  {bias_w:>+9.1%} {bias_wo:>+8.1%}   {used}")


if __name__ == "__main__":
    main()
