"""The policy backtest (issue 5): replay a year under stockturn's policy and the classical baseline, compare at
matched service, stress-test, and write ``ml.policy_backtest`` / ``ml.policy_backtest_comparison``.

Study (``study = 'matched_service'``)
-------------------------------------
1. Inputs (:class:`~ml.simulation.scenarios.SimulationInputs`) for every store x product over the last ``days``
   days of the data: on the demo (a ``<landing>_truth`` folder exists) the hidden TRUE demand is replayed
   (:func:`ml.simulation.demo_truth.demo_inputs`; lost sales count); elsewhere the recorded sales with stock-out
   days imputed (:func:`warehouse_inputs`; the output says so in ``demand_basis``). The truth is evaluation input
   only: the planners never see it.
2. Planners see the *recorded* sales (what the company saw) up to each planning date; plans are re-made on the
   first of every month (``month_start_days``) and every ``replan_every_days`` (7) days in between
   (``planning.replan_days``), with nothing after the day before:

   * ``stockturn``: :class:`ml.simulation.stockturn_planner.StockturnPlanner` (forecasting + policy as of the
     first of the month; on the days in between the policy re-planned from that forecast, as the nightly plan
     does between the weekly forecasts: ``run_policy(forecast_as_of=...)`` moves the draws with the forecast's
     level over the interval that starts on the re-plan's day);
   * ``classical`` (z = 1.645, the textbook 95 % cycle service) and the scan: normal reorder point from the
     trailing ``classical_window_days`` of recorded sales and the measured lead-time mean/sd,
     ``s = mu (L + R) + z sigma``, order up to ``s + Q`` with ``Q`` from the same EOQ rule, supplier ordering cost,
     MOQ and pack size as stockturn's (only the reorder point differs);
   * ``perfect_foresight``: the bound (same order opportunities, MOQ and packs).

   Every series reviews at the pipeline's review period for the replayed network (stores: daily; locations that
   buy from suppliers, when every simulated location does: ``review_period_supplier_days``), every order takes a
   lead time drawn from its supplier's distribution, common random numbers across policies. When every simulated
   location buys from its suppliers (single-location retailers, sales-only extracts, spare parts), the pipeline
   plans exactly the replayed network, so stockturn's reorder point and order quantity are replayed as
   ``ml.inventory_policy`` holds them (``planner_mode = 'as_written'``); otherwise (stores fed by a DC) its
   lead-time demand is re-expressed over the supplier interval (``'re_expressed'``, see the planner module).
3. Matched service (:func:`ml.simulation.matching.match_service`): the baseline's z is scanned over ``z_grid``
   (extended by 0.5 up to ``max_z`` while the baseline cannot reach stockturn's fills); the matched z is the
   larger of the z matching stockturn's volume fill and its item-average fill, the cheapest setting at which the
   baseline is at least as good on both measures; ``classical_matched`` is then simulated at that z.
   The inventory difference has a percentile bootstrap CI over products.
4. Target: stockturn's own promised fill rate, per series ``expected_fill_rate`` of its reorder point on its
   lead-time-demand samples (the fill target itself for fill-rate series, what the cycle-service quantile
   delivers for the others), averaged over planning dates, then volume-weighted (by forecast) and plain averaged.

Scenarios (``study = <scenario name>``): the stockturn and matched-classical schedules of the study (plans made
without knowing the stress, as a planner would on the day it hits) replayed on the stressed inputs
(:func:`ml.simulation.scenarios.run_scenarios`); KPIs and the product-locations that break first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from ml.simulation.engine import CostParams, InitialState, LeadTimeModel, PolicySchedule, SimulationResult, simulate
from ml.simulation.kpis import history_segments, promise_row, rollup, series_kpis
from ml.simulation.matching import MatchResult, Outcome, match_service, reaches
from ml.simulation.planning import month_start_days, replan_days, schedule_from_planner
from ml.simulation.scenarios import (
    Scenario,
    SimulationInputs,
    demand_shock,
    lead_time_disruption,
    promotion_spike,
    run_scenarios,
    supplier_outage,
)

log = logging.getLogger("stockturn.simulation")

BACKTEST_MODEL_VERSION = "policy-backtest-1.0"
MAIN_STUDY = "matched_service"
LEVELS = ("overall", "category", "location", "product_location")

#: ml.policy_backtest columns after run_id, as_of_date, model_version (contract with the report).
BACKTEST_COLUMNS: dict[str, pl.DataType] = {
    "study": pl.String(), "policy": pl.String(), "level": pl.String(), "category": pl.String(),
    "product_id": pl.String(), "location_id": pl.String(),
    "fill_rate_volume": pl.Float64(), "fill_rate_item_avg": pl.Float64(), "cycle_service_level": pl.Float64(),
    "stockout_days": pl.Float64(), "lost_units": pl.Float64(), "avg_inventory_value": pl.Float64(),
    "turnover": pl.Float64(), "days_of_supply": pl.Float64(), "orders": pl.Float64(),
    "holding_cost": pl.Float64(), "ordering_cost": pl.Float64(), "shortage_cost": pl.Float64(),
    "total_cost": pl.Float64(), "bullwhip": pl.Float64(),
    # extras (not in the report contract)
    "baseline_setting": pl.Float64(), "units_demanded": pl.Float64(), "n_series": pl.Int64(),
    "demand_basis": pl.String(),
}
#: ml.policy_backtest_comparison columns after run_id, as_of_date (one row per study).
COMPARISON_COLUMNS: dict[str, pl.DataType] = {
    "study": pl.String(), "target_fill_rate": pl.Float64(), "stockturn_fill_volume": pl.Float64(),
    "stockturn_fill_item_avg": pl.Float64(), "baseline_fill_volume": pl.Float64(),
    "baseline_fill_item_avg": pl.Float64(), "baseline_setting": pl.Float64(),
    "stockturn_inventory_value": pl.Float64(), "baseline_inventory_value": pl.Float64(),
    "inventory_reduction_pct": pl.Float64(), "reduction_ci_low_pct": pl.Float64(),
    "reduction_ci_high_pct": pl.Float64(), "n_bootstrap": pl.Int64(), "turnover_stockturn": pl.Float64(),
    "turnover_baseline": pl.Float64(),
    # extras
    "target_fill_rate_item_avg": pl.Float64(), "baseline_setting_volume": pl.Float64(),
    "baseline_setting_item": pl.Float64(), "binding_measure": pl.String(),
    "meets_fill_target_volume": pl.Boolean(), "meets_fill_target_item_avg": pl.Boolean(),
    "meets_reduction_target": pl.Boolean(), "perfect_foresight_inventory_value": pl.Float64(),
    "n_series": pl.Int64(), "replay_start": pl.Date(), "replay_days": pl.Int64(), "demand_basis": pl.String(),
    "note": pl.String(),
}


# ================================================================================================================
# configuration
# ================================================================================================================


@dataclass(frozen=True)
class BacktestConfig:
    """Knobs of the study (defaults are what docs/backtest.md reports)."""

    days: int = 365
    history_days: int = 365
    start: date | None = None  # default: the last ``days`` days of the data
    z_grid: tuple[float, ...] = tuple(np.round(np.arange(-0.5, 3.51, 0.25), 2))
    classical_z: float = 1.645
    max_z: float = 8.0  # the scan extends past z_grid up to this when the baseline cannot match stockturn yet
    classical_window_days: int = 365
    review_period: int | None = None  # None: the pipeline's (supplier review on single-echelon data, else store)
    n_boot: int = 1000
    rng_seed: int = 11
    bootstrap_seed: int = 5
    reduction_target_pct: float = 15.0
    fill_tolerance_points: float = 1.5
    include_perfect_foresight: bool = True
    forecast: Mapping[str, object] = field(default_factory=dict)  # overrides of replay_forecast_config()
    dispersion: str = "mixed"  # StockturnPlanner.dispersion: 'mixed' (default), 'quadratic' or 'linear'
    cache_dir: Path | None = None
    #: replay a DC-fed network as one system (stockturn's DC and store rows as written; issue 9); False: the
    #: single-echelon re-expressed study of issue 5
    network: bool = True
    dc_z_grid: tuple[float, ...] = tuple(np.round(np.arange(-0.5, 3.51, 0.5), 2))
    #: the promise is also measured from this replay day on (network study); None: once the plan's first supplier
    #: orders can have arrived (``network_backtest.warmup_days``)
    promise_warmup_days: int | None = None
    #: lead-time draws the network match pools (``network_backtest`` module doc); 1 = one replay
    replay_seeds: int = 1
    #: stockturn forecasts on the first of every month and re-plans from that forecast every this many days in
    #: between, as the nightly plan does between the weekly forecasts (``run_policy(forecast_as_of=...)``); the
    #: classical baseline re-plans on the same days. 0: plans on the forecast days only (before 2026-12-07)
    replan_every_days: int = 7
    #: processes the study's forecasting runs are made in before the replay (``prefetch_forecast_runs``);
    #: None: one per core; 1: one run at a time, as the replay reaches each forecast day
    forecast_workers: int | None = None


# ================================================================================================================
# scenarios by name (CLI and Dagster)
# ================================================================================================================

#: name -> (description, default parameters). Days count from the replay start; ``"auto"`` picks the biggest
#: category / supplier / product by demand.
SCENARIOS: dict[str, tuple[str, dict[str, object]]] = {
    "demand_shock": ("demand of one category x (1 + pct/100) for some weeks",
                     {"category": "auto", "pct": 30.0, "start": 120, "weeks": 6}),
    "lead_time_disruption": ("orders placed with one supplier take factor x as long for some weeks",
                             {"supplier": "auto", "factor": 2.0, "start": 120, "weeks": 8}),
    "supplier_outage": ("no receipts from one supplier for some weeks (held back until it ends)",
                        {"supplier": "auto", "start": 120, "weeks": 4}),
    "promotion_spike": ("demand of some products x (1 + uplift) for some days",
                        {"products": "auto", "uplift": 1.0, "start": 120, "days": 14}),
}


def _parse_value(default: object, value: object) -> object:
    if isinstance(value, str) and isinstance(default, bool):
        return value.lower() in ("1", "true", "yes")
    if isinstance(value, str) and isinstance(default, float):
        return float(value)
    if isinstance(value, str) and isinstance(default, int):
        return int(value)
    return value


def build_scenario(name: str, params: Mapping[str, object], inputs: SimulationInputs) -> Scenario:
    """A named scenario with its defaults overridden by ``params`` (strings are converted)."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose from {sorted(SCENARIOS)}")
    defaults = SCENARIOS[name][1]
    unknown = set(params) - set(defaults)
    if unknown:
        raise ValueError(f"scenario {name}: unknown parameters {sorted(unknown)}; known: {sorted(defaults)}")
    p = {k: _parse_value(defaults[k], params.get(k, v)) for k, v in defaults.items()}
    volume = inputs.keys.with_columns(pl.Series("_d", np.asarray(inputs.demand).sum(axis=1)))

    def biggest(col: str) -> str:
        return str(volume.group_by(col).agg(pl.col("_d").sum()).sort("_d", descending=True)[col][0])

    if name == "demand_shock":
        cat = biggest("category") if p["category"] == "auto" else str(p["category"])
        return demand_shock(cat, float(p["pct"]), int(p["start"]), int(p["weeks"]), name=name)
    if name == "lead_time_disruption":
        sup = biggest("supplier_id") if p["supplier"] == "auto" else str(p["supplier"])
        return lead_time_disruption(sup, float(p["factor"]), int(p["start"]), int(p["weeks"]), name=name)
    if name == "supplier_outage":
        sup = biggest("supplier_id") if p["supplier"] == "auto" else str(p["supplier"])
        return supplier_outage(sup, int(p["start"]), int(p["weeks"]), name=name)
    prods = p["products"]
    if prods == "auto":
        top = volume.group_by("product_id").agg(pl.col("_d").sum()).sort("_d", descending=True)
        products: Sequence[str] = top["product_id"].head(5).to_list()
    else:
        products = [x.strip() for x in str(prods).split(",") if x.strip()]
    return promotion_spike(products, float(p["uplift"]), int(p["start"]), int(p["days"]), name=name)


