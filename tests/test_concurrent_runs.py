"""A Dagster run and a CLI run on the same warehouse at the same time (issue 10): nothing is corrupted, and the
one that has to wait says clearly what happened.

DuckDB admits one writing process per file, and a build is several writers in a row (the loader, dbt in a child
process, planning, the report) with moments in between where nobody holds DuckDB's lock. A second writer that
waits for the warehouse used to slip in there: a `stockturn --wait-for-warehouse` build started while a Dagster run
was loading took the file between the run's landing and dbt steps, and the run's dbt step failed on a conflicting
lock. The loader now *claims* the warehouse for its process (``ml.warehouse``, a ``<warehouse>.lock`` advisory
lock held until the process exits), and every other writer waits for the claim as for DuckDB's lock.

The overlap is made deterministic with a third process that holds the DuckDB file (a notebook, say) while the
Dagster run starts: the run claims the warehouse and waits for that holder, logging its PID. While it waits:

* `stockturn build` without waiting exits 75 with one line naming the Dagster run's PID, no traceback;
* `stockturn --wait-for-warehouse` build waits for the Dagster run, logging its PID.

Then the holder lets go: the Dagster run finishes successfully, and only then the CLI build runs and succeeds. The
warehouse is consistent afterwards: every mart readable, every landed row accounted for, the same marts as a
solo build of the same landing, and no claim left behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pytest
from polars.testing import assert_frame_equal

from ml.warehouse import WarehouseBusyError, claim_holder, open_duckdb
from tests.conftest import ROOT, STOCKTURN
from tests.test_build_resilience import MARTS, mart_frame

DAGSTER = str(Path(sys.executable).parent / "dagster")
HOLD = ("import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); sys.stdin.readline(); "
        "c.close(); print('released', flush=True)")
TIMEOUT = 240


def _wait_for(predicate, what: str, proc: subprocess.Popen | None = None, log: Path | None = None,
              timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process ended ({proc.returncode}) first:\n"
                                 + (log.read_text()[-4000:] if log else ""))
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s\n" + (log.read_text()[-4000:] if log
                                                                                       else "")
        time.sleep(0.2)


def _stop(proc: subprocess.Popen) -> None:
    """End a process group this test started (and its dbt children) if it is still running."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.fixture
