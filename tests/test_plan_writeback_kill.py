"""A planning run killed in the middle of its write-back (a real SIGKILL of the writing process): the warehouse
opens afterwards and every ml table carries the same run id, all old or all new (issue 11, checks before the
write). The write is ``ml.warehouse.write_tables_atomically``, the one the planning asset uses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ml.warehouse import write_tables_atomically
from orchestration.defs.planning import ML_TABLES

ROWS = 400_000

WRITER = r"""
import sys, time
import duckdb, polars as pl
from ml.warehouse import write_tables_atomically
from orchestration.defs.planning import ML_TABLES

path, pause_after, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


class PausingConnection:
    '''Delegates to DuckDB; after `pause_after` tables are replaced (inside the open transaction) it says so and
    waits to be killed.'''

    def __init__(self, con):
        self.con, self.replaced = con, 0

    def __getattr__(self, name):
        return getattr(self.con, name)

    def execute(self, sql, *args):
        out = self.con.execute(sql, *args)
        if sql.startswith("create or replace table"):
            self.replaced += 1
            if self.replaced == pause_after:
                print("mid-write", flush=True)
                time.sleep(120)
        return out


con = duckdb.connect(path)
frames = {name: pl.DataFrame({"run_id": ["new"] * rows, "value": pl.arange(0, rows, eager=True) * 2.0})
          for name in ML_TABLES}
print("writing", flush=True)
write_tables_atomically(PausingConnection(con) if pause_after > 0 else con, frames)
print("done", flush=True)
"""


def _seed(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        write_tables_atomically(con, {name: pl.DataFrame({"run_id": ["old"] * 1000, "value": [1.0] * 1000})
                                      for name in ML_TABLES})


def _run_ids(path: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(path)) as con:  # read-write: replays the write-ahead log like any next run would
        return {name: con.execute(f"select run_id, count(*) from ml.{name} group by 1").fetchall()
                for name in ML_TABLES}


def _writer(path: Path, pause_after: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(pause_after), str(ROWS)],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])


def test_a_kill_in_the_middle_of_the_write_back_leaves_the_old_plan_whole(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    _seed(path)
    writer = _writer(path, pause_after=3)  # three of six tables replaced, transaction open
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "writing"
    assert writer.stdout.readline().strip() == "mid-write"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert writer.returncode == -signal.SIGKILL
    assert _run_ids(path) == {name: [("old", 1000)] for name in ML_TABLES}


@pytest.mark.parametrize("delay", [0.1, 0.4, 0.7, 1.5])
def test_a_kill_at_any_moment_leaves_all_old_or_all_new(tmp_path: Path, delay: float) -> None:
    """Killed after a delay that falls before, during or after the write (or its commit): never a mix."""
    path = tmp_path / "w.duckdb"
    _seed(path)
    writer = _writer(path, pause_after=0)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    time.sleep(delay)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    ids = _run_ids(path)
    states = {tuple(rows) for rows in ids.values()}
    assert states in ({(("old", 1000),)}, {(("new", ROWS),)}), ids