# ================================================================================================================
# inputs
# ================================================================================================================


@dataclass(frozen=True)
class ReplayInputs:
    """Simulation inputs plus what the planners may see and where the demand came from."""

    inputs: SimulationInputs
    observed: np.ndarray  # (n_series, history + days) recorded sales: what the planners see
    demand_basis: str  # 'true_demand (demo truth)' | 'recorded_sales_stockouts_imputed'
    #: every simulated location buys from its suppliers (no DC): the pipeline plans exactly the replayed network,
    #: so its policy is replayed as written (``StockturnPlanner.direct``), with the pipeline's review period
    single_echelon: bool = False


def _impute(sales: np.ndarray, stockout: np.ndarray, half_window: int = 28) -> np.ndarray:
    """Recorded sales with stock-out days replaced by the mean of non-stock-out days within +-half_window days
    (the series' overall non-stock-out mean when the window has none)."""
    ok = ~stockout
    v = np.where(ok, sales, 0.0)
    cs = np.concatenate([np.zeros((v.shape[0], 1)), np.cumsum(v, axis=1)], axis=1)
    cn = np.concatenate([np.zeros((v.shape[0], 1)), np.cumsum(ok, axis=1)], axis=1)
    t = np.arange(v.shape[1])
    lo, hi = np.clip(t - half_window, 0, v.shape[1]), np.clip(t + half_window + 1, 0, v.shape[1])
    s, n = cs[:, hi] - cs[:, lo], cn[:, hi] - cn[:, lo]
    overall = np.where(ok.sum(axis=1) > 0, v.sum(axis=1) / np.maximum(ok.sum(axis=1), 1), 0.0)
    local = np.where(n > 0, s / np.maximum(n, 1), overall[:, None])
    return np.where(stockout, local, sales)


