"""The `stockturn` command."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import date
from pathlib import Path

from ml.settings import DEFAULT_LANDING_DIR, DEFAULT_WAREHOUSE

log = logging.getLogger("stockturn")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-5s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


# ------------------------------------------------------------------------------------------------ commands


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
    return 0


def cmd_import_transactions(args: argparse.Namespace) -> int:
    from ml.ingest.online_retail import import_online_retail

    summary = import_online_retail(Path(args.source), Path(args.out), location_id=args.location, fmt=args.format)
    print(summary.format())
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from orchestration.warehouse_build import build_warehouse
    from reports.warehouse_summary import warehouse_summary

    result = build_warehouse(Path(args.landing), Path(args.warehouse), progress=not args.quiet)
    print(warehouse_summary(Path(args.warehouse)))
    print(f"\nBuilt in {result.seconds:,.1f} s.")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ml.demo_company import generate
    from orchestration.warehouse_build import build_warehouse
    from reports.warehouse_summary import warehouse_summary

    t0 = time.perf_counter()
    landing, warehouse = Path(args.landing), Path(args.warehouse)
    log.info("generating the demo company into %s", landing)
    summary = generate(landing, seed=args.seed, progress=not args.quiet)
    print(summary.format())
    log.info("building the warehouse %s", warehouse)
    build_warehouse(landing, warehouse, progress=not args.quiet)
    print()
    print(warehouse_summary(warehouse))
    print(f"\nDemo finished in {time.perf_counter() - t0:,.0f} s. Warehouse: {warehouse.resolve()}")
    print(f"Explore it with: duckdb {warehouse} -c \"select * from marts.fct_inventory_turnover_monthly"
          " where grain = 'company' order by month_start_date\"")
    return 0


# ------------------------------------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stockturn",
        description="Warehouse-native inventory turnover: build the inventory mart, forecast, plan and report.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
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

    p = sub.add_parser("build", help="load a landing folder and build the inventory mart with dbt",
                       description="Load every landing file into the warehouse (schema raw), then run dbt build: "
                       "staging with quarantine, intermediate models, marts and all their tests.")
    p.add_argument("--landing", required=True, help="landing folder (see docs/data-contract.md)")
    p.add_argument("--warehouse", required=True, help="DuckDB file to build (created if missing)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("demo", help="generate the demo company and build everything",
                       description="Generate the demo company into ./data/landing and build ./data/warehouse.duckdb.")
    p.add_argument("--landing", default=str(DEFAULT_LANDING_DIR), help="landing folder (default ./data/landing)")
    p.add_argument("--warehouse", default=str(DEFAULT_WAREHOUSE), help="DuckDB file (default ./data/warehouse.duckdb)")
    p.add_argument("--seed", type=int, default=42, help="random seed of the demo company")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    from ml.ingest.loader import LandingContractError
    from orchestration.dbt_cli import DbtError

    try:
        return args.func(args)
    except (LandingContractError, DbtError) as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
