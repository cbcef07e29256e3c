"""Build the warehouse from a landing folder: load the landing zone into `raw`, then `dbt build` the mart."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from ml.ingest.loader import LoadReport, load_landing
from orchestration.dbt_cli import DbtResult, run_dbt

log = logging.getLogger("stockturn.build")

#: Models that read the ML write-back (schema ml) are built by the full pipeline, not by `stockturn build`.
ML_DOWNSTREAM_SELECTOR = "tag:ml_downstream"


@dataclass
class BuildResult:
    load: LoadReport
    dbt: DbtResult
    seconds: float


def build_warehouse(landing: Path, warehouse: Path, *, progress: bool = True, full_refresh: bool = False
                    ) -> BuildResult:
    """Load ``landing`` into ``warehouse`` and build and test every dbt model of the inventory mart.

    The load replaces the raw tables in one transaction, and each dbt model is replaced atomically, so a
    failure leaves the previous tables in place; a failing test stops the models downstream of it. Models and
    tests whose landed inputs and code are unchanged since they last succeeded are skipped
    (``orchestration.dbt_unchanged``; not with ``full_refresh``).
    """
    t0 = time.perf_counter()
    warehouse = Path(warehouse)
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    report = load_landing(Path(landing), warehouse, progress=progress, full_refresh=full_refresh)
    log.info("loaded landing zone:\n%s", report.format())
    dbt = run_dbt(["build", "--exclude", ML_DOWNSTREAM_SELECTOR, *(["--full-refresh"] if full_refresh else [])],
                  warehouse, skip_unchanged=True)
    log.info("%s", dbt.format())
    return BuildResult(load=report, dbt=dbt, seconds=time.perf_counter() - t0)
