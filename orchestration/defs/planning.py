"""Demand planning in two assets, written back to ``ml.*``: forecasting, then the replenishment policy.

* ``demand_forecasting`` wraps ``ml.forecasting.run_forecasting``: ``ml.demand_forecast``,
  ``ml.forecast_backtest``, ``ml.lead_time_demand`` and ``ml.lead_time_demand_samples`` (the draws in full),
  stamped with one :class:`ml.warehouse.RunInfo` and replaced in one ``write_tables_atomically`` call.
* ``replenishment_policy`` wraps ``ml.policy.run_policy`` over the forecast run the warehouse holds (read back
  losslessly, :func:`read_forecast_run`) and the planning seeds: ``ml.inventory_policy``,
  ``ml.purchase_proposals`` and ``ml.exceptions``, stamped with their own run id and the ``forecast_run_id`` they
  were planned from, replaced in one call. The seeds are upstream of this asset only, so a planner's edit of
  ``seeds/service_levels.csv`` or ``seeds/planner_overrides.csv`` makes the policy stale, not the forecast:
  ``stockturn replan`` re-plans in the time of the policy step.

A failure anywhere in a step leaves that step's previous tables as they were. The forecasting and policy knobs
come from the planning settings file (``stockturn.toml`` beside the warehouse, or run config ``settings_file``;
see :mod:`ml.planning_settings`) overridden by run config (``forecast`` -> ``ForecastConfig.from_dict``,
``policy`` -> ``PolicyConfig.from_dict``); with neither, the documented defaults.

The checks on the results (:mod:`ml.plan_checks`, reported as asset checks by :mod:`orchestration.defs.checks`)
run on the stamped frames **before** the write-back: when a blocking one fails nothing is written, the previous
plan stays, and the step fails naming the checks. Every outcome is kept in ``audit.plan_check_results``.
"""

import math
import numbers
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field

from ml.plan_checks import blocking_failures, checks_for_stage, evaluate_forecast_checks, record_plan_checks
from ml.warehouse import ML_SCHEMA, RunInfo, connect, write_tables_atomically
from orchestration.defs import checks
from orchestration.defs.resources import WAREHOUSE_POOL, StockturnPaths

GROUP = "planning"
FORECAST_TABLES = {
    "demand_forecast": "Daily demand forecast per product x location over the horizon: mean and quantiles.",
    "forecast_backtest": "Rolling-origin backtest of every candidate model: accuracy, bias, interval coverage.",
    "lead_time_demand": "Distribution of demand over each series' protection interval (lead time + review period).",
    "lead_time_demand_samples": "The lead-time-demand draws in full (what the policy step reads back to re-plan "
    "without forecasting again).",
}
POLICY_TABLES = {
    "inventory_policy": "Safety stock, reorder point and order quantity per product x location.",
    "purchase_proposals": "Proposed purchase orders and transfers for the as-of date.",
    "exceptions": "Series the planner should look at: short history, no lead time, stock-out risk, overrides.",
}
ML_TABLES = {**FORECAST_TABLES, **POLICY_TABLES}
ML_KEYS = {name: dg.AssetKey([ML_SCHEMA, name]) for name in ML_TABLES}

#: Marts the forecasting and policy stages read (besides the planning seeds, added from the manifest).
PLANNING_INPUT_MARTS = (
    "dim_product",
    "dim_location",
    "dim_supplier",
    "fct_sales_daily",
    "fct_inventory_daily",
    "fct_purchase_receipts",
    "fct_days_of_supply",
    "fct_inventory_discrepancies",
)
#: Other models they read ([schema, name]).
PLANNING_INPUT_MODELS = (
    ("staging", "stg_sales__prices"),
    ("staging", "stg_sales__promotions"),
    ("staging", "stg_logistics__transfers"),
    ("intermediate", "int_promotion_days"),
    ("staging", "stg_calendar__events"),
    ("staging", "stg_external__signals"),
)


class ForecastSettings(dg.PermissiveConfig):
    """Overrides of ``ml.forecasting.ForecastConfig`` (any of its fields, e.g. ``horizon_days: 56``,
    ``n_samples: 500``, ``models: [seasonal_naive, lightgbm]``); unset fields keep their documented defaults."""


