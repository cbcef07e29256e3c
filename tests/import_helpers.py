"""Test helpers for the importers (``ml.ingest.online_retail``, ``ml.ingest.series_panel``)."""

from __future__ import annotations

from collections.abc import Callable

import duckdb


def lossy_connect(keep_sales_lines: int) -> Callable[..., object]:
    """A stand-in for ``duckdb.connect`` whose connections silently write only the first ``keep_sales_lines``
    sales lines (to prove an importer's integrity check catches a lossy writer)."""
    real_connect = duckdb.connect

    class Lossy:
        def __init__(self, *a: object, **k: object) -> None:
            self._con = real_connect(*a, **k)

        def execute(self, sql: str, *args: object) -> duckdb.DuckDBPyConnection:
            if sql.startswith("COPY sales_lines TO"):
                sql = sql.replace("COPY sales_lines TO",
                                  f"COPY (SELECT * FROM sales_lines LIMIT {keep_sales_lines}) TO")
            return self._con.execute(sql, *args)

        def __getattr__(self, name: str) -> object:
            return getattr(self._con, name)

    return Lossy
