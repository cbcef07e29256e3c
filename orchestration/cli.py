"""The `stockturn` command."""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ml.settings import DEFAULT_LANDING_DIR, DEFAULT_WAREHOUSE

log = logging.getLogger("stockturn")


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit code 2."""


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-5s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


# ------------------------------------------------------------------------------------------------ commands


def history_after_today_warning(start: date, days: int, today: date, tolerance_days: int = 2) -> str | None:
    """A warning when a generated history runs past the load date: `stockturn build` quarantines transactions dated
    more than ``tolerance_days`` (dbt var ``future_date_tolerance_days``) after the day it runs as ``future_date``,
    so those days would never reach the mart. None when the history ends in time."""
    last = start + timedelta(days=days - 1)
    if last <= today + timedelta(days=tolerance_days):
        return None
    future = (last - today - timedelta(days=tolerance_days)).days
    latest_start = today - timedelta(days=days - 1)
    return (f"warning: the history runs to {last:%Y-%m-%d}, after today ({today:%Y-%m-%d}). `stockturn build` "
            f"quarantines transactions dated more than {tolerance_days} days after the load date as future_date, so "
            f"its last {future:,} days would not reach the mart. Pass --start {latest_start:%Y-%m-%d} (or earlier) "
            f"to end the history today.")


def cmd_generate(args: argparse.Namespace) -> int:
    from ml.demo_company import generate

    summary = generate(
        Path(args.out),
        truth_dir=Path(args.truth) if args.truth else None,
        skus=args.skus,
        stores=args.stores,
        days=args.days,
        seed=args.seed,
        fmt=args.format,
        start=args.start,
        progress=not args.quiet,
    )
    print(summary.format())
    warning = history_after_today_warning(args.start, args.days, date.today())
    if warning:
        print(warning, file=sys.stderr)
    return 0


def cmd_import_transactions(args: argparse.Namespace) -> int:
    from ml.ingest.online_retail import import_online_retail

    summary = import_online_retail(Path(args.source), Path(args.out), location_id=args.location, fmt=args.format)
    print(summary.format())
    return 0


def cmd_import_series(args: argparse.Namespace) -> int:
    from ml.ingest.series_panel import ImportIntegrityError, run_from_args

    try:
        summary = run_from_args(args)
    except (ValueError, FileExistsError, ImportIntegrityError) as exc:  # bad panel, existing files, lost rows
        raise CliError(str(exc)) from exc
    print(summary.format())
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from orchestration.warehouse_build import build_warehouse
    from reports.warehouse_summary import warehouse_summary

    result = build_warehouse(Path(args.landing), Path(args.warehouse), progress=not args.quiet,
                             full_refresh=args.full_refresh)
    print(warehouse_summary(Path(args.warehouse)))
    print(f"\nBuilt in {result.seconds:,.1f} s.")
    return 0


def _report_dir(args: argparse.Namespace) -> Path:
    """--report-dir, else ``report/`` beside the warehouse (``data/report`` for the default warehouse)."""
    return Path(args.report_dir) if args.report_dir else Path(args.warehouse).resolve().parent / "report"


def _planning_settings(args: argparse.Namespace) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Planning settings in effect (``ml.planning_settings.PlanningSettings``) and the flags' overrides alone: the
    flags > the settings file (--settings, else stockturn.toml beside the warehouse) > the defaults; logged, and
    checked before anything runs."""
    from ml.planning_settings import SettingsError, flag_overrides, resolve_settings

    overrides, sources = flag_overrides(**{name: getattr(args, name, None) for name in (
        "horizon_days", "grain", "review_period_days", "review_period_store_days", "review_period_supplier_days",
        "holding_rate", "ordering_cost", "forecast_engine", "dask_address", "dask_workers")})
    try:
        settings = resolve_settings(warehouse=Path(args.warehouse), settings_file=getattr(args, "settings", None),
                                    overrides=overrides, override_sources=sources)
        log.info("%s", settings.describe())  # builds both configurations: a bad value stops here
    except SettingsError as exc:
        raise CliError(str(exc)) from exc
    return settings, overrides


def _run(args: argparse.Namespace, *, job: str, selection: str | None = None) -> tuple[int, object]:
    from orchestration.runner import run_pipeline

    settings, flags = _planning_settings(args) if job != "warehouse_build" else (None, None)
    report, groups = run_pipeline(
        Path(args.landing),
        Path(args.warehouse),
        _report_dir(args),
        job=job,
        selection=selection,
        as_of=getattr(args, "as_of", None),
        settings_file=settings.file if settings else None,
        planning_overrides=flags,
        dagster_home=Path(args.dagster_home) if getattr(args, "dagster_home", None) else None,
        ephemeral=getattr(args, "ephemeral", False),
        verbose=args.verbose,
        full_refresh=getattr(args, "full_refresh", False),
    )
    print(report.format(groups=groups))
    return (0 if report.success else 1), report


