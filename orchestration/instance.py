"""The Dagster instance (DAGSTER_HOME) that ``stockturn run`` and ``stockturn ui`` share.

It lives beside the warehouse: ``<warehouse folder>/.dagster_home`` (``data/.dagster_home`` for the default
``data/warehouse.duckdb``), so runs made by ``stockturn run`` / ``stockturn demo`` show up, with their metadata and
check results, in the UI that ``stockturn ui`` opens on the same warehouse. Its ``dagster.yaml``:

* ``telemetry: enabled: false`` (there is no network);
* ``concurrency.pools``: every step that opens the warehouse is in pool ``stockturn_warehouse``; with the default
  limit 1 and run granularity, the run queue starts a run that uses the pool only when no other run using it is in
  progress (DuckDB admits one writing process per file). Inside a run, the in-process executor runs the steps one
  after another.
"""

from __future__ import annotations

from pathlib import Path

DAGSTER_YAML = """\
# Written by stockturn (orchestration/instance.py). Safe to edit; stockturn only writes it when it is missing.
telemetry:
  enabled: false
concurrency:
  pools:
    # every step that opens the DuckDB warehouse is in pool "stockturn_warehouse": one run at a time uses it
    default_limit: 1
    granularity: run
"""


def dagster_home_for(warehouse: Path) -> Path:
    return Path(warehouse).resolve().parent / ".dagster_home"


def ensure_dagster_home(home: Path) -> Path:
    """Create ``home`` with the project's ``dagster.yaml`` unless it already has one."""
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    return home


def instance_for(home: Path):
    """A persistent instance on ``home`` (created with the project's dagster.yaml if needed)."""
    from dagster import DagsterInstance

    return DagsterInstance.from_config(str(ensure_dagster_home(home)))
