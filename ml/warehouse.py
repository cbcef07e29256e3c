"""DuckDB warehouse access shared by the plain-Python layers (forecasting, policy, simulation, reports).

DuckDB allows one writing process per file, so everything that writes goes through short-lived connections
opened here, and a set of write-back tables is replaced in one transaction: readers see either all the old
tables or all the new ones, and a failure part-way leaves the previous tables intact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

log = logging.getLogger("stockturn.warehouse")

MEMORY_LIMIT_ENV = "STOCKTURN_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "6GB"
ML_SCHEMA = "ml"
#: seconds to wait for another process's lock on the warehouse before giving up (0: fail at once). The CLI sets it
#: from ``--wait-for-warehouse``; without it, :data:`default_wait_seconds` applies.
WAIT_ENV = "STOCKTURN_WAREHOUSE_WAIT_SECONDS"
#: the wait when ``STOCKTURN_WAREHOUSE_WAIT_SECONDS`` is unset: 0, and 600 in a process that loads the Dagster code
#: location (runs the webserver or the schedule launch wait). Process-local, so child processes do not inherit it.
default_wait_seconds: float = 0.0
_wait_pinned = False


def set_default_wait(seconds: float, *, pin: bool = False) -> None:
    """Set :data:`default_wait_seconds` for this process; once pinned (the CLI's ``--wait-for-warehouse``, or
    its default 0), later unpinned calls (the Dagster code location's 600) leave it alone."""
    global default_wait_seconds, _wait_pinned
    if _wait_pinned and not pin:
        return
    default_wait_seconds = float(seconds)
    _wait_pinned = _wait_pinned or pin
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.+?) \(PID (?P<pid>\d+)\)")


class WarehouseBusyError(RuntimeError):
    """Another process holds the warehouse's lock (DuckDB allows one writer per file)."""


def lock_holder(message: str) -> str | None:
    """'<program> (PID n)' from DuckDB's conflicting-lock error, or None when the error is about something else."""
    m = _LOCK_HOLDER.search(message)
    return f"{m['exe']} (PID {m['pid']})" if m else None


def open_duckdb(warehouse: Path | str, *, read_only: bool = False,
                wait_seconds: float | None = None) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` that, when another process holds the file, waits up to ``wait_seconds`` (default: the
    ``STOCKTURN_WAREHOUSE_WAIT_SECONDS`` environment variable, else :data:`default_wait_seconds`) for it, logging
    who holds it, and then
    raises :class:`WarehouseBusyError` with a one-line message naming the holder."""
    if wait_seconds is None:
        env = os.environ.get(WAIT_ENV)
        wait = float(env) if env else default_wait_seconds
    else:
        wait = float(wait_seconds)
    start = time.monotonic()
    next_log = start
    while True:
        try:
            return duckdb.connect(str(warehouse), read_only=read_only)
        except duckdb.IOException as exc:
            holder = lock_holder(str(exc))
            if holder is None:
                raise
            now = time.monotonic()
            if now - start >= wait:
                waited = f" (waited {now - start:,.0f} s)" if wait > 0 else ""
                raise WarehouseBusyError(
                    f"warehouse {warehouse} is busy: {holder} holds it{waited}. DuckDB allows one writing process: "
                    f"let it finish (or stop it), or wait for it with --wait-for-warehouse SECONDS "
                    f"({WAIT_ENV})") from None
            if now >= next_log:
                log.warning("warehouse %s is held by %s: waiting for it (up to %.0f s more)", warehouse, holder,
                            wait - (now - start))
                next_log = now + 30.0
            time.sleep(min(1.0, max(wait - (now - start), 0.05)))


@contextmanager
def connect(warehouse: Path | str, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse file with the project's memory limit; closed on exit."""
    path = Path(warehouse)
    if read_only and not path.exists():
        raise FileNotFoundError(f"warehouse {path} does not exist: run `stockturn build` or `stockturn demo` first")
    con = open_duckdb(path, read_only=read_only)
    try:
        con.execute(f"set memory_limit = '{os.environ.get(MEMORY_LIMIT_ENV, DEFAULT_MEMORY_LIMIT)}'")
        con.execute(f"set threads = {os.cpu_count() or 1}")
        yield con
    finally:
        con.close()


def read_frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    """Run a query and return a polars frame."""
    return con.sql(sql, params=params or None).pl()


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    rows = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, table]
    ).fetchall()  # fetchall, not fetchone: DuckDB 2.0 keeps a half-read result open and blocks the next query
    return rows[0][0] > 0


@dataclass(frozen=True)
class RunInfo:
    """Identifies one write-back: stamped on every row of every ``ml`` table it writes.

    ``run_id`` is a hash of the inputs (the landing load, the as-of date, the configuration and the model
    version), so re-running the same inputs reproduces the same tables, run id included.
    """

    run_id: str
    as_of_date: date
    model_version: str

    @classmethod
    def from_inputs(cls, *, as_of_date: date, model_version: str, inputs: Mapping[str, object]) -> RunInfo:
        payload = json.dumps({"as_of": as_of_date.isoformat(), "model": model_version, **inputs}, sort_keys=True,
                             default=str)
        return cls(hashlib.sha256(payload.encode()).hexdigest()[:16], as_of_date, model_version)

    def stamp(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Prefix the frame with run_id, as_of_date and model_version columns."""
        meta = [
            pl.lit(self.run_id).alias("run_id"),
            pl.lit(self.as_of_date).cast(pl.Date).alias("as_of_date"),
            pl.lit(self.model_version).alias("model_version"),
        ]
        rest = [c for c in frame.columns if c not in ("run_id", "as_of_date", "model_version")]
        return frame.with_columns(meta).select(["run_id", "as_of_date", "model_version", *rest])


def write_tables_atomically(
    con: duckdb.DuckDBPyConnection, tables: Mapping[str, pl.DataFrame], *, schema: str = ML_SCHEMA
) -> None:
    """Replace ``schema.<name>`` for every frame in ``tables`` inside one transaction.

    Either every table is replaced or, on any error, none is: the previous versions stay as they were.
    """
    con.execute(f"create schema if not exists {schema}")
    con.execute("begin transaction")
    try:
        for name, frame in tables.items():
            con.register("__stockturn_frame", frame.to_arrow())
            con.execute(f"create or replace table {schema}.{name} as select * from __stockturn_frame")
            con.unregister("__stockturn_frame")
            log.info("wrote %s.%s: %s rows", schema, name, f"{frame.height:,}")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
