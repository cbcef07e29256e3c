"""DuckDB warehouse access shared by the plain-Python layers (forecasting, policy, simulation, reports).

DuckDB allows one writing process per file, so everything that writes goes through short-lived connections
opened here, and a set of write-back tables is replaced in one transaction: readers see either all the old
tables or all the new ones, and a failure part-way leaves the previous tables intact.

**Claims.** A build is several writers in a row (the loader, then dbt in a child process, then planning and the
report), and between two of them nobody holds DuckDB's lock: another process waiting for the warehouse would slip in
there (its own load, or a read that makes the next dbt step fail on a conflicting lock). So the process that loads
the landing zone *claims* the warehouse (``open_duckdb(..., claim=True)``): an advisory lock on
``<warehouse>.lock`` that it keeps until it exits (or :func:`release_warehouse`). :func:`open_duckdb` in any other
process treats a claim like DuckDB's own lock: it waits (``--wait-for-warehouse``) and names the claimant. The
claimant's child processes (dbt) are part of its build and are not blocked by it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

try:
    import fcntl
except ImportError:  # pragma: no cover - no flock (Windows): DuckDB's own lock only
    fcntl = None  # type: ignore[assignment]

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


#: the claim file beside the warehouse: ``<warehouse>.lock`` (an advisory ``flock``; its text names the claimant)
CLAIM_SUFFIX = ".lock"
_claims: dict[str, int] = {}  # resolved warehouse path -> descriptor of the claim file this process holds
_PID = re.compile(r"\(PID (\d+)\)")


def claim_path(warehouse: Path | str) -> Path:
    path = Path(warehouse)
    return path.with_name(path.name + CLAIM_SUFFIX)


def _claim_key(warehouse: Path | str) -> str:
    return str(Path(warehouse).resolve())


def _process_label() -> str:
    """'stockturn build (PID n)', 'dagster job (PID n)', 'python3.11 (PID n)': what this process is, for messages."""
    argv = [a for a in sys.argv if a]
    prog = Path(argv[0]).name if argv and not argv[0].startswith("-") else Path(sys.executable).name
    command = next((a for a in argv[1:] if re.fullmatch(r"[a-z][a-z_-]*", a)), None)
    return f"{prog}{' ' + command if command else ''} (PID {os.getpid()})"


def _ancestor_pids() -> set[int]:
    """PIDs of this process's parent, grandparent, ... (Linux /proc; just the parent elsewhere)."""
    pids: set[int] = set()
    pid = os.getppid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def _foreign_claimant(fd: int) -> str | None:
    """Who holds the claim on ``fd`` (locked by another process), or None when it does not block this process: an
    ancestor's claim (dbt or a tool the build started), or a claimant that is itself waiting for this process to
    let go of DuckDB's lock (this process opening a second connection must not wait for it)."""
    try:
        text = os.pread(fd, 300, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    m = _PID.search(text)
    if m and int(m[1]) in _ancestor_pids():
        return None
    if f"waiting for PID {os.getpid()}\n" in text + "\n":
        return None
    return text.splitlines()[0] if text else "another process"


def _write_claim(warehouse: Path | str, waiting_for: str | None = None) -> None:
    """(Re)write this process's claim file: its label, and the DuckDB lock holder it waits for, if any."""
    fd = _claims.get(_claim_key(warehouse))
    if fd is None:
        return
    m = _PID.search(waiting_for or "")
    text = f"{_process_label()}\n" + (f"waiting for PID {m[1]}\n" if m else "")
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
    except OSError:
        pass


def claim_holder(warehouse: Path | str) -> str | None:
    """The process that has claimed ``warehouse`` ('<program> (PID n)'), or None: unclaimed, claimed by this process,
    or by one of its ancestors."""
    if fcntl is None or _claim_key(warehouse) in _claims:
        return None
    try:
        fd = os.open(claim_path(warehouse), os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:  # held (exclusively) by another process
            return _foreign_claimant(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _try_claim(warehouse: Path | str) -> tuple[bool, str | None]:
    """Take the claim without waiting: (newly claimed by this call, holder when another process has it)."""
    if fcntl is None or _claim_key(warehouse) in _claims:
        return False, None
    path = claim_path(warehouse)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:  # a read-only folder: no claim, DuckDB's own lock still applies
        log.debug("cannot create the claim file %s: %s", path, exc)
        return False, None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = _foreign_claimant(fd)
        os.close(fd)
        return False, holder
    _claims[_claim_key(warehouse)] = fd
    _write_claim(warehouse)
    return True, None


def holds_claim(warehouse: Path | str) -> bool:
    """Whether this process has claimed ``warehouse``."""
    return _claim_key(warehouse) in _claims


def release_warehouse(warehouse: Path | str) -> None:
    """Give up this process's claim on ``warehouse`` (a long-lived process, e.g. a notebook, after its build)."""
    fd = _claims.pop(_claim_key(warehouse), None)
    if fd is not None and fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def open_duckdb(warehouse: Path | str, *, read_only: bool = False, wait_seconds: float | None = None,
                claim: bool = False) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` that, when another process holds the file or has claimed it (see the module docstring),
    waits up to ``wait_seconds`` (default: the ``STOCKTURN_WAREHOUSE_WAIT_SECONDS`` environment variable, else
    :data:`default_wait_seconds`) for it, logging who holds it, and then raises :class:`WarehouseBusyError` with a
    one-line message naming the holder.

    ``claim=True`` (the loader: the first step of a build) also claims the warehouse for this process until it
    exits or calls :func:`release_warehouse`, so no other process gets in between this step and the next."""
    if wait_seconds is None:
        env = os.environ.get(WAIT_ENV)
        wait = float(env) if env else default_wait_seconds
    else:
        wait = float(wait_seconds)
    start = time.monotonic()
    next_log = start
    claimed_here = False
    waited_for: str | None = None
    while True:
        if claim:
            newly, holder = _try_claim(warehouse)
            claimed_here = claimed_here or newly
        else:
            holder = claim_holder(warehouse)
        if holder is None:
            try:
                con = duckdb.connect(str(warehouse), read_only=read_only)
            except duckdb.IOException as exc:
                holder = lock_holder(str(exc))
                if holder is None:
                    if claimed_here:
                        release_warehouse(warehouse)
                    raise
                if claim and holder != waited_for:
                    _write_claim(warehouse, waiting_for=holder)  # the holder may open more connections meanwhile
            else:
                if claim and waited_for:
                    _write_claim(warehouse)
                if waited_for:
                    log.warning("warehouse %s: %s is done with it; went ahead after waiting %.0f s", warehouse,
                                waited_for, time.monotonic() - start)
                return con
        now = time.monotonic()
        if now - start >= wait:
            if claimed_here:
                release_warehouse(warehouse)
            waited = f" (waited {now - start:,.0f} s)" if wait > 0 else ""
            raise WarehouseBusyError(
                f"warehouse {warehouse} is busy: {holder} holds it{waited}. DuckDB allows one writing process: "
                f"let it finish (or stop it), or wait for it with --wait-for-warehouse SECONDS "
                f"({WAIT_ENV})") from None
        if now >= next_log or holder != waited_for:
            log.warning("warehouse %s is held by %s: waiting for it (up to %.0f s more)", warehouse, holder,
                        wait - (now - start))
            next_log = now + 30.0
        waited_for = holder
        time.sleep(min(1.0, max(wait - (now - start), 0.05)))


@contextmanager
def connect(warehouse: Path | str, *, read_only: bool = False, claim: bool = False
            ) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse file with the project's memory limit; closed on exit. ``claim``: see :func:`open_duckdb`
    (a step of a run that writes claims the warehouse for its process, so no other writer gets in between)."""
    path = Path(warehouse)
    if read_only and not path.exists():
        raise FileNotFoundError(f"warehouse {path} does not exist: run `stockturn build` or `stockturn demo` first")
    con = open_duckdb(path, read_only=read_only, claim=claim)
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


def table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    """The column names of ``schema.table`` (empty when it does not exist)."""
    return {c for (c,) in con.execute("select column_name from information_schema.columns where table_schema = ? "
                                      "and table_name = ?", [schema, table]).fetchall()}


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
