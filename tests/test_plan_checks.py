"""The planning run's checks (ml.plan_checks) on hand-made frames: what passes, what each check catches, which
block the write-back."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from ml import plan_checks as checks


def _backtest(rows: dict[tuple[str, str], float]) -> pl.DataFrame:
    """Pooled hold-out rows in the long layout of ml.forecast_backtest, plus a per-origin row that must be ignored."""
    data = [(None, "holdout", "overall", model, metric, value) for (model, metric), value in rows.items()]
    data.append((date(2024, 1, 1), "holdout", "overall", "selected", "rmsse", 99.0))
    return pl.DataFrame(data, schema={"origin": pl.Date, "split": pl.String, "level": pl.String, "model": pl.String,
                                      "metric": pl.String, "value": pl.Float64}, orient="row")


GOOD_BACKTEST = {("selected", "coverage_80"): 0.78, ("selected", "coverage_95"): 0.94,
                 ("selected", "ltd_coverage_p90"): 0.91, ("selected", "rmsse"): 0.8, ("seasonal_naive", "rmsse"): 1.0,
                 ("selected", "mase"): 0.7, ("seasonal_naive", "mase"): 1.0, ("selected", "ltd_level_ratio"): 1.05,
                 ("selected", "ltd_shortage_ratio_p90"): 1.2, ("selected", "ltd_shortage_ratio_p95"): 0.8}


def _tables(**overrides: pl.DataFrame) -> dict[str, pl.DataFrame]:
    keys = pl.DataFrame({"product_id": ["P1", "P1", "P2"], "location_id": ["L1", "L2", "L1"]})
    days = pl.DataFrame({"period_start": pl.date_range(pl.date(2024, 1, 1), pl.date(2024, 1, 7), eager=True)})
    forecast = keys.join(days, how="cross").with_columns(
        pl.int_range(1, 8).over("product_id", "location_id").cast(pl.Int32).alias("horizon"),
        pl.lit(2.0).alias("forecast"), pl.lit(0.5).alias("q100"), pl.lit(4.0).alias("q900"),
        pl.lit("tsb").alias("model"))
    tables = {
        "demand_forecast": forecast,
        "forecast_backtest": _backtest(GOOD_BACKTEST),
        "lead_time_demand": keys.with_columns(pl.lit(14.0).alias("ltd_mean"), pl.lit(1000).alias("n_samples")),
        "inventory_policy": keys.with_columns(pl.lit(20.0).alias("reorder_point")),
        "purchase_proposals": keys.head(1),
        "exceptions": keys.head(0),
    }
    tables.update(overrides)
    return tables


def _outcomes(tables, summary=None) -> dict[str, checks.CheckOutcome]:
    return {o.name: o for o in checks.evaluate_forecast_checks(tables, summary)}


def test_forecast_checks_pass_on_good_tables() -> None:
    outcomes = _outcomes(_tables())
    assert all(o.passed for o in outcomes.values()), {n: o.metadata for n, o in outcomes.items() if not o.passed}
    assert outcomes["interval_coverage"].metadata["coverage_80"] == pytest.approx(0.78)
    assert outcomes["interval_coverage"].metadata["ltd_coverage_p90"] == pytest.approx(0.91)
    assert outcomes["beats_seasonal_naive"].metadata["rmsse_skill_vs_naive"] == pytest.approx(0.2)


def test_forecast_checks_catch_problems() -> None:
    good = _tables()
    gappy = good["demand_forecast"].filter(~((pl.col("product_id") == "P2") & (pl.col("horizon") > 3)))
    assert not _outcomes(_tables(demand_forecast=gappy))["forecast_complete"].passed
    missing_series = good["demand_forecast"].filter(pl.col("product_id") == "P1")
    assert not _outcomes(_tables(demand_forecast=missing_series))["forecast_complete"].passed
    nulls = good["demand_forecast"].with_columns(pl.when(pl.col("product_id") == "P2").then(None)
                                                 .otherwise(pl.col("forecast")).alias("forecast"))
    assert not _outcomes(_tables(demand_forecast=nulls))["forecast_complete"].passed
    negative = good["demand_forecast"].with_columns(pl.lit(-0.1).alias("q100"))
    out = _outcomes(_tables(demand_forecast=negative))["forecast_non_negative"]
    assert not out.passed and "q100" in out.metadata["columns_with_negatives"]
    partial_policy = _tables(inventory_policy=good["inventory_policy"].head(2))
    assert not _outcomes(partial_policy)["policy_covers_every_series"].passed
    worse = _backtest({**GOOD_BACKTEST, ("selected", "mase"): 1.1})
    out = _outcomes(_tables(forecast_backtest=worse))["beats_seasonal_naive"]
    assert not out.passed and out.severity == checks.WARN
    for metric, value, words in (("ltd_shortage_ratio_p95", 1.9, "promised fill is too high"),
                                 ("ltd_shortage_ratio_p90", 0.3, "shortages that did not come"),
                                 ("ltd_level_ratio", 0.8, "level too high")):
        out = _outcomes(_tables(forecast_backtest=_backtest({**GOOD_BACKTEST, ("selected", metric): value})))[
            "lead_time_demand_in_units"]
        assert not out.passed and out.severity == checks.WARN and words in out.description, out.description
        assert out.metadata[metric] == pytest.approx(value)
    undercovered = _backtest({**GOOD_BACKTEST, ("selected", "ltd_coverage_p90"): 0.7})
    out = _outcomes(_tables(forecast_backtest=undercovered))["interval_coverage"]
    assert not out.passed and "ltd_coverage_p90" in out.metadata["worst"]


def test_backtest_checks_fall_back_to_the_summary() -> None:
    bare = _tables(forecast_backtest=pl.DataFrame({"product_id": ["P1"], "location_id": ["L1"]}))
    summary = {"holdout_coverage": {"coverage_80": 0.79, "coverage_95": 0.80},
               "holdout_accuracy": {"selected": {"mase": 0.9, "rmsse": 0.8},
                                    "seasonal_naive": {"mase": 1.0, "rmsse": 1.0}}}
    outcomes = _outcomes(bare, summary)
    assert not outcomes["interval_coverage"].passed  # the 95% interval covered only 80%
    assert outcomes["beats_seasonal_naive"].passed and outcomes["beats_seasonal_naive"].metadata["evaluated"]
    outcomes = _outcomes(bare, {})
    assert outcomes["interval_coverage"].metadata["evaluated"] is False
    assert outcomes["beats_seasonal_naive"].metadata["evaluated"] is False
    assert outcomes["lead_time_demand_in_units"].passed
    assert outcomes["lead_time_demand_in_units"].metadata["evaluated"] is False


def test_safety_stock_check_blocks_a_plan_far_above_the_textbook() -> None:
    """"stockturn recommends 3x the textbook" must never pass silently: a blocking check on the totals at 3x and
    a warning above 1.5x."""
    policy = _tables()["inventory_policy"].with_columns(
        pl.Series("safety_stock_value", [10.0, 20.0, 30.0]), pl.Series("classical_safety_stock_value", [10.0] * 3))
    summary = {"policy": {"guards": {"safety_stock_guard": 4, "max_safety_stock_ratio": 3.0,
                                     "warn_safety_stock_ratio": 1.5}}}
    out = _outcomes(_tables(inventory_policy=policy), summary)
    assert out["safety_stock_vs_classical"].passed  # 60 vs 30: 2x
    assert out["safety_stock_vs_classical"].metadata["ratio"] == pytest.approx(2.0)
    assert out["safety_stock_vs_classical"].metadata["guard_safety_stock_guard"] == 4
    warn = out["safety_stock_above_classical"]
    assert not warn.passed and warn.severity == checks.WARN
    tripled = policy.with_columns(pl.col("safety_stock_value") * 1.6)  # 96 vs 30: 3.2x
    out = _outcomes(_tables(inventory_policy=tripled), summary)["safety_stock_vs_classical"]
    assert not out.passed and out.severity == checks.ERROR
    specs = {c.name: c for c in checks.FORECAST_CHECKS}
    assert specs["safety_stock_vs_classical"].blocking and not specs["safety_stock_above_classical"].blocking
    # 3.2x the textbook, but the items' own histories ask for 100: the block passes (the warning still fails)
    evidenced = tripled.with_columns(pl.Series("guard_reference_safety_stock", [30.0, 30.0, 40.0]),
                                     pl.Series("unit_cost", [1.0] * 3))
    out = _outcomes(_tables(inventory_policy=evidenced), summary)
    block = out["safety_stock_vs_classical"]
    assert block.passed and block.metadata["supported_by_evidence"]
    assert not out["safety_stock_above_classical"].passed
    unsupported = evidenced.with_columns(pl.Series("guard_reference_safety_stock", [10.0, 10.0, 10.0]))
    assert not _outcomes(_tables(inventory_policy=unsupported), summary)["safety_stock_vs_classical"].passed
    within = policy.with_columns(pl.Series("safety_stock_value", [10.0, 10.0, 20.0]))  # 40 / 30 = 1.33x
    assert all(o.passed for o in _outcomes(_tables(inventory_policy=within), {}).values()
               if o.name.startswith("safety_stock"))



def test_only_failed_blocking_checks_stop_the_write() -> None:
    good = _tables()
    assert checks.blocking_failures(checks.evaluate_forecast_checks(good, {})) == []
    worse = _backtest({**GOOD_BACKTEST, ("selected", "mase"): 1.1})  # a warning only
    assert checks.blocking_failures(checks.evaluate_forecast_checks(_tables(forecast_backtest=worse), {})) == []
    negative = good["demand_forecast"].with_columns(pl.lit(-0.1).alias("q100"))
    failed = checks.blocking_failures(checks.evaluate_forecast_checks(_tables(demand_forecast=negative), {}))
    assert [o.name for o in failed] == ["forecast_non_negative"]
