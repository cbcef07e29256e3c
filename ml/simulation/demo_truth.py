"""Simulation inputs from the demo company's hidden ground truth (for evaluation only).

The acceptance study replays the demo company's TRUE demand (uncensored, so lost sales count) per store x
product. This module assembles :class:`~ml.simulation.scenarios.SimulationInputs` from the truth folder
(``<landing>_truth``: ``true_demand.parquet``, ``lead_times.parquet``, ``product_params.parquet``) and the
landing master data (supplier, MOQ and pack size per product). Nothing in stockturn's pipeline may read the
truth; only evaluation code (the simulator study, tests) calls this.

Choices, stated so the study can change them:

- demand to replay: ``true_demand.demand`` on days ``start .. start + days - 1``;
- history for planners: ``true_demand.sold`` (recorded, censored sales: what the company saw) on the
  ``history_days`` days before ``start``;
- opening stock: ``physical_on_hand_close`` of the day before ``start`` (0 if ``start`` is the first day); no
  opening pipeline;
- lead times: each product's supplier's true distribution (shifted gamma, rounded, >= 1 day), i.e. every store
  x product series is replenished as if straight from its supplier (single echelon; the demo's DC is not
  simulated);
- unit cost and price: ``unit_cost_initial`` / ``list_price_initial`` of ``product_params``;
- keys: product_id, location_id, category, supplier_id, supplier_moq, supplier_pack_size (the supplier's
  terms from ``master/product_suppliers``, primary supplier; use them or not in the policies' MOQ/pack).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from ml.simulation.engine import CostParams, InitialState, LeadTimeModel
from ml.simulation.scenarios import SimulationInputs

__all__ = ["demo_inputs"]


def _read_master(landing: Path, entity: str) -> pl.DataFrame:
    for ext, reader in (("csv", pl.read_csv), ("parquet", pl.read_parquet)):
        path = landing / "master" / f"{entity}.{ext}"
        if path.exists():
            return reader(path, **({"infer_schema": False} if ext == "csv" else {}))
    raise FileNotFoundError(f"no master/{entity}.csv or .parquet under {landing}")


def demo_inputs(
    truth_dir: Path | str,
    landing_dir: Path | str,
    *,
    start: date,
    days: int,
    history_days: int = 365,
    holding_rate: float = 0.25,
    ordering_cost: float = 0.0,
) -> SimulationInputs:
    """Simulation inputs for every store x product of the demo over ``start .. start + days - 1``."""
    truth, landing = Path(truth_dir), Path(landing_dir)
    end = start + timedelta(days=days)
    first = start - timedelta(days=history_days)
    panel = (
        pl.scan_parquet(truth / "true_demand.parquet")
        .filter((pl.col("date") >= first - timedelta(days=1)) & (pl.col("date") < end))
        .select("date", "product_id", "location_id", "demand", "sold", "physical_on_hand_close")
        .sort("product_id", "location_id", "date")
        .collect()
    )
    dates = panel["date"].unique().sort()
    if dates.is_empty() or dates.min() > first or dates.max() < end - timedelta(days=1):
        raise ValueError(f"truth covers {dates.min()} .. {dates.max()}, need {first} .. {end - timedelta(days=1)}")
    keys = panel.select("product_id", "location_id").unique(maintain_order=True)
    n, n_dates = keys.height, dates.len()
    if panel.height != n * n_dates:
        raise ValueError("true_demand is not a complete panel of store x product x day")

    def matrix(col: str) -> np.ndarray:
        return panel[col].to_numpy().reshape(n, n_dates).astype(np.float64)

    day_index = {d: i for i, d in enumerate(dates.to_list())}
    i_first, i_start = day_index[first], day_index[start]
    demand = matrix("demand")[:, i_start:]
    history = matrix("sold")[:, i_first:i_start]
    has_before = (start - timedelta(days=1)) in day_index
    on_hand = matrix("physical_on_hand_close")[:, i_start - 1] if has_before else np.zeros(n)

    params = pl.read_parquet(truth / "product_params.parquet").select(
        "product_id", "category", "unit_cost_initial", "list_price_initial")
    products = _read_master(landing, "products").select("product_id", "supplier_id")
    terms = (_read_master(landing, "product_suppliers")
             .filter(pl.col("is_primary").str.to_lowercase() == "true")
             .select("product_id", "supplier_id",
                     pl.col("min_order_qty").cast(pl.Float64).alias("supplier_moq"),
                     pl.col("pack_size").cast(pl.Float64).alias("supplier_pack_size"))
             .unique("product_id", keep="first"))
    keys = (keys.join(params, on="product_id", how="left")
            .join(products, on="product_id", how="left")
            .join(terms, on=["product_id", "supplier_id"], how="left")
            .with_columns(pl.col("supplier_moq").fill_null(0.0), pl.col("supplier_pack_size").fill_null(1.0)))
    if keys["supplier_id"].null_count() or keys["unit_cost_initial"].null_count():
        raise ValueError("some products have no supplier or no unit cost in the master data / truth")

    lt = pl.read_parquet(truth / "lead_times.parquet")
    lead = LeadTimeModel.shifted_gamma(
        {r["supplier_id"]: (r["shift_days"], r["gamma_shape"], r["gamma_scale"]) for r in lt.iter_rows(named=True)},
        keys["supplier_id"].to_numpy(), max_days=int(lt["max_lead_days"].max()))
    costs = CostParams(keys["unit_cost_initial"].to_numpy(), holding_rate=holding_rate, ordering_cost=ordering_cost,
                       unit_price=keys["list_price_initial"].to_numpy())
    return SimulationInputs(
        demand=demand,
        keys=keys.select("product_id", "location_id", "category", "supplier_id", "supplier_moq",
                         "supplier_pack_size"),
        lead_times=lead,
        initial=InitialState(np.maximum(on_hand, 0.0)),
        costs=costs,
        history=history,
        start=start,
    )
