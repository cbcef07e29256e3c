"""Checks on a planning run's results, before they are written: plain functions over the ``ml`` tables' frames.

The planning step evaluates them on exactly the frames it is about to write, **before** the write-back
(:func:`blocking_failures`): a failed blocking check leaves the previous ``ml.*`` tables untouched, so a bad
forecast never replaces the last good plan. ``orchestration.defs.checks`` reports them as Dagster asset checks on
``ml.demand_forecast`` / ``ml.forecast_backtest`` / ``ml.inventory_policy``; every outcome is also kept in
``audit.plan_check_results`` (:func:`record_plan_checks`), written or not.

* ``forecast_complete`` (blocking): every series with a lead-time-demand row has forecast rows, every series the
  same number of periods, and no forecast value is missing or non-finite.
* ``forecast_non_negative`` (blocking): no forecast value or quantile below zero.
* ``policy_covers_every_series`` (blocking): every forecast series has an inventory policy row.
* ``safety_stock_vs_classical`` (blocking): the plan's total safety stock at cost is at most
  ``PolicyConfig.max_safety_stock_ratio`` (default 3) x the classical total beside it, unless the items' own
  histories (per item the larger of the classical and the bootstrapped own-history safety stock) support the
  plan; the metadata counts the
  items each guard of ``ml.policy.guards`` caught. ``safety_stock_above_classical`` (warning): the same above
  ``warn_safety_stock_ratio`` (default 1.5).
* ``features_known_for_the_forecast`` (warning): no feature seen in training is unknown for the forecast period
  (promotions exported for the past only or listed less far ahead than the horizon).
* ``interval_coverage`` (warning): hold-out coverage of the central forecast intervals (``coverage_80`` ...) and of
  the lead-time-demand quantiles (``ltd_coverage_p90`` ...: what safety stock is sized from) within
  ``COVERAGE_TOLERANCE`` of nominal.
* ``lead_time_demand_in_units`` (warning): what pooled coverage cannot see, in units: the hold-out
  ``ltd_level_ratio`` (realised protection-interval demand / the samples' mean: the level reorder points and
  safety stock stand on) within ``LEVEL_RATIO_TOLERANCE`` of 1, and ``ltd_shortage_ratio_p90`` / ``_p95``
  (realised demand beyond the predicted quantile / what the samples expected beyond it: the unit loss fill rates
  are computed from) within a factor ``SHORTAGE_RATIO_FACTOR`` of 1. Coverage can be right while a few lumps
  far beyond the quantile carry most of the shortage (promised fill too high) or while the tail is far wider
  than the shortages that come (safety stock bought for nothing).
* ``beats_seasonal_naive`` (warning): the selected forecasts' hold-out MASE and RMSSE are below seasonal naive's.

A failed blocking check stops the run before the write-back: the previous plan stays in ``ml.*``, the run fails
with the failed checks named, and the models and report downstream are not rebuilt.

The backtest checks read the pooled hold-out rows of ``ml.forecast_backtest`` (long format: ``level = 'overall'``,
``split = 'holdout'``, ``origin`` null, ``metric``/``value``, ``model`` 'selected' or a model name; see
``ml.forecasting.pipeline``), else ``ForecastRun.summary`` (``holdout_coverage``, ``holdout_accuracy``); where
neither has them the check passes with ``evaluated: false`` metadata rather than guessing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

ERROR, WARN = "error", "warn"
SERIES_KEY = ("product_id", "location_id")
STAMP_COLUMNS = ("run_id", "as_of_date", "model_version")
#: |empirical - nominal| coverage allowed, in absolute terms (0.05 = five percentage points).
COVERAGE_TOLERANCE = 0.05
#: Lead-time-demand quantiles held to the tolerance: the upper ones, which reorder points are set from (a biased
#: median is a level error, which ``beats_seasonal_naive`` and the accuracy metadata show).
LTD_CHECKED_FROM = 0.8
#: |realised / expected - 1| allowed for the lead-time-demand level (0.15 = 15%).
LEVEL_RATIO_TOLERANCE = 0.15
#: realised / expected shortage beyond the p90 and p95 quantiles allowed between 1 / factor and factor.
SHORTAGE_RATIO_FACTOR = 1.5
SHORTAGE_CHECKED = ("ltd_shortage_ratio_p90", "ltd_shortage_ratio_p95")


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    table: str
    passed: bool
    description: str
    severity: str = ERROR  # ERROR or WARN
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ForecastCheck:
    name: str
    table: str
    description: str
    blocking: bool
    fn: Callable[[Mapping[str, pl.DataFrame], Mapping[str, Any]], CheckOutcome]


def _value_columns(frame: pl.DataFrame) -> list[str]:
    """Numeric columns that carry forecast values (not keys, stamps, dates or horizon counters)."""
    skip = {*SERIES_KEY, *STAMP_COLUMNS}
    return [
        name
        for name, dtype in frame.schema.items()
        if name not in skip and dtype.is_numeric() and not name.startswith(("horizon", "period", "step", "n_"))
    ]


def _series(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(SERIES_KEY).unique()


def check_forecast_complete(tables: Mapping[str, pl.DataFrame], summary: Mapping[str, Any]) -> CheckOutcome:
    forecast, ltd = tables["demand_forecast"], tables["lead_time_demand"]
    expected = _series(ltd)
    missing = expected.join(_series(forecast), on=list(SERIES_KEY), how="anti").height
    per_series = forecast.group_by(SERIES_KEY).len()
    periods_min = int(per_series["len"].min() or 0) if per_series.height else 0
    periods_max = int(per_series["len"].max() or 0) if per_series.height else 0
    values = _value_columns(forecast)
    bad_values = 0
    if forecast.height and values:
        bad_values = int(
            forecast.select(
                pl.sum_horizontal([(pl.col(c).is_null() | ~pl.col(c).cast(pl.Float64).is_finite()).sum()
                                   for c in values])
            ).item()
        )
    passed = forecast.height > 0 and missing == 0 and periods_min == periods_max and bad_values == 0
    return CheckOutcome(
        "forecast_complete",
        "demand_forecast",
        passed,
        "every series has a forecast for every period and no value is missing",
        metadata={
            "series_expected": expected.height,
            "series_missing": missing,
            "periods_per_series_min": periods_min,
            "periods_per_series_max": periods_max,
            "missing_or_non_finite_values": bad_values,
            "value_columns": ", ".join(values),
        },
    )


def check_forecast_non_negative(tables: Mapping[str, pl.DataFrame], summary: Mapping[str, Any]) -> CheckOutcome:
    negatives: dict[str, int] = {}
    for table in ("demand_forecast", "lead_time_demand"):
        frame = tables[table]
        for column in _value_columns(frame):
            n = int(frame.select((pl.col(column) < 0).sum()).item() or 0)
            if n:
                negatives[f"{table}.{column}"] = n
    return CheckOutcome(
        "forecast_non_negative",
        "demand_forecast",
        not negatives,
        "no forecast value, quantile or lead-time demand is negative",
        metadata={"negative_values": sum(negatives.values()),
                  "columns_with_negatives": ", ".join(f"{k} ({v:,})" for k, v in negatives.items()) or "none"},
    )


def check_policy_covers_every_series(tables: Mapping[str, pl.DataFrame], summary: Mapping[str, Any]) -> CheckOutcome:
    expected = _series(tables["lead_time_demand"])
    policy = tables["inventory_policy"]
    missing = (expected.join(_series(policy), on=list(SERIES_KEY), how="anti").height if policy.height
               else expected.height)
    return CheckOutcome(
        "policy_covers_every_series",
        "inventory_policy",
        missing == 0,
        "every forecast series has a safety stock, reorder point and order quantity",
        metadata={"series_expected": expected.height, "series_without_policy": missing},
    )


def _pooled_holdout(backtest: pl.DataFrame) -> pl.DataFrame:
    """The backtest's pooled hold-out rows (``ml.forecast_backtest`` is long: one row per origin x split x level x
    model x metric): level 'overall', split 'holdout', no single origin (pooled over the hold-out origins)."""
    needed = {"level", "split", "origin", "model", "metric", "value"}
    if not needed <= set(backtest.columns):
        return pl.DataFrame(schema={"origin": pl.Date, "level": pl.String, "split": pl.String, "model": pl.String,
                                    "metric": pl.String, "value": pl.Float64})
    return backtest.filter(
        (pl.col("level") == "overall") & (pl.col("split") == "holdout") & pl.col("origin").is_null()
        & pl.col("value").is_not_null()
    )


def _selected_holdout_values(backtest: pl.DataFrame, summary: Mapping[str, Any], prefixes: tuple[str, ...]
                             ) -> dict[str, Any]:
    """Metric -> value of the selected forecasts' pooled hold-out rows, or the summary's ``holdout_coverage``
    when the backtest has no metric starting with one of ``prefixes``."""
    pooled = _pooled_holdout(backtest).filter(pl.col("model") == "selected")
    values = {m: v for m, v in pooled.select("metric", "value").iter_rows()} if pooled.height else {}
    if not any(m.startswith(prefixes) for m in values):
        values = dict(summary.get("holdout_coverage") or {})
    return values


def _coverage_figures(backtest: pl.DataFrame, summary: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Metric -> (nominal, empirical): central-interval coverage ``coverage_80`` ... and lead-time-demand quantile
    coverage ``ltd_coverage_p90`` ... of the selected forecasts, from the backtest or else the summary."""
    values = _selected_holdout_values(backtest, summary, ("coverage_", "ltd_coverage_p"))
    figures: dict[str, tuple[float, float]] = {}
    for metric, value in values.items():
        digits = metric.removeprefix("ltd_coverage_p").removeprefix("coverage_")
        if digits.isdigit() and value is not None and math.isfinite(float(value)):
            figures[metric] = (int(digits) / 100, float(value))
    return figures


