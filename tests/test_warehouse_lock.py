"""A busy warehouse (issue 10): a second writer gets one line naming the process that holds the file, and can wait
for it instead."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from ml.warehouse import WarehouseBusyError, lock_holder, open_duckdb
from tests.conftest import run_stockturn

HOLD = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
        "time.sleep(float(sys.argv[2]))")


def _hold(path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_told_who_holds_the_warehouse(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    holder = _hold(path, 30)
    try:
        with pytest.raises(WarehouseBusyError) as err:
            open_duckdb(path, wait_seconds=0)
        msg = str(err.value)
        assert f"PID {holder.pid}" in msg and "is busy" in msg and "--wait-for-warehouse" in msg
        assert "\n" not in msg
        t0 = time.monotonic()
        with pytest.raises(WarehouseBusyError, match=r"waited [12] s"):
            open_duckdb(path, wait_seconds=1.5)
        assert time.monotonic() - t0 >= 1.4
    finally:
        holder.kill()
        holder.wait()
    assert lock_holder("IO Error: something else") is None


def test_the_cli_says_it_in_one_line_or_waits(small_landing: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # the CLI fails at once by default, whatever the Dagster code location loaded in this test process set
    import orchestration.definitions  # noqa: F401 (sets the Dagster default wait in this process only)

    monkeypatch.delenv("STOCKTURN_WAREHOUSE_WAIT_SECONDS", raising=False)
    warehouse = tmp_path / "w.duckdb"
    duckdb.connect(str(warehouse)).close()
    holder = _hold(warehouse, 60)
    try:
        proc = run_stockturn("build", "--landing", str(small_landing), "--warehouse", str(warehouse), "--quiet",
                             check=False)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 75
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and f"PID {holder.pid}" in out and "is busy" in out
    # a holder that finishes within the wait: the build goes through
    holder = _hold(warehouse, 3)
    proc = run_stockturn("--wait-for-warehouse", "60", "build", "--landing", str(small_landing), "--warehouse",
                         str(warehouse), "--quiet", check=False)
    holder.wait()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "waiting for it" in proc.stdout + proc.stderr
