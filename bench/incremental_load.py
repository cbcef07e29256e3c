"""The nightly landing load: a full load against an incremental one that reads only the night's new file
(issue 11, section 1).

    python bench/incremental_load.py --landing /data/m5/landing --work /tmp/incr [--nights 3]

Copies the landing folder into ``--work``, loads it in full into ``<work>/warehouse.duckdb`` (timed), then, night
after night, writes one new day of sales lines (the last recorded day's lines moved one day on, new transaction
ids: a realistic size for one night of the company) as ``sales/sales_lines_<day>.<ext>`` and loads incrementally
(timed). Prints the full load, each night's incremental load and their median, and checks that the raw sales table
grew by exactly the night's rows. The dbt build after the load is not part of this figure (it still rebuilds the
marts). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.ingest.loader import load_landing  # noqa: E402


def _night(landing: Path, last_part: Path | None) -> tuple[Path, int]:
    """Write the day after the last one of ``last_part`` (default: the last part file by name) next to the other
    sales lines; (file, rows)."""
    if last_part is None:
        parts = sorted(p for p in (landing / "sales").glob("sales_lines_*") if p.suffix in (".csv", ".parquet"))
        # a night's own file (sales_lines_YYYY-MM-DD) is newer than any part named by quarter (..._2028q2)
        nights = [p for p in parts if re.fullmatch(r"sales_lines_\d{4}-\d{2}-\d{2}", p.stem)]
        last_part = max(nights, key=lambda p: p.stem) if nights else parts[-1]
    read = pl.read_parquet if last_part.suffix == ".parquet" else lambda p: pl.read_csv(p, infer_schema=False)
    lines = read(last_part)
    day = max(date.fromisoformat(str(d)[:10]) for d in lines["sold_at"].unique().to_list())
    last = lines.filter(pl.col("sold_at").cast(pl.String).str.slice(0, 10) == day.isoformat())
    nxt = day + timedelta(days=1)
    if nxt > date.today() + timedelta(days=2):
        # the build quarantines it as future_date (dbt var future_date_tolerance_days): the night would add nothing
        raise SystemExit(f"the next night ({nxt}) is after today: the build would quarantine its lines as "
                         "future_date and the night would measure nothing. Generate the company with --start so "
                         "that its history ends before today.")
    night = last.with_columns(
        pl.col("sold_at").cast(pl.String).str.replace(day.isoformat(), nxt.isoformat()).alias("sold_at"),
        (pl.col("transaction_id").cast(pl.String) + f"-n{nxt:%Y%m%d}").alias("transaction_id"))
    out = landing / "sales" / f"sales_lines_{nxt.isoformat()}{last_part.suffix}"
    if last_part.suffix == ".parquet":
        night.write_parquet(out)
    else:
        night.write_csv(out)
    return out, night.height


def _next_day_file(landing: Path, folder: str, prefix: str, day_column: str, date_columns: tuple[str, ...],
                   id_column: str) -> tuple[Path, int]:
    """Write the rows of the latest ``day_column`` day of ``<folder>/<prefix>_*`` moved one day on (every column in
    ``date_columns``), with new ids, as ``<folder>/<prefix>_<day>.<ext>``: one more night of that export;
    (file, rows)."""
    parts = sorted(p for p in (landing / folder).glob(f"{prefix}_*") if p.suffix in (".csv", ".parquet"))
    if not parts:
        raise SystemExit(f"no {prefix} files in {landing / folder}")
    nights = [p for p in parts if re.fullmatch(rf"{prefix}_\d{{4}}-\d{{2}}-\d{{2}}", p.stem)]
    last_part = max(nights, key=lambda p: p.stem) if nights else parts[-1]
    read = pl.read_parquet if last_part.suffix == ".parquet" else lambda p: pl.read_csv(p, infer_schema=False)
    rows = read(last_part).with_columns(pl.col(c).cast(pl.String) for c in date_columns)
    day = max(date.fromisoformat(d[:10]) for d in rows[day_column].drop_nulls().unique().to_list())
    nxt = day + timedelta(days=1)
    last = rows.filter(pl.col(day_column).str.slice(0, 10) == day.isoformat())

    def moved(column: str) -> pl.Expr:
        parsed = pl.col(column).str.slice(0, 10).str.to_date()
        return (parsed + pl.duration(days=1)).cast(pl.String).alias(column)

    night = last.with_columns(*(moved(c) for c in date_columns),
                              (pl.col(id_column).cast(pl.String).str.replace(r"-n\d{8}$", "") + f"-n{nxt:%Y%m%d}")
                              .alias(id_column))
    out = landing / folder / f"{prefix}_{nxt.isoformat()}{last_part.suffix}"
    if last_part.suffix == ".parquet":
        night.write_parquet(out)
    else:
        night.write_csv(out)
    return out, night.height


def _transfer_night(landing: Path) -> tuple[Path, int]:
    """The transfers requested on the latest request day of the landing, moved one day on (new transfer ids), as
    ``logistics/transfers_<day>.<ext>``: one night of store replenishment; (file, rows)."""
    return _next_day_file(landing, "logistics", "transfers", "ordered_date",
                          ("ordered_date", "shipped_date", "received_date"), "transfer_id")


def _ledger_night(landing: Path) -> tuple[Path, int]:
    """The COGS postings of the latest posting day, moved one day on (new posting ids), as
    ``finance/cogs_ledger_<day>.<ext>``: one night of the finance export; (file, rows)."""
    return _next_day_file(landing, "finance", "cogs_ledger", "posting_date", ("posting_date",), "posting_id")


def _sales_rows(warehouse: Path) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("select count(*) from raw.sales__sales_lines").fetchall()[0][0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--landing", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True, help="scratch folder (the landing copy and the warehouse)")
    p.add_argument("--nights", type=int, default=3)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    if args.work.exists():
        shutil.rmtree(args.work)
    landing = args.work / "landing"
    shutil.copytree(args.landing, landing)
    warehouse = args.work / "warehouse.duckdb"
    t0 = time.perf_counter()
    full = load_landing(landing, warehouse, progress=False, full_refresh=True)
    full_s = time.perf_counter() - t0
    print(f"full load: {len(full.files):,} files, {full.rows:,} rows in {full_s:,.1f} s")
    nights = []
    path = None
    for k in range(args.nights):
        before = _sales_rows(warehouse)
        path, rows = _night(landing, path)
        t0 = time.perf_counter()
        report = load_landing(landing, warehouse, progress=False)
        seconds = time.perf_counter() - t0
        read = [f.file for f in report.files if not f.reused]
        grew = _sales_rows(warehouse) - before
        assert read == [path.relative_to(landing).as_posix()], read
        assert grew == rows, (grew, rows)
        nights.append(seconds)
        print(f"night {k + 1}: {path.name} ({rows:,} lines): incremental load in {seconds:,.1f} s "
              f"(read 1 of {len(report.files):,} files; raw sales lines +{grew:,})")
    print(f"median incremental load: {statistics.median(nights):,.1f} s against {full_s:,.1f} s in full")


if __name__ == "__main__":
    main()