class PolicySettings(dg.PermissiveConfig):
    """Overrides of ``ml.policy.PolicyConfig`` (any of its fields); unset fields keep their documented defaults."""


class PlanningConfig(dg.Config):
    as_of_date: str | None = Field(
        default=None,
        description="Last day of history to plan from, YYYY-MM-DD. Default: the latest sales date in the marts.",
    )
    settings_file: str | None = Field(
        default=None,
        description="Planning settings TOML file ([forecast] and [policy] sections, ml/planning_settings.py). "
        "Default: stockturn.toml beside the warehouse when there is one. The forecast and policy entries below "
        "override it.",
    )
    plan_as_of_latest_data: bool = Field(
        default=False,
        description="Policy step: plan as of the latest day in the marts (today's stock and open orders) instead of "
        "the stored forecast's as-of date. The nightly job sets it: it re-plans every night from the last weekly "
        "forecast.",
    )
    forecast: ForecastSettings = Field(default_factory=ForecastSettings, description=ForecastSettings.__doc__)
    policy: PolicySettings = Field(default_factory=PolicySettings, description=PolicySettings.__doc__)

    def as_of(self) -> date | None:
        return date.fromisoformat(self.as_of_date) if self.as_of_date else None


def _settings_dict(settings: dg.PermissiveConfig) -> dict[str, Any]:
    return {k: v for k, v in settings.model_dump().items() if v is not None}


def build_planning_assets(input_keys: list[dg.AssetKey], seed_keys: list[dg.AssetKey] = ()
                          ) -> list[dg.AssetsDefinition]:
    """``demand_forecasting`` (reads ``input_keys``, writes the four forecast tables) and
    ``replenishment_policy`` (reads them, ``input_keys`` and the planning seeds ``seed_keys``; writes the three
    policy tables). A seed edit makes only the policy stale: re-planning costs the policy step, not a forecast."""
    return [build_forecasting_asset(input_keys), build_policy_asset([*input_keys, *seed_keys])]


def _specs(tables: Mapping[str, str], deps: list[dg.AssetKey]) -> list[dg.AssetSpec]:
    return [dg.AssetSpec(ML_KEYS[name], description=text, group_name=GROUP, deps=deps, kinds={"python", "duckdb"})
            for name, text in tables.items()]


def _check_specs(stage: str) -> list[dg.AssetCheckSpec]:
    return [checks.check_spec(check, ML_KEYS) for check in checks_for_stage(stage)]


def _write_checked(con, tables: dict, outcomes: list, run_info: RunInfo) -> tuple[dg.Failure | None, float]:
    """Record the checks' outcomes and write ``tables`` atomically, unless a blocking check failed: then nothing
    is written and the returned failure names the checks. Returns (failure or None, seconds the write took)."""
    failed = blocking_failures(outcomes)
    record_plan_checks(con, outcomes, run_id=run_info.run_id, as_of_date=run_info.as_of_date, written=not failed)
    if failed:
        names = "; ".join(f"{o.name}: {o.description}" for o in failed)
        return dg.Failure(
            description=f"the plan was not written: {len(failed)} blocking check(s) failed ({names}). "
            "The previous plan stays in ml.*; audit.plan_check_results has every outcome.",
            metadata={"run_id": run_info.run_id, "failed_checks": [o.name for o in failed]},
        ), 0.0
    t0 = time.perf_counter()
    write_tables_atomically(con, tables)
    return None, time.perf_counter() - t0


def _step_results(tables: Mapping[str, pl.DataFrame], outcomes: list, failure: dg.Failure | None, run_info: RunInfo,
                  settings: Any, timings: Mapping[str, float], metadata: Mapping[str, Any]):
    """What a planning step yields after its checked write: the check outcomes and the failure when a blocking
    check stopped the write; else one materialization per table written (stamp, timings, rows, ``metadata``) and
    the check outcomes."""
    if failure is None:
        stamp = {"run_id": run_info.run_id, "as_of_date": run_info.as_of_date.isoformat(),
                 "model_version": run_info.model_version,
                 "planning_settings": dg.MetadataValue.json(settings.metadata())}
        rounded = {k: round(v, 2) for k, v in timings.items()}
        for name, frame in tables.items():
            yield dg.MaterializeResult(asset_key=ML_KEYS[name], metadata={
                **stamp, **rounded, "dagster/row_count": frame.height, **metadata})
    for outcome in outcomes:
        yield checks.check_result(outcome, ML_KEYS)
    if failure is not None:
        raise failure


