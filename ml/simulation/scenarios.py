"""Stress scenarios: named, parameterised, pure transforms of the simulation inputs, and a runner.

A scenario takes a :class:`SimulationInputs` and returns a new one; nothing else changes (the input object is
never modified). Scenario windows are given in simulation days (0 = first simulated day) or as dates (then the
inputs need ``start``):

- :func:`demand_shock` (category, pct, start, weeks): demand of every product of a category x (1 + pct/100).
- :func:`promotion_spike` (products, uplift, start, days): demand of the products x (1 + uplift), optionally
  at some locations only.
- :func:`lead_time_disruption` (supplier, factor, start, weeks): orders placed with the supplier in the window
  take ``rint(L x factor)`` days.
- :func:`supplier_outage` (supplier, start, weeks): no receipts from the supplier in the window; what was due
  arrives on the first day after it.

Scaled integer demand stays integer by unbiased random rounding (floor, plus one with probability equal to the
fractional part), drawn from counter-based uniforms keyed by the scenario's ``seed``: deterministic, and the
expected demand is exactly scaled.

:func:`run_scenarios` simulates every policy on the base inputs and on each scenario with the same lead-time
random numbers, and reports KPIs per scenario x policy and which product-locations break first.
Policies are given either as fixed :class:`PolicySchedule` objects (parameters that do not react to the
scenario) or as planners ``inputs -> PolicySchedule`` that are re-run on the scenario's inputs (re-planning at
later dates then sees the shocked demand; no look-ahead if they use
:func:`ml.simulation.planning.schedule_from_planner`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ml.simulation.engine import (
    CostParams,
    InitialState,
    LeadTimeDisruption,
    LeadTimeModel,
    PolicySchedule,
    ReceiptOutage,
    SimulationResult,
    simulate,
    uniforms,
)
from ml.simulation.kpis import rollup, series_kpis

__all__ = [
    "DemandShock",
    "LeadTimeDisruptionScenario",
    "PromotionSpike",
    "Scenario",
    "ScenarioReport",
    "SimulationInputs",
    "SupplierOutage",
    "demand_shock",
    "lead_time_disruption",
    "promotion_spike",
    "run_scenarios",
    "supplier_outage",
]

BoolArray = NDArray[np.bool_]
Day = int | date


@dataclass(frozen=True)
class SimulationInputs:
    """Everything a simulation of a set of product-locations needs, so scenarios can transform it as one value.

    Attributes:
        demand: (n_series, n_days) demand to replay (on the demo: true demand).
        keys: one row per series (row i = series i): product_id, location_id and the attributes scenarios and
            roll-ups use (category, supplier_id, ...).
        lead_times: lead-time distributions (groups = suppliers).
        initial: opening stock.
        costs: unit cost, holding rate, ordering and shortage costs.
        history: optional (n_series, n_history) observations before day 0, for planners.
        start: calendar date of day 0 (optional; needed for date-valued scenario windows).
    """

    demand: NDArray
    keys: pl.DataFrame
    lead_times: LeadTimeModel
    initial: InitialState
    costs: CostParams
    history: NDArray | None = None
    start: date | None = None

    def __post_init__(self) -> None:
        n = np.shape(self.demand)[0]
        sizes = {"keys": self.keys.height, "lead_times": self.lead_times.n_series,
                 "initial": self.initial.on_hand.size, "costs": self.costs.n_series}
        if self.history is not None:
            sizes["history"] = np.shape(self.history)[0]
        bad = {k: v for k, v in sizes.items() if v != n}
        if bad:
            raise ValueError(f"demand has {n} series but {bad}")

    @property
    def n_series(self) -> int:
        return int(np.shape(self.demand)[0])

    @property
    def n_days(self) -> int:
        return int(np.shape(self.demand)[1])

    def observed(self) -> NDArray:
        """History followed by the simulated period's demand: the observation matrix for planners."""
        if self.history is None:
            return np.asarray(self.demand)
        return np.concatenate([np.asarray(self.history, dtype=np.float64), np.asarray(self.demand, np.float64)],
                              axis=1)

    @property
    def n_history(self) -> int:
        return 0 if self.history is None else int(np.shape(self.history)[1])

    def day(self, when: Day) -> int:
        """A simulation day index from an int or a date."""
        if isinstance(when, date):
            if self.start is None:
                raise ValueError("date-valued scenario windows need SimulationInputs.start")
            return (when - self.start).days
        return int(when)


# ================================================================================================================
# scenarios
# ================================================================================================================


