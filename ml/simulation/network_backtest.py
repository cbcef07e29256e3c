"""The two-echelon policy backtest (issue 9): stockturn's DC and store policy, exactly as the pipeline writes it,
against the classical per-location reorder point, on the network the warehouse describes.

Network: :mod:`ml.simulation.network_inputs` (suppliers -> DC -> stores, transfer and supplier lead times, the DC
ships only what it holds, fair share by need when short; :func:`ml.simulation.network.simulate_network`). Both
policies run on the same network with the same demand and lead-time random numbers.

Policies (re-planned on the first of every month and every ``replan_every_days`` days in between, with nothing
after the day before):

* ``stockturn``: the rows ``ml.inventory_policy`` gets at each planning date (``run_forecasting`` on the first of
  the month, ``run_policy`` as of the planning date from the latest forecast,
  :func:`ml.simulation.stockturn_planner.pipeline_policy`): for every store and DC
  series its reorder point, order quantity, MOQ, pack size and review period **as written** (no re-expression).
  A series the pipeline leaves without a row (not forecast) uses the classical rule at z = 1.645 (counted).
* ``classical`` (what an ERP does): each location sets its own (s, Q) from its own recorded history: stores from
  their sales, the DC from its shipments to stores; normal lead-time demand over its own measured lead time (the
  transfer lane for stores, the supplier for the DC) plus its review period; Q by the same EOQ rule with the
  location's ordering cost (transfer line / supplier line), MOQ and pack.

Matched service on a grid of DC x store safety factors: for each DC factor, the store factor is scanned and matched
to stockturn's customer fill on both measures (:func:`ml.simulation.matching.match_service`, the larger of the
two); the comparison uses the DC factor whose matched network inventory (stores + DC, average value at cost) is
the cheapest. The DC grid (``BacktestConfig.dc_z_grid``) is extended by 0.5 at a time, up to ``max_z``, while no
DC factor matches or while the cheapest match is at the top of what was scanned. The CI is the product bootstrap
at that DC factor (it does not include the choice of the DC factor).

Replay seeds (``BacktestConfig.replay_seeds``, default 1): the lead-time draws are random, and at the high fills
both policies reach, the textbook's curve is steep enough that one draw can move the matched comparison by many
points (docs/backtest.md). With ``replay_seeds = n`` every policy the match compares is replayed under the draws
of seeds ``rng_seed .. rng_seed + n - 1``: fills are pooled over the n replays, inventory is their mean, and the
bootstrap resamples a product with all its replays. The per-category, per-series and promise tables are those
of the first draw.

Also reported: bullwhip per echelon (store requests / customer demand; DC supplier orders / customer demand of
its stores), inventory by echelon and category, the promise (stockturn's expected fill per store series, averaged
over planning dates) against the delivered fill by segment, and the perfect-foresight bound (stores with perfect
foresight over their transfer lead time, from a DC that never runs short and holds nothing: the least stock any
policy could hold at 100 % fill), with the share of the classical-to-bound gap that stockturn closes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from ml.simulation.engine import PolicySchedule, SimulationResult, simulate
from ml.simulation.kpis import history_segments, promise_row, rollup, series_kpis
from ml.simulation.matching import MatchResult, Outcome, match_service, reaches
from ml.simulation.network import NetworkResult, simulate_network
from ml.simulation.network_inputs import NetworkReplayInputs
from ml.simulation.planning import (
    PlanningContext,
    PlanParams,
    classical_planner,
    forecast_day,
    month_start_days,
    replan_days,
    schedule_from_planner,
)
from ml.simulation.scenarios import (
    DemandShock,
    LeadTimeDisruptionScenario,
    PromotionSpike,
    Scenario,
    SupplierOutage,
)

log = logging.getLogger("stockturn.simulation")

__all__ = ["NetworkStockturnPlanner", "classical_location_planner", "network_outcome", "run_network_study"]

#: safety factors of the DC in the classical scan (the store factor uses BacktestConfig.z_grid)
DC_Z_GRID: tuple[float, ...] = tuple(np.round(np.arange(-0.5, 3.51, 0.5), 2))


# ================================================================================================================
# planners
# ================================================================================================================


def classical_location_planner(z: float, *, lead_times, unit_cost: np.ndarray, ordering_cost: float,
                               moq: np.ndarray, pack_size: np.ndarray, review_period: int, window_days: int,
                               policy_config) -> Callable[[PlanningContext], PlanParams]:
    """A location's own classical (s, Q): normal reorder point at safety factor ``z`` from the trailing
    ``window_days`` of its observed demand (``classical_planner``), Q from
    ``ml.policy.inventory_math.order_quantity`` of the trailing mean with ``ordering_cost`` per line, MOQ and pack
    size; order up to s + Q."""
    from ml.policy import inventory_math

    base = classical_planner(z, lead_time_mean=lead_times.mean_days(), lead_time_sd=lead_times.sd_days(),
                             review_period=review_period, window_days=window_days, moq=moq, pack_size=pack_size)
    c = policy_config
    n = unit_cost.size

    def plan(ctx: PlanningContext) -> PlanParams:
        p = base(ctx)
        mu = ctx.observed[:, -window_days:].mean(axis=1)
        _, q = inventory_math.order_quantity(mu, unit_cost, np.full(n, float(ordering_cost)),
                                             annual_holding_rate=c.annual_holding_rate,
                                             min_cover_days=c.min_order_cover_days,
                                             max_cover_days=c.max_order_cover_days,
                                             moq=moq, pack_size=pack_size, days_per_year=c.days_per_year)
        s = np.asarray(p.reorder_point, dtype=np.float64)
        return PlanParams(reorder_point=s, order_up_to=s + q, moq=moq, pack_size=pack_size,
                          review_period=review_period)

    return plan


@dataclass
class NetworkStockturnPlanner:
    """stockturn's plan for both echelons at each planning date, as ``ml.inventory_policy`` holds it.

    ``store_planner`` and ``dc_planner`` are the two :data:`~ml.simulation.planning.Planner` views; the pipeline
    runs once per planning date (memoised; cached on disk by :func:`pipeline_policy`)."""

    warehouse: Path | str
    store_keys: pl.DataFrame
    dc_keys: pl.DataFrame
    start: date
    forecast_config: object
    policy_config: object
    store_fallback: Callable[[PlanningContext], PlanParams]
    dc_fallback: Callable[[PlanningContext], PlanParams]
    cache_dir: Path | None = None
    #: the days forecasting runs (sorted, the first 0); a plan on another day re-plans from the latest of them
    forecast_days: tuple[int, ...] = (0,)
    stats: list[dict] = field(default_factory=list)
    targets: dict[str, list[pl.DataFrame]] = field(default_factory=lambda: {"store": [], "dc": []})
    _memo: dict[int, tuple[pl.DataFrame, float]] = field(default_factory=dict)

    def _policy(self, day: int) -> tuple[pl.DataFrame, float]:
        from ml.simulation.stockturn_planner import NETWORK_POLICY_COLUMNS, pipeline_policy
        from ml.warehouse import connect

        if day not in self._memo:
            as_of = self.start + timedelta(days=day - 1)
            made = self.start + timedelta(days=forecast_day(day, self.forecast_days) - 1)
            with connect(self.warehouse, read_only=True) as con:
                self._memo[day] = pipeline_policy(con, self.forecast_config, self.policy_config, as_of,
                                                  self.cache_dir, columns=NETWORK_POLICY_COLUMNS,
                                                  forecast_as_of=made)
        return self._memo[day]

    def _plan(self, ctx: PlanningContext, echelon: str) -> PlanParams:
        t0 = time.perf_counter()
        keys = self.store_keys if echelon == "store" else self.dc_keys
        fallback = self.store_fallback if echelon == "store" else self.dc_fallback
        pol, seconds = self._policy(ctx.day)
        j = keys.select("product_id", "location_id").join(pol, on=["product_id", "location_id"], how="left",
                                                          maintain_order="left")
        has = j["reorder_point"].is_not_null().to_numpy()
        rows, missing = np.flatnonzero(has), np.flatnonzero(~has)
        n = keys.height
        fb = fallback(ctx)

        def col(name: str, default: np.ndarray | float) -> np.ndarray:
            out = np.broadcast_to(np.asarray(default, dtype=np.float64), (n,)).copy()
            out[rows] = j[name].to_numpy()[rows].astype(np.float64)
            return out

        def fb_arr(v) -> np.ndarray:
            return np.broadcast_to(np.asarray(v, dtype=np.float64), (n,))

        r = col("reorder_point", fb_arr(fb.reorder_point))
        q = np.where(has, j["order_quantity"].fill_null(0.0).to_numpy().astype(np.float64),
                     fb_arr(fb.order_up_to) - fb_arr(fb.reorder_point))
        moq = col("min_order_qty", fb_arr(fb.moq))
        pack = np.maximum(col("pack_size", fb_arr(fb.pack_size)), 1.0)
        review = np.maximum(np.rint(col("review_period_days", fb_arr(fb.review_period))), 1.0)
        self.targets[echelon].append(pl.DataFrame({
            "day": np.full(rows.size, ctx.day, dtype=np.int64), "series": rows.astype(np.int64),
            "expected_fill_rate": j["expected_fill_rate"].to_numpy()[rows].astype(np.float64),
            "daily_demand_forecast": j["daily_demand_forecast"].to_numpy()[rows].astype(np.float64),
            "safety_stock": j["safety_stock"].to_numpy()[rows].astype(np.float64),
            "reorder_point": r[rows], "order_quantity": q[rows]}))
        self.stats.append({"day": ctx.day, "as_of": (self.start + timedelta(days=ctx.day - 1)).isoformat(),
                           "echelon": echelon, "forecast_seconds": round(seconds, 1),
                           "plan_seconds": round(time.perf_counter() - t0, 1), "series_planned": int(rows.size),
                           "series_fallback": int(missing.size), "mode": "as_written"})
        if echelon == "store":
            log.info("stockturn plan for day %d (ml.inventory_policy as written): %d store + DC rows%s", ctx.day,
                     pol.height, " (cached)" if seconds == 0 else f", pipeline {seconds:.0f} s")
        echelon_offset = None
        if echelon == "dc":
            # a DC row that orders on its echelon position carries its stores' planned stock (NaN: its own position)
            echelon_offset = col("echelon_store_target_units", np.nan)
        return PlanParams(reorder_point=r, order_up_to=r + q, moq=moq, pack_size=pack, review_period=review,
                          echelon_offset=echelon_offset)

    def store_planner(self, ctx: PlanningContext) -> PlanParams:
        return self._plan(ctx, "store")

    def dc_planner(self, ctx: PlanningContext) -> PlanParams:
        return self._plan(ctx, "dc")


# ================================================================================================================
# outcomes
# ================================================================================================================


def network_outcome(run: NetworkResult) -> Outcome:
    """Per store series: customer demand and service, and inventory = the store's + an equal share of its DC
    series' (so sums over a product, the bootstrap unit, are the product's network inventory)."""
    n_children = np.bincount(run.parent, minlength=run.dc.n_series).astype(np.float64)
    dc_share = run.dc.avg_inventory_value[run.parent] / n_children[run.parent]
    return Outcome(run.stores.demanded, run.stores.served, run.stores.avg_inventory_value + dc_share)


@dataclass
class NetworkStudy:
    """What :func:`run_network_study` returns to :func:`ml.simulation.backtest.run_backtest`."""

    runs: dict[str, NetworkResult]
    match: MatchResult
    settings: dict[str, tuple[float, float]]  # policy -> (store z, DC z)
    dc_choice: pl.DataFrame  # per DC z: matched store z and network inventory
    targets: dict[str, pl.DataFrame]
    planner_stats: list[dict]
    perfect_foresight: SimulationResult | None
    schedules: dict[str, tuple[PolicySchedule, PolicySchedule]]
    timings: dict[str, float]


def run_network_study(warehouse: Path | str, net: NetworkReplayInputs, config, *, forecast_config, policy_config,
                      cache_dir: Path | None, level: int = logging.INFO) -> NetworkStudy:
    """Plan both policies, scan the classical DC x store grid, match, and simulate the runs reported."""
    from ml.simulation.stockturn_planner import prefetch_forecast_runs

    timings: dict[str, float] = {}
    st_in, dc_in = net.stores, net.dc
    pc, fc = policy_config, forecast_config
    forecast_days = month_start_days(st_in.start, st_in.n_days)
    plan_days = replan_days(st_in.start, st_in.n_days, int(getattr(config, "replan_every_days", 0)))
    store_review = int(fc.review_period_store_days)
    dc_review = int(fc.review_period_supplier_days)
    window = int(config.classical_window_days)

    def store_classical(z: float):
        return classical_location_planner(
            z, lead_times=st_in.lead_times, unit_cost=st_in.costs.unit_cost, ordering_cost=pc.transfer_cost_per_line,
            moq=st_in.keys["supplier_moq"].to_numpy().astype(float),
            pack_size=st_in.keys["supplier_pack_size"].to_numpy().astype(float), review_period=store_review,
            window_days=window, policy_config=pc)

    def dc_classical(z: float):
        return classical_location_planner(
            z, lead_times=dc_in.lead_times, unit_cost=dc_in.costs.unit_cost, ordering_cost=pc.ordering_cost_per_line,
            moq=dc_in.keys["supplier_moq"].to_numpy().astype(float),
            pack_size=dc_in.keys["supplier_pack_size"].to_numpy().astype(float), review_period=dc_review,
            window_days=window, policy_config=pc)

    def sched(planner, observed: np.ndarray, inputs, name: str) -> PolicySchedule:
        return schedule_from_planner(plan_days, observed, planner, n_history=inputs.n_history,
                                     lead_times=inputs.lead_times, start=inputs.start, rule="s_S", name=name)

    def sim(ss: PolicySchedule, ds: PolicySchedule, stores=st_in, dc=dc_in, seed: int | None = None) -> NetworkResult:
        return simulate_network(stores.demand, net.parent, ss, ds, stores.lead_times, dc.lead_times,
                                stores.initial, dc.initial, store_costs=stores.costs, dc_costs=dc.costs,
                                rng_seed=config.rng_seed if seed is None else seed)

    # the match pools the replays of several lead-time draws (module doc: ``replay_seeds``); the runs reported
    # per category and series are those of the first draw
    seeds = [int(config.rng_seed) + k for k in range(max(1, int(getattr(config, "replay_seeds", 1))))]

    def pooled(ss: PolicySchedule, ds: PolicySchedule, first: NetworkResult | None = None) -> Outcome:
        outs = [network_outcome(first if (first is not None and k == 0) else sim(ss, ds, seed=seed))
                for k, seed in enumerate(seeds)]
        if len(outs) == 1:
            return outs[0]
        return Outcome(np.concatenate([o.demanded for o in outs]), np.concatenate([o.served for o in outs]),
                       np.concatenate([o.inventory for o in outs]) / len(outs))

    # ---------------------------------------------------------------- stockturn, as written
    t = time.perf_counter()
    prefetch_forecast_runs(warehouse, fc, [st_in.start + timedelta(days=int(d) - 1) for d in forecast_days],
                           cache_dir, workers=getattr(config, "forecast_workers", None), level=level)
    planner = NetworkStockturnPlanner(warehouse, st_in.keys, dc_in.keys, st_in.start, fc, pc,
                                      store_fallback=store_classical(config.classical_z),
                                      dc_fallback=dc_classical(config.classical_z), cache_dir=cache_dir,
                                      forecast_days=tuple(int(d) for d in forecast_days))
    log.log(level, "backtest: stockturn's network plan at %d planning dates (forecasting at %d of them, the policy "
            "re-planned from the latest forecast at the others)", len(plan_days), len(forecast_days))
    st_sched = (sched(planner.store_planner, net.store_observed, st_in, "stockturn"),
                sched(planner.dc_planner, net.dc_observed, dc_in, "stockturn"))
    timings["stockturn_planning_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    st = sim(*st_sched)
    st_out = pooled(*st_sched, first=st)
    timings["simulate_stockturn_s"] = round(time.perf_counter() - t, 2)

    # ---------------------------------------------------------------- classical DC x store grid
    t = time.perf_counter()
    s_scheds: dict[float, PolicySchedule] = {}
    d_scheds: dict[float, PolicySchedule] = {}

    def s_sched(z: float) -> PolicySchedule:
        if z not in s_scheds:
            s_scheds[z] = sched(store_classical(z), net.store_observed, st_in, f"classical_s{z:g}")
        return s_scheds[z]

    def d_sched(z: float) -> PolicySchedule:
        if z not in d_scheds:
            d_scheds[z] = sched(dc_classical(z), net.dc_observed, dc_in, f"classical_d{z:g}")
        return d_scheds[z]

    clusters = np.tile(st_in.keys["product_id"].to_numpy(), len(seeds))  # a product's replays resample together
    dc_grid = tuple(float(z) for z in getattr(config, "dc_z_grid", DC_Z_GRID))
    scans: dict[float, dict[float, Outcome]] = {}
    choice_rows = []

    def scan_dc(zd: float) -> float:
        """Scan the store factor at DC factor ``zd``; the matched network inventory (NaN: not reached)."""
        scan: dict[float, Outcome] = {}
        for zs in config.z_grid:
            scan[float(zs)] = pooled(s_sched(float(zs)), d_sched(zd))
        z = float(max(config.z_grid))
        while z < config.max_z and not reaches(scan[z], st_out):
            z = round(z + 0.5, 2)
            scan[z] = pooled(s_sched(z), d_sched(zd))
        scans[zd] = scan
        m = match_service(st_out, scan, clusters, n_boot=0)
        choice_rows.append({"dc_z": zd, "store_z": m.matched_param, "inventory": m.baseline_inventory,
                            "fill_volume": m.baseline_fill_volume, "fill_item_avg": m.baseline_fill_item})
        log.log(level, "backtest: classical with DC z = %.2f: store z matching stockturn %.2f, network inventory "
                "%s", zd, m.matched_param, f"{m.baseline_inventory:,.0f}" if np.isfinite(m.baseline_inventory)
                else "- (not reached)")
        return float(m.baseline_inventory)

    inventory = {zd: scan_dc(zd) for zd in dc_grid}
    # a DC that must cover long, variable supplier lead times can need a far higher factor than the grid's top:
    # extend it (z + 0.5 at a time, up to max_z) while no DC setting lets the stores reach stockturn's fills, or
    # while the cheapest match found is at the top of what was scanned (the optimum may lie beyond it)
    zd = float(max(dc_grid))
    while zd < config.max_z:
        found = {k: v for k, v in inventory.items() if np.isfinite(v)}
        if found and min(found, key=found.get) < zd:
            break
        zd = round(zd + 0.5, 2)
        inventory[zd] = scan_dc(zd)
    dc_choice = pl.DataFrame(choice_rows, schema={"dc_z": pl.Float64, "store_z": pl.Float64,
                                                  "inventory": pl.Float64, "fill_volume": pl.Float64,
                                                  "fill_item_avg": pl.Float64})
    timings["classical_scan_s"] = round(time.perf_counter() - t, 2)
    finite = dc_choice.filter(pl.col("inventory").is_not_nan() & pl.col("inventory").is_not_null())
    best_dc = float(finite.sort("inventory")["dc_z"][0]) if finite.height else float(max(scans))
    t = time.perf_counter()
    match = match_service(st_out, scans[best_dc], clusters, n_boot=config.n_boot, seed=config.bootstrap_seed)
    timings["match_bootstrap_s"] = round(time.perf_counter() - t, 2)

    runs = {"stockturn": st}
    schedules = {"stockturn": st_sched}
    settings: dict[str, tuple[float, float]] = {"classical": (config.classical_z, config.classical_z)}
    schedules["classical"] = (s_sched(config.classical_z), d_sched(config.classical_z))
    runs["classical"] = sim(*schedules["classical"])
    if np.isfinite(match.matched_param):
        zs = float(match.matched_param)
        schedules["classical_matched"] = (sched(store_classical(zs), net.store_observed, st_in, "classical_matched"),
                                          d_sched(best_dc))
        runs["classical_matched"] = sim(*schedules["classical_matched"])
        settings["classical_matched"] = (zs, best_dc)
    pf = None
    if config.include_perfect_foresight:
        pf_sched = PolicySchedule.perfect_foresight(st_in.n_series, review_period=store_review,
                                                    moq=st_in.keys["supplier_moq"].to_numpy().astype(float),
                                                    pack_size=st_in.keys["supplier_pack_size"].to_numpy().astype(float))
        pf = simulate(st_in.demand, pf_sched, st_in.lead_times, st_in.initial, costs=st_in.costs,
                      rng_seed=config.rng_seed)
    targets = {e: (pl.concat(v) if v else pl.DataFrame()) for e, v in planner.targets.items()}
    return NetworkStudy(runs, match, settings, dc_choice, targets, planner.stats, pf, schedules, timings)


# ================================================================================================================
# frames
# ================================================================================================================


def network_series(runs: Mapping[str, NetworkResult], net: NetworkReplayInputs) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(store series KPIs, DC series KPIs) of every run, with an ``echelon`` column."""
    skeys = net.stores.keys.select("product_id", "location_id", "category")
    dkeys = net.dc.keys.select("product_id", "location_id", "category")
    stores = pl.concat([series_kpis(r.stores, skeys).with_columns(pl.lit(name).alias("policy"))
                        for name, r in runs.items()])
    dc = pl.concat([series_kpis(r.dc, dkeys).with_columns(pl.lit(name).alias("policy")) for name, r in runs.items()])
    return stores.with_columns(pl.lit("store").alias("echelon")), dc.with_columns(pl.lit("dc").alias("echelon"))


