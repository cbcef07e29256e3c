"""The policy backtest (issue 5) as an on-demand asset: ``ml/policy_backtest`` (also writes
``ml.policy_backtest_comparison``), a thin wrapper around ``ml.simulation.backtest.run_backtest``.

It is NOT part of the daily ``stockturn_pipeline`` job: on the default demo it re-runs forecasting and policy at
each of the 12 monthly planning dates of the replayed year (about 15-20 minutes the first time on 2 cores; the
per-date forecasts are cached beside the warehouse, so a re-run or a scenario run takes about a minute). Run it
with the ``policy_backtest`` job (or ``stockturn backtest``); the run config picks a stress scenario:

    ops:
      run_policy_backtest:
        config: {scenario: supplier_outage, params: {weeks: "6"}, n_boot: 1000}

Shape: ``ml/policy_backtest`` is an asset *spec* (it sits in the graph, downstream of ``ml/inventory_policy``,
with its materialization history) and the ``policy_backtest`` op job records its materializations. So
"Materialize all" in the UI and the daily job build the pipeline without starting a 20-minute replay, and an
operator launches the backtest (with its scenario config) from the job's launchpad.
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
    replay_seeds: int = Field(default=1, ge=1, description="Network replay: pool the match over this many "
                              "lead-time draws (at high fill one draw can swing the comparison by several points; "
                              "each draw adds the simulations, not the planning).")
    replan_every_days: int = Field(default=7, ge=0, description="Re-plan every this many days between the monthly "
                                   "forecasts from the latest one, as the nightly plan does (0: plan on the "
                                   "forecast days only).")
    forecast_workers: int | None = Field(default=None, ge=1, description="Processes the study's forecasting runs "
                                         "are made in before the replay (default: one per core; 1: one planning "
                                         "date at a time). Each holds one forecasting run in memory.")
    settings_file: str | None = Field(default=None, description="Planning settings TOML file ([forecast] and "
                                      "[policy], as for demand_planning). Default: stockturn.toml beside the "
                                      "warehouse when there is one.")


policy_backtest = dg.AssetSpec(
    key=BACKTEST_KEY,
    group_name=GROUP,
    kinds={"python", "duckdb"},
    deps=[dg.AssetKey(["ml", "inventory_policy"])],
    description="Policy backtest: a year replayed under stockturn's policy and the classical baseline, compared at "
                "matched service (ml.policy_backtest, ml.policy_backtest_comparison). Materialized by the "
                "policy_backtest job (on demand, slow), not by 'Materialize all'.",
)


@dg.op(pool=WAREHOUSE_POOL, description="Run the policy backtest and record ml/policy_backtest's materialization.")
def run_policy_backtest(context: dg.OpExecutionContext, config: BacktestRunConfig, paths: StockturnPaths) -> None:
    from datetime import timedelta

    from ml.planning_settings import SettingsError, resolve_settings
    from ml.simulation.backtest import (
        BacktestConfig,
        backtest_tables,
        config_inputs,
        run_backtest,
        write_backtest,
    )
    from ml.warehouse import connect

    try:
        settings = resolve_settings(warehouse=paths.warehouse_path, settings_file=config.settings_file)
        policy_config = settings.policy_config()
    except SettingsError as exc:
        raise dg.Failure(description=str(exc)) from exc
    cfg = BacktestConfig(days=config.days, history_days=config.history_days, n_boot=config.n_boot,
                         forecast=dict(settings.forecast), replay_seeds=config.replay_seeds,
                         replan_every_days=config.replan_every_days, forecast_workers=config.forecast_workers)
    scenarios = [(config.scenario, dict(config.params))] if config.scenario else []
    result = run_backtest(paths.warehouse_path, paths.landing_path, cfg, scenarios=scenarios,
                          policy_config=policy_config)
    s = result.summary
    start = result.comparison["replay_start"][0]
    tables = backtest_tables(result, as_of=start + timedelta(days=int(s["replay_days"]) - 1),
                             inputs={"config": config_inputs(cfg), "scenarios": scenarios,
                                     # policy settings other than the defaults (none: the run id is unchanged)
                                     **({"policy_settings": dict(settings.policy)} if settings.policy else {})})
    with connect(paths.warehouse_path) as con:
        write_backtest(con, tables)

    def num(x: object) -> float | None:
        return None if x is None or x != x else round(float(x), 4)  # NaN -> None

    context.log.info("backtest: reduction %.1f%% (CI %s .. %s)", s["inventory_reduction_pct"], *s["ci_pct"])
    context.log_event(dg.AssetMaterialization(asset_key=BACKTEST_KEY, metadata={
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
        "planner_mode": s["planner_mode"],
        "matched_baseline_z_dc": num(s.get("matched_z_dc")),
        "inventory_by_echelon": {k: {e: round(v, 2) for e, v in inv.items()}
                                 for k, inv in s.get("inventory_by_echelon", {}).items()} or None,
        "bullwhip_by_echelon": {k: {e: num(v) for e, v in bw.items()} for k, bw in s.get("bullwhip", {}).items()}
        or None,
        "studies": ", ".join(result.comparison["study"].to_list()),
        "seconds": num(s["timings_s"].get("total_s")),
        "dagster/row_count": tables["policy_backtest"].height,
    }))


@dg.job(
    name="policy_backtest",
    description="Replay a year under stockturn's policy and the classical baseline (slow: not in the daily job).",
    tags={"stockturn/job": "backtest"},
)
def backtest_job() -> None:
    run_policy_backtest()
