"""Forecast of the DC (aggregate) series against the demo's true demand, by category, with and without the yearly
profile among the candidate models (issue 9, section 4).

    python bench/seasonal_forecast.py --root /tmp/demo        # <root>/warehouse.duckdb, <root>/landing_truth

At each as-of date (the last day of the months given) the replay forecasting configuration
(``ml.simulation.stockturn_planner.replay_forecast_config``) forecasts every series; the DC rows' next 28 days are
summed per category and compared with the true demand of those days summed over the stores. Prints WAPE and bias
per category, and the bias at each category's peak (the as-of date whose next 28 days have the most demand).
Not part of the test suite (about 20 s per forecasting run on the default demo).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.forecasting import run_forecasting  # noqa: E402
from ml.forecasting.config import ALL_MODELS  # noqa: E402
from ml.simulation.stockturn_planner import replay_forecast_config  # noqa: E402
from ml.warehouse import connect, read_frame  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, required=True, help="folder with warehouse.duckdb and landing_truth/")
    p.add_argument("--year", type=int, default=2025)
    p.add_argument("--months", default="1,3,4,5,6,8,10,11", help="as-of: the last day of these months")
    p.add_argument("--days", type=int, default=28, help="forecast window summed after each as-of date")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warehouse = args.root / "warehouse.duckdb"
    truth = pl.read_parquet(args.root / "landing_truth" / "true_demand.parquet")
    with connect(warehouse, read_only=True) as con:
        category = read_frame(con, "select product_id, category from marts.dim_product")
        dcs = read_frame(con, "select location_id from marts.dim_location where not is_selling_location")
    dates = [(dt.date(args.year + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1))
             for m in (int(x) for x in args.months.split(","))]
    without = [m for m in ALL_MODELS if m != "yearly_profile"]
    rows = []
    for label, models in (("without", without), ("with", list(ALL_MODELS))):
        cfg = replay_forecast_config({"models": models})
        for d in dates:
            end = d + dt.timedelta(days=args.days)
            with connect(warehouse, read_only=True) as con:
                run = run_forecasting(con, cfg, as_of=d, progress=False)
            fc = (run.demand_forecast.filter((pl.col("period_start") > d) & (pl.col("period_start") <= end))
                  .join(dcs, on="location_id").join(category, on="product_id")
                  .group_by("category").agg(pl.col("forecast").sum().alias("forecast")))
            actual = (truth.filter((pl.col("date") > d) & (pl.col("date") <= end)).join(category, on="product_id")
                      .group_by("category").agg(pl.col("demand").sum().alias("truth")))
            rows.append(fc.join(actual, on="category").with_columns(pl.lit(label).alias("models"),
                                                                    pl.lit(d).alias("as_of")))
            print(f"{label} yearly profile, as of {d}: done", flush=True)
    res = pl.concat(rows).with_columns((pl.col("forecast") / pl.col("truth") - 1).alias("bias"))
    summary = res.group_by("models", "category").agg(
        ((pl.col("forecast") - pl.col("truth")).abs().sum() / pl.col("truth").sum()).round(3).alias("wape"),
        (pl.col("forecast").sum() / pl.col("truth").sum() - 1).round(3).alias("bias"))
    peak = (res.sort("truth", descending=True).group_by("models", "category").first()
            .select("models", "category", "as_of", pl.col("bias").round(3).alias("bias_at_peak")))
    with pl.Config(tbl_rows=50, tbl_cols=12, tbl_width_chars=200):
        print(summary.join(peak, on=["models", "category"]).sort("category", "models"))


if __name__ == "__main__":
    main()