#: What `stockturn replan` materializes: the planning seeds (a planner's edits), the policy step over the forecast
#: run the warehouse holds, and what is built on the policy (dbt models, the report). No forecasting.
REPLAN_SELECTION = ('key:"planning/*" or key:"ml/inventory_policy"+ or key:"ml/purchase_proposals"+ '
                    'or key:"ml/exceptions"+')


def cmd_replan(args: argparse.Namespace) -> int:
    args.as_of = None  # the policy plans as of the forecast it reads
    code, report = _run(args, job="stockturn_pipeline", selection=REPLAN_SELECTION)
    report_html = report.materializations.get("reports/turnover_report", {}).get("html_path")
    if report_html:
        print(f"\nReport:    {report_html}")
    return code


def cmd_run(args: argparse.Namespace) -> int:
    code, report = _run(args, job=args.job, selection=args.select)
    print(f"\nWarehouse: {Path(args.warehouse).resolve()}")
    report_html = report.materializations.get("reports/turnover_report", {}).get("html_path")
    if report_html:
        print(f"Report:    {report_html}")
    if report.dagster_home:
        print(f"Dagster:   run {report.run_id} recorded in {report.dagster_home}; browse it with: "
              f"stockturn ui --warehouse {args.warehouse}")
    return code


def cmd_demo(args: argparse.Namespace) -> int:
    from ml.demo_company import generate
    from reports.warehouse_summary import warehouse_summary

    t0 = time.perf_counter()
    landing, warehouse = Path(args.landing), Path(args.warehouse)
    log.info("generating the demo company into %s", landing)
    summary = generate(landing, seed=args.seed, skus=args.skus, stores=args.stores, days=args.days,
                       progress=not args.quiet)
    print(summary.format())
    print()
    log.info("running the whole pipeline (Dagster, in-process) into %s", warehouse)
    code, report = _run(args, job="stockturn_pipeline")
    if warehouse.exists():
        print()
        print(warehouse_summary(warehouse))
    print(f"\nDemo {'finished' if code == 0 else 'FAILED'} in {time.perf_counter() - t0:,.0f} s.")
    print(f"  landing folder  {landing.resolve()}")
    print(f"  warehouse       {warehouse.resolve()}  (schemas raw, staging, intermediate, marts, planning, ml)")
    report_html = report.materializations.get("reports/turnover_report", {}).get("html_path")
    print(f"  report          {report_html or 'not built'}")
    print(f"  Dagster runs    {report.dagster_home or 'not recorded (--ephemeral)'}")
    print(f"Explore: stockturn ui --warehouse {warehouse}   (asset graph, run history, checks)")
    print(f"         duckdb {warehouse} -c \"select * from marts.fct_inventory_turnover_monthly"
          " where grain = 'company' order by month_start_date\"")
    return code


def cmd_ui(args: argparse.Namespace) -> int:
    import os
    import signal
    import subprocess

    from ml.settings import PROJECT_ROOT, WAREHOUSE_ENV
    from orchestration.defs.resources import LANDING_ENV, REPORT_DIR_ENV
    from orchestration.instance import dagster_home_for, ensure_dagster_home

    warehouse = Path(args.warehouse).resolve()
    home = ensure_dagster_home(Path(args.dagster_home) if args.dagster_home else dagster_home_for(warehouse))
    env = dict(os.environ)
    env.update({
        "DAGSTER_HOME": str(home),
        LANDING_ENV: str(Path(args.landing).resolve()),
        WAREHOUSE_ENV: str(warehouse),
        REPORT_DIR_ENV: str(_report_dir(args).resolve()),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    })
    dagster = Path(sys.executable).parent / "dagster"
    cmd = [str(dagster) if dagster.exists() else "dagster", "dev", "-m", "orchestration.definitions",
           "-h", args.host, "-p", str(args.port)]
    print(f"Dagster UI: http://{args.host}:{args.port}  (Ctrl-C to stop)")
    print(f"  warehouse {warehouse}\n  landing   {env[LANDING_ENV]}\n  report    {env[REPORT_DIR_ENV]}\n"
          f"  DAGSTER_HOME {home}")
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env)
    # `dagster dev` shuts its webserver, daemon and code server down on Ctrl-C (SIGINT); pass SIGTERM on as that
    signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGINT))
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()


