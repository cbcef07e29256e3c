"""The policy backtest (issue 5) as an on-demand asset: ``ml/policy_backtest`` (also writes
``ml.policy_backtest_comparison``), a thin wrapper around ``ml.simulation.backtest.run_backtest``.

It is NOT part of the daily ``stockturn_pipeline`` job: on the default demo it re-runs forecasting and policy at
each of the 12 monthly planning dates of the replayed year (about 15-20 minutes the first time on 2 cores; the
per-date forecasts are cached beside the warehouse, so a re-run or a scenario run takes about a minute). Run it
with the ``policy_backtest`` job (or ``stockturn backtest``); the run config picks a stress scenario:

    ops:
      ml__policy_backtest:
        config: {scenario: supplier_outage, params: {weeks: "6"}, n_boot: 1000}
"""

import dagster as dg
from pydantic import Field

from orchestration.defs.resources import WAREHOUSE_POOL, StockturnPaths

GROUP = "backtest"
BACKTEST_KEY = dg.AssetKey(["ml", "policy_backtest"])


class BacktestRunConfig(dg.Config):
    scenario: str | None = Field(default=None, description="Named stress scenario (`stockturn scenarios`); none: "
                                 "only the matched-service study.")
    params: dict[str, str] = Field(default_factory=dict, description="Scenario parameters, k: v (strings).")
    days: int = Field(default=365, description="Days to replay (the last ones of the data).")
    history_days: int = Field(default=365, description="History before the replay.")
    n_boot: int = Field(default=1000, description="Bootstrap resamples over products for the CI.")


@dg.asset(key=BACKTEST_KEY, group_name=GROUP, kinds={"python", "duckdb"}, pool=WAREHOUSE_POOL,
          deps=[dg.AssetKey(["ml", "inventory_policy"])],
          description="Policy backtest: a year replayed under stockturn's policy and the classical baseline, "
                      "compared at matched service (ml.policy_backtest, ml.policy_backtest_comparison).")
def policy_backtest(context: dg.AssetExecutionContext, config: BacktestRunConfig,
                    paths: StockturnPaths) -> dg.MaterializeResult:
    from datetime import timedelta

    from ml.simulation.backtest import (
        BacktestConfig,
        backtest_tables,
        config_inputs,
        run_backtest,
        write_backtest,
    )
    from ml.warehouse import connect

    cfg = BacktestConfig(days=config.days, history_days=config.history_days, n_boot=config.n_boot)
    scenarios = [(config.scenario, dict(config.params))] if config.scenario else []
    result = run_backtest(paths.warehouse_path, paths.landing_path, cfg, scenarios=scenarios)
    s = result.summary
    start = result.comparison["replay_start"][0]
    tables = backtest_tables(result, as_of=start + timedelta(days=int(s["replay_days"]) - 1),
                             inputs={"config": config_inputs(cfg), "scenarios": scenarios})
    with connect(paths.warehouse_path) as con:
        write_backtest(con, tables)

    def num(x: object) -> float | None:
        return None if x is None or x != x else round(float(x), 4)  # NaN -> None

    context.log.info("backtest: reduction %.1f%% (CI %s .. %s)", s["inventory_reduction_pct"], *s["ci_pct"])
    return dg.MaterializeResult(metadata={
        "run_id": tables["policy_backtest"]["run_id"][0],
        "demand_basis": s["demand_basis"],
        "series": s["n_series"],
        "target_fill_rate_volume": num(s["target_fill_rate_volume"]),
        "target_fill_rate_item_avg": num(s["target_fill_rate_item_avg"]),
        "stockturn_fill_volume": num(s["stockturn_fill_volume"]),
        "stockturn_fill_item_avg": num(s["stockturn_fill_item_avg"]),
        "matched_baseline_z": num(s["matched_z"]),
        "inventory_reduction_pct": num(s["inventory_reduction_pct"]),
        "reduction_ci_low_pct": num(s["ci_pct"][0]),
        "reduction_ci_high_pct": num(s["ci_pct"][1]),
        "studies": ", ".join(result.comparison["study"].to_list()),
        "seconds": num(s["timings_s"].get("total_s")),
        "dagster/row_count": tables["policy_backtest"].height,
    })


backtest_job = dg.define_asset_job(
    "policy_backtest",
    selection=dg.AssetSelection.assets(BACKTEST_KEY),
    description="Replay a year under stockturn's policy and the classical baseline (slow: not in the daily job).",
    tags={"stockturn/job": "backtest"},
)