NO_SUPPLIER = "(no supplier)"


def warehouse_inputs(con, *, start: date, days: int, history_days: int, holding_rate: float = 0.25,
                     ordering_cost: float = 0.0, default_lead_time_days: float = 14.0,
                     review_period: int = 1) -> ReplayInputs:
    """Inputs from the warehouse alone (no truth): recorded sales, stock-out days imputed, lead times measured
    from goods receipts before ``start`` (per supplier; the nominal lead time where there are none, else
    ``default_lead_time_days``, the forecasting default, so planners and replay assume the same).

    Sales-only data works: products without a supplier are grouped under ``NO_SUPPLIER`` (no MOQ, pack 1, the
    default lead time), and a series whose on-hand is unknown at the replay start (no stock snapshot) starts with
    its mean demand over one protection interval (trailing mean x (mean lead time + review period)): the
    classical reorder point at z = 0, the same opening stock for every policy."""
    from ml.warehouse import read_frame

    first, end = start - timedelta(days=history_days), start + timedelta(days=days)
    keys = read_frame(con, """
        select distinct s.product_id, s.location_id, coalesce(p.category, 'unknown') as category,
               coalesce(p.supplier_id, ?) as supplier_id, coalesce(p.min_order_qty, 0)::double as supplier_moq,
               greatest(coalesce(p.pack_size, 1), 1)::double as supplier_pack_size,
               coalesce(nullif(p.current_unit_cost, 0), p.current_list_price * 0.65, 1.0)::double as unit_cost,
               p.current_list_price::double as unit_price,
               coalesce(p.nominal_lead_time_days, ?)::double as nominal_lt,
               l.replenished_from
        from marts.fct_inventory_daily s
        join marts.dim_location l using (location_id)
        join marts.dim_product p using (product_id)
        where l.is_selling_location and s.date_day < ? and s.date_day >= ?
          and coalesce(p.product_type, 'stock') = 'stock'
        order by 1, 2""", [NO_SUPPLIER, default_lead_time_days, start, first])
    if keys.is_empty():
        raise ValueError(f"no stock product sold at a selling location between {first} and {start}: the replay "
                         f"needs {history_days} days of sales history before its start (lower --history-days or "
                         "--days)")
    n, total = keys.height, history_days + days
    con.register("__bt_keys", keys.select("product_id", "location_id").with_row_index("i").to_arrow())
    try:
        panel = read_frame(con, """
            select k.i, datediff('day', ?::date, f.date_day) as t, coalesce(f.units_sold, 0)::double as sold,
                   coalesce(f.is_stockout_day, false) as so, f.on_hand_units::double as on_hand
            from marts.fct_inventory_daily f join __bt_keys k using (product_id, location_id)
            where f.date_day >= ? and f.date_day < ?""", [first, first - timedelta(days=1), end])
    finally:
        con.unregister("__bt_keys")
    sales, so = np.zeros((n, total + 1)), np.zeros((n, total + 1), dtype=bool)
    oh = np.zeros((n, total + 1))
    i, t = panel["i"].to_numpy().astype(np.int64), panel["t"].to_numpy().astype(np.int64) + 1
    sales[i, t], so[i, t] = np.maximum(panel["sold"].to_numpy(), 0.0), panel["so"].to_numpy()
    oh[i, t] = panel["on_hand"].to_numpy()
    oh_known = np.zeros((n, total + 1), dtype=bool)
    oh_known[i, t] = ~np.isnan(oh[i, t])
    oh = np.nan_to_num(oh, nan=0.0)
    if int(t.max(initial=0)) < total:
        raise ValueError(f"the warehouse has data up to day {int(t.max(initial=0))} of the {total} needed")
    imputed = _impute(sales[:, 1:], so[:, 1:])
    lt = read_frame(con, "select supplier_id, lead_time_days::double as lt from marts.fct_purchase_receipts "
                         "where received_date < ? and lead_time_days >= 0", [start])
    pmfs: dict[str, np.ndarray] = {}
    for sup in keys["supplier_id"].unique().to_list():
        obs = lt.filter(pl.col("supplier_id") == sup)["lt"].to_numpy()
        if obs.size == 0:
            nominal = int(round(float(keys.filter(pl.col("supplier_id") == sup)["nominal_lt"].median())))
            obs = np.array([max(nominal, 1)], dtype=np.float64)
        o = np.rint(obs).astype(np.int64)
        pmfs[sup] = np.bincount(o) / o.size
    lead = LeadTimeModel.from_pmfs(pmfs, keys["supplier_id"].to_list())
    opening = np.maximum(oh[:, history_days], 0.0)
    unknown = ~oh_known[:, history_days]
    if unknown.any():
        mu = imputed[:, :history_days].mean(axis=1)
        opening = np.where(unknown, np.round(mu * (lead.mean_days() + review_period)), opening)
        log.info("backtest: %d of %d series have no known on-hand at %s: opening stock = mean demand over one "
                 "protection interval", int(unknown.sum()), n, start)
    price = keys["unit_price"].fill_null(0.0).to_numpy()
    costs = CostParams(keys["unit_cost"].to_numpy(), holding_rate=holding_rate, ordering_cost=ordering_cost,
                       unit_price=np.maximum(price, keys["unit_cost"].to_numpy()))
    inputs = SimulationInputs(
        demand=imputed[:, history_days:], keys=keys.select("product_id", "location_id", "category", "supplier_id",
                                                             "supplier_moq", "supplier_pack_size"),
        lead_times=lead, initial=InitialState(opening), costs=costs,
        history=imputed[:, :history_days], start=start)
    single = bool(keys["replenished_from"].is_null().all())
    return ReplayInputs(inputs, imputed, "recorded_sales_stockouts_imputed", single_echelon=single)