def check_interval_coverage(tables: Mapping[str, pl.DataFrame], summary: Mapping[str, Any]) -> CheckOutcome:
    figures = _coverage_figures(tables["forecast_backtest"], summary)
    off = {m: emp - nominal for m, (nominal, emp) in figures.items()
           if not m.startswith("ltd_") or nominal >= LTD_CHECKED_FROM - 1e-9}
    passed = all(abs(g) <= COVERAGE_TOLERANCE for g in off.values())
    metadata: dict[str, Any] = {"evaluated": bool(figures), "tolerance": COVERAGE_TOLERANCE}
    for metric, (_, emp) in sorted(figures.items()):
        metadata[metric] = round(emp, 4)
    description = (f"hold-out coverage of the forecast intervals and of the lead-time-demand quantiles from "
                   f"p{round(LTD_CHECKED_FROM * 100)} within {COVERAGE_TOLERANCE:.0%} of nominal")
    if off:
        worst = max(off, key=lambda m: abs(off[m]))
        metadata["worst"] = f"{worst}: {figures[worst][1]:.3f} vs nominal {figures[worst][0]:.2f}"
        description += f" (worst {metadata['worst']})"
    return CheckOutcome(
        "interval_coverage",
        "forecast_backtest",
        passed,
        description,
        severity=WARN,
        metadata=metadata,
    )