def _scale_demand(demand: NDArray, rows: BoolArray, start: int, end: int, factor: float, seed: int) -> NDArray:
    """Demand with rows x days [start, end) multiplied by factor (integer demand stays integer, unbiased)."""
    out = np.array(demand, dtype=np.float64, copy=True)
    lo, hi = max(start, 0), min(end, out.shape[1])
    idx = np.flatnonzero(rows)
    if hi <= lo or idx.size == 0:
        return out
    block = out[np.ix_(idx, np.arange(lo, hi))]
    scaled = block * factor
    if np.all(block == np.round(block)):
        base = np.floor(scaled)
        u = uniforms(seed, np.arange(lo, hi)[None, :], idx[:, None])
        scaled = base + (u < scaled - base)
    out[np.ix_(idx, np.arange(lo, hi))] = np.maximum(scaled, 0.0)
    return out


class Scenario:
    """Base class: a named, pure transform of :class:`SimulationInputs`."""

    name: str

    def apply(self, inputs: SimulationInputs) -> SimulationInputs:  # pragma: no cover - abstract
        raise NotImplementedError

    def affected(self, inputs: SimulationInputs) -> BoolArray:  # pragma: no cover - abstract
        """(n_series,) series the scenario acts on directly."""
        raise NotImplementedError

    def start_day(self, inputs: SimulationInputs) -> int:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class DemandShock(Scenario):
    name: str
    category: str
    pct: float
    start: Day
    weeks: int
    seed: int = 0

    def affected(self, inputs: SimulationInputs) -> BoolArray:
        if "category" not in inputs.keys.columns:
            raise ValueError("demand_shock needs a category column in SimulationInputs.keys")
        mask = (inputs.keys["category"] == self.category).to_numpy()
        if not mask.any():
            raise ValueError(f"no series in category {self.category!r}")
        return mask

    def start_day(self, inputs: SimulationInputs) -> int:
        return inputs.day(self.start)

    def apply(self, inputs: SimulationInputs) -> SimulationInputs:
        s = self.start_day(inputs)
        dem = _scale_demand(inputs.demand, self.affected(inputs), s, s + 7 * self.weeks, 1.0 + self.pct / 100.0,
                            self.seed)
        return replace(inputs, demand=dem)


@dataclass(frozen=True)
class PromotionSpike(Scenario):
    name: str
    products: tuple[str, ...]
    uplift: float
    start: Day
    days: int
    locations: tuple[str, ...] | None = None
    seed: int = 0

    def affected(self, inputs: SimulationInputs) -> BoolArray:
        mask = inputs.keys["product_id"].is_in(list(self.products)).to_numpy()
        if self.locations is not None:
            mask &= inputs.keys["location_id"].is_in(list(self.locations)).to_numpy()
        if not mask.any():
            raise ValueError(f"promotion_spike: no series for products {self.products[:5]}")
        return mask

    def start_day(self, inputs: SimulationInputs) -> int:
        return inputs.day(self.start)

    def apply(self, inputs: SimulationInputs) -> SimulationInputs:
        s = self.start_day(inputs)
        dem = _scale_demand(inputs.demand, self.affected(inputs), s, s + self.days, 1.0 + self.uplift, self.seed)
        return replace(inputs, demand=dem)


@dataclass(frozen=True)
class LeadTimeDisruptionScenario(Scenario):
    name: str
    supplier: str
    factor: float
    start: Day
    weeks: int

    def affected(self, inputs: SimulationInputs) -> BoolArray:
        _check_supplier(inputs.lead_times, self.supplier)
        return inputs.lead_times.group_mask([self.supplier])

    def start_day(self, inputs: SimulationInputs) -> int:
        return inputs.day(self.start)

    def apply(self, inputs: SimulationInputs) -> SimulationInputs:
        _check_supplier(inputs.lead_times, self.supplier)
        s = self.start_day(inputs)
        w = LeadTimeDisruption((self.supplier,), s, s + 7 * self.weeks, float(self.factor))
        lt = replace(inputs.lead_times, disruptions=(*inputs.lead_times.disruptions, w))
        return replace(inputs, lead_times=lt)


@dataclass(frozen=True)
class SupplierOutage(Scenario):
    name: str
    supplier: str
    start: Day
    weeks: int

    def affected(self, inputs: SimulationInputs) -> BoolArray:
        _check_supplier(inputs.lead_times, self.supplier)
        return inputs.lead_times.group_mask([self.supplier])

    def start_day(self, inputs: SimulationInputs) -> int:
        return inputs.day(self.start)

    def apply(self, inputs: SimulationInputs) -> SimulationInputs:
        _check_supplier(inputs.lead_times, self.supplier)
        s = self.start_day(inputs)
        w = ReceiptOutage((self.supplier,), s, s + 7 * self.weeks)
        lt = replace(inputs.lead_times, outages=(*inputs.lead_times.outages, w))
        return replace(inputs, lead_times=lt)


