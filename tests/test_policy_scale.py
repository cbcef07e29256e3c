"""Scale of ml.policy.run_policy: vectorised over series, so time grows with series x samples, not with Python loops.

The default test plans 6,000 series x 500 samples over 200 days of history; STOCKTURN_POLICY_SCALE=1 runs the full
target of 30,000 product-locations x 1,000 samples over 400 days (measured: see the module's final report).
"""

from __future__ import annotations

import os
import time
from datetime import date, timedelta

import polars as pl
import pytest

from ml.policy import run_policy
from ml.warehouse import connect
from tests.policy_helpers import build_scale_warehouse, synthetic_ltd

AS_OF = date(2025, 6, 30)
FULL = os.environ.get("STOCKTURN_POLICY_SCALE") == "1"


@pytest.mark.slow
@pytest.mark.parametrize(("n_products", "n_stores", "days", "n_samples", "budget_s"),
                         [(5000, 5, 400, 1000, 60.0)] if FULL else [(3000, 1, 200, 500, 30.0)])
def test_policy_scales(tmp_path, n_products: int, n_stores: int, days: int, n_samples: int, budget_s: float):
    with connect(tmp_path / "scale.duckdb") as con:
        keys = build_scale_warehouse(con, n_products=n_products, n_stores=n_stores, days=days, as_of=AS_OF)
        ltd = synthetic_ltd(keys, n_samples)
        forecast = keys.join(pl.DataFrame({"date": [AS_OF + timedelta(days=d) for d in range(1, 29)]}),
                             how="cross").with_columns(forecast_mean=pl.lit(1.0))
        t0 = time.perf_counter()
        run = run_policy(con, ltd, forecast, as_of=AS_OF)
        seconds = time.perf_counter() - t0
    print(f"run_policy: {keys.height:,} series x {n_samples:,} samples in {seconds:.1f} s; {run.summary['timings_s']}")
    assert run.inventory_policy.height == keys.height == (n_stores + 1) * n_products
    assert run.inventory_policy["reorder_point"].null_count() == 0
    assert seconds < budget_s