def check_lead_time_demand_in_units(tables: Mapping[str, pl.DataFrame], summary: Mapping[str, Any]
                                    ) -> CheckOutcome:
    values = _selected_holdout_values(tables["forecast_backtest"], summary, ("ltd_level_ratio",))
    figures = {m: float(values[m]) for m in ("ltd_level_ratio", *SHORTAGE_CHECKED)
               if values.get(m) is not None and math.isfinite(float(values[m]))}
    off: dict[str, str] = {}
    level = figures.get("ltd_level_ratio")
    if level is not None and abs(level - 1.0) > LEVEL_RATIO_TOLERANCE:
        off["ltd_level_ratio"] = (f"realised demand was {level:.2f}x the samples' mean (reorder points stand on a "
                                  f"level {'too low' if level > 1 else 'too high'})")
    for metric in SHORTAGE_CHECKED:
        r = figures.get(metric)
        if r is not None and not 1.0 / SHORTAGE_RATIO_FACTOR <= r <= SHORTAGE_RATIO_FACTOR:
            level_name = metric.removeprefix("ltd_shortage_ratio_")
            off[metric] = (f"demand beyond the {level_name} quantile was {r:.2f}x what the samples expected "
                           + ("(the promised fill is too high)" if r > 1 else "(safety stock guards against "
                              "shortages that did not come)"))
    description = (f"hold-out lead-time demand in units: level within {LEVEL_RATIO_TOLERANCE:.0%} of realised, "
                   f"shortage beyond p90 / p95 within {SHORTAGE_RATIO_FACTOR:g}x of realised")
    if off:
        description += ": " + "; ".join(off.values())
    metadata: dict[str, Any] = {"evaluated": bool(figures), "level_tolerance": LEVEL_RATIO_TOLERANCE,
                                "shortage_factor": SHORTAGE_RATIO_FACTOR,
                                **{m: round(v, 4) for m, v in sorted(figures.items())}}
    return CheckOutcome("lead_time_demand_in_units", "forecast_backtest", not off, description, severity=WARN,
                        metadata=metadata)


