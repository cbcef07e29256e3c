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


def test_forecasting_draws_keep_their_precision_and_the_demand_before_arrival(tmp_path: Path) -> None:
    """Forecasting's float32 draws (and the demand before arrival cut from them) are stored as float32 and come
    back identical, so the four draw matrices take the room two of doubles took; float64 draws stay doubles."""
    from dataclasses import replace

    base = _ltd()
    s32 = base.samples.astype(np.float32)
    e32 = base.empirical_samples.astype(np.float32)
    ltd = replace(base, samples=s32, lead_samples=(s32 * np.float32(0.5)), empirical_samples=e32,
                  empirical_lead_samples=np.floor(e32 / 2))
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        write_tables_atomically(con, {"lead_time_demand_samples": ltd.to_samples_frame()})
        types = dict(con.sql("select column_name, data_type from information_schema.columns "
                             "where table_name = 'lead_time_demand_samples'").fetchall())
        back = LeadTimeDemand.from_samples_frame(con.sql("select * from ml.lead_time_demand_samples").pl())
    assert types["samples"].startswith("FLOAT[") and types["lead_samples"].startswith("FLOAT[")
    for name in ("samples", "lead_samples", "empirical_samples", "empirical_lead_samples"):
        got, want = getattr(back, name), getattr(ltd, name)
        assert got.dtype == np.float32 and np.array_equal(got, want), name
    assert np.array_equal(back.lead_only(), ltd.lead_only())
    assert back.to_frame().equals(ltd.to_frame())
