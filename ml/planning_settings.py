"""Planning settings a user can reach: one TOML file beside the warehouse, and command-line flags.

``stockturn.toml`` in the warehouse's folder (or the file ``--settings`` names) has two sections, whose keys are the
fields of :class:`ml.forecasting.ForecastConfig` and :class:`ml.policy.PolicyConfig` (their docstrings document
every one and its default)::

    [forecast]
    horizon_days = 182                  # forecast horizon (days)
    grain = "week"                      # auto | day | week | month
    review_period_store_days = 1        # locations replenished by transfer
    review_period_supplier_days = 14    # locations that buy from suppliers

    [policy]
    annual_holding_rate = 0.20          # holding cost per year, fraction of unit cost
    ordering_cost_per_line = 25.0       # fixed cost of one purchase-order line
    default_service_target = 0.95       # ABC/XYZ classes missing from seeds/service_levels.csv

Precedence: command-line flags (or Dagster run config) > the file > the documented defaults. An unknown section
or key, or a value of the wrong type, is an error naming the file, the section and the key. The settings in effect
go into the run's configuration (``ml.warehouse.RunInfo`` inputs: the run id changes with them) and are logged.

Plain Python (no Dagster); the configuration classes are imported only when needed (``ml.forecasting`` is heavy).
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml.settings import settings_file_for

SECTIONS: tuple[str, ...] = ("forecast", "policy")

#: The settings the command line offers as flags: flag -> (section, key). ``--review-period-days`` sets both review
#: periods (a specific flag wins over it).
FLAG_KEYS: dict[str, tuple[str, str]] = {
    "--horizon-days": ("forecast", "horizon_days"),
    "--grain": ("forecast", "grain"),
    "--review-period-store-days": ("forecast", "review_period_store_days"),
    "--review-period-supplier-days": ("forecast", "review_period_supplier_days"),
    "--holding-rate": ("policy", "annual_holding_rate"),
    "--ordering-cost": ("policy", "ordering_cost_per_line"),
    "--forecast-engine": ("forecast", "engine"),
    "--dask-address": ("forecast", "dask_address"),
    "--dask-workers": ("forecast", "dask_workers"),
}

#: Settings always shown in the log line, whatever their source (the common ones).
COMMON_KEYS: dict[str, tuple[str, ...]] = {
    "forecast": ("grain", "horizon_days", "max_horizon_days", "review_period_store_days",
                 "review_period_supplier_days"),
    "policy": ("annual_holding_rate", "ordering_cost_per_line", "transfer_cost_per_line", "default_service_metric",
               "default_service_target"),
}


class SettingsError(ValueError):
    """A settings file or flag that cannot be used; the message names the file, section and key."""


def config_class(section: str) -> type:
    """The configuration dataclass of a section (imported on demand)."""
    if section == "forecast":
        from ml.forecasting.config import ForecastConfig

        return ForecastConfig
    if section == "policy":
        from ml.policy.config import PolicyConfig

        return PolicyConfig
    raise SettingsError(f"unknown settings section {section!r}; expected one of {', '.join(SECTIONS)}")


def _fields(section: str) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(config_class(section))}


def _hints(section: str) -> dict[str, Any]:
    return typing.get_type_hints(config_class(section))


def _matches(value: Any, hint: Any) -> bool:
    """Does a TOML value fit the annotation of a configuration field?"""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if origin is typing.Literal:
        return value in args
    if origin is tuple:
        if not isinstance(value, list | tuple):
            return False
        item = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        return item is None or all(_matches(v, item) for v in value)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return True


def _expected(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_expected(a) for a in args if a is not type(None))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple:
        return "a list" + (f" of {_expected(args[0])}" if args and args[-1] is Ellipsis else "")
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}.get(
        hint, getattr(hint, "__name__", str(hint)))


def _normalise(value: Any, hint: Any) -> Any:
    """TOML value -> the configuration's type: lists become tuples, whole numbers floats where a float is meant."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, int) and not isinstance(value, bool) and float in (hint, *typing.get_args(hint)) \
            and int not in (hint, *typing.get_args(hint)):
        return float(value)
    return value


def check_values(section: str, values: Mapping[str, Any], *, where: str) -> dict[str, Any]:
    """Validate the keys and value types of one section; return the values in the configuration's types.

    ``where`` names the origin in error messages (a file path, 'the command line').
    """
    fields, hints = _fields(section), _hints(section)
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SettingsError(
                f"{where}: unknown key {key!r} in [{section}]{hint}; the keys are the fields of "
                f"{config_class(section).__name__} ({', '.join(sorted(fields))})"
            )
        if not _matches(value, hints[key]):
            raise SettingsError(f"{where}: [{section}] {key} = {value!r}: expected {_expected(hints[key])}")
        out[key] = _normalise(value, hints[key])
    return out


def read_settings_file(path: Path | str) -> dict[str, dict[str, Any]]:
    """The ``[forecast]`` and ``[policy]`` tables of a TOML settings file, validated (``SettingsError``)."""
    path = Path(path)
    if not path.is_file():
        raise SettingsError(f"settings file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: not a valid TOML file: {exc}") from exc
    out: dict[str, dict[str, Any]] = {}
    for name, table in data.items():
        if name not in SECTIONS:
            close = difflib.get_close_matches(name, SECTIONS, n=1)
            hint = f" (did you mean [{close[0]}]?)" if close else ""
            what = f"section [{name}]" if isinstance(table, dict) else f"top-level key {name!r}"
            raise SettingsError(f"{path}: unknown {what}{hint}; the file has sections "
                                f"{' and '.join(f'[{s}]' for s in SECTIONS)}")
        if not isinstance(table, dict):
            raise SettingsError(f"{path}: {name!r} must be a section [{name}], not a value")
        out[name] = check_values(name, table, where=str(path))
    return out


