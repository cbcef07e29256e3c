"""Planning settings (ml.planning_settings): the TOML file, the command-line flags, precedence and clear errors.

Unit tests only (no warehouse); that `stockturn run` honours a settings file is tested in
tests/test_orchestration_run.py (the runner, with stand-in stages).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ml.forecasting.config import ForecastConfig
from ml.planning_settings import SettingsError, flag_overrides, read_settings_file, resolve_settings
from ml.policy.config import PolicyConfig
from ml.settings import settings_file_for

SETTINGS = """\
[forecast]
horizon_days = 120
grain = "week"
models = ["seasonal_naive", "lightgbm"]
review_period_supplier_days = 14

[policy]
annual_holding_rate = 0.2
ordering_cost_per_line = 25     # a whole number where a float is meant
"""


def write(folder: Path, text: str, name: str = "stockturn.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_the_file_beside_the_warehouse_is_read_and_typed(tmp_path: Path) -> None:
    path = write(tmp_path, SETTINGS)
    assert settings_file_for(tmp_path / "warehouse.duckdb") == path
    settings = resolve_settings(warehouse=tmp_path / "warehouse.duckdb")
    assert settings.file == path
    forecast, policy = settings.forecast_config(), settings.policy_config()
    assert isinstance(forecast, ForecastConfig) and isinstance(policy, PolicyConfig)
    assert (forecast.horizon_days, forecast.grain, forecast.models) == (120, "week", ("seasonal_naive", "lightgbm"))
    assert (forecast.review_period_supplier_days, forecast.review_period_store_days) == (14, 1)  # 1: default
    assert policy.ordering_cost_per_line == 25.0 and isinstance(policy.ordering_cost_per_line, float)
    assert policy.transfer_cost_per_line == PolicyConfig().transfer_cost_per_line
    assert settings.sources["policy.annual_holding_rate"] == str(path)
    text = settings.describe()
    assert "horizon_days=120 [stockturn.toml]" in text and "review_period_store_days=1," in text


def test_no_file_means_the_documented_defaults(tmp_path: Path) -> None:
    settings = resolve_settings(warehouse=tmp_path / "warehouse.duckdb")
    assert settings.file is None and settings.overrides() == {"forecast": {}, "policy": {}}
    assert settings.forecast_config() == ForecastConfig() and settings.policy_config() == PolicyConfig()


def test_flags_win_over_the_file_which_wins_over_the_defaults(tmp_path: Path) -> None:
    other = write(tmp_path, SETTINGS, "planning.toml")
    write(tmp_path, "[forecast]\nhorizon_days = 7\n")  # beside the warehouse, but --settings names another file
    flags, sources = flag_overrides(horizon_days=60, review_period_days=3, review_period_store_days=2,
                                    holding_rate=0.3)
    settings = resolve_settings(warehouse=tmp_path / "w.duckdb", settings_file=other, overrides=flags,
                                override_sources=sources)
    forecast, policy = settings.forecast_config(), settings.policy_config()
    assert forecast.horizon_days == 60 and settings.sources["forecast.horizon_days"] == "--horizon-days"
    assert forecast.grain == "week"  # from the file
    # --review-period-days sets both review periods; the specific flag wins over it
    assert (forecast.review_period_store_days, forecast.review_period_supplier_days) == (2, 3)
    assert settings.sources["forecast.review_period_supplier_days"] == "--review-period-days"
    assert policy.annual_holding_rate == 0.3 and policy.ordering_cost_per_line == 25.0
    assert policy.lost_sales_share == PolicyConfig().lost_sales_share


def test_a_long_horizon_raises_the_horizon_cap(tmp_path: Path) -> None:
    flags, sources = flag_overrides(horizon_days=273)
    settings = resolve_settings(warehouse=tmp_path / "w.duckdb", overrides=flags, override_sources=sources)
    assert (settings.forecast_config().horizon_days, settings.forecast_config().max_horizon_days) == (273, 273)
    write(tmp_path, "[forecast]\nhorizon_days = 273\nmax_horizon_days = 200\n")  # set both: no silent change
    with pytest.raises(SettingsError, match=r"stockturn\.toml.*horizon_days <= max_horizon_days"):
        resolve_settings(warehouse=tmp_path / "w.duckdb").forecast_config()


@pytest.mark.parametrize(("text", "message"), [
    ("[forecast]\nhorizon_day = 91\n", r"unknown key 'horizon_day' in \[forecast\] \(did you mean 'horizon_days'\?\)"),
    ("[policy]\nholding_rate = 0.2\n", r"unknown key 'holding_rate' in \[policy\]"),
    ("[forecasts]\nhorizon_days = 91\n", r"unknown section \[forecasts\] \(did you mean \[forecast\]\?\)"),
    ("horizon_days = 91\n", r"unknown top-level key 'horizon_days'"),
    ("[forecast]\nhorizon_days = \"91\"\n", r"\[forecast\] horizon_days = '91': expected a whole number"),
    ("[forecast]\ngrain = \"fortnight\"\n", r"grain = 'fortnight': expected one of 'auto', 'day', 'week', 'month'"),
    ("[policy]\nannual_holding_rate = true\n", r"annual_holding_rate = True: expected a number"),
    ("[forecast\nhorizon_days = 91\n", r"not a valid TOML file"),
])
def test_a_bad_file_is_an_error_naming_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SettingsError, match=message) as exc:
        read_settings_file(path)
    assert str(path) in str(exc.value)


def test_values_the_configuration_rejects_name_their_source(tmp_path: Path) -> None:
    path = write(tmp_path, "[policy]\nannual_holding_rate = 0\n")
    with pytest.raises(SettingsError, match=rf"{path}.*annual_holding_rate must be > 0"):
        resolve_settings(warehouse=tmp_path / "w.duckdb").policy_config()
    with pytest.raises(SettingsError, match="does not exist"):
        resolve_settings(settings_file=tmp_path / "missing.toml")


def test_stockturn_run_stops_on_a_bad_settings_file_before_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from orchestration.cli import main

    bad = write(tmp_path, "[forecast]\nhorizon_day = 91\n", "bad.toml")
    with caplog.at_level(logging.ERROR, logger="stockturn"):
        code = main(["run", "--landing", str(tmp_path / "landing"), "--warehouse", str(tmp_path / "w.duckdb"),
                     "--settings", str(bad)])
    assert code == 2
    assert str(bad) in caplog.text and "horizon_day" in caplog.text
    assert not (tmp_path / "w.duckdb").exists()


def test_the_readme_example_is_a_valid_settings_file(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    example = readme.split("## Planning settings", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    settings = resolve_settings(settings_file=write(tmp_path, example))
    assert settings.forecast_config().grain == "week" and settings.policy_config().annual_holding_rate == 0.2