_MONEY = ("avg_inventory_value", "holding_cost", "ordering_cost", "total_cost", "avg_on_hand_units")


def network_rollup(stores: pl.DataFrame, dc: pl.DataFrame, by: Sequence[str] = ()) -> pl.DataFrame:
    """Customer-facing KPIs of the stores (fills, stock-outs, COGS) with the network's inventory and costs: the
    DC's inventory, holding and ordering costs added, turnover and days of supply recomputed on the total."""
    s = rollup(stores, by)
    d = rollup(dc, by).select("policy", *by, *[pl.col(c).alias(f"_dc_{c}") for c in _MONEY])
    out = s.join(d, on=["policy", *by], how="left").with_columns(
        [(pl.col(c) + pl.col(f"_dc_{c}").fill_null(0.0)).alias(c) for c in _MONEY])
    return out.drop([f"_dc_{c}" for c in _MONEY]).with_columns(
        pl.when(pl.col("avg_inventory_value") > 0)
        .then(pl.col("cogs") * 365.0 / pl.col("measured_days") / pl.col("avg_inventory_value")).alias("turnover"),
        pl.when(pl.col("cogs") > 0)
        .then(pl.col("avg_inventory_value") / (pl.col("cogs") / pl.col("measured_days"))).alias("days_of_supply"))