def cmd_decision_value(args: argparse.Namespace) -> int:
    from ml.simulation.decision_value import decision_value, summarise, write_decision_value
    from ml.warehouse import connect

    with connect(args.warehouse, read_only=args.no_write, claim=not args.no_write) as con:
        try:
            values = decision_value(con, landing=Path(args.landing) if args.landing else None, days=args.days)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        if not args.no_write:
            write_decision_value(con, values)
    if values.is_empty():
        print("no planner decisions to measure: no override of a reorder point or order quantity in "
              "ml.inventory_policy, and no proposal rejected or approved with another quantity")
        return 0
    measured = values.filter(values["measured"])
    kinds = values["decision_kind"].value_counts(sort=True).iter_rows()
    print(f"{values.height:,} planner decisions ({', '.join(f'{n:,} {k}' for k, n in kinds)}), {measured.height:,} "
          f"replayed ({values['demand_basis'].drop_nulls().first() or 'no replay'}):")
    for r in summarise(values).iter_rows(named=True):
        print(f"  {r['author']:<16} {r['decision_kind']:<17} {r['reason'][:32]:<32} {r['decisions']:>4} decisions, "
              f"{r['gains']} gains, {r['losses']} losses, net value {r['net_value']:>12,.2f}, "
              f"inventory {r['inventory_value_change']:>+12,.2f}, margin saved {r['lost_margin_saved']:>10,.2f}")
    for r in values.filter(~values["measured"]).iter_rows(named=True):
        what = r["proposal_id"] or r["fields"]
        print(f"  not measured: {r['product_id']} @ {r['location_id']} ({r['decision_kind']}, {what}): "
              f"{r['not_measured_reason']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from reports.build import build_report

    result = build_report(Path(args.warehouse), Path(args.out), currency=args.currency)
    print(result.summary())
    return 0


def cmd_proposals(args: argparse.Namespace) -> int:
    from ml.policy.proposals import set_proposal_status
    from ml.warehouse import connect, read_frame, table_exists

    if args.action == "list":
        with connect(args.warehouse, read_only=True) as con:
            if not table_exists(con, "ml", "purchase_proposals"):
                raise CliError("no proposals yet: run `stockturn run` (or `stockturn demo`) first")
            where = "" if args.status == "all" else "where p.status = ?"
            approval = table_exists(con, "ml", "proposal_approval")
            frame = read_frame(con, f"""
                select p.proposal_id, p.status, p.proposal_type,
                       coalesce(p.supplier_id, p.source_location_id) as source, p.product_id, p.location_id,
                       p.quantity, p.value, p.expected_arrival_date, p.reason, p.status_author,
                       {"a.waiting_reason" if approval else "null::varchar as waiting_reason"}
                from ml.purchase_proposals p
                {"left join ml.proposal_approval a using (proposal_id)" if approval else ""}
                {where} order by p.value desc""", None if not where else [args.status])
        if frame.is_empty():
            print(f"no {args.status} proposals")
            return 0
        for row in frame.iter_rows(named=True):
            print(f"{row['proposal_id']}  {row['status']:<9} {row['proposal_type']:<14} {row['product_id']:>10} @ "
                  f"{row['location_id']:<6} from {row['source'] or '?':<8} qty {row['quantity']:>10,.0f}  "
                  f"value {row['value'] or 0:>12,.2f}  arrives {row['expected_arrival_date']}")
            print(f"    {row['reason']}")
            if row["status"] == "proposed":
                why = row["waiting_reason"] or "approval rules not evaluated yet (stockturn proposals auto-approve)"
                print(f"    waits: {why}")
            elif row["status_author"]:
                print(f"    {row['status']} by {row['status_author']}")
        print(f"{frame.height:,} proposals, total value {frame['value'].sum() or 0:,.2f}")
        return 0
    if args.action == "auto-approve":
        from ml.policy import PolicyConfig
        from ml.policy.approval import ApprovalRulesError, apply_approval_rules, read_rules

        with connect(args.warehouse, claim=True) as con:
            try:
                rules = read_rules(con, PolicyConfig().seeds_path() if args.rules is None else Path(args.rules))
                result = apply_approval_rules(con, rules)
            except (ApprovalRulesError, ValueError) as exc:
                raise CliError(str(exc)) from exc
        print(result.describe())
        return 0
    if args.action == "export":
        from ml.policy.order_export import export_orders

        with connect(args.warehouse, claim=True) as con:
            try:
                result = export_orders(con, Path(args.out))
            except ValueError as exc:
                raise CliError(str(exc)) from exc
        print(result.describe())
        return 0
    status = {"approve": "approved", "reject": "rejected", "reset": "proposed"}[args.action]
    with connect(args.warehouse) as con:
        try:
            decision = set_proposal_status(con, args.proposal_id, status, args.author, args.reason,
                                           quantity=getattr(args, "quantity", None))
        except ValueError as exc:  # unknown id, missing reason or author, a bad quantity
            raise CliError(str(exc)) from exc
    changed = decision["status"] == "approved" and decision["decided_quantity"] != decision["quantity"]
    print(f"proposal {args.proposal_id}: {decision['status']} by {decision['author']}"
          + (f", {decision['decided_quantity']:,.0f} instead of the proposed {decision['quantity']:,.0f}"
             if changed else "")
          + (f" ({decision['reason']})" if decision.get("reason") else ""))
    return 0


def _parse_params(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise CliError(f"--param expects k=v, got {pair!r}")
        k, v = pair.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def cmd_scenarios(args: argparse.Namespace) -> int:
    from ml.simulation.backtest import SCENARIOS

    print("Named stress scenarios (stockturn backtest --scenario NAME --param k=v ...):")
    for name, (text, defaults) in SCENARIOS.items():
        params = ", ".join(f"{k}={v}" for k, v in defaults.items())
        print(f"  {name:<22} {text}\n  {'':<22} parameters (defaults): {params}")
    print("Days count from the first replayed day; 'auto' picks the largest category / supplier / products by demand.")
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from ml.simulation.backtest import (
        BacktestConfig,
        backtest_tables,
        config_inputs,
        run_backtest,
        write_backtest,
    )
    from ml.warehouse import connect

    if not Path(args.warehouse).exists():
        raise CliError(f"warehouse {args.warehouse} does not exist: run `stockturn build` first")
    if args.param and not args.scenario:
        raise CliError("--param needs --scenario")
    if args.forecast_workers is not None and args.forecast_workers < 1:
        raise CliError(f"--forecast-workers must be at least 1, not {args.forecast_workers}")
    if args.scenario == "all":
        if args.param:
            raise CliError("--param needs a single --scenario, not 'all'")
        from ml.simulation.backtest import SCENARIOS

        scenarios = [(name, {}) for name in SCENARIOS]
    else:
        scenarios = [(args.scenario, _parse_params(args.param))] if args.scenario else []
    settings, _ = _planning_settings(args)
    config = BacktestConfig(days=args.days, history_days=args.history_days, n_boot=args.n_boot,
                            start=args.start, cache_dir=Path(args.cache_dir) if args.cache_dir else None,
                            dispersion=args.dispersion, forecast=dict(settings.forecast),
                            replay_seeds=args.replay_seeds, replan_every_days=args.replan_every_days,
                            forecast_workers=args.forecast_workers)
    try:
        result = run_backtest(args.warehouse, args.landing, config, scenarios=scenarios,
                              policy_config=settings.policy_config())
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    s = result.summary
    print(f"\nPolicy backtest: {s['n_series']:,} product-locations x {s['replay_days']} days from "
          f"{s['replay_start']}, {s['planning_dates']} planning dates; demand: {s['demand_basis']}")
    cols = ("study", "target_fill_rate", "stockturn_fill_volume", "stockturn_fill_item_avg", "baseline_setting",
            "baseline_fill_volume", "baseline_fill_item_avg", "stockturn_inventory_value",
            "baseline_inventory_value", "inventory_reduction_pct", "reduction_ci_low_pct", "reduction_ci_high_pct")
    for row in result.comparison.select(cols).iter_rows(named=True):
        print(f"\n[{row['study']}]")
        for k in cols[1:]:
            v = row[k]
            print(f"  {k:<28} {'-' if v is None else (f'{v:,.4f}' if abs(v) < 10 else f'{v:,.1f}')}")
    sens = s.get("fill_sensitivity") or {}
    if sens:
        def side(which: str) -> str:
            inv, red = sens[f"baseline_inventory_{which}"], sens[f"reduction_pct_{which}"]
            if inv is None or not math.isfinite(inv):
                return "beyond the textbook's scan"
            return f"{inv:,.0f} ({red:.1f}% less for stockturn)"

        print(f"\n  how much the match hangs on stockturn's exact fill: were it {sens['points']:.1f} point lower on "
              f"both measures, the textbook would hold {side('lower')}; {sens['points']:.1f} point higher: "
              f"{side('higher')} (not part of the confidence interval, which resamples series)")
    if s.get("replay_seeds", 1) > 1:
        print(f"  (the match pools {s['replay_seeds']} replays with different lead-time draws; the tables below are "
              "the first one's)")
    if s.get("planner_mode") == "network_as_written":
        _print_network_summary(s)
    elif s.get("promise"):
        print("\n  promise vs delivered (stockturn; volume / item average):")
        _print_promise_rows(s["promise"])
    if result.scenario_breaks.height:
        print("\nBreak first (extra lost margin against the same policy's base run):")
        for (study, policy), grp in result.scenario_breaks.group_by(["study", "policy"], maintain_order=True):
            top = ", ".join(f"{r['product_id']}@{r['location_id']} (day {r['first_break_day']})"
                            for r in grp.head(5).iter_rows(named=True))
            print(f"  {study:<22} {policy:<18} {top or '-'}")
    if not args.no_write:
        end = date.fromisoformat(s["replay_start"]) + timedelta(days=s["replay_days"] - 1)
        tables = backtest_tables(result, as_of=end, inputs={"config": config_inputs(config), "scenarios": scenarios,
                                                            "demand_basis": s["demand_basis"],
                                                            # policy settings other than the defaults, if any
                                                            **({"policy_settings": dict(settings.policy)}
                                                               if settings.policy else {})})
        with connect(args.warehouse) as con:
            write_backtest(con, tables)
        print(f"\nWrote ml.policy_backtest ({tables['policy_backtest'].height:,} rows) and "
              f"ml.policy_backtest_comparison ({tables['policy_backtest_comparison'].height} rows) "
              f"to {args.warehouse}")
    return 0


def _print_network_summary(s: dict) -> None:
    """Where the stock sits, the bullwhip at each echelon and the promise by segment (network study)."""
    print(f"\nNetwork: {s['n_series']:,} store series fed by {s['n_dc_series']:,} DC series; classical matched at "
          f"store z {s['matched_z']:.2f}, DC z {s['matched_z_dc']:.2f} (cheapest DC setting that matches)")
    print(f"  {'policy':<20} {'stores':>12} {'DC':>12} {'bullwhip store':>15} {'bullwhip DC':>12}")
    for name, inv in s["inventory_by_echelon"].items():
        bw = s["bullwhip"].get(name, {})
        print(f"  {name:<20} {inv['store']:>12,.0f} {inv['dc']:>12,.0f} {bw.get('store', float('nan')):>15.2f} "
              f"{bw.get('dc', float('nan')):>12.2f}")
    pf, gap = s.get("perfect_foresight_inventory_value"), s.get("gap_closed_pct")
    if pf is not None:
        print(f"  perfect-foresight bound {pf:,.0f}; stockturn closes {gap:.1f}% of the classical-to-bound gap")
    warm = s.get("warmup_days") or 0
    print("  promise vs delivered (stockturn; volume / item average)"
          + (f"; 'after day {warm}': once the plan's first supplier orders can have arrived" if warm else "") + ":")
    _print_promise_rows(s["promise"], warm)


def _print_promise_rows(rows: list[dict], warm: int = 0) -> None:
    for row in rows:
        late = row.get("delivered_volume_after_warmup")
        print(f"    {row['echelon']:<8} {row['segment']:<13} n={row['n_series']:>6,}  promised "
              f"{row['promised_volume']:.3f} / {row['promised_item_avg']:.3f}, delivered {row['delivered_volume']:.3f}"
              f" / {row['delivered_item_avg']:.3f}, {row['units_short']:,.0f} of {row['units_demanded']:,.0f} short"
              + (f", after day {warm} {late:.3f} / {row['delivered_item_avg_after_warmup']:.3f}"
                 if late is not None else ""))


# ------------------------------------------------------------------------------------------------ parser


def _add_settings_arguments(p: argparse.ArgumentParser) -> None:
    """--settings and the flags for the common planning settings (they win over the file)."""
    g = p.add_argument_group(
        "planning settings",
        "Read from stockturn.toml beside the warehouse (or --settings FILE): sections [forecast] and [policy] with "
        "any field of ForecastConfig / PolicyConfig (README, 'Planning settings'). These flags override the file; "
        "unset settings keep their documented defaults.")
    g.add_argument("--settings", metavar="FILE", help="planning settings TOML file (default: stockturn.toml beside "
                   "the warehouse, when there is one)")
    g.add_argument("--horizon-days", type=int, metavar="N", help="forecast horizon in days (default 91; the horizon "
                   "cap max_horizon_days, default 182, is raised to it)")
    g.add_argument("--grain", choices=("auto", "day", "week", "month"),
                   help="planning grain (default auto: the data's own grain)")
    g.add_argument("--review-period-days", type=int, metavar="N",
                   help="days between reviews at every location (sets both review periods below)")
    g.add_argument("--review-period-store-days", type=int, metavar="N",
                   help="review period of locations replenished by transfer (default 1)")
    g.add_argument("--review-period-supplier-days", type=int, metavar="N",
                   help="review period of locations that buy from suppliers (default 7)")
    g.add_argument("--holding-rate", type=float, metavar="RATE",
                   help="annual holding cost as a fraction of unit cost (default 0.25)")
    g.add_argument("--ordering-cost", type=float, metavar="COST",
                   help="fixed cost of one purchase-order line (default 15)")
    g.add_argument("--forecast-engine", choices=("local", "dask"),
                   help="where the global LightGBM model trains: local (default, this process) or dask (a Dask "
                   "cluster; needs pip install -e '.[dask]'; README, 'When one machine is not enough')")
    g.add_argument("--dask-address", metavar="ADDRESS",
                   help="scheduler of a running Dask cluster, e.g. tcp://host:8786 (default: start a local cluster)")
    g.add_argument("--dask-workers", type=int, metavar="N",
                   help="worker processes of the local Dask cluster (default 2)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stockturn",
        description="Warehouse-native inventory turnover: build the inventory mart, forecast, plan and report.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--wait-for-warehouse", type=float, default=None, metavar="SECONDS",
                        help="when another process holds the warehouse, wait up to SECONDS for it instead of "
                        "stopping at once (default 0; env STOCKTURN_WAREHOUSE_WAIT_SECONDS wins; runs launched by "
                        "Dagster wait 600)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("generate", help="write the demo company's raw exports (a landing folder)",
                       description="Generate a deterministic demo retailer's ERP/POS exports into a landing folder. "
                       "The hidden true demand goes to a sibling folder <out>_truth, never into the landing zone.")
    p.add_argument("--out", required=True, help="landing folder to write")
    p.add_argument("--truth", help="folder for the hidden ground truth (default: <out>_truth)")
    p.add_argument("--skus", type=int, default=150, help="number of products (default 150)")
    p.add_argument("--stores", type=int, default=5, help="number of stores (default 5)")
    p.add_argument("--days", type=int, default=1095, help="days of history (default 1095)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv", help="file format (default csv)")
    p.add_argument("--start", type=date.fromisoformat, default=date(2023, 1, 2),
                   help="first day of history, YYYY-MM-DD (default 2023-01-02)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("import-transactions", help="map the UCI Online Retail extract into a landing folder",
                       description="Import a transaction extract with the UCI Online Retail columns (InvoiceNo, "
                       "StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country) into the "
                       "landing contract: sales lines, products and one location. Nothing is dropped.")
    p.add_argument("--source", required=True, help="parquet or CSV file with the extract")
    p.add_argument("--out", required=True, help="landing folder to write")
    p.add_argument("--location", default="ONLINE", help="location id for the single selling location")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv", help="file format (default csv)")
    p.set_defaults(func=cmd_import_transactions)

    from ml.ingest.series_panel import add_arguments as add_series_arguments

    p = sub.add_parser("import-series", help="map a long-format demand panel (series id, period, units) into a "
                       "landing folder",
                       description="Import a long-format demand panel (CSV or Parquet, one row per series and "
                       "period, e.g. unique_id,ds,y) into the landing contract: one sales line per non-empty, "
                       "non-zero value dated on its period, one product per series, one location (or "
                       "--location-column). Missing values are not sales: they write no line and are counted. "
                       "Costs and supplier terms are not in such panels; --unit-cost and --lead-time-days write "
                       "ASSUMED defaults, reported apart from the data. The written files are checked against the "
                       "input totals (cells, series, sum of values).")
    add_series_arguments(p)
    p.set_defaults(func=cmd_import_series)

    p = sub.add_parser("build", help="load a landing folder and build the inventory mart with dbt",
                       description="Load every landing file into the warehouse (schema raw), then run dbt build: "
                       "staging with quarantine, intermediate models, marts and all their tests.")
    p.add_argument("--landing", required=True, help="landing folder (see docs/data-contract.md)")
    p.add_argument("--warehouse", required=True, help="DuckDB file to build (created if missing)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--full-refresh", action="store_true", help="read every landing file again, rebuild the raw "
                   "tables and the incremental dbt models from scratch (default: only files that are new or changed "
                   "since the last load are read, and the daily stock positions add only what changed)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("run", help="run the whole pipeline in-process with Dagster: load, dbt, plan, report",
                       description="Materialize every Dagster asset in this process: load the landing folder, dbt "
                       "build the marts (tests gate downstream models), forecast and plan (ml.*), build the dbt "
                       "models on the plan and the report. The run is recorded in <warehouse folder>/.dagster_home, "
                       "which `stockturn ui` shows.")
    p.add_argument("--landing", required=True, help="landing folder (see docs/data-contract.md)")
    p.add_argument("--warehouse", required=True, help="DuckDB file to build (created if missing)")
    p.add_argument("--full-refresh", action="store_true", help="read every landing file again, rebuild the raw "
                   "tables and the incremental dbt models from scratch (default: only files that are new or changed "
                   "since the last load are read, and the daily stock positions add only what changed)")
    p.add_argument("--report-dir", help="folder for the report (default: report/ beside the warehouse)")
    p.add_argument("--job", default="stockturn_pipeline",
                   choices=("stockturn_pipeline", "stockturn_nightly", "warehouse_build"),
                   help="stockturn_pipeline (default): everything, forecasting re-fitted (the weekly run); "
                   "stockturn_nightly: new files, dbt, re-plan from the stored forecast as of the latest day, orders, "
                   "report (no forecasting); warehouse_build: load + dbt only")
    p.add_argument("--select", help="only these assets, Dagster selection syntax (e.g. 'group:marts+', "
                   "'key:\"ml/demand_forecast\"')")
    p.add_argument("--as-of", type=date.fromisoformat, help="plan as of this day (default: latest sales date)")
    p.add_argument("--dagster-home", help="Dagster instance folder (default: .dagster_home beside the warehouse)")
    p.add_argument("--ephemeral", action="store_true",
                   help="do not record the run (in-memory Dagster instance: faster, nothing for `stockturn ui`)")
    _add_settings_arguments(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("replan", help="re-plan from the last forecast after editing service levels, overrides or "
                       "policy settings: no forecasting",
                       description="Reload the planning seeds (seeds/service_levels.csv, seeds/planner_overrides.csv), "
                       "re-run the replenishment policy over the forecast run the warehouse already holds "
                       "(ml.lead_time_demand_samples, ml.demand_forecast) and rebuild the dbt models on the plan and "
                       "the report. Policy settings (--settings, --holding-rate, --ordering-cost ...) apply; "
                       "forecast settings need `stockturn run`.")
    p.add_argument("--warehouse", required=True, help="DuckDB file planned by `stockturn run` before")
    p.add_argument("--landing", default=str(DEFAULT_LANDING_DIR),
                   help="landing folder of the warehouse (not read by a re-plan; default ./data/landing)")
    p.add_argument("--report-dir", help="folder for the report (default: report/ beside the warehouse)")
    p.add_argument("--dagster-home", help="Dagster instance folder (default: .dagster_home beside the warehouse)")
    p.add_argument("--ephemeral", action="store_true",
                   help="do not record the run (in-memory Dagster instance: faster, nothing for `stockturn ui`)")
    _add_settings_arguments(p)
    p.set_defaults(func=cmd_replan)

    p = sub.add_parser("demo", help="generate the demo company and run the whole pipeline",
                       description="Generate the demo company into ./data/landing, then run the whole pipeline "
                       "(as `stockturn run`) into ./data/warehouse.duckdb and ./data/report.")
    p.add_argument("--landing", default=str(DEFAULT_LANDING_DIR), help="landing folder (default ./data/landing)")
    p.add_argument("--warehouse", default=str(DEFAULT_WAREHOUSE), help="DuckDB file (default ./data/warehouse.duckdb)")
    p.add_argument("--report-dir", help="folder for the report (default: report/ beside the warehouse)")
    p.add_argument("--seed", type=int, default=42, help="random seed of the demo company")
    p.add_argument("--skus", type=int, default=150, help="number of products (default 150)")
    p.add_argument("--stores", type=int, default=5, help="number of stores (default 5)")
    p.add_argument("--days", type=int, default=1095, help="days of history (default 1095)")
    p.add_argument("--ephemeral", action="store_true",
                   help="do not record the run (in-memory Dagster instance: faster, nothing for `stockturn ui`)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("ui", help="start the Dagster UI (dagster dev) on the warehouse",
                       description="Start `dagster dev` on 127.0.0.1 with the project-local Dagster instance "
                       "(.dagster_home beside the warehouse: telemetry off, one warehouse run at a time) and the "
                       "landing/warehouse/report paths in the environment.")
    p.add_argument("--port", type=int, default=3000, help="port (default 3000)")
    p.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    p.add_argument("--landing", default=str(DEFAULT_LANDING_DIR), help="landing folder (default ./data/landing)")
    p.add_argument("--warehouse", default=str(DEFAULT_WAREHOUSE), help="DuckDB file (default ./data/warehouse.duckdb)")
    p.add_argument("--report-dir", help="folder for the report (default: report/ beside the warehouse)")
    p.add_argument("--dagster-home", help="Dagster instance folder (default: .dagster_home beside the warehouse)")
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("decision-value", help="what the planners' overrides and proposal decisions changed, "
                       "replayed", description="Replay the last --days days of demand for every series whose reorder "
                       "point or order quantity a planner overrode (seeds/planner_overrides.csv), and up to --days "
                       "days after every proposal a planner rejected or approved with another quantity, with the "
                       "planner's numbers and with the policy's, and compare inventory value, fill and lost margin, "
                       "per planner and reason; writes ml.planner_decision_value (the pipeline does this after every "
                       "plan). docs/planner-decisions.md.")
    p.add_argument("--warehouse", default=str(DEFAULT_WAREHOUSE), help="DuckDB file (default ./data/warehouse.duckdb)")
    p.add_argument("--landing", default=None, help="landing folder; its <landing>_truth sibling (demo) gives the true "
                   "demand, else the recorded sales with stock-out days imputed")
    p.add_argument("--days", type=int, default=91, help="days of recent demand replayed (default 91)")
    p.add_argument("--no-write", action="store_true", help="print only; do not write ml.planner_decision_value")
    p.set_defaults(func=cmd_decision_value)

    p = sub.add_parser("report", help="build the turnover report (HTML + PNG/SVG charts) from a warehouse",
                       description="Build one self-contained, offline HTML report and the charts as PNG and SVG "
                       "from a built warehouse (the forecast and recommendation sections need `stockturn run`).")
    p.add_argument("--warehouse", default=str(DEFAULT_WAREHOUSE), help="DuckDB file (default ./data/warehouse.duckdb)")
    p.add_argument("--out", required=True, help="folder for report.html and charts/")
    p.add_argument("--currency", default="$", help="currency symbol for money (default $)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("proposals", help="list purchase proposals and approve or reject them",
                       description="Planner decisions on the proposals in ml.purchase_proposals. Decisions are "
                       "appended to ml.proposal_decisions (an audit trail that runs never rebuild) and kept by "
                       "re-runs with the same inputs.")
    p.add_argument("--warehouse", default=str(DEFAULT_WAREHOUSE), help="DuckDB file (default ./data/warehouse.duckdb)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = actions.add_parser("list", help="list proposals, largest value first, and why each one waits")
    q.add_argument("--status", default="proposed", choices=("proposed", "approved", "rejected", "all"))
    q = actions.add_parser("auto-approve", help="approve the proposals seeds/approval_rules.csv covers (the "
                           "pipeline does this after every plan); exceptions and planners' decisions are left alone")
    q.add_argument("--rules", default=None, help="folder with approval_rules.csv, read when planning.approval_rules "
                   "is not in the warehouse (default: the project's seeds/)")
    q = actions.add_parser("export", help="write approved, never-exported proposals as purchase and transfer "
                           "orders an ERP can import (docs/order-export.md); each proposal is exported once")
    q.add_argument("--out", required=True, help="folder; each export is a new batch folder inside it")
    for name, text in (("approve", "approve a proposal"), ("reject", "reject a proposal (a reason is required)"),
                       ("reset", "set a proposal back to proposed")):
        q = actions.add_parser(name, help=text)
        q.add_argument("proposal_id", help="id from `stockturn proposals list`")
        q.add_argument("--author", required=True, help="who decides (kept in the audit trail)")
        q.add_argument("--reason", help="why (required to reject, or to approve another quantity)")
        if name == "approve":
            q.add_argument("--quantity", type=float, default=None,
                           help="approve this quantity instead of the one proposed (exported as typed)")
    p.set_defaults(func=cmd_proposals)

    p = sub.add_parser("backtest", help="replay a year under stockturn's policy and the classical baseline",
                       description="Policy backtest: replay the last --days days for every store x product under "
                       "stockturn's policy (forecasting + policy re-made on the first of every month from data up to "
                       "that day) and the classical baseline (normal reorder point), compare them at matched service "
                       "(the baseline's safety factor scanned; bootstrap CI over products) and optionally under a "
                       "named stress scenario. On the demo (a <landing>_truth folder) the hidden true demand is "
                       "replayed; otherwise the recorded sales with stock-out days imputed. Writes "
                       "ml.policy_backtest and ml.policy_backtest_comparison. Takes ~15-20 min on the default demo "
                       "the first time (one forecasting run per planning date, cached beside the warehouse).")
    p.add_argument("--warehouse", required=True, help="DuckDB file built by `stockturn build` / `stockturn run`")
    p.add_argument("--landing", help="landing folder; its <landing>_truth sibling (demo) gives the true demand")
    p.add_argument("--scenario", help="also run this named stress scenario (see `stockturn scenarios`), or 'all' "
                   "(every named scenario with its defaults)")
    p.add_argument("--param", action="append", metavar="K=V", help="scenario parameter (repeatable)")
    p.add_argument("--days", type=int, default=365, help="days to replay (default 365)")
    p.add_argument("--history-days", type=int, default=365, help="history before the replay (default 365)")
    p.add_argument("--start", type=date.fromisoformat, help="first replayed day (default: last --days days)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples over products (default 1000)")
    p.add_argument("--cache-dir", help="forecast cache (default: .backtest_cache beside the warehouse)")
    p.add_argument("--forecast-workers", type=int, default=None, metavar="N",
                   help="processes the study's forecasting runs are made in, before the replay (default: one per "
                   "core); 1 forecasts one planning date at a time. Each process holds one forecasting run in "
                   "memory")
    p.add_argument("--replay-seeds", type=int, default=1, metavar="N",
                   help="network replay: pool the match over N lead-time draws (default 1); at high fill one draw "
                   "can swing the comparison by several points, and N multiplies the simulation time, not the "
                   "planning")
    p.add_argument("--replan-every-days", type=int, default=7, metavar="N",
                   help="re-plan every N days between the monthly forecasts from the latest one, as the nightly "
                   "plan does (default 7; 0: plan on the forecast days only)")
    p.add_argument("--dispersion", choices=("mixed", "quadratic", "linear"), default="mixed",
                   help="how stockturn's lead-time demand is re-expressed over the supplier lead time: day-to-day "
                   "noise from the recorded history + the pipeline's remaining variance as a persistent level error "
                   "(mixed, default), all extra variance as level error (quadratic) or variance = phi x mean "
                   "(linear); docs/backtest.md")
    p.add_argument("--no-write", action="store_true", help="do not write the ml tables")
    _add_settings_arguments(p)
    p.set_defaults(func=cmd_backtest)

    p = sub.add_parser("scenarios", help="list the named stress scenarios of `stockturn backtest`",
                       description="List the named, parameterised stress scenarios and their default parameters.")
    p.set_defaults(func=cmd_scenarios)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    from ml.ingest.loader import LandingContractError
    from ml.warehouse import WarehouseBusyError, set_default_wait
    from orchestration.dbt_cli import DbtError
    from orchestration.dbt_manifest import ManifestError
    from reports.context import WarehouseNotBuiltError

    # interactive commands fail at once on a busy warehouse unless asked to wait (pinned: the Dagster code location
    # that `stockturn run` loads in-process does not raise it; STOCKTURN_WAREHOUSE_WAIT_SECONDS still wins)
    set_default_wait(args.wait_for_warehouse or 0.0, pin=True)
    try:
        return args.func(args)
    except WarehouseBusyError as exc:
        log.error("%s", exc)
        return 75  # EX_TEMPFAIL: try again later
    except (CliError, LandingContractError, DbtError, ManifestError, WarehouseNotBuiltError,
            FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