def flag_overrides(
    *,
    horizon_days: int | None = None,
    grain: str | None = None,
    review_period_days: int | None = None,
    review_period_store_days: int | None = None,
    review_period_supplier_days: int | None = None,
    holding_rate: float | None = None,
    ordering_cost: float | None = None,
    forecast_engine: str | None = None,
    dask_address: str | None = None,
    dask_workers: int | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The command-line flags as settings overrides (unset flags are left out) and the flag behind each key."""
    given = {
        "--horizon-days": horizon_days, "--grain": grain,
        "--review-period-store-days": review_period_store_days if review_period_store_days is not None
        else review_period_days,
        "--review-period-supplier-days": review_period_supplier_days if review_period_supplier_days is not None
        else review_period_days,
        "--holding-rate": holding_rate, "--ordering-cost": ordering_cost,
        "--forecast-engine": forecast_engine, "--dask-address": dask_address, "--dask-workers": dask_workers,
    }
    overrides: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    sources: dict[str, str] = {}
    for flag, value in given.items():
        if value is None:
            continue
        section, key = FLAG_KEYS[flag]
        overrides[section][key] = value
        specific = review_period_store_days if key == "review_period_store_days" else review_period_supplier_days
        sources[f"{section}.{key}"] = ("--review-period-days" if key.startswith("review_period") and specific is None
                                       else flag)
    return overrides, sources


@dataclass(frozen=True)
class PlanningSettings:
    """Settings in effect for a run: overrides of the configuration defaults, and where each came from."""

    forecast: Mapping[str, Any] = field(default_factory=dict)
    policy: Mapping[str, Any] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)  # "forecast.horizon_days" -> file path or flag
    file: Path | None = None

    def overrides(self) -> dict[str, dict[str, Any]]:
        """``{"forecast": {...}, "policy": {...}}``: what differs from the documented defaults."""
        return {"forecast": dict(self.forecast), "policy": dict(self.policy)}

    def forecast_config(self):  # -> ForecastConfig
        return self._build("forecast")

    def policy_config(self):  # -> PolicyConfig
        return self._build("policy")

    def _build(self, section: str):
        values = self.forecast if section == "forecast" else self.policy
        try:
            return config_class(section).from_dict(dict(values))
        except (TypeError, ValueError) as exc:
            origins = sorted({self.sources.get(f"{section}.{k}", "") for k in values} - {""})
            raise SettingsError(f"planning settings [{section}] from {', '.join(origins) or 'defaults'}: {exc}") \
                from exc

    def metadata(self) -> dict[str, Any]:
        """JSON-ready record of the settings (for run metadata): file, overrides and their sources."""
        return {"file": str(self.file) if self.file else None, **self.overrides(), "sources": dict(self.sources)}

    def describe(self) -> str:
        """One log line: the common settings with their values, and every other override, with its source."""
        configs = {"forecast": self.forecast_config(), "policy": self.policy_config()}
        parts = []
        for section in SECTIONS:
            values = self.forecast if section == "forecast" else self.policy
            keys = [*COMMON_KEYS[section], *sorted(k for k in values if k not in COMMON_KEYS[section])]
            shown = []
            for key in keys:
                source = self.sources.get(f"{section}.{key}")
                value = getattr(configs[section], key)
                shown.append(f"{key}={value!r}" + (f" [{_short(source)}]" if source else ""))
            parts.append(f"{section}: " + ", ".join(shown))
        origin = f"file {self.file}" if self.file else "no settings file"
        return f"planning settings ({origin}; [source] where not the default): " + "; ".join(parts)


def _short(source: str) -> str:
    return Path(source).name if source.endswith(".toml") else source


def resolve_settings(
    *,
    warehouse: Path | str | None = None,
    settings_file: Path | str | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    override_sources: Mapping[str, str] | None = None,
    check_overrides: bool = True,
) -> PlanningSettings:
    """Settings in effect: ``overrides`` (flags, run config) > the settings file > the defaults.

    The file is ``settings_file`` when given (it must exist), else ``stockturn.toml`` beside ``warehouse`` when
    there is one, else none. ``check_overrides`` validates the override keys and types too (Dagster run config
    is validated by the configuration classes instead). A forecast horizon beyond ``max_horizon_days`` raises
    ``max_horizon_days`` to it unless that is set too.
    """
    path: Path | None = None
    if settings_file:
        path = Path(settings_file).resolve()
        if not path.is_file():
            raise SettingsError(f"settings file {path} does not exist")
    elif warehouse is not None and settings_file_for(warehouse).is_file():
        path = settings_file_for(warehouse)
    from_file = read_settings_file(path) if path else {}
    merged: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    for section in SECTIONS:
        section_overrides = dict((overrides or {}).get(section) or {})
        if check_overrides and section_overrides:
            section_overrides = check_values(section, section_overrides, where="the command line")
        merged[section] = {**from_file.get(section, {}), **section_overrides}
        for key in from_file.get(section, {}):
            sources[f"{section}.{key}"] = str(path)
        for key in section_overrides:
            sources[f"{section}.{key}"] = (override_sources or {}).get(f"{section}.{key}", "run config")
    forecast = merged["forecast"]
    if isinstance(forecast.get("horizon_days"), int) and "max_horizon_days" not in forecast:
        default_max = _fields("forecast")["max_horizon_days"].default
        if forecast["horizon_days"] > default_max:
            forecast["max_horizon_days"] = forecast["horizon_days"]
            sources["forecast.max_horizon_days"] = "raised to horizon_days"
    return PlanningSettings(forecast=forecast, policy=merged["policy"], sources=sources, file=path)