def _check_supplier(model: LeadTimeModel, supplier: str) -> None:
    if supplier not in model.group_names:
        raise ValueError(f"supplier {supplier!r} is not a lead-time group ({list(model.group_names)[:10]})")


def demand_shock(category: str, pct: float, start: Day, weeks: int, *, name: str | None = None,
                 seed: int = 0) -> DemandShock:
    """Demand of every series in ``category`` x (1 + pct/100) for ``weeks`` weeks from ``start``."""
    return DemandShock(name or f"demand_shock[{category} {pct:+g}% {weeks}w]", category, pct, start, weeks, seed)


def promotion_spike(products: Sequence[str], uplift: float, start: Day, days: int, *,
                    locations: Sequence[str] | None = None, name: str | None = None,
                    seed: int = 0) -> PromotionSpike:
    """Demand of ``products`` x (1 + uplift) (0.5 = +50 %) for ``days`` days from ``start``."""
    prods = tuple(str(p) for p in products)
    return PromotionSpike(name or f"promotion_spike[{len(prods)} products x{1 + uplift:g} {days}d]", prods, uplift,
                          start, days, None if locations is None else tuple(locations), seed)


def lead_time_disruption(supplier: str, factor: float, start: Day, weeks: int, *,
                         name: str | None = None) -> LeadTimeDisruptionScenario:
    """Orders placed with ``supplier`` for ``weeks`` weeks from ``start`` take ``factor`` times as long."""
    return LeadTimeDisruptionScenario(name or f"lead_time_disruption[{supplier} x{factor:g} {weeks}w]", supplier,
                                      factor, start, weeks)


def supplier_outage(supplier: str, start: Day, weeks: int, *, name: str | None = None) -> SupplierOutage:
    """No receipts from ``supplier`` for ``weeks`` weeks from ``start`` (held back until the outage ends)."""
    return SupplierOutage(name or f"supplier_outage[{supplier} {weeks}w]", supplier, start, weeks)


# ================================================================================================================
# runner
# ================================================================================================================

PolicySpec = PolicySchedule | Callable[[SimulationInputs], PolicySchedule]
BASE = "base"


@dataclass(frozen=True)
class ScenarioReport:
    """What :func:`run_scenarios` found.

    Attributes:
        kpis: one row per scenario x policy (scenario ``"base"`` = no stress): the roll-up of
            :func:`ml.simulation.kpis.rollup`, plus the change of the main KPIs against the same policy's base run
            (``delta_fill_rate_volume``, ``delta_fill_rate_item_avg``, ``delta_units_short``,
            ``delta_lost_margin``, ``delta_avg_inventory_value``).
        kpis_by: the same per scenario x policy x ``by`` (empty when ``by`` is empty).
        breaks: per scenario x policy, the product-locations the scenario hurts, worst first: extra lost margin
            against the base run (then earliest break); ``first_break_day`` is the first day from the scenario
            start on which the series' cumulative shortfall exceeds its base-run shortfall, ``days_to_break`` that
            day minus the scenario start, ``affected`` whether the scenario acts on it directly. At most ``top_n``
            rows per scenario x policy.
        series: per-series KPIs of every run (only with ``keep_series=True``).
    """

    kpis: pl.DataFrame
    kpis_by: pl.DataFrame
    breaks: pl.DataFrame
    series: pl.DataFrame | None = None


def _schedule(spec: PolicySpec, inputs: SimulationInputs, name: str) -> PolicySchedule:
    sched = spec if isinstance(spec, PolicySchedule) else spec(inputs)
    return sched.with_name(name)


def _run(inputs: SimulationInputs, sched: PolicySchedule, *, rng_seed: int, measure_from: int,
         lost_sales: bool) -> SimulationResult:
    return simulate(inputs.demand, sched, inputs.lead_times, inputs.initial, costs=inputs.costs, rng_seed=rng_seed,
                    measure_from=measure_from, lost_sales=lost_sales, record_daily=("short",))


def _first_break(short_scen: NDArray, short_base: NDArray, start: int) -> NDArray[np.int64]:
    """First day >= start where cumulative shortfall (from start) exceeds the base run's by more than half a unit."""
    lo = max(start, 0)
    if lo >= short_scen.shape[1]:
        return np.full(short_scen.shape[0], -1, dtype=np.int64)
    gap = np.cumsum(short_scen[:, lo:].astype(np.float64) - short_base[:, lo:], axis=1) > 0.5
    hit = gap.any(axis=1)
    return np.where(hit, gap.argmax(axis=1) + lo, -1).astype(np.int64)


