"""KPIs of simulation results, per product-location and rolled up (overall, per category, per location, ...).

Definitions (all over the measured days of the run, ``days = n_days - measure_from``):

- **fill rate, volume-weighted** = units served / units demanded, summed over every series of the group.
- **fill rate, item average** = the plain mean over series *with demand* of each series' served / demanded.
  Report both: the volume-weighted rate can be raised by moving service from slow, expensive items to cheap fast
  ones while the average item gets worse.
- **cycle service level** = completed replenishment cycles without a stock-out / completed cycles (a cycle runs
  from one receipt day to the day before the next; see :mod:`ml.simulation.engine`). Rolled up pooled (sum of
  good cycles / sum of cycles) and as the item average.
- **stock-out days** = days with unmet demand; **empty days** = days closing with nothing on hand.
- **lost sales** = units short (demanded - served); **lost margin** = lost units x (price - cost).
- **average inventory value** = mean closing on-hand units x unit cost (sum over series for a group).
- **COGS** = units served x unit cost.
- **turnover** (annualised) = COGS x 365 / days / average inventory value.
- **days of supply** = average inventory value / (COGS / days) (= 365 / turnover).
- **orders**, **units ordered**.
- **bullwhip** = Var(daily order quantity) / Var(daily demand) per series (and on weekly totals, fairer to
  weekly review). Rolled up as the median over series and *pooled* = sum of order variances / sum of demand
  variances.
- **costs**: holding (closing stock x unit cost x holding rate / 365 per day), ordering (per order), shortage
  (per unit short); total = their sum. Purchase cost is not included (it is COGS).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from ml.simulation.engine import SimulationResult

__all__ = ["compare", "rollup", "series_kpis"]

DAYS_PER_YEAR = 365.0


def series_kpis(result: SimulationResult, keys: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per series: ``keys`` columns (row i = series i) then the KPIs of :mod:`ml.simulation.kpis`."""
    n = result.n_series
    if keys is not None and keys.height != n:
        raise ValueError(f"keys has {keys.height} rows, the result {n} series")
    days = float(result.measured_days)
    avg_inv = result.avg_inventory_value
    cogs = result.cogs
    with np.errstate(all="ignore"):
        turnover = np.where(avg_inv > 0, cogs * DAYS_PER_YEAR / days / avg_inv, np.nan)
        dos = np.where(cogs > 0, avg_inv / (cogs / days), np.nan)
    cols = {
        "policy": pl.Series([result.policy] * n, dtype=pl.String),
        "series": np.arange(n, dtype=np.int64),
        "measured_days": np.full(n, result.measured_days, dtype=np.int64),
        "units_demanded": result.demanded,
        "units_served": result.served,
        "units_short": result.short,
        "fill_rate": result.fill_rate,
        "stockout_days": result.stockout_days,
        "empty_days": result.empty_days,
        "first_stockout_day": result.first_stockout_day,
        "cycles": result.cycles,
        "cycles_without_stockout": result.cycles_ok,
        "cycle_service_level": result.cycle_service_level,
        "avg_on_hand_units": result.avg_on_hand,
        "unit_cost": result.unit_cost,
        "avg_inventory_value": avg_inv,
        "cogs": cogs,
        "turnover": turnover,
        "days_of_supply": dos,
        "orders": result.orders,
        "units_ordered": result.units_ordered,
        "order_variance": result.order_variance,
        "demand_variance": result.demand_variance,
        "bullwhip": result.bullwhip,
        "bullwhip_weekly": result.bullwhip_weekly,
        "holding_cost": result.holding_cost,
        "ordering_cost": result.ordering_cost,
        "shortage_cost": result.shortage_cost,
        "total_cost": result.total_cost,
        "lost_margin": result.lost_margin,
        "end_on_hand": result.end_on_hand,
        "end_pipeline": result.end_pipeline,
    }
    frame = pl.DataFrame(cols).with_columns(pl.col(pl.Float64).fill_nan(None))
    if keys is not None:
        frame = pl.concat([keys, frame], how="horizontal")
    return frame