def bullwhip_by_echelon(runs: Mapping[str, NetworkResult]) -> dict[str, dict[str, float]]:
    """Per policy: pooled bullwhip ratios (daily and weekly) at the stores and the DC (module doc)."""
    return {name: {k: round(v, 4) for k, v in r.bullwhip_pooled().items()} for name, r in runs.items()}


def apply_to_network(scenario: Scenario, net: NetworkReplayInputs) -> NetworkReplayInputs:
    """A stress scenario on the network: demand scenarios act on the stores' customer demand, supplier scenarios
    (lead-time disruption, outage) on the DC's supplier lead times."""
    if isinstance(scenario, (DemandShock, PromotionSpike)):
        return replace(net, stores=scenario.apply(net.stores))
    if isinstance(scenario, (LeadTimeDisruptionScenario, SupplierOutage)):
        return replace(net, dc=scenario.apply(net.dc))
    raise ValueError(f"scenario {scenario.name!r} ({type(scenario).__name__}) has no network form")


def _levels(stores: pl.DataFrame, dc: pl.DataFrame, bullwhip: Mapping[str, Mapping[str, float]]) -> pl.DataFrame:
    both = pl.concat([stores, dc], how="diagonal_relaxed")
    echelon = pl.concat([
        rollup(stores).with_columns(pl.lit("store").alias("location_id"),
                                    pl.col("policy").replace_strict({k: v["store"] for k, v in bullwhip.items()},
                                                                    default=None, return_dtype=pl.Float64)
                                    .alias("bullwhip_pooled")),
        rollup(dc).with_columns(pl.lit("dc").alias("location_id"),
                                pl.col("policy").replace_strict({k: v["dc"] for k, v in bullwhip.items()},
                                                                default=None, return_dtype=pl.Float64)
                                .alias("bullwhip_pooled")),
    ], how="diagonal_relaxed")
    overall = network_rollup(stores, dc).with_columns(
        pl.col("policy").replace_strict({k: v["dc"] for k, v in bullwhip.items()}, default=None,
                                        return_dtype=pl.Float64).alias("bullwhip_pooled"))
    return pl.concat([
        overall.with_columns(pl.lit("overall").alias("level")),
        network_rollup(stores, dc, ["category"]).with_columns(pl.lit("category").alias("level")),
        echelon.with_columns(pl.lit("echelon").alias("level")),
        rollup(both, ["location_id"]).with_columns(pl.lit("location").alias("level")),
        rollup(both, ["category", "product_id", "location_id"]).with_columns(pl.lit("product_location").alias("level")),
    ], how="diagonal_relaxed")