def _truth_dir(landing: Path | None) -> Path | None:
    if landing is None:
        return None
    truth = landing.parent / f"{landing.name}_truth"
    return truth if (truth / "true_demand.parquet").exists() else None


def replay_inputs(con, landing: Path | None, config: BacktestConfig, *, holding_rate: float,
                  ordering_cost: float) -> ReplayInputs:
    """Demo truth when ``<landing>_truth`` exists, else the warehouse's recorded sales (stock-outs imputed)."""
    truth = _truth_dir(landing)
    if truth is not None:
        from ml.simulation.demo_truth import demo_inputs

        last = pl.scan_parquet(truth / "true_demand.parquet").select(pl.col("date").max()).collect().item()
        start = config.start or last - timedelta(days=config.days - 1)
        inp = demo_inputs(truth, landing, start=start, days=config.days, history_days=config.history_days,
                          holding_rate=holding_rate, ordering_cost=ordering_cost)
        first = start - timedelta(days=config.history_days)
        sold = (pl.scan_parquet(truth / "true_demand.parquet")
                .filter((pl.col("date") >= first) & (pl.col("date") < start + timedelta(days=config.days)))
                .select("product_id", "location_id", "date", "sold").collect())
        idx = inp.keys.select("product_id", "location_id").with_row_index("i")
        sold = sold.join(idx, on=["product_id", "location_id"]).with_columns(
            (pl.col("date") - pl.lit(first)).dt.total_days().alias("t"))
        observed = np.zeros((inp.n_series, config.history_days + config.days))
        observed[sold["i"].to_numpy(), sold["t"].to_numpy()] = sold["sold"].to_numpy()
        return ReplayInputs(inp, observed, "true_demand (demo truth; planners see recorded sales)")
    from ml.warehouse import read_frame

    last = read_frame(con, "select max(date_day) as d from marts.fct_inventory_daily")["d"][0]
    start = config.start or last - timedelta(days=config.days - 1)
    from ml.forecasting.config import ForecastConfig

    fdefault = ForecastConfig()
    return warehouse_inputs(con, start=start, days=config.days, history_days=config.history_days,
                            holding_rate=holding_rate, ordering_cost=ordering_cost,
                            default_lead_time_days=float(fdefault.default_lead_time_days),
                            review_period=int(config.review_period or fdefault.review_period_supplier_days))


# ================================================================================================================
# planners
# ================================================================================================================


def classical_rq_planner(z: float, inputs: SimulationInputs, *, window_days: int, review_period: int,
                         policy_config) -> object:
    """The classical baseline with stockturn's order-quantity rule: normal reorder point (``classical_planner``)
    at safety factor ``z``, order up to s + Q with Q = ``ml.policy.inventory_math.order_quantity`` of the trailing
    mean (supplier ordering cost, MOQ, pack size). One location's rule: see
    :func:`ml.simulation.network_backtest.classical_location_planner`."""
    from ml.simulation.network_backtest import classical_location_planner

    return classical_location_planner(
        z, lead_times=inputs.lead_times, unit_cost=inputs.costs.unit_cost,
        ordering_cost=policy_config.ordering_cost_per_line,
        moq=inputs.keys["supplier_moq"].to_numpy().astype(np.float64),
        pack_size=inputs.keys["supplier_pack_size"].to_numpy().astype(np.float64), review_period=review_period,
        window_days=window_days, policy_config=policy_config)


# ================================================================================================================
# the study
# ================================================================================================================


@dataclass
class BacktestResult:
    """Everything the study produced (frames are unstamped: :func:`backtest_tables` stamps them)."""

    policy_backtest: pl.DataFrame
    comparison: pl.DataFrame
    match: MatchResult
    scenario_breaks: pl.DataFrame
    summary: dict
    timings: dict[str, float]
    series: pl.DataFrame | None = None  # per-series KPIs of every policy of the main study (analysis)
    runs: dict[str, SimulationResult] | None = None  # the main study's runs (analysis)
    scan: dict[float, SimulationResult] | None = None  # the baseline at each z of the grid (analysis)
    network_runs: dict | None = None  # the network study's runs, both echelons (analysis)


def _levels_frame(series: pl.DataFrame, study: str, demand_basis: str, setting: Mapping[str, float]) -> pl.DataFrame:
    frames = []
    for level, by in (("overall", []), ("category", ["category"]), ("location", ["location_id"]),
                      ("product_location", ["category", "product_id", "location_id"])):
        r = rollup(series, by).with_columns(pl.lit(level).alias("level"))
        frames.append(r)
    return backtest_levels(pl.concat(frames, how="diagonal_relaxed"), study, demand_basis, setting)


def backtest_levels(out: pl.DataFrame, study: str, demand_basis: str, setting: Mapping[str, float]) -> pl.DataFrame:
    """Rolled-up KPI rows (with a ``level`` column) in the ml.policy_backtest layout."""
    return out.select(
        pl.lit(study).alias("study"), "policy", "level",
        *[(pl.col(c) if c in out.columns else pl.lit(None)).cast(pl.String).alias(c)
          for c in ("category", "product_id", "location_id")],
        "fill_rate_volume", "fill_rate_item_avg", pl.col("cycle_service_pooled").alias("cycle_service_level"),
        pl.col("stockout_days").cast(pl.Float64), pl.col("units_short").alias("lost_units"),
        "avg_inventory_value", "turnover", "days_of_supply", pl.col("orders").cast(pl.Float64), "holding_cost",
        "ordering_cost", "shortage_cost", "total_cost", pl.col("bullwhip_pooled").alias("bullwhip"),
        pl.col("policy").replace_strict(dict(setting), default=None, return_dtype=pl.Float64)
        .alias("baseline_setting"),
        pl.col("units_demanded").cast(pl.Float64), pl.col("n_series").cast(pl.Int64),
        pl.lit(demand_basis).alias("demand_basis"),
    ).select([pl.col(k).cast(v) for k, v in BACKTEST_COLUMNS.items()])


