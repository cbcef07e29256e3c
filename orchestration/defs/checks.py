"""The planning run's checks (:mod:`ml.plan_checks`, plain Python) as Dagster asset checks on the ``ml`` tables.

The checks are evaluated inside the planning steps before their write-back; this module only maps them to
Dagster: a spec per check (blocking ones stop the run's downstream steps) and an ``AssetCheckResult`` per outcome.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from ml.plan_checks import ERROR, FORECAST_CHECKS, CheckOutcome, ForecastCheck

__all__ = ["FORECAST_CHECKS", "check_spec", "check_result"]

_SEVERITY = {ERROR: dg.AssetCheckSeverity.ERROR}


def check_spec(check: ForecastCheck, keys: Mapping[str, dg.AssetKey]) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(check.name, asset=keys[check.table], description=check.description,
                             blocking=check.blocking)


def check_result(outcome: CheckOutcome, keys: Mapping[str, dg.AssetKey]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=keys[outcome.table],
        check_name=outcome.name,
        passed=outcome.passed,
        severity=_SEVERITY.get(outcome.severity, dg.AssetCheckSeverity.WARN),
        description=outcome.description,
        metadata=outcome.metadata,
    )