def warmup_days(net: NetworkReplayInputs, dc_review_days: int) -> int:
    """Days before an order the plan places on the first day can be on the DC's shelf for most items: the 90th
    percentile of the DC series' mean supplier lead times plus the DC's review period (0 without DC series).
    Until then every policy lives on the opening stock the data gave it."""
    if net.dc.n_series == 0:
        return 0
    return int(np.ceil(np.quantile(net.dc.lead_times.mean_days(), 0.9))) + int(dc_review_days)


def _daily_short(study: NetworkStudy, net: NetworkReplayInputs,
                 rng_seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per echelon: (daily demand, daily short) of stockturn's replay (run again with the study's seed, so the
    same days), a DC's demand being its stores' requests."""
    ss, ds = study.schedules["stockturn"]
    st, dc = net.stores, net.dc
    r = simulate_network(st.demand, net.parent, ss, ds, st.lead_times, dc.lead_times, st.initial, dc.initial,
                         store_costs=st.costs, dc_costs=dc.costs, rng_seed=rng_seed,
                         record_daily=["orders", "short"])
    requests = np.zeros((dc.n_series, st.demand.shape[1]))
    np.add.at(requests, net.parent, r.stores.daily["orders"])
    return {"store": (np.asarray(st.demand, dtype=np.float64), r.stores.daily["short"]),
            "dc": (requests, r.dc.daily["short"])}


def promise_table(study: NetworkStudy, net: NetworkReplayInputs, warmup: int = 0,
                  rng_seed: int = 0) -> pl.DataFrame:
    """Promised (stockturn's expected fill, mean over planning dates) vs delivered fill of stockturn, by echelon and
    (stores) demand segment: volume-weighted (by forecast / by demand) and item average.

    ``warmup`` > 0 adds the fill delivered from that day on (``*_after_warmup``): a promise is a steady-state
    figure, and before the plan's first supplier orders can arrive (:func:`warmup_days`) the replay runs on the
    opening stock the data gave it, whatever the plan says. Both are reported; neither replaces the other. A
    replay shorter than the warm-up has no such columns."""
    measured = 0 < warmup < net.stores.n_days and "stockturn" in study.schedules
    daily = _daily_short(study, net, rng_seed) if measured else {}
    rows = []
    for echelon, res, keys in (("store", study.runs["stockturn"].stores, net.stores.keys),
                               ("dc", study.runs["stockturn"].dc, net.dc.keys)):
        tg = study.targets.get(echelon)
        if tg is None or tg.is_empty():
            continue
        per = tg.group_by("series").agg(pl.col("expected_fill_rate").mean(), pl.col("daily_demand_forecast").mean())
        segment = (history_segments(net.store_observed[:, : net.stores.n_history]) if echelon == "store"
                   else np.full(keys.height, "all"))
        cols = {"series": np.arange(keys.height), "demanded": res.demanded, "served": res.served,
                "segment": segment}
        if echelon in daily:
            dem_d, short_d = daily[echelon]
            cols["demanded_late"] = dem_d[:, warmup:].sum(axis=1)
            cols["served_late"] = cols["demanded_late"] - short_d[:, warmup:].sum(axis=1)
        frame = pl.DataFrame(cols).join(per, on="series", how="inner").filter(pl.col("demanded") > 0)
        groups = [("all", frame)]
        if echelon == "store":
            groups += [(str(key[0]), g) for key, g in frame.group_by("segment")]
        for seg, grp in groups:
            row = {"echelon": echelon, "segment": seg, **promise_row(
                grp["expected_fill_rate"].to_numpy(), grp["daily_demand_forecast"].to_numpy(),
                grp["demanded"].to_numpy(), grp["served"].to_numpy())}
            if "demanded_late" in grp.columns:
                late = grp.filter(pl.col("demanded_late") > 0)
                d_l, s_l = late["demanded_late"].to_numpy(), late["served_late"].to_numpy()
                row.update({"warmup_days": warmup, "n_series_after_warmup": late.height,
                            "delivered_volume_after_warmup": float(s_l.sum() / d_l.sum()) if d_l.sum() else None,
                            "delivered_item_avg_after_warmup": float((s_l / d_l).mean()) if late.height else None})
            rows.append(row)
    return pl.DataFrame(rows).sort("echelon", "segment", descending=[True, False]) if rows else pl.DataFrame()


def inventory_by(study: NetworkStudy, net: NetworkReplayInputs) -> pl.DataFrame:
    """Average inventory value at cost per policy x echelon x category (where the stock sits)."""
    frames = []
    for name, r in study.runs.items():
        for echelon, res, keys in (("store", r.stores, net.stores.keys), ("dc", r.dc, net.dc.keys)):
            frames.append(pl.DataFrame({"policy": name, "echelon": echelon, "category": keys["category"],
                                        "avg_inventory_value": res.avg_inventory_value}))
    return (pl.concat(frames).group_by("policy", "echelon", "category").agg(pl.col("avg_inventory_value").sum())
            .sort("policy", "echelon", "category"))
