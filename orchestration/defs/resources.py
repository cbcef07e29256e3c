"""Resources: where the landing folder, the warehouse and the report live, and the dbt CLI.

Paths default to the environment (``STOCKTURN_LANDING``, ``STOCKTURN_WAREHOUSE``, ``STOCKTURN_REPORT_DIR``) and
otherwise to ``ml.settings.DEFAULT_*`` (``./data/...``). The dbt CLI runs in the real ``dbt_project/`` (not a
copy) and gets the configured warehouse through ``STOCKTURN_WAREHOUSE``, which ``profiles.yml`` reads:
:func:`warehouse_env` sets it around each dbt invocation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource
from packaging import version
from pydantic import Field

from ml.settings import DBT_PROJECT_DIR, DEFAULT_DATA_DIR, DEFAULT_LANDING_DIR, DEFAULT_WAREHOUSE, WAREHOUSE_ENV

LANDING_ENV = "STOCKTURN_LANDING"
REPORT_DIR_ENV = "STOCKTURN_REPORT_DIR"
DEFAULT_REPORT_DIR = DEFAULT_DATA_DIR / "report"

#: Concurrency pool of every step that opens the warehouse (DuckDB allows one writing process per file).
WAREHOUSE_POOL = "stockturn_warehouse"


def _from_env(env: str, fallback: Path) -> str | dg.EnvVar:
    """``EnvVar(env)`` when the variable is set (resolved when a run starts, shown as such in the UI), else the
    default path."""
    return dg.EnvVar(env) if os.environ.get(env) else str(fallback)


class StockturnPaths(dg.ConfigurableResource):
    """Where the pipeline reads and writes. Relative paths are resolved against the working directory."""

    landing_dir: str = Field(
        default=str(DEFAULT_LANDING_DIR),
        description=f"Landing folder (docs/data-contract.md). Default: ${LANDING_ENV} or ./data/landing.",
    )
    warehouse: str = Field(
        default=str(DEFAULT_WAREHOUSE),
        description=f"DuckDB warehouse file. Default: ${WAREHOUSE_ENV} or ./data/warehouse.duckdb.",
    )
    report_dir: str = Field(
        default=str(DEFAULT_REPORT_DIR),
        description=f"Folder the report is written to. Default: ${REPORT_DIR_ENV} or ./data/report.",
    )

    @classmethod
    def from_env(cls) -> StockturnPaths:
        return cls(
            landing_dir=_from_env(LANDING_ENV, DEFAULT_LANDING_DIR),
            warehouse=_from_env(WAREHOUSE_ENV, DEFAULT_WAREHOUSE),
            report_dir=_from_env(REPORT_DIR_ENV, DEFAULT_REPORT_DIR),
        )

    @property
    def landing_path(self) -> Path:
        return Path(self.landing_dir).resolve()

    @property
    def warehouse_path(self) -> Path:
        return Path(self.warehouse).resolve()

    @property
    def report_path(self) -> Path:
        return Path(self.report_dir).resolve()


@contextmanager
def warehouse_env(warehouse: Path) -> Iterator[None]:
    """Point ``STOCKTURN_WAREHOUSE`` (read by dbt's profiles.yml) at ``warehouse`` for the duration of the block.

    dagster-dbt hands ``os.environ`` to the dbt subprocess it starts (and to the in-process adapter it opens), and
    has no per-invocation environment, so the variable is set here and restored afterwards. Runs execute their
    steps one after another in one process (in-process executor), so nothing else sees the change.
    """
    saved = {k: os.environ.get(k) for k in (WAREHOUSE_ENV, "DBT_SEND_ANONYMOUS_USAGE_STATS", "DBT_INDIRECT_SELECTION")}
    os.environ[WAREHOUSE_ENV] = str(Path(warehouse).resolve())
    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    # a dbt step runs the tests whose parents it builds or has already built upstream ("buildable"): a
    # relationships test between a model on the plan and dim_product runs in the later step, with that model
    os.environ["DBT_INDIRECT_SELECTION"] = "buildable"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class StockturnDbtCliResource(DbtCliResource):
    """``DbtCliResource`` without two start-up costs stockturn does not need (measured at 5-25 s per dbt step here).

    * The dbt version comes from the installed ``dbt-core`` package (the executable is the one in this
      environment, ``orchestration.dbt_cli.dbt_executable``) instead of a ``dbt --version`` subprocess.
    * No in-process dbt adapter is opened before each command: dagster-dbt only uses it to fetch row counts and
      column metadata *while* dbt runs, which DuckDB cannot serve (the dbt process holds the file). Row counts are
      read after dbt exits instead (``orchestration.defs.dbt``).

    Both override private dagster-dbt methods (pinned ``dagster-dbt>=0.29,<0.30``); a test asserts they still exist.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        from dbt.version import __version__

        return version.parse(__version__)

    def _initialize_dbt_core_adapter(self, args):
        return None


def dbt_resource(project_dir: Path = DBT_PROJECT_DIR) -> DbtCliResource:
    """dbt on the real project directory (never a copy: a copy would build a copy's database)."""
    from orchestration.dbt_cli import dbt_executable

    return StockturnDbtCliResource(project_dir=project_dir, profiles_dir=project_dir, dbt_executable=dbt_executable())


def default_resources(paths: StockturnPaths | None = None, project_dir: Path = DBT_PROJECT_DIR) -> dict[str, object]:
    return {"paths": paths or StockturnPaths.from_env(), "dbt": dbt_resource(project_dir)}
