"""Where things are: project paths and defaults shared by the CLI, Dagster and the tests."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(os.environ.get("STOCKTURN_HOME", Path(__file__).resolve().parents[1]))
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
SEEDS_DIR = PROJECT_ROOT / "seeds"
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
DEFAULT_LANDING_DIR = DEFAULT_DATA_DIR / "landing"
DEFAULT_WAREHOUSE = DEFAULT_DATA_DIR / "warehouse.duckdb"

#: Environment variable dbt's profiles.yml reads the warehouse path from.
WAREHOUSE_ENV = "STOCKTURN_WAREHOUSE"

#: The planning settings file read by default: beside the warehouse (``ml.planning_settings``).
PLANNING_SETTINGS_FILE = "stockturn.toml"


def settings_file_for(warehouse: Path | str) -> Path:
    """Default planning settings file of a warehouse: ``stockturn.toml`` in the warehouse's folder."""
    return Path(warehouse).resolve().parent / PLANNING_SETTINGS_FILE


def truth_dir_for(landing_dir: Path) -> Path:
    """Default folder for the demo's hidden ground truth: a sibling of the landing folder, never inside it."""
    landing_dir = Path(landing_dir)
    return landing_dir.parent / f"{landing_dir.name}_truth"