def _main_comparison_row(match: MatchResult, o_st: Mapping, o_b: Mapping, *, target_volume: float,
                         target_item: float, config: BacktestConfig, baseline_setting: float, ci_valid: bool,
                         perfect_foresight: float | None, n_series: int, start: date, days: int,
                         demand_basis: str, note: str | None) -> dict:
    """The main study's ml.policy_backtest_comparison row (``ci_valid`` False: no CI, the point match failed)."""
    tol = config.fill_tolerance_points / 100.0
    red = match.inventory_difference_pct
    return {
        "study": MAIN_STUDY, "target_fill_rate": target_volume, "stockturn_fill_volume": match.candidate_fill_volume,
        "stockturn_fill_item_avg": match.candidate_fill_item, "baseline_fill_volume": o_b.get("fill_rate_volume"),
        "baseline_fill_item_avg": o_b.get("fill_rate_item_avg"), "baseline_setting": baseline_setting,
        "stockturn_inventory_value": match.candidate_inventory,
        # the value the reduction is computed from (interpolated between the scanned settings at the matched one),
        # so that 1 - stockturn / baseline reads as the reduction shown beside it
        "baseline_inventory_value": match.baseline_inventory,
        "inventory_reduction_pct": red, "reduction_ci_low_pct": match.ci_pct_low if ci_valid else None,
        "reduction_ci_high_pct": match.ci_pct_high if ci_valid else None,
        "n_bootstrap": (match.n_boot - match.n_boot_failed) if ci_valid else 0,
        "turnover_stockturn": o_st.get("turnover"), "turnover_baseline": o_b.get("turnover"),
        "target_fill_rate_item_avg": target_item, "baseline_setting_volume": match.param_volume,
        "baseline_setting_item": match.param_item, "binding_measure": match.binding,
        "meets_fill_target_volume": bool(match.candidate_fill_volume >= target_volume - tol),
        "meets_fill_target_item_avg": bool(match.candidate_fill_item >= target_item - tol),
        "meets_reduction_target": bool(np.isfinite(red) and red >= config.reduction_target_pct),
        "perfect_foresight_inventory_value": perfect_foresight, "n_series": n_series, "replay_start": start,
        "replay_days": days, "demand_basis": demand_basis, "note": note,
    }


def _scenario_comparison_row(study: str, so: Mapping, sb: Mapping, *, target_volume: float, target_item: float,
                             baseline_setting: float, n_series: int, start: date, days: int, demand_basis: str,
                             note: str) -> dict:
    """A stress scenario's comparison row: the study's plans replayed on stressed inputs (one replay, no CI)."""
    return {
        "study": study, "target_fill_rate": target_volume, "stockturn_fill_volume": so["fill_rate_volume"],
        "stockturn_fill_item_avg": so["fill_rate_item_avg"], "baseline_fill_volume": sb["fill_rate_volume"],
        "baseline_fill_item_avg": sb["fill_rate_item_avg"], "baseline_setting": baseline_setting,
        "stockturn_inventory_value": so["avg_inventory_value"], "baseline_inventory_value": sb["avg_inventory_value"],
        "inventory_reduction_pct": 100.0 * (1 - so["avg_inventory_value"] / sb["avg_inventory_value"]),
        "reduction_ci_low_pct": None, "reduction_ci_high_pct": None, "n_bootstrap": 0,
        "turnover_stockturn": so["turnover"], "turnover_baseline": sb["turnover"],
        "target_fill_rate_item_avg": target_item, "n_series": n_series, "replay_start": start, "replay_days": days,
        "demand_basis": demand_basis, "note": note,
    }


def promise_by_segment(stockturn: pl.DataFrame, history: np.ndarray, echelon: str) -> pl.DataFrame:
    """Promised vs delivered fill of stockturn's replayed series (``series_kpis`` rows joined with
    ``promised_fill`` and ``daily_demand_forecast``), overall and per demand segment (Syntetos-Boylan, from each
    series' recorded history before the replay, ``kpis.history_segments``); series without demand are left out."""
    segment = history_segments(history)
    frame = stockturn.sort("series").with_columns(pl.Series("segment", segment.astype(str))).filter(
        (pl.col("units_demanded") > 0) & pl.col("promised_fill").is_not_null())
    groups = [("all", frame), *sorted(((str(k[0]), g) for k, g in frame.group_by("segment")), key=lambda t: t[0])]
    rows = [{"echelon": echelon, "segment": seg, **promise_row(
        g["promised_fill"].to_numpy(), g["daily_demand_forecast"].fill_null(0.0).to_numpy(),
        g["units_demanded"].to_numpy(), g["units_served"].to_numpy())} for seg, g in groups if g.height]
    return pl.DataFrame(rows)