def rollup(series: pl.DataFrame, by: Sequence[str] = ()) -> pl.DataFrame:
    """Roll a :func:`series_kpis` frame (one or several policies) up to ``policy`` x ``by``.

    Sums of units, money, orders and stock-out days; both fill rates; pooled and item-average cycle service;
    turnover and days of supply from the summed COGS and inventory; bullwhip median and pooled.
    """
    group = ["policy", *by] if "policy" in series.columns else list(by)
    days = pl.col("measured_days").first().cast(pl.Float64)
    has_demand = pl.col("units_demanded") > 0
    aggs = [
        pl.len().alias("n_series"),
        has_demand.sum().alias("n_series_with_demand"),
        days.alias("measured_days"),
        pl.col("units_demanded").sum(),
        pl.col("units_served").sum(),
        pl.col("units_short").sum(),
        (pl.col("units_served").sum() / pl.col("units_demanded").sum()).alias("fill_rate_volume"),
        pl.col("fill_rate").filter(has_demand).mean().alias("fill_rate_item_avg"),
        (pl.col("cycles_without_stockout").sum() / pl.col("cycles").sum()).alias("cycle_service_pooled"),
        pl.col("cycle_service_level").mean().alias("cycle_service_item_avg"),
        pl.col("cycles").sum(),
        pl.col("stockout_days").sum(),
        pl.col("stockout_days").mean().alias("stockout_days_per_series"),
        pl.col("empty_days").sum(),
        pl.col("avg_inventory_value").sum(),
        pl.col("avg_on_hand_units").sum(),
        pl.col("cogs").sum(),
        pl.col("orders").sum(),
        pl.col("units_ordered").sum(),
        pl.col("bullwhip").median().alias("bullwhip_median"),
        (pl.col("order_variance").sum() / pl.col("demand_variance").sum()).alias("bullwhip_pooled"),
        pl.col("bullwhip_weekly").median().alias("bullwhip_weekly_median"),
        pl.col("holding_cost").sum(),
        pl.col("ordering_cost").sum(),
        pl.col("shortage_cost").sum(),
        pl.col("total_cost").sum(),
        pl.col("lost_margin").sum(),
    ]
    out = series.group_by(group, maintain_order=True).agg(aggs) if group else series.select(aggs)
    return out.with_columns(
        pl.when(pl.col("avg_inventory_value") > 0)
        .then(pl.col("cogs") * DAYS_PER_YEAR / pl.col("measured_days") / pl.col("avg_inventory_value"))
        .alias("turnover"),
        pl.when(pl.col("cogs") > 0)
        .then(pl.col("avg_inventory_value") / (pl.col("cogs") / pl.col("measured_days")))
        .alias("days_of_supply"),
    ).with_columns(pl.col(pl.Float64).fill_nan(None))


def compare(results: Mapping[str, SimulationResult] | Sequence[SimulationResult], keys: pl.DataFrame | None = None,
            by: Sequence[str] = ()) -> pl.DataFrame:
    """Roll-ups of several policies side by side (one row per policy x ``by``). A mapping renames the policies."""
    items = results.items() if isinstance(results, Mapping) else ((r.policy, r) for r in results)
    frames = [series_kpis(r, keys).with_columns(pl.lit(name).alias("policy")) for name, r in items]
    return rollup(pl.concat(frames), by)


def promise_row(promised: np.ndarray, forecast: np.ndarray, demanded: np.ndarray, served: np.ndarray) -> dict:
    """stockturn's promise against what a replay delivered, for one group of series with demand: the promised
    fill (``expected_fill_rate``, mean over the plans) weighted by the forecast and as an item average, the
    delivered fill by volume and as an item average, and the units demanded and short (where the gap sits)."""
    w = np.asarray(forecast, dtype=np.float64)
    ef = np.asarray(promised, dtype=np.float64)
    dem, srv = np.asarray(demanded, dtype=np.float64), np.asarray(served, dtype=np.float64)
    return {"n_series": len(ef), "units_demanded": float(dem.sum()), "units_short": float(dem.sum() - srv.sum()),
            "promised_volume": float((ef * w).sum() / w.sum()) if w.sum() > 0 else float(ef.mean()),
            "delivered_volume": float(srv.sum() / dem.sum()),
            "promised_item_avg": float(ef.mean()), "delivered_item_avg": float((srv / dem).mean())}


def history_segments(history: np.ndarray) -> np.ndarray:
    """Demand segment (Syntetos-Boylan) of each series from its recorded daily history before a replay (the last
    365 days at most); a series without history is 'zero'."""
    from ml.forecasting.segments import classify

    hist = np.asarray(history, dtype=np.float64)
    if hist.shape[1] == 0:
        return np.full(hist.shape[0], "zero", dtype=object)
    return classify(hist, np.ones_like(hist), min(365, hist.shape[1]))

