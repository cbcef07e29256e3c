"""Re-planning without re-forecasting (issue 11): what the policy reads from forecasting survives the warehouse
exactly, so a policy computed from the stored run equals one computed in memory."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from ml.demand_distribution import LeadTimeDemand
from ml.warehouse import RunInfo, write_tables_atomically


def _ltd(n: int = 50, k: int = 300, empirical: bool = True) -> LeadTimeDemand:
    rng = np.random.default_rng(3)
    keys = pl.DataFrame({"product_id": [f"P{i:03d}-é" for i in range(n)], "location_id": ["DC 1", "S'2"] * (n // 2)})
    return LeadTimeDemand(
        keys, rng.gamma(0.3, 40.0, (n, k)), rng.random(n) * 3, rng.random(n) * 20, rng.random(n) * 30,
        np.full(n, 7.0), np.array(["receipts:product", "default"] * (n // 2), dtype=object),
        rng.gamma(0.3, 40.0, (n, 64)) if empirical else None)


def test_lead_time_demand_survives_the_warehouse_round_trip(tmp_path: Path) -> None:
    for empirical in (True, False):
        ltd = _ltd(empirical=empirical)
        stamp = RunInfo("r1", np.datetime64("2024-01-31").astype(object), "test")
        with duckdb.connect(str(tmp_path / f"w{empirical}.duckdb")) as con:
            write_tables_atomically(con, {"lead_time_demand_samples": stamp.stamp(ltd.to_samples_frame())})
            back = LeadTimeDemand.from_samples_frame(con.sql("select * from ml.lead_time_demand_samples").pl())
        assert back.keys.equals(ltd.keys)
        assert np.array_equal(back.samples, ltd.samples)  # bit for bit, in sample order
        for name in ("daily_demand_mean", "lead_time_mean_days", "lead_time_p90_days", "review_period_days"):
            assert np.array_equal(getattr(back, name), getattr(ltd, name)), name
        assert list(back.lead_time_source) == list(ltd.lead_time_source)
        if empirical:
            assert np.array_equal(back.empirical_samples, ltd.empirical_samples)
        else:
            assert back.empirical_samples is None
        assert back.to_frame().equals(ltd.to_frame())
