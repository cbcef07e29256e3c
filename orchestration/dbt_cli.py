"""Run dbt against a warehouse file, with readable progress and a clear error when something fails."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ml.settings import DBT_PROJECT_DIR, WAREHOUSE_ENV

log = logging.getLogger("stockturn.dbt")

# dbt's own progress lines worth passing on ("1 of 80 OK created sql table model ...", the summary)
_PROGRESS_LINE = re.compile(r"\d+ of \d+ (OK|PASS|WARN|ERROR|FAIL|SKIP)|Finished running|Done\. PASS=|Completed")


class DbtError(RuntimeError):
    """dbt finished with errors or failing tests; the message lists them."""


@dataclass
class DbtResult:
    command: list[str]
    seconds: float
    status_counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    target_path: Path | None = None
    #: data tests that warned (value invariants: the build went on; see orchestration.dbt_tests)
    warnings: list = field(default_factory=list)
    #: nodes left out because their inputs had not changed (``orchestration.dbt_unchanged``)
    skipped_unchanged: int = 0

    def format(self) -> str:
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(self.status_counts.items()))
        text = f"dbt {' '.join(self.command)}: {counts} in {self.seconds:,.1f} s"
        if self.skipped_unchanged:
            text += f" ({self.skipped_unchanged:,} nodes skipped: inputs unchanged)"
        if self.warnings:
            text += "\n" + "\n".join(f"  warned: {w.describe()}" for w in self.warnings)
        return text


def dbt_executable() -> str:
    """The dbt installed beside this Python (a venv's bin/), else the one on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    if beside.exists():
        return str(beside)
    found = shutil.which("dbt")
    if not found:
        raise DbtError("dbt is not installed: pip install the project (pip install -e .) first")
    return found


MEMORY_LIMIT_ENV = "STOCKTURN_DUCKDB_MEMORY_LIMIT"


def dbt_environment(warehouse: Path) -> dict[str, str]:
    env = dict(os.environ)
    env[WAREHOUSE_ENV] = str(Path(warehouse).resolve())
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    env.setdefault("DBT_USE_COLORS", "false")
    env.setdefault("DBT_INDIRECT_SELECTION", "buildable")  # a test runs once its parents are built or upstream
    return env


#: File beside dbt's partial_parse.msgpack naming the project content that wrote it (orchestration.dbt_manifest).
PROJECT_STAMP_FILE = "stockturn_project_fingerprint"


def discard_stale_partial_parse(target: Path) -> bool:
    """Delete ``target``'s ``partial_parse.msgpack`` when it was written for another content of the dbt project.

    dbt's partial parsing re-reads the files that changed, but not every node that depends on them: after an
    upgrade that made ``fct_inventory_turnover_monthly`` incremental (its SQL gained a ``depends_on`` hint and its
    unit tests an input), the per-warehouse state kept the unit tests as the previous version had them, and the
    next build failed ("depends on a node named 'int_product_locations' which was not found"); a full parse
    passed. So a target folder is parsed in full once after the project's files change (a new stockturn version,
    an edited model), and partially afterwards. Returns whether a state file was discarded.
    """
    from orchestration.dbt_manifest import project_fingerprint

    target = Path(target)
    fingerprint = project_fingerprint()
    stamp = target / PROJECT_STAMP_FILE
    if stamp.exists() and stamp.read_text(encoding="utf-8").strip() == fingerprint:
        return False
    state = target / "partial_parse.msgpack"
    discarded = state.exists()
    state.unlink(missing_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint + "\n", encoding="utf-8")
    if discarded:
        log.info("the dbt project changed since %s was last parsed: dbt parses it in full this once", target)
    return discarded


def target_path_for(warehouse: Path) -> Path:
    """dbt's target/ and logs/ live beside the warehouse, so builds of different warehouses never collide."""
    warehouse = Path(warehouse).resolve()
    return warehouse.parent / f".{warehouse.stem}.dbt"


def run_dbt(
    args: list[str],
    warehouse: Path,
    *,
    vars: dict | None = None,
    stream: bool = True,
    raise_on_failure: bool = True,
    skip_unchanged: bool = False,
) -> DbtResult:
    """Run ``dbt <args>`` in the project directory against ``warehouse``; raise :class:`DbtError` on failure.

    ``skip_unchanged`` (a ``build`` that is not a full refresh): exclude the nodes whose inputs have not changed
    since they last succeeded (``orchestration.dbt_unchanged``). Every ``build`` records what its nodes were built
    from."""
    from orchestration.dbt_unchanged import Unchanged, unchanged_nodes

    target = target_path_for(warehouse)
    discard_stale_partial_parse(target / "target")
    skipped = Unchanged()
    if skip_unchanged and args[:1] == ["build"] and "--full-refresh" not in args:
        skipped = unchanged_nodes(warehouse, target / "target" / "manifest.json", vars)
        if skipped.unique_ids:
            log.info("dbt: skipping %d nodes whose inputs are unchanged since they last succeeded",
                     len(skipped.unique_ids))
    cmd = [
        dbt_executable(),
        *args,
        *skipped.exclude_args(),
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(target / "target"),
        "--log-path",
        str(target / "logs"),
    ]
    if vars:
        cmd += ["--vars", json.dumps(vars)]
    log.info("running dbt %s", " ".join(args))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=DBT_PROJECT_DIR,
        env=dbt_environment(warehouse),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    output: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        output.append(line)
        if stream and _PROGRESS_LINE.search(line):
            log.info("dbt | %s", line.split("  ", 1)[-1].strip())
    returncode = proc.wait()
    result = DbtResult(command=args, seconds=time.perf_counter() - t0, target_path=target / "target",
                       skipped_unchanged=len(skipped.unique_ids))
    _read_run_results(result)
    if args and args[0] in ("build", "test"):
        _record_tests(result, warehouse)
    if args and args[0] == "build":
        _record_nodes(result, warehouse, vars)
    if returncode != 0 and raise_on_failure:
        detail = "\n  - ".join(result.failures) if result.failures else "\n".join(output[-40:])
        threads = os.environ.get("STOCKTURN_DBT_THREADS", "1")
        fewer_threads = " and build with STOCKTURN_DBT_THREADS=1 (the default)" if threads != "1" else ""
        if "Out of Memory" in detail:
            limit = os.environ.get(MEMORY_LIMIT_ENV, "6GB")
            detail += (f"\n  DuckDB ran out of its memory limit ({limit}): raise it with {MEMORY_LIMIT_ENV} (e.g. 10GB "
                       f"or a share of RAM such as 80%){fewer_threads}")
        elif "No space left on device" in detail:
            detail += (f"\n  DuckDB's spill files ({warehouse}.tmp) filled the disk: free space there, or give DuckDB "
                       f"more memory with {MEMORY_LIMIT_ENV} so that it spills less{fewer_threads}")
        raise DbtError(f"dbt {' '.join(args)} failed (exit {returncode}):\n  - {detail}")
    return result


def _record_tests(result: DbtResult, warehouse: Path) -> None:
    """Keep the outcome of every data test in the warehouse (audit.dbt_test_results); a failure to do so is logged,
    never hides dbt's own outcome."""
    from orchestration.dbt_tests import record_test_results

    try:
        result.warnings = record_test_results(warehouse, result.target_path or Path())
    except Exception as exc:  # the build's outcome stands; the record is a convenience
        log.error("could not record the data tests' outcome in %s: %s", warehouse, exc)


def _record_nodes(result: DbtResult, warehouse: Path, vars: dict | None) -> None:
    """Record what each node that succeeded was built from (``orchestration.dbt_unchanged``); a failure to do so
    only costs the next build its shortcut."""
    from orchestration.dbt_unchanged import record_built_nodes

    try:
        record_built_nodes(warehouse, result.target_path or Path(), vars)
    except Exception as exc:  # noqa: BLE001 - the build's outcome stands
        log.error("could not record the built nodes' inputs in %s: %s", warehouse, exc)


def _read_run_results(result: DbtResult) -> None:
    path = (result.target_path or Path()) / "run_results.json"
    if not path.exists():
        return
    data = json.loads(path.read_text())
    counts: dict[str, int] = {}
    for node in data.get("results", []):
        status = str(node.get("status"))
        counts[status] = counts.get(status, 0) + 1
        if status in ("error", "fail", "runtime error"):
            message = (node.get("message") or "").strip().replace("\n", " ")
            result.failures.append(f"{node.get('unique_id')}: {status}: {message[:500]}")
    result.status_counts = counts
