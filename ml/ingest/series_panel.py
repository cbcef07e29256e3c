"""Import a long-format demand panel into the landing-zone contract (``stockturn import-series``).

Input: one table (CSV or Parquet) with one row per series and period: a series id, a period date and a value
(units), optionally a location column; for example the car-parts panel
``/work/shared/data/carparts/carparts_monthly.csv`` (``unique_id,ds,y``; 2,674 monthly series x 51 months). The
column names are set by the caller (``--id-column``, ``--date-column``, ``--value-column``, ``--location-column``).
Output, under ``out_dir``:

``sales/sales_lines``
    One line per cell with a non-empty, non-zero value: ``transaction_id`` = ``<series id>|<location>|<period>``,
    ``sold_at`` = the period date (``YYYY-MM-DD``; a timestamp with a time of day keeps it), ``product_id`` = the
    series id (as text, unchanged), ``location_id`` = the location column or the one location, ``quantity`` = the
    value (integer text when whole, else the shortest text that reads back to the same double), ``line_type``
    ``sale``; ``line_number``, ``unit_price`` and ``customer_id`` blank. A period total becomes one line dated on
    the period's date (the contract accepts weekly and monthly totals; the mart books it on that day).

    * **Zero** values write no line: the mart reads a day without lines as zero sales, so nothing is lost.
    * **Missing** values (blank, ``NA``, ``NaN`` or ``null``) are *not* sales and write no line either. The mart
      cannot tell "not observed" from "sold nothing": downstream, a missing cell looks like zero sales. The import
      counts the missing cells and reports where they sit in their series (leading, interior, trailing), so a
      panel whose series stop being observed (car parts: 6,122 missing cells, all after the series' last
      observed month) is visible before its forecasts are read.
    * **Negative** values (returns or corrections) are written as return lines by default (``line_type``
      ``return`` with the negative quantity as given; the contract reads it as a return of abs(quantity) units).
      With ``negative_values="quarantine"`` they are written as ``sale`` lines, which staging quarantines with
      reason ``negative_quantity_not_return`` (use it when negatives are corrections, not returns).

``master/products``
    One row per distinct series id, ``product_type`` ``stock``, every other column blank (name, category
    'Uncategorised', unit 'EA'), ``supplier_id`` set only with the supplier defaults below.
``master/locations``
    One row per distinct value of the location column, else the one location (default ``MAIN``). Every location is
    written with ``replenished_from`` blank, which is what makes stockturn plan it as a location that buys
    directly from a supplier (``dim_location.replenishment_source = 'supplier'``), as the Online Retail import
    does with its one location; ``location_type`` (default ``warehouse``) is descriptive only.

A panel lacks what a policy needs beyond demand. These **assumed defaults** are written only when asked for:

* ``unit_cost``: ``finance/standard_costs``, one row per product valid from the first period, so inventory value,
  COGS, turnover, DIO and the EOQ have a cost. Without it costs are left out and those measures stay empty.
* ``lead_time_days`` (and ``min_order_qty``, ``pack_size``): ``master/suppliers`` with one supplier
  (``supplier_id`` default ``SUPPLIER``) quoting that nominal lead time, ``master/product_suppliers`` with every
  product bought from it as primary supplier on those terms, and ``products.supplier_id``. Without them no
  supplier is written and the policy falls back to its configured default supplier lead time.

They are assumptions, not data: the supplier's and the location's names say so in the written files, the import
summary lists them apart from the totals of the data, and every measure that depends on them (inventory value,
turnover, DIO, GMROI, lead-time demand, reorder points, order quantities, proposals) is a result about the
assumption, not about the panel. Sales, demand and forecast accuracy are the only results about the data itself.

The import checks its *written files* against totals computed from the input (cells accounted for, sales lines,
distinct series and products, sum of values, negative cells, every (series, location, period, value) read back
unchanged, every line's product and location in the masters) and raises :class:`ImportIntegrityError` naming each
total that does not match. Input it cannot map (a blank id, location or date, a date or value that does not parse,
two cells for the same series and period) stops the import with a ``ValueError`` before anything is written.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb

from ml.ingest.contract import ENTITIES_BY_NAME
from ml.ingest.landing_files import human_number as _num
from ml.ingest.landing_files import sql_literal as _lit
from ml.ingest.landing_files import write_landing_tables, written_relation
from ml.ingest.loader import _match_entity
from ml.ingest.online_retail import Check, ImportIntegrityError

log = logging.getLogger("stockturn.ingest")

__all__ = ["ImportIntegrityError", "SeriesImportSummary", "import_series_panel", "main"]

#: Every entity this importer may write (an overwrite removes all of them, so no stale defaults survive).
WRITTEN_ENTITIES = ("sales_lines", "products", "locations", "suppliers", "product_suppliers", "standard_costs")
#: Value texts read as missing (case-insensitive, after trimming), besides NULL.
MISSING_TOKENS = ("", "na", "nan", "null")
LOCATION_TYPES = ("store", "dc", "warehouse", "online")
NegativeValues = Literal["return", "quarantine"]


@dataclass
class SeriesImportSummary:
    source: Path
    out_dir: Path
    input_rows: int
    series: int  # distinct (series id, location)
    products: int  # distinct series ids
    locations: int
    periods: int  # distinct period dates
    first_period: date | None
    last_period: date | None
    sales_lines: int
    zero_cells: int
    missing_cells: int
    missing_by_position: dict[str, int]  # leading / interior / trailing / all_missing_series
    series_with_missing: int
    series_without_sales: int
    negative_cells: int
    sum_value: float
    output_rows: dict[str, int]  # relative output path -> data rows
    input_checks: list[Check]  # output totals vs the same totals computed from the input
    assumed_defaults: dict[str, object]  # what the import assumed (not data); empty when nothing was assumed
    elapsed_seconds: float
    files: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.input_checks)

    def format(self) -> str:
        lines = [
            f"Imported {self.input_rows:,} panel cells from {self.source} into {self.out_dir} "
            f"({self.elapsed_seconds:,.1f} s)",
            f"  {self.series:,} series ({self.products:,} products x {self.locations:,} location(s)), "
            f"{self.periods:,} periods {self.first_period} .. {self.last_period}",
            f"  sum of values {_num(self.sum_value)}; {self.sales_lines:,} cells -> sales lines, "
            f"{self.zero_cells:,} zero cells and {self.missing_cells:,} missing cells -> no line",
            f"  missing cells are NOT sales (no line; the mart reads them as zero sales): "
            f"{self.missing_cells:,} in {self.series_with_missing:,} series - "
            + ", ".join(f"{k} {v:,}" for k, v in self.missing_by_position.items()),
            f"  negative cells {self.negative_cells:,}; series without any non-zero value "
            f"{self.series_without_sales:,} (in the product master, no sales lines)",
        ]
        lines += [f"  {rel:<36} {n:>12,} rows" for rel, n in self.output_rows.items()]
        lines.append("Output vs input totals (nothing lost):")
        lines += [
            f"  {'ok ' if c.ok else 'BAD'} {c.name:<44} {_num(c.actual):>16} (input {_num(c.expected)})"
            for c in self.input_checks
        ]
        if self.assumed_defaults:
            lines.append("Assumed defaults (NOT from the data; every measure that uses them is about the assumption):")
            lines += [f"  {k} = {v}" for k, v in self.assumed_defaults.items()]
        else:
            lines.append("Assumed defaults: none (no costs, no supplier terms written)")
        return "\n".join(lines)


def _existing_outputs(out_dir: Path) -> list[Path]:
    ents = [ENTITIES_BY_NAME[n] for n in WRITTEN_ENTITIES]
    if not out_dir.exists():
        return []
    return sorted(p for p in out_dir.rglob("*") if p.is_file() and _match_entity(p.relative_to(out_dir).parts, ents))


def _source_relation(source: Path) -> str:
    suffix = source.suffix.lower()
    if suffix == ".parquet":
        return f"read_parquet({_lit(str(source))})"
    if suffix == ".csv":
        # as text: ids keep leading zeros, blank values stay distinguishable from zero
        return f"read_csv({_lit(str(source))}, header=true, all_varchar=true)"
    raise ValueError(f"{source}: expected a .parquet or .csv file")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _resolve_columns(con: duckdb.DuckDBPyConnection, source: Path, wanted: dict[str, str | None]) -> dict[str, str]:
    """The source's actual column name for each wanted role (matched case-insensitively)."""
    have = [r[0] for r in con.execute("DESCRIBE src").fetchall()]
    by_lower = {c.lower(): c for c in have}
    out: dict[str, str] = {}
    missing = []
    for role, name in wanted.items():
        if name is None:
            continue
        actual = by_lower.get(name.lower())
        if actual is None:
            missing.append(f"{role} column {name!r}")
        else:
            out[role] = actual
    if missing:
        raise ValueError(f"{source}: no {', '.join(missing)} (columns: {', '.join(have)})")
    if len(set(out.values())) != len(out):
        raise ValueError(f"{source}: the id, date, value and location columns must be distinct, got {out}")
    return out