def run_backtest(
    warehouse: Path | str,
    landing: Path | str | None = None,
    config: BacktestConfig = BacktestConfig(),  # noqa: B008 (frozen)
    *,
    scenarios: Sequence[tuple[str, Mapping[str, object]]] = (),
    policy_config=None,
    progress: bool = True,
) -> BacktestResult:
    """Run the matched-service study (and the named ``scenarios``) and return the write-back frames."""
    from ml.policy import PolicyConfig
    from ml.simulation.stockturn_planner import StockturnPlanner, prefetch_forecast_runs, replay_forecast_config
    from ml.warehouse import connect

    level = logging.INFO if progress else logging.DEBUG
    pcfg = policy_config or PolicyConfig()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    landing_path = Path(landing) if landing else None
    with connect(warehouse, read_only=True) as con:
        rep = replay_inputs(con, landing_path, config, holding_rate=pcfg.annual_holding_rate,
                            ordering_cost=pcfg.ordering_cost_per_line)
    inp = rep.inputs
    n = inp.n_series
    fcfg = replay_forecast_config(dict(config.forecast))
    if not rep.single_echelon and config.network:
        from ml.simulation.network_inputs import network_inputs, network_shape

        with connect(warehouse, read_only=True) as con:
            ok, why = network_shape(con)
            net = network_inputs(con, inp, rep.observed, rep.demand_basis, policy_config=pcfg) if ok else None
        if net is not None:
            timings["inputs_s"] = round(time.perf_counter() - t0, 2)
            return _run_network_backtest(warehouse, net, config, fcfg, pcfg, scenarios, level, timings, t0)
        log.warning("backtest: %s; replaying the stores single-echelon with stockturn's plan re-expressed", why)
    review = config.review_period or (fcfg.review_period_supplier_days if rep.single_echelon
                                      else fcfg.review_period_store_days)
    timings["inputs_s"] = round(time.perf_counter() - t0, 2)
    log.log(level, "backtest: %d product-locations x %d days from %s (%s); history %d days",
            n, inp.n_days, inp.start, rep.demand_basis, inp.n_history)
    forecast_days = month_start_days(inp.start, inp.n_days)
    plan_days = replan_days(inp.start, inp.n_days, config.replan_every_days)
    cache = config.cache_dir or Path(warehouse).resolve().parent / ".backtest_cache"

    def classical(z: float) -> object:
        return classical_rq_planner(z, inp, window_days=config.classical_window_days,
                                    review_period=review, policy_config=pcfg)

    def sched(planner, name: str) -> PolicySchedule:
        return schedule_from_planner(plan_days, rep.observed, planner, n_history=inp.n_history,
                                     lead_times=inp.lead_times, start=inp.start, rule="s_S", name=name)

    def sim(schedule: PolicySchedule, i: SimulationInputs = inp) -> SimulationResult:
        return simulate(i.demand, schedule, i.lead_times, i.initial, costs=i.costs, rng_seed=config.rng_seed)

    # ---------------------------------------------------------------- stockturn (forecasting at every plan date)
    t = time.perf_counter()
    if rep.single_echelon:  # the plan as written reads forecast_run's cache entries: make them all at once
        prefetch_forecast_runs(warehouse, fcfg, [inp.start + timedelta(days=int(d) - 1) for d in forecast_days],
                               cache, workers=config.forecast_workers, level=level)
    planner = StockturnPlanner(warehouse, inp.keys, inp.start, forecast_config=fcfg, policy_config=pcfg,
                               review_period=review, fallback=classical(config.classical_z),
                               cache_dir=cache, dispersion=config.dispersion, direct=rep.single_echelon,
                               forecast_days=tuple(int(d) for d in forecast_days))
    log.log(level, "backtest: stockturn planner at %d planning dates (forecasting at %d of them, the policy "
            "re-planned from the latest forecast at the others)", len(plan_days), len(forecast_days))
    st_sched = sched(planner, "stockturn")
    timings["stockturn_planning_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    st = sim(st_sched)
    timings["simulate_stockturn_s"] = round(time.perf_counter() - t, 2)

    # ---------------------------------------------------------------- classical scan and match
    t = time.perf_counter()
    scan: dict[float, SimulationResult] = {}
    scheds: dict[float, PolicySchedule] = {}
    for z in config.z_grid:
        scheds[float(z)] = sched(classical(float(z)), f"classical_z{z:g}")
        scan[float(z)] = sim(scheds[float(z)])
    # lumpy demand can need a far higher safety factor than the grid's top to match on both measures: extend the
    # scan (z + 0.5 at a time, up to max_z) until the baseline's fills reach stockturn's on both
    st_out = Outcome.of(st)
    z = float(max(config.z_grid))
    while z < config.max_z and not reaches(scan[z], st_out):
        z = round(z + 0.5, 2)
        scheds[z] = sched(classical(z), f"classical_z{z:g}")
        scan[z] = sim(scheds[z])
    timings["classical_scan_s"] = round(time.perf_counter() - t, 2)
    log.log(level, "backtest: classical baseline scanned at %d settings of z in %.1f s", len(scan),
            timings["classical_scan_s"])
    t = time.perf_counter()
    clusters = inp.keys["product_id"].to_numpy()
    match = match_service(st, scan, clusters, n_boot=config.n_boot, seed=config.bootstrap_seed)
    timings["match_bootstrap_s"] = round(time.perf_counter() - t, 2)
    z_match = match.matched_param
    runs: dict[str, SimulationResult] = {"stockturn": st}
    settings: dict[str, float] = {"classical": config.classical_z}
    cl_sched = sched(classical(config.classical_z), "classical")
    runs["classical"] = sim(cl_sched)
    matched_sched = None
    if np.isfinite(z_match):
        matched_sched = sched(classical(float(z_match)), "classical_matched")
        runs["classical_matched"] = sim(matched_sched)
        settings["classical_matched"] = float(z_match)
    if config.include_perfect_foresight:
        pf = PolicySchedule.perfect_foresight(n, review_period=review,
                                              moq=inp.keys["supplier_moq"].to_numpy().astype(float),
                                              pack_size=inp.keys["supplier_pack_size"].to_numpy().astype(float))
        runs["perfect_foresight"] = sim(pf)
    timings["simulate_total_s"] = round(time.perf_counter() - t0 - timings["inputs_s"]
                                        - timings["stockturn_planning_s"], 2)

    keys = inp.keys.select("product_id", "location_id", "category")
    series = pl.concat([series_kpis(r, keys).with_columns(pl.lit(name).alias("policy")) for name, r in runs.items()])
    frames = [_levels_frame(series, MAIN_STUDY, rep.demand_basis, settings)]

    # ---------------------------------------------------------------- target fill rate (stockturn's promise)
    tg = pl.concat(planner.targets).group_by("series").agg(pl.col("expected_fill_rate").mean(),
                                                           pl.col("daily_demand_forecast").mean()).sort("series")
    w = tg["daily_demand_forecast"].to_numpy()
    ef = tg["expected_fill_rate"].to_numpy()
    target_volume = float((ef * w).sum() / w.sum()) if w.sum() > 0 else float(np.mean(ef))
    target_item = float(np.mean(ef))
    series = series.join(tg.select(pl.col("series").cast(pl.Int64), pl.col("expected_fill_rate").alias("promised_fill"),
                                   pl.col("daily_demand_forecast")), on="series", how="left")

    def overall(name: str) -> dict:
        return rollup(series.filter(pl.col("policy") == name)).row(0, named=True) if name in runs else {}

    promise = promise_by_segment(series.filter(pl.col("policy") == "stockturn"),
                                 rep.observed[:, : inp.n_history], "store" if not rep.single_echelon else "location")
    o_st, o_b = overall("stockturn"), overall("classical_matched")
    red = match.inventory_difference_pct
    comp_rows = [_main_comparison_row(
        match, o_st, o_b, target_volume=target_volume, target_item=target_item, config=config,
        baseline_setting=z_match, ci_valid=True,
        perfect_foresight=overall("perfect_foresight").get("avg_inventory_value"), n_series=n, start=inp.start,
        days=inp.n_days, demand_basis=rep.demand_basis, note=match.note or None)]

    # ---------------------------------------------------------------- scenarios
    breaks = []
    if scenarios:
        fixed = {"stockturn": st_sched.with_name("stockturn"),
                 "classical_matched": (matched_sched or cl_sched).with_name("classical_matched")}
        setting = settings.get("classical_matched", config.classical_z)
        for name, params in scenarios:
            t = time.perf_counter()
            sc = build_scenario(name, params, inp)
            report = run_scenarios(inp, fixed, [sc], rng_seed=config.rng_seed, keep_series=True, top_n=20)
            ser = report.series.filter(pl.col("scenario") == sc.name).select(pl.exclude("scenario"))
            frames.append(_levels_frame(ser, name, rep.demand_basis, {"classical_matched": setting}))
            so = rollup(ser.filter(pl.col("policy") == "stockturn")).row(0, named=True)
            sb = rollup(ser.filter(pl.col("policy") == "classical_matched")).row(0, named=True)
            comp_rows.append(_scenario_comparison_row(
                name, so, sb, target_volume=target_volume, target_item=target_item, baseline_setting=setting,
                n_series=n, start=inp.start, days=inp.n_days, demand_basis=rep.demand_basis,
                note=f"{sc!r}; plans made without knowing the stress; no CI (one replay)"))
            breaks.append(report.breaks.with_columns(pl.lit(name).alias("study")))
            log.log(level, "backtest: scenario %s done in %.1f s", name, time.perf_counter() - t)

    comparison = pl.DataFrame(comp_rows, schema=COMPARISON_COLUMNS, strict=False)
    timings["total_s"] = round(time.perf_counter() - t0, 2)
    summary = {
        "n_series": n, "replay_start": inp.start.isoformat(), "replay_days": inp.n_days,
        "planner_mode": "as_written" if rep.single_echelon else "re_expressed", "review_period_days": review,
        "demand_basis": rep.demand_basis, "planning_dates": len(plan_days),
        "target_fill_rate_volume": target_volume, "target_fill_rate_item_avg": target_item,
        "fill_sensitivity": match.fill_sensitivity(),
        "stockturn_fill_volume": match.candidate_fill_volume, "stockturn_fill_item_avg": match.candidate_fill_item,
        "matched_z": z_match, "z_volume": match.param_volume, "z_item": match.param_item, "binding": match.binding,
        "inventory_reduction_pct": red, "ci_pct": [match.ci_pct_low, match.ci_pct_high],
        "stockturn_inventory_value": match.candidate_inventory, "baseline_inventory_value": match.baseline_inventory,
        "planner_stats": planner.stats, "grid": match.grid.to_dicts(), "timings_s": timings,
        "promise": promise.to_dicts(),
    }
    log.log(level, "backtest: stockturn fill %.4f (volume) / %.4f (item avg) vs its target %.4f / %.4f; "
            "inventory %.0f vs classical at matched z=%.3f %.0f: reduction %.1f%% (95%% CI %.1f .. %.1f)",
            match.candidate_fill_volume, match.candidate_fill_item, target_volume, target_item,
            match.candidate_inventory, z_match, match.baseline_inventory, red, match.ci_pct_low, match.ci_pct_high)
    return BacktestResult(pl.concat(frames), comparison, match,
                          pl.concat(breaks, how="diagonal_relaxed") if breaks else pl.DataFrame(), summary, timings,
                          series, runs, scan)


def _run_network_backtest(warehouse, net, config: BacktestConfig, fcfg, pcfg,
                          scenarios: Sequence[tuple[str, Mapping[str, object]]], level: int,
                          timings: dict[str, float], t0: float) -> BacktestResult:
    """The two-echelon study (:mod:`ml.simulation.network_backtest`) in the frames of :func:`run_backtest`."""
    from ml.simulation.network_backtest import (
        _levels,
        apply_to_network,
        bullwhip_by_echelon,
        inventory_by,
        network_series,
        promise_table,
        run_network_study,
        simulate_network,
        warmup_days,
    )

    cache = config.cache_dir or Path(warehouse).resolve().parent / ".backtest_cache"
    study = run_network_study(warehouse, net, config, forecast_config=fcfg, policy_config=pcfg, cache_dir=cache,
                              level=level)
    timings.update(study.timings)
    match = study.match
    runs = dict(study.runs)
    st_series, dc_series = network_series(runs, net)
    if study.perfect_foresight is not None:  # the bound: stores only (no DC stock)
        st_series = pl.concat([st_series, series_kpis(study.perfect_foresight, net.stores.keys.select(
            "product_id", "location_id", "category")).with_columns(pl.lit("perfect_foresight").alias("policy"),
                                                                    pl.lit("store").alias("echelon"))])
    bullwhip = bullwhip_by_echelon(runs)
    store_z = {k: v[0] for k, v in study.settings.items()}
    frames = [backtest_levels(_levels(st_series, dc_series, bullwhip), MAIN_STUDY, net.demand_basis, store_z)]
    if study.perfect_foresight is not None:
        pf = rollup(series_kpis(study.perfect_foresight, net.stores.keys.select("product_id", "location_id",
                                                                                 "category"))
                    .with_columns(pl.lit("perfect_foresight").alias("policy"))).row(0, named=True)
    else:
        pf = {}
    warmup = (config.promise_warmup_days if config.promise_warmup_days is not None
              else warmup_days(net, int(fcfg.review_period_supplier_days)))
    promise = promise_table(study, net, warmup, config.rng_seed)
    stores_all = promise.filter((pl.col("echelon") == "store") & (pl.col("segment") == "all"))
    target_volume = float(stores_all["promised_volume"][0]) if stores_all.height else float("nan")
    target_item = float(stores_all["promised_item_avg"][0]) if stores_all.height else float("nan")

    o_st, o_b = (network_rollup_row(st_series, dc_series, "stockturn"),
                 network_rollup_row(st_series, dc_series, "classical_matched"))
    red = match.inventory_difference_pct
    z_dc = study.settings.get("classical_matched", (np.nan, np.nan))[1]
    matched = bool(np.isfinite(match.matched_param))
    pf_inv = pf.get("avg_inventory_value")
    with np.errstate(all="ignore"):
        gap_closed = (100.0 * (match.baseline_inventory - match.candidate_inventory)
                      / (match.baseline_inventory - pf_inv) if pf_inv is not None else float("nan"))
    note = (f"network replay: stockturn's DC and store rows as written; classical matched at store z "
            f"{match.matched_param:.2f}, DC z {z_dc:.2f} (cheapest of the DC grid); perfect-foresight bound = "
            f"stores with perfect foresight over the transfer lead time and no DC stock; share of the "
            f"classical-to-bound gap closed by stockturn: {gap_closed:.1f}%")
    comp_rows = [_main_comparison_row(
        match, o_st, o_b, target_volume=target_volume, target_item=target_item, config=config,
        baseline_setting=match.matched_param, ci_valid=matched,  # resamples alone are no result
        perfect_foresight=pf_inv, n_series=net.n_store, start=net.stores.start, days=net.stores.n_days,
        demand_basis=net.demand_basis, note=(match.note + "; " if match.note else "") + note)]

    # ---------------------------------------------------------------- scenarios (plans fixed, inputs stressed)
    for name, params in scenarios:
        t = time.perf_counter()
        sc = build_scenario(name, params, net.stores)
        stressed = apply_to_network(sc, net)
        srun = {}
        for pname in ("stockturn", "classical_matched"):
            if pname not in study.schedules:
                continue
            ss, ds = study.schedules[pname]
            srun[pname] = simulate_network(stressed.stores.demand, net.parent, ss.with_name(pname),
                                           ds.with_name(pname), stressed.stores.lead_times, stressed.dc.lead_times,
                                           net.stores.initial, net.dc.initial, store_costs=net.stores.costs,
                                           dc_costs=net.dc.costs, rng_seed=config.rng_seed)
        s_ser, d_ser = network_series(srun, stressed)
        frames.append(backtest_levels(_levels(s_ser, d_ser, bullwhip_by_echelon(srun)), name, net.demand_basis,
                                      {"classical_matched": store_z.get("classical_matched", np.nan)}))
        so = network_rollup_row(s_ser, d_ser, "stockturn")
        sb = network_rollup_row(s_ser, d_ser, "classical_matched")
        if not sb:
            continue
        comp_rows.append(_scenario_comparison_row(
            name, so, sb, target_volume=target_volume, target_item=target_item,
            baseline_setting=match.matched_param, n_series=net.n_store, start=net.stores.start,
            days=net.stores.n_days, demand_basis=net.demand_basis,
            note=f"{sc!r} on the network; plans made without knowing the stress; no CI (one replay)"))
        log.log(level, "backtest: scenario %s done in %.1f s", name, time.perf_counter() - t)

    comparison = pl.DataFrame(comp_rows, schema=COMPARISON_COLUMNS, strict=False)
    timings["total_s"] = round(time.perf_counter() - t0, 2)
    by_echelon = {name: {"store": float(r.stores.avg_inventory_value.sum()),
                         "dc": float(r.dc.avg_inventory_value.sum())} for name, r in runs.items()}
    summary = {
        "n_series": net.n_store, "n_dc_series": net.n_dc, "replay_start": net.stores.start.isoformat(),
        "replay_days": net.stores.n_days, "planner_mode": "network_as_written",
        "review_period_days": {"store": int(fcfg.review_period_store_days),
                               "dc": int(fcfg.review_period_supplier_days)},
        "demand_basis": net.demand_basis, "planning_dates": len({s["day"] for s in study.planner_stats}),
        "target_fill_rate_volume": target_volume, "target_fill_rate_item_avg": target_item,
        "fill_sensitivity": match.fill_sensitivity(), "replay_seeds": max(1, int(config.replay_seeds)),
        "stockturn_fill_volume": match.candidate_fill_volume, "stockturn_fill_item_avg": match.candidate_fill_item,
        "matched_z": match.matched_param, "matched_z_dc": z_dc, "z_volume": match.param_volume,
        "z_item": match.param_item, "binding": match.binding, "inventory_reduction_pct": red,
        "ci_pct": [match.ci_pct_low, match.ci_pct_high] if matched else [None, None],
        "stockturn_inventory_value": match.candidate_inventory,
        "baseline_inventory_value": match.baseline_inventory, "perfect_foresight_inventory_value": pf_inv,
        "gap_closed_pct": gap_closed, "inventory_by_echelon": by_echelon, "bullwhip": bullwhip,
        "dc_grid": study.dc_choice.to_dicts(), "promise": promise.to_dicts(), "warmup_days": warmup,
        "inventory_by_category": inventory_by(study, net).to_dicts(),
        "planner_stats": study.planner_stats, "grid": match.grid.to_dicts(), "timings_s": timings,
    }
    log.log(level, "backtest (network): stockturn fill %.4f (volume) / %.4f (item avg) vs its promise %.4f / %.4f; "
            "network inventory %.0f vs classical at matched store z=%.2f, DC z=%.2f %.0f: reduction %.1f%% "
            "(95%% CI %.1f .. %.1f); bullwhip stockturn %s, classical %s", match.candidate_fill_volume,
            match.candidate_fill_item, target_volume, target_item, match.candidate_inventory, match.matched_param,
            z_dc, match.baseline_inventory, red, match.ci_pct_low, match.ci_pct_high,
            bullwhip.get("stockturn"), bullwhip.get("classical_matched"))
    return BacktestResult(pl.concat(frames, how="diagonal_relaxed"), comparison, match, pl.DataFrame(), summary,
                          timings, pl.concat([st_series, dc_series], how="diagonal_relaxed"),
                          {k: v.stores for k, v in runs.items()}, None, network_runs=runs)


def network_rollup_row(stores: pl.DataFrame, dc: pl.DataFrame, policy: str) -> dict:
    from ml.simulation.network_backtest import network_rollup

    s, d = stores.filter(pl.col("policy") == policy), dc.filter(pl.col("policy") == policy)
    return network_rollup(s, d).row(0, named=True) if s.height else {}


def config_inputs(config: BacktestConfig) -> dict[str, object]:
    """The configuration as RunInfo inputs (the forecast cache folder does not change results: left out)."""
    import dataclasses

    return {k: v for k, v in dataclasses.asdict(config).items() if k != "cache_dir"}


def backtest_tables(result: BacktestResult, *, as_of: date, inputs: Mapping[str, object]) -> dict[str, pl.DataFrame]:
    """The two write-back frames, stamped with one RunInfo (model_version ``policy-backtest-1.0``)."""
    from ml.warehouse import RunInfo

    info = RunInfo.from_inputs(as_of_date=as_of, model_version=BACKTEST_MODEL_VERSION, inputs=dict(inputs))
    comp = info.stamp(result.comparison).select(pl.exclude("model_version"))
    tables = {"policy_backtest": info.stamp(result.policy_backtest), "policy_backtest_comparison": comp}
    if result.scenario_breaks.height:
        # which product-locations break first under each scenario (extra table, not part of the report contract)
        tables["policy_backtest_breaks"] = info.stamp(result.scenario_breaks.select(
            "study", *[c for c in result.scenario_breaks.columns if c not in ("study", "scenario")]))
    return tables


def write_backtest(con, tables: Mapping[str, pl.DataFrame]) -> None:
    """Replace ml.policy_backtest, ml.policy_backtest_comparison (and ml.policy_backtest_breaks when scenarios ran)
    in one transaction."""
    from ml.warehouse import write_tables_atomically

    write_tables_atomically(con, tables)
