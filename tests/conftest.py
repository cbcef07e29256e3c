"""Shared fixtures: one small demo company and its warehouse, built once per test session with the real CLI.

Building a warehouse runs the loader and a full `dbt build` (every model and test), which is the slow part of
the suite; modules share these session fixtures and copy the warehouse file when they need to change it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STOCKTURN = str(Path(sys.executable).parent / "stockturn")
ARTIFACTS = ROOT / "artifacts"

#: The small demo company every integration test uses: big enough for a year of history and every kind of
#: movement, small enough to build in well under a minute.


def shared_data_file(*parts: str) -> Path:
    """A file of the shared reference data (``../shared/data``): ``STOCKTURN_SHARED_DATA`` if set, else the folder
    beside the checkout, else ``/work/shared/data``. The first that holds the file wins (tests skip when none does)."""
    roots = [os.environ.get("STOCKTURN_SHARED_DATA"), ROOT.parent / "shared" / "data", "/work/shared/data"]
    candidates = [Path(r).joinpath(*parts) for r in roots if r]
    return next((c for c in candidates if c.exists()), candidates[-1])


SMALL_DEMO = {"skus": 24, "stores": 2, "days": 400, "seed": 7}


def run_stockturn(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed `stockturn` command as a user would; on failure show its output."""
    proc = subprocess.run(
        [STOCKTURN, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"stockturn {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def small_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    landing = tmp_path_factory.mktemp("small_demo") / "landing"
    run_stockturn(
        "generate", "--out", str(landing), "--skus", str(SMALL_DEMO["skus"]), "--stores", str(SMALL_DEMO["stores"]),
        "--days", str(SMALL_DEMO["days"]), "--seed", str(SMALL_DEMO["seed"]), "--quiet",
    )
    return landing


@pytest.fixture(scope="session")
def small_truth(small_landing: Path) -> Path:
    return small_landing.parent / "landing_truth"


@pytest.fixture(scope="session")
def small_warehouse(small_landing: Path) -> Path:
    """The small demo's warehouse after `stockturn build` (landing + dbt). Treat as read-only: copy to modify."""
    warehouse = small_landing.parent / "warehouse.duckdb"
    run_stockturn("build", "--landing", str(small_landing), "--warehouse", str(warehouse), "--quiet")
    return warehouse


@pytest.fixture
def warehouse_copy(small_warehouse: Path, tmp_path: Path) -> Path:
    """A private copy of the small warehouse that a test may change."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(small_warehouse, copy)
    return copy


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