def _fail_on_unmappable(con: duckdb.DuckDBPyConnection, source: Path, has_location: bool) -> None:
    """Stop before writing anything when a cell cannot be mapped into the contract."""
    problems = []
    rules = [
        ("blank series id", "series_id IS NULL OR trim(series_id) = ''"),
        ("blank date", "period_text IS NULL OR trim(period_text) = ''"),
        ("date that does not parse", "nullif(trim(period_text), '') IS NOT NULL AND period_ts IS NULL"),
        ("value that is not a number", "NOT is_missing AND (value IS NULL OR NOT isfinite(value))"),
    ]
    if has_location:
        rules.insert(1, ("blank location", "location_id IS NULL OR trim(location_id) = ''"))
    for what, cond in rules:
        sql = f"SELECT count(*), list(src_row ORDER BY src_row)[1:5] FROM cells WHERE {cond}"
        n, rows = con.execute(sql).fetchone()
        if n:
            problems.append(f"{n:,} row(s) with a {what} (data rows {', '.join(map(str, rows))}...)")
    dup = con.execute(
        "SELECT count(*), list(coalesce(series_id, '') || ' @ ' || coalesce(location_id, '') || ' ' || period_key)[1:3]"
        " FROM ("
        " SELECT series_id, location_id, CAST(period_ts AS VARCHAR) AS period_key FROM cells"
        " WHERE period_ts IS NOT NULL GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()
    if dup[0]:
        problems.append(f"{dup[0]:,} (series, location, period) with more than one cell, e.g. {', '.join(dup[1])}")
    if problems:
        raise ValueError(f"{source}: cannot map the panel into the contract: " + "; ".join(problems))


def import_series_panel(
    source: Path,
    out_dir: Path,
    *,
    id_column: str = "unique_id",
    date_column: str = "ds",
    value_column: str = "y",
    location_column: str | None = None,
    location_id: str = "MAIN",
    location_type: str = "warehouse",
    negative_values: NegativeValues = "return",
    unit_cost: float | None = None,
    lead_time_days: int | None = None,
    min_order_qty: float | None = None,
    pack_size: float | None = None,
    supplier_id: str = "SUPPLIER",
    fmt: Literal["csv", "parquet"] = "csv",
    overwrite: bool = False,
) -> SeriesImportSummary:
    """Map the long-format panel ``source`` into landing files under ``out_dir`` (see module docstring).

    ``unit_cost``, ``lead_time_days``, ``min_order_qty`` and ``pack_size`` are assumed defaults, written only when
    given (supplier files when any of the last three is). Existing files of the entities this importer writes raise
    ``FileExistsError`` unless ``overwrite`` (then exactly those files are replaced; other files are left alone).
    """
    t0 = time.perf_counter()
    source, out_dir = Path(source), Path(out_dir)
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', not {fmt!r}")
    if negative_values not in ("return", "quarantine"):
        raise ValueError(f"negative_values must be 'return' or 'quarantine', not {negative_values!r}")
    if location_type not in LOCATION_TYPES:
        raise ValueError(f"location_type must be one of {', '.join(LOCATION_TYPES)}, not {location_type!r}")
    if not location_column and not str(location_id).strip():
        raise ValueError("location_id must not be blank")
    if unit_cost is not None and not (math.isfinite(unit_cost) and unit_cost >= 0):
        raise ValueError(f"unit_cost must be a number >= 0, not {unit_cost!r}")
    if lead_time_days is not None and (int(lead_time_days) != lead_time_days or lead_time_days < 0):
        raise ValueError(f"lead_time_days must be a whole number of days >= 0, not {lead_time_days!r}")
    if min_order_qty is not None and not (math.isfinite(min_order_qty) and min_order_qty >= 0):
        raise ValueError(f"min_order_qty must be >= 0, not {min_order_qty!r}")
    if pack_size is not None and not (math.isfinite(pack_size) and pack_size > 0):
        raise ValueError(f"pack_size must be > 0, not {pack_size!r}")
    with_supplier = any(v is not None for v in (lead_time_days, min_order_qty, pack_size))
    if with_supplier and not str(supplier_id).strip():
        raise ValueError("supplier_id must not be blank")
    if not source.is_file():
        raise FileNotFoundError(f"source panel {source} not found")
    existing = _existing_outputs(out_dir)
    if existing and not overwrite:
        raise FileExistsError(
            f"{out_dir} already holds {', '.join(p.relative_to(out_dir).as_posix() for p in existing)}; "
            "pass overwrite=True (--overwrite) to replace them"
        )

    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = true")
        con.execute(f"CREATE TEMP VIEW src AS SELECT * FROM {_source_relation(source)}")
        cols = _resolve_columns(
            con, source, {"id": id_column, "date": date_column, "value": value_column, "location": location_column}
        )
        loc_expr = f"CAST({_ident(cols['location'])} AS VARCHAR)" if "location" in cols else _lit(location_id)
        missing_list = ", ".join(_lit(t) for t in MISSING_TOKENS)
        con.execute(
            f"""
            CREATE TEMP TABLE cells AS
            WITH raw AS (
                SELECT row_number() OVER () AS src_row,
                       CAST({_ident(cols['id'])} AS VARCHAR) AS series_id,
                       {loc_expr} AS location_id,
                       CAST({_ident(cols['date'])} AS VARCHAR) AS period_text,
                       CAST({_ident(cols['value'])} AS VARCHAR) AS value_text
                FROM src
            ), typed AS (
                SELECT *,
                       TRY_CAST(trim(period_text) AS TIMESTAMP) AS period_ts,
                       value_text IS NULL OR lower(trim(value_text)) IN ({missing_list}) AS is_missing
                FROM raw
            )
            SELECT *,
                   CASE WHEN is_missing THEN NULL ELSE TRY_CAST(trim(value_text) AS DOUBLE) END AS value
            FROM typed
            """
        )
        _fail_on_unmappable(con, source, "location" in cols)
        for p in existing:
            p.unlink()

        con.execute(
            f"""
            CREATE TEMP TABLE sales_lines AS
            WITH v AS (
                SELECT *,
                       CASE WHEN period_ts = date_trunc('day', period_ts) THEN strftime(period_ts, '%Y-%m-%d')
                            ELSE strftime(period_ts, '%Y-%m-%d %H:%M:%S') END AS sold_at
                FROM cells WHERE NOT is_missing AND value <> 0
            )
            SELECT series_id || '|' || location_id || '|' || sold_at AS transaction_id,
                   CAST(NULL AS VARCHAR) AS line_number,
                   sold_at,
                   series_id AS product_id,
                   location_id,
                   CASE WHEN value = trunc(value) AND abs(value) < 1e15 THEN CAST(CAST(value AS BIGINT) AS VARCHAR)
                        ELSE CAST(value AS VARCHAR) END AS quantity,
                   CAST(NULL AS VARCHAR) AS unit_price,
                   CASE WHEN value < 0 AND {_lit(negative_values)} = 'return' THEN 'return' ELSE 'sale' END
                       AS line_type,
                   CAST(NULL AS VARCHAR) AS customer_id
            FROM v ORDER BY src_row
            """
        )
        con.execute(
            f"""
            CREATE TEMP TABLE products AS
            SELECT series_id AS product_id,
                   CAST(NULL AS VARCHAR) AS product_name,
                   CAST(NULL AS VARCHAR) AS category,
                   {_lit(supplier_id) if with_supplier else 'CAST(NULL AS VARCHAR)'} AS supplier_id,
                   CAST(NULL AS VARCHAR) AS unit_of_measure,
                   'stock' AS product_type,
                   CAST(NULL AS VARCHAR) AS launch_date,
                   CAST(NULL AS VARCHAR) AS discontinued_date,
                   CAST(NULL AS VARCHAR) AS list_price
            FROM (SELECT DISTINCT series_id FROM cells) ORDER BY product_id
            """
        )
        loc_name = (
            "location from the panel"
            if "location" in cols
            else "one location for every series (assumed at import, not from the data)"
        )
        con.execute(
            """
            CREATE TEMP TABLE locations AS
            SELECT location_id, ? AS location_name, ? AS location_type,
                   CAST(NULL AS VARCHAR) AS replenished_from, CAST(NULL AS VARCHAR) AS region
            FROM (SELECT DISTINCT location_id FROM cells) ORDER BY location_id
            """,
            [loc_name, location_type],
        )
        written = [("sales_lines", "sales"), ("products", "master"), ("locations", "master")]
        assumed: dict[str, object] = {}
        if "location" not in cols:
            assumed["location"] = f"{location_id} ({location_type}, buys from suppliers)"
        if with_supplier:
            lt_text = "not given" if lead_time_days is None else f"{int(lead_time_days)} days"
            con.execute(
                "CREATE TEMP TABLE suppliers AS SELECT ? AS supplier_id, ? AS supplier_name, "
                "CAST(NULL AS VARCHAR) AS country, ? AS nominal_lead_time_days",
                [supplier_id, f"Assumed supplier (set at import, not from the data; lead time {lt_text})",
                 None if lead_time_days is None else str(int(lead_time_days))],
            )
            con.execute(
                """
                CREATE TEMP TABLE product_suppliers AS
                SELECT product_id, ? AS supplier_id, ? AS min_order_qty, ? AS pack_size,
                       ? AS nominal_lead_time_days, 'true' AS is_primary
                FROM products ORDER BY product_id
                """,
                [supplier_id, None if min_order_qty is None else _num_text(min_order_qty),
                 None if pack_size is None else _num_text(pack_size),
                 None if lead_time_days is None else str(int(lead_time_days))],
            )
            written += [("suppliers", "master"), ("product_suppliers", "master")]
            assumed["supplier_id"] = supplier_id
            assumed["nominal_lead_time_days"] = lead_time_days
            assumed["min_order_qty"] = min_order_qty if min_order_qty is not None else "blank (read as 0)"
            assumed["pack_size"] = pack_size if pack_size is not None else "blank (read as 1)"
        if unit_cost is not None:
            con.execute(
                """
                CREATE TEMP TABLE standard_costs AS
                SELECT product_id, (SELECT strftime(min(period_ts), '%Y-%m-%d') FROM cells) AS valid_from,
                       ? AS unit_cost
                FROM products ORDER BY product_id
                """,
                [_num_text(unit_cost)],
            )
            written.append(("standard_costs", "finance"))
            assumed["unit_cost"] = unit_cost

        files = write_landing_tables(con, out_dir, written, fmt)

        # ---- integrity: totals from the written files vs totals from the input
        rels = {table: written_relation(p, fmt) for (table, _), p in zip(written, files, strict=True)}
        output_rows = {
            p.relative_to(out_dir).as_posix(): con.execute(f"SELECT count(*) FROM {rels[t]}").fetchone()[0]
            for (t, _), p in zip(written, files, strict=True)
        }
        out_sales, out_products, out_locations = rels["sales_lines"], rels["products"], rels["locations"]
        (n_rows, n_series, n_products, n_locations, n_periods, first_ts, last_ts, n_missing, n_zero, n_negative,
         n_nonzero, sum_value, n_series_with_sales) = con.execute(
            """
            SELECT count(*), count(DISTINCT (series_id, location_id)), count(DISTINCT series_id),
                   count(DISTINCT location_id), count(DISTINCT period_ts), min(period_ts), max(period_ts),
                   count(*) FILTER (WHERE is_missing), count(*) FILTER (WHERE value = 0),
                   count(*) FILTER (WHERE value < 0), count(*) FILTER (WHERE value <> 0),
                   coalesce(sum(value), 0)::DOUBLE,
                   count(DISTINCT (series_id, location_id)) FILTER (WHERE value <> 0)
            FROM cells
            """
        ).fetchone()
        out_lines, out_sum, out_series, out_returns, out_negative = con.execute(
            f"""
            SELECT count(*), coalesce(sum(CAST(quantity AS DOUBLE)), 0)::DOUBLE,
                   count(DISTINCT (product_id, location_id)),
                   count(*) FILTER (WHERE line_type = 'return'),
                   count(*) FILTER (WHERE CAST(quantity AS DOUBLE) < 0)
            FROM {out_sales}
            """
        ).fetchone()
        out_product_rows, out_product_ids = con.execute(
            f"SELECT count(*), count(DISTINCT product_id) FROM {out_products}"
        ).fetchone()
        out_location_rows = con.execute(f"SELECT count(*) FROM {out_locations}").fetchone()[0]
        checks = [
            Check("cells_accounted_for", n_rows, out_lines + n_zero + n_missing),
            Check("sales_lines", n_nonzero, out_lines),
            Check("sum_value", sum_value, out_sum),
            Check("series_with_sales", n_series_with_sales, out_series),
            Check("products_rows", n_products, out_product_rows),
            Check("products_distinct_ids", n_products, out_product_ids),
            Check("locations_rows", n_locations, out_location_rows),
            Check("negative_quantity_lines", n_negative, out_negative),
            Check("return_lines", n_negative if negative_values == "return" else 0, out_returns),
        ]
        # every non-zero cell reads back unchanged (order-free multiset comparison, both directions)
        src_cols = "series_id, location_id, CAST(period_ts AS TIMESTAMP), value"
        out_cols = "product_id, location_id, CAST(sold_at AS TIMESTAMP), CAST(quantity AS DOUBLE)"
        src_rel = "(SELECT * FROM cells WHERE value <> 0)"
        changed = con.execute(
            f"SELECT (SELECT count(*) FROM (SELECT {src_cols} FROM {src_rel} EXCEPT ALL "
            f"SELECT {out_cols} FROM {out_sales}))"
            f" + (SELECT count(*) FROM (SELECT {out_cols} FROM {out_sales} EXCEPT ALL "
            f"SELECT {src_cols} FROM {src_rel}))"
        ).fetchone()[0]
        checks.append(Check("lines_with_changed_values", 0, changed))
        checks.append(Check("series_not_in_masters", 0, con.execute(
            f"""SELECT count(*) FROM (SELECT DISTINCT series_id, location_id FROM cells) c
                WHERE series_id NOT IN (SELECT product_id FROM {out_products})
                   OR location_id NOT IN (SELECT location_id FROM {out_locations})"""
        ).fetchone()[0]))
        checks.append(Check("sales_lines_with_unknown_product_or_location", 0, con.execute(
            f"""SELECT count(*) FROM {out_sales}
                WHERE product_id NOT IN (SELECT product_id FROM {out_products})
                   OR location_id NOT IN (SELECT location_id FROM {out_locations})"""
        ).fetchone()[0]))
        if with_supplier:
            checks.append(Check("product_suppliers_rows", n_products, con.execute(
                f"SELECT count(DISTINCT product_id) FROM {rels['product_suppliers']} WHERE supplier_id = ?",
                [supplier_id],
            ).fetchone()[0]))
            checks.append(Check("products_with_supplier", n_products, con.execute(
                f"SELECT count(*) FROM {out_products} WHERE supplier_id = ?", [supplier_id]
            ).fetchone()[0]))
        if unit_cost is not None:
            checks.append(Check("standard_costs_rows", n_products, con.execute(
                f"SELECT count(DISTINCT product_id) FROM {rels['standard_costs']}"
            ).fetchone()[0]))

        # ---- where the missing cells sit in their series (reported, not mapped)
        position = con.execute(
            """
            WITH b AS (
                SELECT series_id, location_id,
                       min(period_ts) FILTER (WHERE NOT is_missing) AS f,
                       max(period_ts) FILTER (WHERE NOT is_missing) AS l,
                       bool_or(is_missing) AS any_missing,
                       bool_or(value <> 0) AS any_sales
                FROM cells GROUP BY ALL
            )
            SELECT count(*) FILTER (WHERE is_missing AND f IS NOT NULL AND period_ts < f),
                   count(*) FILTER (WHERE is_missing AND period_ts > f AND period_ts < l),
                   count(*) FILTER (WHERE is_missing AND l IS NOT NULL AND period_ts > l),
                   count(*) FILTER (WHERE is_missing AND f IS NULL),
                   (SELECT count(*) FROM b WHERE any_missing),
                   (SELECT count(*) FROM b WHERE NOT coalesce(any_sales, false))
            FROM cells JOIN b USING (series_id, location_id)
            """
        ).fetchone()
    finally:
        con.close()

    summary = SeriesImportSummary(
        source=source,
        out_dir=out_dir,
        input_rows=int(n_rows),
        series=int(n_series),
        products=int(n_products),
        locations=int(n_locations),
        periods=int(n_periods),
        first_period=first_ts.date() if first_ts is not None else None,
        last_period=last_ts.date() if last_ts is not None else None,
        sales_lines=int(out_lines),
        zero_cells=int(n_zero),
        missing_cells=int(n_missing),
        missing_by_position={
            "leading": int(position[0]),
            "interior": int(position[1]),
            "trailing": int(position[2]),
            "in all-missing series": int(position[3]),
        },
        series_with_missing=int(position[4]),
        series_without_sales=int(position[5]),
        negative_cells=int(n_negative),
        sum_value=float(sum_value),
        output_rows=output_rows,
        input_checks=checks,
        assumed_defaults=assumed,
        elapsed_seconds=time.perf_counter() - t0,
        files=files,
    )
    bad = [c for c in checks if not c.ok]
    if bad:
        raise ImportIntegrityError(
            f"the files written to {out_dir} do not reproduce the input {source}: "
            + "; ".join(f"{c.name}: input {_num(c.expected)} vs output {_num(c.actual)}" for c in bad)
        )
    log.info("imported %s cells in %.1f s", f"{summary.input_rows:,}", summary.elapsed_seconds)
    return summary


def _num_text(x: float) -> str:
    """A number as contract text: integer text when whole, else the shortest repr."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The import-series options (shared by ``stockturn import-series`` and ``python -m``)."""
    parser.add_argument("--source", required=True, help="CSV or Parquet file, one row per series and period")
    parser.add_argument("--out", required=True, help="landing folder to write")
    parser.add_argument("--id-column", default="unique_id", help="series id column -> product_id (default unique_id)")
    parser.add_argument("--date-column", default="ds",
                        help="period date column -> the sales line's sold_at (default ds)")
    parser.add_argument("--value-column", default="y",
                        help="units column -> quantity; zero and missing (blank, NA, NaN, null) write no line "
                        "(default y)")
    parser.add_argument("--location-column",
                        help="location column -> location_id (default: none, every series at one location)")
    parser.add_argument("--location", default="MAIN",
                        help="id of the one location when there is no --location-column (default MAIN)")
    parser.add_argument("--location-type", choices=LOCATION_TYPES, default="warehouse",
                        help="location_type written for every location (default warehouse; descriptive only: every "
                        "location is written with replenished_from blank, i.e. it buys from a supplier)")
    parser.add_argument("--negative-values", choices=("return", "quarantine"), default="return",
                        help="negative values become return lines (default) or sale lines that staging quarantines "
                        "as negative_quantity_not_return")
    parser.add_argument("--unit-cost", type=float,
                        help="ASSUMED unit cost for every product (finance/standard_costs); default: none, costs "
                        "left out and the cost-based measures (value, turnover, DIO, GMROI) stay empty")
    parser.add_argument("--lead-time-days", type=int,
                        help="ASSUMED nominal supplier lead time in days: writes one supplier and every product's "
                        "purchasing terms (master/suppliers, master/product_suppliers); default: none, the policy "
                        "uses its configured default lead time")
    parser.add_argument("--min-order-qty", type=float,
                        help="ASSUMED minimum order quantity per product (with the supplier files; default blank = 0)")
    parser.add_argument("--pack-size", type=float,
                        help="ASSUMED order multiple per product (with the supplier files; default blank = 1)")
    parser.add_argument("--supplier-id", default="SUPPLIER",
                        help="id of the assumed supplier (default SUPPLIER)")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv", help="file format (default csv)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace this importer's files in --out (other landing files are left alone)")


def run_from_args(args: argparse.Namespace) -> SeriesImportSummary:
    return import_series_panel(
        Path(args.source),
        Path(args.out),
        id_column=args.id_column,
        date_column=args.date_column,
        value_column=args.value_column,
        location_column=args.location_column,
        location_id=args.location,
        location_type=args.location_type,
        negative_values=args.negative_values,
        unit_cost=args.unit_cost,
        lead_time_days=args.lead_time_days,
        min_order_qty=args.min_order_qty,
        pack_size=args.pack_size,
        supplier_id=args.supplier_id,
        fmt=args.format,
        overwrite=args.overwrite,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m ml.ingest.series_panel --source FILE --out DIR`` (the CLI's import-series)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(run_from_args(args).format())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