def _error_vs_naive(backtest: pl.DataFrame, summary: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Metric -> (selected forecasts' error, seasonal naive's) on the hold-out, for MASE and RMSSE."""
    pooled = _pooled_holdout(backtest).filter(pl.col("metric").is_in(["mase", "rmsse"]))
    errors: dict[str, dict[str, float]] = {}
    for model, metric, value in pooled.select("model", "metric", "value").iter_rows():
        errors.setdefault(metric, {})[model] = float(value)
    out = {m: (e["selected"], e["seasonal_naive"]) for m, e in errors.items()
           if {"selected", "seasonal_naive"} <= set(e)}
    if not out:  # the summary's hold-out accuracy
        acc = summary.get("holdout_accuracy") or {}
        sel, naive = acc.get("selected") or {}, acc.get("seasonal_naive") or {}
        out = {m: (float(sel[m]), float(naive[m])) for m in ("mase", "rmsse")
               if sel.get(m) is not None and naive.get(m) is not None}
    return {m: v for m, v in out.items() if all(math.isfinite(x) for x in v)}


def check_beats_seasonal_naive(tables: Mapping[str, pl.DataFrame], summary: Mapping[str, Any]) -> CheckOutcome:
    errors = _error_vs_naive(tables["forecast_backtest"], summary)
    description = "the selected forecasts beat seasonal naive on the hold-out (MASE and RMSSE)"
    if not errors:
        return CheckOutcome("beats_seasonal_naive", "forecast_backtest", True, description,
                            severity=WARN, metadata={"evaluated": False})
    metadata: dict[str, Any] = {"evaluated": True}
    description += ": " + ", ".join(f"{m} {sel:.3f} vs {naive:.3f}" for m, (sel, naive) in sorted(errors.items()))
    for metric, (selected, naive) in sorted(errors.items()):
        metadata[f"{metric}_selected"] = round(selected, 4)
        metadata[f"{metric}_seasonal_naive"] = round(naive, 4)
        metadata[f"{metric}_skill_vs_naive"] = round(1 - selected / naive, 4) if naive else 0.0
    return CheckOutcome(
        "beats_seasonal_naive",
        "forecast_backtest",
        all(selected < naive for selected, naive in errors.values()),
        description,
        severity=WARN,
        metadata=metadata,
    )


def _safety_stock_totals(tables: Mapping[str, pl.DataFrame], summary: Mapping[str, Any],
                         ) -> tuple[float, float, float, dict[str, Any]] | None:
    """(plan safety-stock value, classical total, ratio, guard counts) of the policy table; None without one."""
    policy = tables["inventory_policy"]
    if policy.height == 0 or not {"safety_stock_value", "classical_safety_stock_value"} <= set(policy.columns):
        return None
    plan = float(policy["safety_stock_value"].fill_null(0.0).sum())
    classical = float(policy["classical_safety_stock_value"].fill_null(0.0).sum())
    ratio = plan / classical if classical > 0 else (math.inf if plan > 0 else 1.0)
    guards = dict((summary.get("policy") or {}).get("guards") or {})
    counts = {f"guard_{k}": v for k, v in guards.items() if isinstance(v, int | float) and "ratio" not in k}
    return plan, classical, ratio, counts


def _evidence_total(tables: Mapping[str, pl.DataFrame]) -> float | None:
    """Sum over items of the larger of the classical and the own-history safety stock, at cost (the reference the
    safety-stock guard caps to); None when the policy table predates the guards."""
    policy = tables["inventory_policy"]
    if not {"guard_reference_safety_stock", "unit_cost"} <= set(policy.columns):
        return None
    return float((policy["guard_reference_safety_stock"] * policy["unit_cost"]).fill_null(0.0).sum())


def _ratio_check(name: str, limit_key: str, severity: str,
                 tables: Mapping[str, pl.DataFrame], summary: Mapping[str, Any], *,
                 unless_evidence: bool = False) -> CheckOutcome:
    """Plan vs classical safety-stock total against the limit. With ``unless_evidence`` a plan above the limit
    still passes when it is at most the guard factor x the evidence total (``_evidence_total``): the items' own
    histories ask for it, within the tolerance the safety-stock guard gives each item (``PolicyConfig.guard_factor``,
    2: an item's buffer may reach 2x its larger reference before the guard replaces it), so a plan whose every item
    passed its guard is not blocked for what the guard accepted."""
    guards = dict((summary.get("policy") or {}).get("guards") or {})
    limit = float(guards.get(limit_key) or getattr(_default_policy_config(), limit_key))
    factor = float(guards.get("guard_factor") or _default_policy_config().guard_factor)
    totals = _safety_stock_totals(tables, summary)
    if totals is None:
        return CheckOutcome(name, "inventory_policy", True, "no policy rows to compare", severity=severity,
                            metadata={"evaluated": False})
    plan, classical, ratio, counts = totals
    evidence = _evidence_total(tables)
    supported = unless_evidence and evidence is not None and factor > 0 and plan <= factor * evidence
    text = f"plan safety stock {plan:,.0f} vs classical {classical:,.0f} at cost ({ratio:.2f}x; limit {limit:g}x)"
    if evidence is not None:
        text += f"; the items' own histories support {evidence:,.0f}"
        if unless_evidence:
            text += f" (the guards accept up to {factor:g}x that: {factor * evidence:,.0f})"
    return CheckOutcome(
        name, "inventory_policy", ratio <= limit or supported, text, severity=severity,
        metadata={"safety_stock_value": round(plan, 2), "classical_safety_stock_value": round(classical, 2),
                  "evidence_safety_stock_value": round(evidence, 2) if evidence is not None else None,
                  "ratio": round(ratio, 4) if math.isfinite(ratio) else None, "limit": limit,
                  "supported_by_evidence": supported, **counts})


def check_safety_stock_vs_classical(tables: Mapping[str, pl.DataFrame], summary: Mapping[str, Any]) -> CheckOutcome:
    """Blocking: the plan's total safety-stock value at most ``PolicyConfig.max_safety_stock_ratio`` (default 3) x
    the classical total beside it, unless the items' own histories support it (the plan is at most the guard
    factor, default 2, x the sum of the per-item max(classical, own-history) safety stock: the same tolerance the
    per-item guard applies): "stockturn recommends 3x the textbook" with no evidence never passes; with evidence
    it passes the block and still fails the warning check below.
    Measured: an M5-size company's distribution centre needs 5.5x the textbook by its own history (37.5 M plan,
    38.2 M evidence, 6.9 M classical). Metadata carries how many items each guard of ``ml.policy.guards``
    caught."""
    return _ratio_check("safety_stock_vs_classical", "max_safety_stock_ratio", ERROR,
                        tables, summary, unless_evidence=True)


def check_safety_stock_above_classical(tables: Mapping[str, pl.DataFrame], summary: Mapping[str, Any],
                                       ) -> CheckOutcome:
    """Warning: above ``PolicyConfig.warn_safety_stock_ratio`` (default 1.5) x the classical total the plan
    passes but says so (on the demo the distribution centre's seasonal long-lead-time items are the cause)."""
    return _ratio_check("safety_stock_above_classical", "warn_safety_stock_ratio", WARN,
                        tables, summary)


def check_features_known_for_the_forecast(tables: Mapping[str, pl.DataFrame], summary: Mapping[str, Any],
                                          ) -> CheckOutcome:
    """A feature the model trained on but that is not (fully) known for the forecast period (promotions exported
    for the past only, or listed less far ahead than the horizon): the forecast reads it as unknown, which it
    must be told (``ml.forecasting.gbm.exogenous_warnings``)."""
    warnings = [str(w) for w in (summary.get("warnings") or [])]
    return CheckOutcome(
        "features_known_for_the_forecast", "forecast_backtest", not warnings,
        "; ".join(warnings) if warnings else "every exogenous feature used in training is known for the forecast",
        severity=WARN, metadata={"warnings": len(warnings)})


def _default_policy_config():  # -> PolicyConfig
    from ml.policy.config import PolicyConfig

    return PolicyConfig()


FORECAST_CHECKS: tuple[ForecastCheck, ...] = (
    ForecastCheck("forecast_complete", "demand_forecast",
                  "Every series has a forecast for every period of the horizon; no value is missing.", True,
                  check_forecast_complete),
    ForecastCheck("forecast_non_negative", "demand_forecast",
                  "No forecast value, quantile or lead-time demand is negative.", True, check_forecast_non_negative),
    ForecastCheck("policy_covers_every_series", "inventory_policy",
                  "Every forecast series has an inventory policy.", True, check_policy_covers_every_series),
    ForecastCheck("safety_stock_vs_classical", "inventory_policy",
                  "The plan's total safety stock at cost is at most PolicyConfig.max_safety_stock_ratio (3) x the "
                  "classical total; guard counts in the metadata.", True, check_safety_stock_vs_classical),
    ForecastCheck("safety_stock_above_classical", "inventory_policy",
                  "The plan's total safety stock at cost is at most PolicyConfig.warn_safety_stock_ratio (1.5) x "
                  "the classical total.", False, check_safety_stock_above_classical),
    ForecastCheck("features_known_for_the_forecast", "forecast_backtest",
                  "Every exogenous feature the model trained on is known for the forecast period.", False,
                  check_features_known_for_the_forecast),
    ForecastCheck("interval_coverage", "forecast_backtest",
                  f"Backtest interval coverage within {COVERAGE_TOLERANCE:.0%} of nominal.", False,
                  check_interval_coverage),
    ForecastCheck("lead_time_demand_in_units", "forecast_backtest",
                  f"Backtest lead-time demand in units: level within {LEVEL_RATIO_TOLERANCE:.0%}, shortage beyond "
                  f"p90 / p95 within {SHORTAGE_RATIO_FACTOR:g}x of realised.", False,
                  check_lead_time_demand_in_units),
    ForecastCheck("beats_seasonal_naive", "forecast_backtest",
                  "The selected forecasts beat the seasonal-naive baseline in the backtest.", False,
                  check_beats_seasonal_naive),
)


#: The tables the forecasting step writes; checks on them run in that step, the others in the policy step.
FORECAST_STAGE_TABLES = frozenset({"demand_forecast", "forecast_backtest", "lead_time_demand"})


def checks_for_stage(stage: str) -> tuple[ForecastCheck, ...]:
    """The checks the ``forecasting`` or the ``policy`` step evaluates before its write."""
    if stage not in ("forecasting", "policy"):
        raise ValueError(f"unknown planning stage {stage!r}")
    return tuple(c for c in FORECAST_CHECKS if (c.table in FORECAST_STAGE_TABLES) == (stage == "forecasting"))


def evaluate_forecast_checks(
    tables: Mapping[str, pl.DataFrame], summary: Mapping[str, Any] | None,
    checks: tuple[ForecastCheck, ...] | None = None,
) -> list[CheckOutcome]:
    """Run the checks (default: all) on the tables about to be written and the stages' summary."""
    return [check.fn(tables, summary or {}) for check in (FORECAST_CHECKS if checks is None else checks)]


def blocking_failures(outcomes: list[CheckOutcome]) -> list[CheckOutcome]:
    """The failed outcomes of blocking checks: any one of them means the plan must not be written."""
    blocking = {check.name for check in FORECAST_CHECKS if check.blocking}
    return [o for o in outcomes if o.name in blocking and not o.passed]


PLAN_CHECKS_TABLE = "audit.plan_check_results"


def record_plan_checks(con, outcomes: list[CheckOutcome], *, run_id: str, as_of_date: Any, written: bool) -> None:
    """Append the outcomes of one planning run to ``audit.plan_check_results`` (whether its plan was written)."""
    import json
    from datetime import UTC, datetime

    con.execute("create schema if not exists audit")
    con.execute(f"""
        create table if not exists {PLAN_CHECKS_TABLE} (
            run_id varchar, as_of_date date, checked_at timestamp, check_name varchar, ml_table varchar,
            severity varchar, blocking boolean, passed boolean, plan_written boolean, description varchar,
            metadata varchar
        )""")
    blocking = {check.name for check in FORECAST_CHECKS if check.blocking}
    now = datetime.now(UTC).replace(tzinfo=None)
    con.executemany(
        f"insert into {PLAN_CHECKS_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(run_id, as_of_date, now, o.name, o.table, o.severity, o.name in blocking, o.passed, written,
          o.description, json.dumps(o.metadata, default=str)) for o in outcomes],
    )
