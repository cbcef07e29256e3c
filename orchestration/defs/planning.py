"""Demand planning: forecasts, lead-time demand, inventory policy and purchase proposals, written back to ``ml.*``.

One multi-asset, a thin wrapper around ``ml.forecasting.run_forecasting`` and ``ml.policy.run_policy``: the six
tables are stamped with one :class:`ml.warehouse.RunInfo` and replaced in ONE ``write_tables_atomically`` call,
so a failure anywhere leaves the previous six tables as they were. The forecasting and policy knobs come from the
planning settings file (``stockturn.toml`` beside the warehouse, or run config ``settings_file``; see
:mod:`ml.planning_settings`) overridden by run config (``forecast`` -> ``ForecastConfig.from_dict``, ``policy`` ->
``PolicyConfig.from_dict``); with neither, the documented defaults.

The checks on the results (:mod:`ml.plan_checks`, reported as asset checks by :mod:`orchestration.defs.checks`)
run on the stamped frames **before** the write-back: when a blocking one fails nothing is written, the previous
plan stays, and the step fails naming the checks. Every outcome is kept in ``audit.plan_check_results``.
"""

import math
import numbers
import re
import time
from collections.abc import Mapping
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import dagster as dg
from pydantic import Field

from ml.plan_checks import blocking_failures, evaluate_forecast_checks, record_plan_checks
from ml.warehouse import ML_SCHEMA, RunInfo, connect, write_tables_atomically
from orchestration.defs import checks
from orchestration.defs.resources import WAREHOUSE_POOL, StockturnPaths

GROUP = "planning"
ML_TABLES = {
    "demand_forecast": "Daily demand forecast per product x location over the horizon: mean and quantiles.",
    "forecast_backtest": "Rolling-origin backtest of every candidate model: accuracy, bias, interval coverage.",
    "lead_time_demand": "Distribution of demand over each series' protection interval (lead time + review period).",
    "inventory_policy": "Safety stock, reorder point and order quantity per product x location.",
    "purchase_proposals": "Proposed purchase orders and transfers for the as-of date.",
    "exceptions": "Series the planner should look at: short history, no lead time, stock-out risk, overrides.",
}
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
    forecast: ForecastSettings = Field(default_factory=ForecastSettings, description=ForecastSettings.__doc__)
    policy: PolicySettings = Field(default_factory=PolicySettings, description=PolicySettings.__doc__)

    def as_of(self) -> date | None:
        return date.fromisoformat(self.as_of_date) if self.as_of_date else None


def _settings_dict(settings: dg.PermissiveConfig) -> dict[str, Any]:
    return {k: v for k, v in settings.model_dump().items() if v is not None}