def build_forecasting_asset(input_keys: list[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.multi_asset(specs=_specs(FORECAST_TABLES, input_keys), check_specs=_check_specs("forecasting"),
                    name="demand_forecasting", pool=WAREHOUSE_POOL)
    def demand_forecasting(context: dg.AssetExecutionContext, config: PlanningConfig, paths: StockturnPaths):
        """Forecast demand and its distribution over each series' protection interval; write the four forecast
        tables at once (the draws in full, so the policy can re-plan later without forecasting again)."""
        from ml.forecasting import ForecastConfig, run_forecasting  # heavy: imported by this step only

        settings = planning_settings(config, paths)
        forecast_config = ForecastConfig.from_dict(dict(settings.forecast))
        context.log.info("planning settings: file %s; forecast %s", settings.file or "none",
                         _overrides_text(settings, "forecast"))
        with connect(paths.warehouse_path, claim=True) as con:
            t0 = time.perf_counter()
            forecast = run_forecasting(con, forecast_config, as_of=config.as_of())
            timings = {"forecasting_seconds": time.perf_counter() - t0}
            context.log.info("forecasting done in %.1f s", timings["forecasting_seconds"])
            run_info = forecast_run_info(con, forecast, config.as_of(), _config_dict(forecast_config))
            ltd = forecast.lead_time_demand
            tables = {name: run_info.stamp(frame) for name, frame in {
                "demand_forecast": forecast.demand_forecast,
                "forecast_backtest": forecast.forecast_backtest,
                "lead_time_demand": ltd.to_frame(),
                "lead_time_demand_samples": ltd.to_samples_frame(),
            }.items()}
            summary = dict(getattr(forecast, "summary", None) or {})
            outcomes = evaluate_forecast_checks(tables, summary, checks_for_stage("forecasting"))
            failure, timings["write_seconds"] = _write_checked(con, tables, outcomes, run_info)
        yield from _step_results(tables, outcomes, failure, run_info, settings, timings,
                                 _summary_metadata(summary, skip=_FORECAST_SUMMARY_SKIP))

    return demand_forecasting


def build_policy_asset(input_keys: list[dg.AssetKey]) -> dg.AssetsDefinition:
    deps = [*input_keys, *(ML_KEYS[name] for name in FORECAST_TABLES)]

    @dg.multi_asset(specs=_specs(POLICY_TABLES, deps), check_specs=_check_specs("policy"),
                    name="replenishment_policy", pool=WAREHOUSE_POOL)
    def replenishment_policy(context: dg.AssetExecutionContext, config: PlanningConfig, paths: StockturnPaths):
        """Safety stock, reorder points, order quantities, proposals and exceptions from the forecast run in the
        warehouse and the planning seeds; write the three policy tables at once."""
        from ml.policy import PolicyConfig, run_policy  # heavy: imported by this step only

        settings = planning_settings(config, paths)
        policy_config = PolicyConfig.from_dict(dict(settings.policy))
        context.log.info("planning settings: file %s; policy %s", settings.file or "none",
                         _overrides_text(settings, "policy"))
        with connect(paths.warehouse_path, claim=True) as con:
            t0 = time.perf_counter()
            forecast = read_forecast_run(con)
            timings = {"read_forecast_seconds": time.perf_counter() - t0}
            # the policy plans as of the day the forecasts start from, unless configured (a date, or the latest day
            # of the marts: the nightly re-plan from the last weekly forecast, whose draws then move with the
            # forecast's level over the interval that starts on the plan's day)
            as_of = config.as_of() or (None if config.plan_as_of_latest_data else forecast.run_info.as_of_date)
            t0 = time.perf_counter()
            policy = run_policy(con, forecast.lead_time_demand, forecast.demand_forecast, policy_config, as_of=as_of,
                                forecast_as_of=forecast.run_info.as_of_date)
            if as_of is None:
                as_of = policy.run_info.as_of_date if getattr(policy, "run_info", None) else _latest_day(con)
            timings["policy_seconds"] = time.perf_counter() - t0
            context.log.info("policy done in %.1f s (forecast run %s)", timings["policy_seconds"],
                             forecast.run_info.run_id)
            run_info = policy_run_info(forecast.run_info, policy, as_of, _config_dict(policy_config))
            tables = {name: run_info.stamp(frame).with_columns(
                pl.lit(forecast.run_info.run_id).alias("forecast_run_id")) for name, frame in {
                "inventory_policy": policy.inventory_policy,
                "purchase_proposals": policy.purchase_proposals,
                "exceptions": policy.exceptions,
            }.items()}
            summary = {**forecast.summary, "policy": getattr(policy, "summary", None)}
            outcomes = evaluate_forecast_checks({**forecast.tables, **tables}, summary, checks_for_stage("policy"))
            failure, timings["write_seconds"] = _write_checked(con, tables, outcomes, run_info)
        yield from _step_results(tables, outcomes, failure, run_info, settings, timings,
                                 {"forecast_run_id": forecast.run_info.run_id,
                                  **_summary_metadata(getattr(policy, "summary", None), skip=_POLICY_SUMMARY_SKIP)})

    return replenishment_policy


def _latest_day(con) -> date:
    (day,) = con.execute("select max(date_day) from marts.fct_inventory_daily").fetchall()[0]
    return day


@dataclass(frozen=True)
class StoredForecastRun:
    """The forecast run the warehouse holds, as the policy step reads it back."""

    run_info: RunInfo
    lead_time_demand: Any  # ml.demand_distribution.LeadTimeDemand
    demand_forecast: pl.DataFrame
    tables: dict[str, pl.DataFrame]  # what the policy-stage checks read (demand_forecast, lead_time_demand)
    summary: dict[str, Any]


def read_forecast_run(con) -> StoredForecastRun:
    """The last written forecast run (``ml.demand_forecast``, ``ml.lead_time_demand(_samples)``), checked to be one
    run; a clear error when there is none yet."""
    from ml.demand_distribution import LeadTimeDemand

    stamps = {}
    for name in ("demand_forecast", "lead_time_demand", "lead_time_demand_samples"):
        try:
            rows = con.execute(f"select distinct run_id, as_of_date, model_version from {ML_SCHEMA}.{name}").fetchall()
        except Exception as exc:  # the table is missing
            raise dg.Failure(description=f"no forecast run in the warehouse ({ML_SCHEMA}.{name} is missing): "
                             "materialize demand_forecasting first (stockturn run does both)") from exc
        if len(rows) != 1:
            raise dg.Failure(description=f"{ML_SCHEMA}.{name} holds {len(rows)} runs; re-run demand_forecasting")
        stamps[name] = rows[0]
    if len(set(stamps.values())) != 1:
        raise dg.Failure(description=f"the forecast tables come from different runs ({stamps}); re-run "
                         "demand_forecasting")
    run_id, as_of, model_version = stamps["demand_forecast"]
    stamp_columns = ("run_id", "as_of_date", "model_version")
    samples = con.sql(f"select * from {ML_SCHEMA}.lead_time_demand_samples").pl()
    forecast = con.sql(f"select * exclude ({', '.join(stamp_columns)}) from {ML_SCHEMA}.demand_forecast").pl()
    ltd_frame = con.sql(f"select * from {ML_SCHEMA}.lead_time_demand").pl()
    return StoredForecastRun(
        run_info=RunInfo(run_id, _as_date(as_of), model_version),
        lead_time_demand=LeadTimeDemand.from_samples_frame(samples),
        demand_forecast=forecast,
        tables={"demand_forecast": forecast, "lead_time_demand": ltd_frame},
        summary={},
    )


def planning_settings(config: PlanningConfig, paths: StockturnPaths):  # -> ml.planning_settings.PlanningSettings
    """Settings in effect: run config ``forecast`` / ``policy`` > the settings file > the defaults."""
    from ml.planning_settings import SettingsError, resolve_settings

    try:
        return resolve_settings(
            warehouse=paths.warehouse_path, settings_file=config.settings_file,
            overrides={"forecast": _settings_dict(config.forecast), "policy": _settings_dict(config.policy)},
            check_overrides=False,  # run config is checked by ForecastConfig / PolicyConfig.from_dict
        )
    except SettingsError as exc:
        raise dg.Failure(description=str(exc)) from exc


def _overrides_text(settings: Any, section: str) -> str:
    values = settings.forecast if section == "forecast" else settings.policy
    return ", ".join(f"{k}={v!r} ({settings.sources.get(f'{section}.{k}', '?')})" for k, v in sorted(values.items())) \
        or "defaults"


def _config_dict(config: Any) -> dict[str, Any]:
    if hasattr(config, "to_dict"):
        return config.to_dict()
    import dataclasses

    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(vars(config))


def forecast_run_info(con, forecast: Any, as_of: date | None, forecast_config: Mapping[str, Any]) -> RunInfo:
    """The stamp of the forecast tables: a hash of the landing load, the as-of date, the configuration and the
    stage's own run id, so the same inputs give the same run id. The as-of date is the configured one, else the
    one the stage reports, else the latest sales date."""
    info = getattr(forecast, "run_info", None)
    summary = getattr(forecast, "summary", None) or {}
    resolved = (as_of or _as_date(getattr(info, "as_of_date", None))
                or _as_date(summary.get("as_of_date") or summary.get("as_of")) or _latest_sales_date(con))
    model_version = getattr(info, "model_version", None) or summary.get("model_version") or \
        f"forecasting-{_package_version()}"
    (load_id,) = con.execute("select coalesce(max(load_id), '') from raw.landing_files").fetchone()
    return RunInfo.from_inputs(
        as_of_date=resolved, model_version=str(model_version),
        inputs={"load_id": load_id, "forecast_config": forecast_config,
                "stage_run_id": getattr(info, "run_id", None) or summary.get("run_id")},
    )


def policy_run_info(forecast: RunInfo, policy: Any, as_of: date, policy_config: Mapping[str, Any]) -> RunInfo:
    """The stamp of the policy tables: a hash of the forecast run, the as-of date, the configuration and the
    stage's own run id (which hashes its inputs, the planning seeds included). ``model_version`` joins the two
    stages' versions (``<forecasting>+<policy>``)."""
    info = getattr(policy, "run_info", None)
    summary = getattr(policy, "summary", None) or {}
    version = getattr(info, "model_version", None) or summary.get("model_version") or f"policy-{_package_version()}"
    return RunInfo.from_inputs(
        as_of_date=as_of, model_version=f"{forecast.model_version}+{version}",
        inputs={"forecast_run_id": forecast.run_id, "policy_config": policy_config,
                "stage_run_id": getattr(info, "run_id", None) or summary.get("run_id")},
    )


def _as_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _latest_sales_date(con) -> date:
    (latest,) = con.execute("select max(date_day) from marts.fct_sales_daily").fetchone()
    if latest is None:
        raise ValueError("marts.fct_sales_daily is empty: there is nothing to plan from")
    return latest


def _package_version() -> str:
    try:
        return version("stockturn")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "dev"


#: Summary entries left out of the metadata (per-step timings; accuracy of the models that were not selected).
_FORECAST_SUMMARY_SKIP = re.compile(r"^seconds\.|^holdout_accuracy\.(?!selected\.|seasonal_naive\.)")
_POLICY_SUMMARY_SKIP = re.compile(r"^timings_s\.")


def _summary_metadata(summary: Mapping[str, Any] | None, prefix: str = "",
                      skip: re.Pattern | None = None) -> dict[str, Any]:
    """Scalar entries of a stage's summary as metadata, nested mappings flattened with dots
    (``holdout_coverage.coverage_80``); lists are left out."""
    out: dict[str, Any] = {}
    for key, value in (summary or {}).items():
        name = f"{prefix}{key}"
        if skip is not None and skip.search(name):
            continue
        if isinstance(value, Mapping):
            out.update(_summary_metadata(value, prefix=f"{name}.", skip=skip))
        elif isinstance(value, bool | str):
            out[name] = value
        elif isinstance(value, numbers.Integral):
            out[name] = int(value)
        elif isinstance(value, numbers.Real) and math.isfinite(float(value)):
            out[name] = round(float(value), 6)
        elif isinstance(value, date):
            out[name] = value.isoformat()
    return out