def run_scenarios(
    inputs: SimulationInputs,
    policies: Mapping[str, PolicySpec],
    scenarios: Sequence[Scenario],
    *,
    rng_seed: int,
    measure_from: int = 0,
    lost_sales: bool = True,
    by: Sequence[str] = (),
    top_n: int = 20,
    keep_series: bool = False,
) -> ScenarioReport:
    """Simulate every policy on the base inputs and under every scenario; KPIs and break-first ranking.

    All runs share ``rng_seed`` (common random lead times), so differences come from the scenario.
    """
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names) or BASE in names:
        raise ValueError(f"scenario names must be unique and not {BASE!r}")
    keys = inputs.keys
    margin = inputs.costs.unit_margin
    all_series, kpi_rows, kpi_by_rows, break_rows = [], [], [], []

    base_runs: dict[str, SimulationResult] = {}
    for pname, spec in policies.items():
        base_runs[pname] = _run(inputs, _schedule(spec, inputs, pname), rng_seed=rng_seed,
                                measure_from=measure_from, lost_sales=lost_sales)

    def record(scenario: str, result: SimulationResult) -> pl.DataFrame:
        sk = series_kpis(result, keys).with_columns(pl.lit(scenario).alias("scenario"))
        if keep_series:
            all_series.append(sk)
        kpi_rows.append(rollup(sk, ["scenario"]))
        if by:
            kpi_by_rows.append(rollup(sk, ["scenario", *by]))
        return sk

    for res in base_runs.values():
        record(BASE, res)

    for sc in scenarios:
        scen_inputs = sc.apply(inputs)
        start = sc.start_day(inputs)
        affected = sc.affected(inputs)
        for pname, spec in policies.items():
            res = _run(scen_inputs, _schedule(spec, scen_inputs, pname), rng_seed=rng_seed,
                       measure_from=measure_from, lost_sales=lost_sales)
            record(sc.name, res)
            base = base_runs[pname]
            extra_short = res.short - base.short
            first = _first_break(res.daily["short"], base.daily["short"], max(start, measure_from))
            frame = pl.concat([
                keys,
                pl.DataFrame({
                    "scenario": [sc.name] * inputs.n_series,
                    "policy": [pname] * inputs.n_series,
                    "affected": affected,
                    "fill_rate_base": base.fill_rate,
                    "fill_rate_scenario": res.fill_rate,
                    "fill_rate_drop": base.fill_rate - res.fill_rate,
                    "extra_units_short": extra_short,
                    "extra_lost_margin": extra_short * margin,
                    "first_break_day": first,
                    "days_to_break": np.where(first >= 0, first - start, -1),
                }).with_columns(pl.col(pl.Float64).fill_nan(None)),
            ], how="horizontal")
            broken = (frame.filter((pl.col("extra_units_short") > 0.5) | (pl.col("first_break_day") >= 0))
                      .with_columns(pl.when(pl.col("first_break_day") >= 0).then(pl.col("first_break_day"))
                                    .otherwise(None).alias("_fb"))
                      .sort(["extra_lost_margin", "_fb"], descending=[True, False], nulls_last=True)
                      .drop("_fb").head(top_n)
                      .with_row_index("rank", offset=1))
            break_rows.append(broken)

    kpis = pl.concat(kpi_rows, how="diagonal_relaxed")
    base_cols = ["fill_rate_volume", "fill_rate_item_avg", "units_short", "lost_margin", "avg_inventory_value"]
    base_kpis = kpis.filter(pl.col("scenario") == BASE).select(
        "policy", *[pl.col(c).alias(f"_base_{c}") for c in base_cols])
    kpis = (kpis.join(base_kpis, on="policy", how="left")
            .with_columns([(pl.col(c) - pl.col(f"_base_{c}")).alias(f"delta_{c}") for c in base_cols])
            .drop([f"_base_{c}" for c in base_cols]))
    return ScenarioReport(
        kpis=kpis,
        kpis_by=pl.concat(kpi_by_rows, how="diagonal_relaxed") if kpi_by_rows else pl.DataFrame(),
        breaks=pl.concat(break_rows, how="diagonal_relaxed") if break_rows else pl.DataFrame(),
        series=pl.concat(all_series, how="diagonal_relaxed") if keep_series else None,
    )
