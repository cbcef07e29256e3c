"""Helpers the importers share: SQL literals, writing temp tables as landing files and reading them back.

The importers (``online_retail``, ``series_panel``) build their landing tables in DuckDB, write each one under
``<out_dir>/<system>/<table>.<fmt>`` and then re-read the written files to prove nothing was lost.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import duckdb

log = logging.getLogger("stockturn.ingest")


def sql_literal(value: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def human_number(x: float) -> str:
    """12,345 for whole numbers, 12,345.67 otherwise (for messages)."""
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.2f}"


def write_landing_tables(con: duckdb.DuckDBPyConnection, out_dir: Path, tables: Iterable[tuple[str, str]],
                         fmt: str) -> list[Path]:
    """COPY each (table, system folder) to ``out_dir/system/table.fmt`` (CSV with a header, or zstd Parquet)."""
    files: list[Path] = []
    opts = "FORMAT csv, HEADER true, DELIMITER ','" if fmt == "csv" else "FORMAT parquet, COMPRESSION zstd"
    for table, system in tables:
        path = out_dir / system / f"{table}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY {table} TO {sql_literal(str(path))} ({opts})")
        files.append(path)
        log.info("wrote %s", path)
    return files


def written_relation(path: Path, fmt: str) -> str:
    """SQL relation reading a file written by :func:`write_landing_tables` back as text (CSV) or typed (Parquet)."""
    if fmt == "csv":
        return f"read_csv({sql_literal(str(path))}, header=true, all_varchar=true, delim=',', quote='\"')"
    return f"read_parquet({sql_literal(str(path))})"