def build_planning_asset(input_keys: list[dg.AssetKey]) -> dg.AssetsDefinition:
    """The ``demand_planning`` multi-asset, depending on ``input_keys`` (the marts and seeds it reads)."""
    specs = [
        dg.AssetSpec(
            key,
            description=ML_TABLES[name],
            group_name=GROUP,
            deps=input_keys,
            kinds={"python", "duckdb"},
        )
        for name, key in ML_KEYS.items()
    ]
    check_specs = [checks.check_spec(check, ML_KEYS) for check in checks.FORECAST_CHECKS]

    @dg.multi_asset(specs=specs, check_specs=check_specs, name="demand_planning", pool=WAREHOUSE_POOL)
    def demand_planning(context: dg.AssetExecutionContext, config: PlanningConfig, paths: StockturnPaths):
        """Forecast demand, derive the replenishment policy and proposals, write the six ``ml`` tables at once."""
        # imported here: the forecasting and policy stacks are heavy, and only this step needs them
        from ml.forecasting import ForecastConfig, run_forecasting
        from ml.policy import PolicyConfig, run_policy

        settings = planning_settings(config, paths)
        forecast_config = ForecastConfig.from_dict(dict(settings.forecast))
        policy_config = PolicyConfig.from_dict(dict(settings.policy))
        context.log.info("planning settings: file %s; forecast %s; policy %s", settings.file or "none",
                         _overrides_text(settings, "forecast"), _overrides_text(settings, "policy"))
        as_of = config.as_of()
        timings: dict[str, float] = {}
        with connect(paths.warehouse_path) as con:
            t0 = time.perf_counter()
            forecast = run_forecasting(con, forecast_config, as_of=as_of)
            timings["forecasting_seconds"] = time.perf_counter() - t0
            context.log.info("forecasting done in %.1f s", timings["forecasting_seconds"])
            # the policy plans as of the day the forecasts start from (the marts' last day unless configured)
            as_of = as_of or _as_date((getattr(forecast, "summary", None) or {}).get("as_of"))

            t0 = time.perf_counter()
            policy = run_policy(con, forecast.lead_time_demand, forecast.demand_forecast, policy_config, as_of=as_of)
            timings["policy_seconds"] = time.perf_counter() - t0
            context.log.info("policy done in %.1f s", timings["policy_seconds"])

            run_info = planning_run_info(con, forecast, policy, as_of, _config_dict(forecast_config),
                                         _config_dict(policy_config))
            tables = {
                "demand_forecast": forecast.demand_forecast,
                "forecast_backtest": forecast.forecast_backtest,
                "lead_time_demand": forecast.lead_time_demand.to_frame(),
                "inventory_policy": policy.inventory_policy,
                "purchase_proposals": policy.purchase_proposals,
                "exceptions": policy.exceptions,
            }
            tables = {name: run_info.stamp(frame) for name, frame in tables.items()}
            # checked before the write: a plan that fails a blocking check never replaces the last good one
            check_summary = {**(getattr(forecast, "summary", None) or {}), "policy": getattr(policy, "summary", None)}
            outcomes = evaluate_forecast_checks(tables, check_summary)
            failed = blocking_failures(outcomes)
            record_plan_checks(con, outcomes, run_id=run_info.run_id, as_of_date=run_info.as_of_date,
                               written=not failed)
            if failed:
                for outcome in outcomes:
                    yield checks.check_result(outcome, ML_KEYS)
                names = "; ".join(f"{o.name}: {o.description}" for o in failed)
                raise dg.Failure(
                    description=f"the plan was not written: {len(failed)} blocking check(s) failed ({names}). "
                    "The previous plan stays in ml.*; audit.plan_check_results has every outcome.",
                    metadata={"run_id": run_info.run_id, "failed_checks": [o.name for o in failed]},
                )
            t0 = time.perf_counter()
            write_tables_atomically(con, tables)
            timings["write_seconds"] = time.perf_counter() - t0

        stamp = {"run_id": run_info.run_id, "as_of_date": run_info.as_of_date.isoformat(),
                 "model_version": run_info.model_version,
                 "planning_settings": dg.MetadataValue.json(settings.metadata())}
        rounded = {k: round(v, 2) for k, v in timings.items()}
        forecast_meta = _summary_metadata(getattr(forecast, "summary", None), skip=_FORECAST_SUMMARY_SKIP)
        policy_meta = _summary_metadata(getattr(policy, "summary", None), skip=_POLICY_SUMMARY_SKIP)
        for name, key in ML_KEYS.items():
            extra = forecast_meta if name in _FORECAST_TABLES else policy_meta
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={**stamp, **rounded, "dagster/row_count": tables[name].height, **extra},
            )
        for outcome in outcomes:
            yield checks.check_result(outcome, ML_KEYS)

    return demand_planning


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


def planning_run_info(
    con, forecast: Any, policy: Any, as_of: date | None, forecast_config: Mapping[str, Any],
    policy_config: Mapping[str, Any],
) -> RunInfo:
    """One stamp for all six tables: a hash of the landing load, the as-of date, both configurations and the
    stages' own run ids (each a hash of its inputs), so the same inputs give the same run id.

    The as-of date is the configured one, else the one the stages report, else the latest sales date.
    ``model_version`` joins the stages' versions (``<forecasting>+<policy>``).
    """
    stages = [getattr(forecast, "run_info", None), getattr(policy, "run_info", None)]
    summaries = [getattr(forecast, "summary", None) or {}, getattr(policy, "summary", None) or {}]
    reported = [_as_date(getattr(info, "as_of_date", None)) for info in stages] + [
        _as_date(summary.get("as_of_date") or summary.get("as_of")) for summary in summaries
    ]
    resolved = as_of or next((d for d in reported if d is not None), None) or _latest_sales_date(con)
    versions = [getattr(info, "model_version", None) or summary.get("model_version") or f"{stage}-{_package_version()}"
                for stage, info, summary in zip(("forecasting", "policy"), stages, summaries, strict=True)]
    model_version = "+".join(str(v) for v in versions)
    (load_id,) = con.execute("select coalesce(max(load_id), '') from raw.landing_files").fetchone()
    return RunInfo.from_inputs(
        as_of_date=resolved,
        model_version=model_version,
        inputs={
            "load_id": load_id,
            "forecast_config": forecast_config,
            "policy_config": policy_config,
            "stage_run_ids": [getattr(info, "run_id", None) or summary.get("run_id")
                              for info, summary in zip(stages, summaries, strict=True)],
        },
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


_FORECAST_TABLES = ("demand_forecast", "forecast_backtest", "lead_time_demand")
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