def dagster_home():
    home = Path(tempfile.mkdtemp(prefix="stockturn-concurrent-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    yield home
    shutil.rmtree(home, ignore_errors=True)


def test_a_dagster_run_and_a_cli_build_overlap_without_harm(
    small_landing: Path, small_warehouse: Path, tmp_path: Path, dagster_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STOCKTURN_WAREHOUSE_WAIT_SECONDS", raising=False)
    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()
    env = {k: v for k, v in os.environ.items() if k not in ("STOCKTURN_WAREHOUSE_WAIT_SECONDS", "STOCKTURN_AUTOMATION")}
    env |= {"PYTHONUNBUFFERED": "1", "DAGSTER_HOME": str(dagster_home), "STOCKTURN_LANDING": str(small_landing),
            "STOCKTURN_WAREHOUSE": str(warehouse), "STOCKTURN_REPORT_DIR": str(tmp_path / "report")}
    dagster_log, cli_log = tmp_path / "dagster.log", tmp_path / "cli_wait.log"
    build = ["build", "--landing", str(small_landing), "--warehouse", str(warehouse), "--quiet"]

    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(warehouse)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    dagster = waiting_cli = None
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        # 1. the Dagster run starts, claims the warehouse and waits for the holder (its default wait: 600 s)
        with dagster_log.open("w") as log:
            dagster = subprocess.Popen(
                [DAGSTER, "job", "execute", "-m", "orchestration.definitions", "-j", "warehouse_build"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_for(lambda: f"(PID {holder.pid}): waiting for it" in dagster_log.read_text(),
                  "the Dagster run waits for the holder", dagster, dagster_log)
        assert claim_holder(warehouse) == f"dagster job (PID {dagster.pid})"

        # 2. a CLI build that does not wait: exit 75, one line naming the Dagster run
        proc = subprocess.run([STOCKTURN, *build], capture_output=True, text=True, env=env, timeout=TIMEOUT)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 75, out
        assert "Traceback" not in out
        busy = [line for line in out.splitlines() if "is busy" in line]
        assert len(busy) == 1 and f"dagster job (PID {dagster.pid}) holds it" in busy[0], out
        assert "--wait-for-warehouse" in busy[0]

        # 3. a CLI build that waits: it waits for the Dagster run, saying so
        with cli_log.open("w") as log:
            waiting_cli = subprocess.Popen([STOCKTURN, "--wait-for-warehouse", str(TIMEOUT), *build], env=env,
                                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_for(lambda: f"held by dagster job (PID {dagster.pid}): waiting for it" in cli_log.read_text(),
                  "the CLI build waits for the Dagster run", waiting_cli, cli_log)

        # 4. the holder lets go: the Dagster run goes ahead and finishes, then the CLI build
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(timeout=30) == 0
        assert dagster.wait(timeout=TIMEOUT) == 0, dagster_log.read_text()[-6000:]
        dagster_done = time.monotonic()
        assert waiting_cli.wait(timeout=TIMEOUT) == 0, cli_log.read_text()[-6000:]
        cli_done = time.monotonic()
    finally:
        for proc in (holder, dagster, waiting_cli):
            if proc is not None:
                _stop(proc)

    run_log, cli_text = dagster_log.read_text(), cli_log.read_text()
    assert "RUN_SUCCESS" in run_log and "STEP_FAILURE" not in run_log
    assert f"dagster job (PID {dagster.pid}) is done with it; went ahead after waiting" in cli_text
    assert "Traceback" not in cli_text and "Built in" in cli_text
    assert cli_done > dagster_done

    # 5. consistent: readable marts, every row accounted for, the solo build's marts, no claim left
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select sum(rows_unaccounted) from marts.data_quality_reconciliation").fetchone() == (0,)
        load_ids = con.execute("select distinct load_id from raw.landing_files").fetchall()
    with duckdb.connect(str(small_warehouse), read_only=True) as con:
        assert con.execute("select distinct load_id from raw.landing_files").fetchall() == load_ids
    for table in MARTS:  # floating-point sums may differ in the last bits between any two builds
        assert_frame_equal(mart_frame(warehouse, table), mart_frame(small_warehouse, table), check_exact=False,
                           rel_tol=1e-9, abs_tol=1e-9)
    assert claim_holder(warehouse) is None


# ------------------------------------------------------------------------------------------------ the claim itself

#: a process that claims the warehouse like the loader does, lets go of DuckDB's lock, then obeys stdin commands:
#: 'child' (a child process opens the warehouse), 'release', 'exit'
CLAIMANT = """
import subprocess, sys
from ml.warehouse import open_duckdb, release_warehouse
path = sys.argv[1]
open_duckdb(path, claim=True, wait_seconds=float(sys.argv[2])).close()
print('claimed', flush=True)
for command in sys.stdin:
    command = command.strip()
    if command == 'child':
        code = 'import sys; from ml.warehouse import open_duckdb; open_duckdb(sys.argv[1], wait_seconds=0).close()'
        print('child', subprocess.run([sys.executable, '-c', code, path]).returncode, flush=True)
    elif command == 'release':
        release_warehouse(path)
        print('released', flush=True)
    else:
        break
"""

#: holds DuckDB's lock through open_duckdb, and opens a second connection when told to
NESTED = """
import sys
from ml.warehouse import open_duckdb
con = open_duckdb(sys.argv[1], wait_seconds=0)
print('held', flush=True)
sys.stdin.readline()
open_duckdb(sys.argv[1], wait_seconds=0).close()
print('nested ok', flush=True)
sys.stdin.readline()
con.close()
"""


def _python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=ROOT, start_new_session=True)


def _say(proc: subprocess.Popen, command: str) -> str:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def test_a_claim_blocks_other_processes_but_not_its_own_children(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    claimant = _python(CLAIMANT, str(warehouse), "0")
    try:
        assert claimant.stdout is not None and claimant.stdout.readline().strip() == "claimed"
        # nobody holds DuckDB's lock now, and yet the warehouse is taken: the claimant's next step (dbt) follows
        holder = claim_holder(warehouse)
        assert holder is not None and f"(PID {claimant.pid})" in holder
        with pytest.raises(WarehouseBusyError, match=rf"is busy: .*\(PID {claimant.pid}\) holds it"):
            open_duckdb(warehouse, wait_seconds=0)
        t0 = time.monotonic()
        with pytest.raises(WarehouseBusyError, match=r"waited 1 s"):
            open_duckdb(warehouse, wait_seconds=1.2)
        assert time.monotonic() - t0 >= 1.1
        assert _say(claimant, "child") == "child 0"  # dbt & co., started by the claimant, are part of its build
        assert _say(claimant, "release") == "released"
        assert claim_holder(warehouse) is None
        open_duckdb(warehouse, wait_seconds=0).close()
    finally:
        _stop(claimant)
    # a claimant that dies leaves nothing behind (the lock goes with the process; the file's text is stale)
    claimant = _python(CLAIMANT, str(warehouse), "0")
    try:
        assert claimant.stdout is not None and claimant.stdout.readline().strip() == "claimed"
    finally:
        _stop(claimant)
    assert claim_holder(warehouse) is None
    open_duckdb(warehouse, wait_seconds=0).close()


def test_the_holder_a_claimant_waits_for_can_still_open_a_second_connection(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    holder = _python(NESTED, str(warehouse))
    claimant = None
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        claimant = _python(CLAIMANT, str(warehouse), "60")  # claims, then waits for the holder's DuckDB lock
        _wait_for(lambda: claim_holder(warehouse) is not None, "the claimant claims", claimant)
        time.sleep(1.5)  # it has met the holder's lock and noted whom it waits for
        assert _say(holder, "") == "nested ok"  # no deadlock: the claimant waits for this very process
        with pytest.raises(WarehouseBusyError):  # ... while anyone else still waits for the claimant
            open_duckdb(warehouse, wait_seconds=0)
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(timeout=30) == 0
        assert claimant.stdout is not None and claimant.stdout.readline().strip() == "claimed"
    finally:
        for proc in (holder, claimant):
            if proc is not None:
                _stop(proc)
