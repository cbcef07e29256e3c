"""Import the UCI Online Retail extract into the landing-zone contract (``stockturn import-transactions``).

Input: one table of invoice lines with columns ``InvoiceNo, StockCode, Description, Quantity, InvoiceDate,
UnitPrice, CustomerID, Country`` (parquet or CSV; the shipped extract is
``/work/shared/data/online_retail/uci_online_retail_transactions.parquet``, 541,909 lines, a UK online gift-ware
retailer, 2010-12-01 to 2011-12-09). Output, under ``out_dir``:

``sales/sales_lines``
    One row per input line - nothing dropped, merged or corrected; the dirt (cancellations, adjustments, zero and
    negative prices, duplicate lines, fee codes) is left for stockturn's staging models to quarantine with a
    reason. ``transaction_id`` = InvoiceNo, ``sold_at`` = InvoiceDate as ``YYYY-MM-DD HH:MM:SS``, ``product_id`` =
    StockCode as-is (case preserved: the extract has e.g. both ``15056p`` and ``15056P``), ``location_id`` = the one
    location, ``quantity`` = Quantity (integer text), ``unit_price`` = UnitPrice written with the shortest text that
    reads back to the same double (no rounding), ``line_type`` = ``return`` for InvoiceNo starting with ``C``
    (cancellations) else ``sale``, ``customer_id`` = CustomerID as integer text (blank for guest sales),
    ``line_number`` blank, so that exact duplicate lines stay detectable as duplicates downstream.
``master/products``
    One row per distinct StockCode. ``product_name`` = the most frequent non-empty Description of the code (ties:
    alphabetically first); ``category`` blank (becomes 'Uncategorised'); ``product_type`` by the rule below.
``master/locations``
    The single selling/stock location (default ``ONLINE``, type ``online``, region ``United Kingdom``). The
    extract's ``Country`` is the *customer's* country, not a stock location, so it is not mapped (stock for
    every country ships from the one UK warehouse).

No other entity is written: this is a sales-only extract, and stockturn must build on the required files alone.

**product_type rule for this extract** (importer logic, not general stockturn logic). Looking at all 4,070 codes:

* ``stock``: merchandise codes, which are five digits optionally followed by letters (``85123A``, ``15056p``;
  4,037 codes), and the ``DCGS...`` codes of the dotcom gift shop (16 codes such as ``DCGS0003`` "BOXED GLASS
  ASHTRAY", ``DCGSSBOY`` "BOYS PARTY BAG": real items sold at item prices).
* ``non_stock``: every other code (17 codes, 2,950 lines): postage and carriage ``POST``, ``DOT``, ``C2``; manual
  lines and discounts ``M``, ``m``, ``D``; ``S`` samples; fees ``BANK CHARGES``, ``AMAZONFEE``, ``CRUK``
  commission; ``B`` "Adjust bad debt"; gift vouchers ``gift_0001_*``; and ``PADS`` "PADS TO MATCH ALL CUSHIONS",
  which is only ever invoiced at 0.001 or 0 (a free add-on marker, not a stocked item).

The import checks its *output files* against totals computed from the input (rows, distinct codes and invoices,
sum of quantity, cancellation and negative-quantity lines, revenue, customers) and raises
:class:`ImportIntegrityError` if anything was lost. It also reports the known totals of the shipped extract's
README (541,909 lines, 4,070 codes, 25,900 invoices, sum(Quantity) 5,176,450, 9,288 cancellation lines, 10,624
negative-quantity lines); a different extract simply shows those as not matching.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb

from ml.ingest.contract import ENTITIES_BY_NAME
from ml.ingest.landing_files import human_number as _num
from ml.ingest.landing_files import sql_literal as _lit
from ml.ingest.landing_files import write_landing_tables, written_relation
from ml.ingest.loader import _match_entity

log = logging.getLogger("stockturn.ingest")

#: Merchandise codes: five digits, optionally followed by letters; plus the dotcom gift shop's DCGS... items.
STOCK_CODE_REGEX = r"^([0-9]{5}[A-Za-z]*|DCGS[0-9A-Za-z]+)$"

#: Known totals of the shipped extract (its README).
KNOWN_TOTALS: dict[str, float] = {
    "lines": 541_909,
    "distinct_stock_codes": 4_070,
    "invoices": 25_900,
    "sum_quantity": 5_176_450,
    "cancellation_lines": 9_288,
    "negative_quantity_lines": 10_624,
}

SOURCE_COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID")
WRITTEN_ENTITIES = ("sales_lines", "products", "locations")


class ImportIntegrityError(RuntimeError):
    """The written files do not reproduce the input totals."""


@dataclass
class Check:
    name: str
    expected: float
    actual: float

    @property
    def ok(self) -> bool:
        return abs(self.expected - self.actual) <= 1e-6 * max(1.0, abs(self.expected))


@dataclass
class ImportSummary:
    source: Path
    out_dir: Path
    input_rows: int
    output_rows: dict[str, int]  # relative output path -> data rows
    input_checks: list[Check]  # output totals vs the same totals computed from the input
    known_total_checks: list[Check]  # output totals vs the README of the shipped extract
    non_stock_codes: list[str]
    non_stock_lines: int
    elapsed_seconds: float
    files: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.input_checks)

    @property
    def matches_known_totals(self) -> bool:
        return all(c.ok for c in self.known_total_checks)

    def format(self) -> str:
        lines = [
            f"Imported {self.input_rows:,} input lines from {self.source} into {self.out_dir} "
            f"({self.elapsed_seconds:,.1f} s)"
        ]
        lines += [f"  {rel:<32} {n:>12,} rows" for rel, n in self.output_rows.items()]
        lines.append("Output vs input totals (nothing lost):")
        lines += [
            f"  {'ok ' if c.ok else 'BAD'} {c.name:<34} {_num(c.actual):>16} (input {_num(c.expected)})"
            for c in self.input_checks
        ]
        lines.append("Output vs the extract's known totals (README):")
        lines += [
            f"  {'ok ' if c.ok else 'BAD'} {c.name:<34} {_num(c.actual):>16} (known {_num(c.expected)})"
            for c in self.known_total_checks
        ]
        lines.append(
            f"non_stock codes ({len(self.non_stock_codes)}, {self.non_stock_lines:,} lines): "
            + ", ".join(self.non_stock_codes)
        )
        return "\n".join(lines)


def _source_relation(source: Path) -> str:
    suffix = source.suffix.lower()
    if suffix == ".parquet":
        return f"read_parquet({_lit(str(source))})"
    if suffix == ".csv":
        return f"read_csv({_lit(str(source))}, header=true)"
    raise ValueError(f"{source}: expected a .parquet or .csv file")


def _existing_outputs(out_dir: Path) -> list[Path]:
    ents = [ENTITIES_BY_NAME[n] for n in WRITTEN_ENTITIES]
    if not out_dir.exists():
        return []
    return sorted(p for p in out_dir.rglob("*") if p.is_file() and _match_entity(p.relative_to(out_dir).parts, ents))


_TOTALS_SQL = """
SELECT count(*)::DOUBLE,
       count(DISTINCT {code})::DOUBLE,
       count(DISTINCT {invoice})::DOUBLE,
       sum({qty})::DOUBLE,
       count(*) FILTER (WHERE {is_return})::DOUBLE,
       count(*) FILTER (WHERE {qty} < 0)::DOUBLE,
       sum({qty} * {price})::DOUBLE,
       count(DISTINCT {customer})::DOUBLE,
       count(*) FILTER (WHERE {customer} IS NULL)::DOUBLE
FROM {rel}
"""
_TOTAL_NAMES = (
    "lines",
    "distinct_stock_codes",
    "invoices",
    "sum_quantity",
    "cancellation_lines",
    "negative_quantity_lines",
    "revenue",
    "distinct_customers",
    "guest_lines",
)


def import_online_retail(
    source: Path,
    out_dir: Path,
    *,
    location_id: str = "ONLINE",
    fmt: Literal["csv", "parquet"] = "csv",
    overwrite: bool = False,
) -> ImportSummary:
    """Map the UCI Online Retail extract ``source`` into landing files under ``out_dir`` (see module docstring).

    Existing products / locations / sales_lines files in ``out_dir`` raise ``FileExistsError`` unless
    ``overwrite`` (then exactly those files are replaced; other landing files are left alone).
    """
    t0 = time.perf_counter()
    source, out_dir = Path(source), Path(out_dir)
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', not {fmt!r}")
    if not source.is_file():
        raise FileNotFoundError(f"source extract {source} not found")
    existing = _existing_outputs(out_dir)
    if existing and not overwrite:
        raise FileExistsError(
            f"{out_dir} already holds {', '.join(p.relative_to(out_dir).as_posix() for p in existing)}; "
            "pass overwrite=True (--overwrite) to replace them"
        )
    for p in existing:
        p.unlink()

    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = true")
        con.execute(f"CREATE TEMP VIEW src AS SELECT * FROM {_source_relation(source)}")
        have = {r[0] for r in con.execute("DESCRIBE src").fetchall()}
        missing = [c for c in SOURCE_COLUMNS if c not in have]
        if missing:
            raise ValueError(f"{source}: not the Online Retail layout, missing column(s) {', '.join(missing)}")

        price_text = "CAST(CAST(UnitPrice AS DOUBLE) AS VARCHAR)"
        con.execute(
            f"""
            CREATE TEMP TABLE sales_lines AS
            SELECT CAST(InvoiceNo AS VARCHAR) AS transaction_id,
                   CAST(NULL AS VARCHAR) AS line_number,
                   strftime(CAST(InvoiceDate AS TIMESTAMP), '%Y-%m-%d %H:%M:%S') AS sold_at,
                   CAST(StockCode AS VARCHAR) AS product_id,
                   {_lit(location_id)} AS location_id,
                   CASE WHEN CAST(Quantity AS DOUBLE) = trunc(CAST(Quantity AS DOUBLE))
                        THEN CAST(CAST(Quantity AS BIGINT) AS VARCHAR)
                        ELSE CAST(CAST(Quantity AS DOUBLE) AS VARCHAR) END AS quantity,
                   {price_text} AS unit_price,
                   CASE WHEN starts_with(CAST(InvoiceNo AS VARCHAR), 'C') THEN 'return' ELSE 'sale' END AS line_type,
                   CAST(CAST(CustomerID AS BIGINT) AS VARCHAR) AS customer_id
            FROM src
            """
        )
        con.execute(
            f"""
            CREATE TEMP TABLE products AS
            WITH names AS (
                SELECT StockCode, Description, count(*) AS n
                FROM src WHERE nullif(trim(Description), '') IS NOT NULL
                GROUP BY ALL
            ), best AS (
                SELECT StockCode, first(Description ORDER BY n DESC, Description) AS product_name
                FROM names GROUP BY StockCode
            )
            SELECT c.StockCode AS product_id,
                   b.product_name,
                   CAST(NULL AS VARCHAR) AS category,
                   CAST(NULL AS VARCHAR) AS supplier_id,
                   CAST(NULL AS VARCHAR) AS unit_of_measure,
                   CASE WHEN regexp_full_match(c.StockCode, {_lit(STOCK_CODE_REGEX)}) THEN 'stock'
                        ELSE 'non_stock' END AS product_type,
                   CAST(NULL AS VARCHAR) AS launch_date,
                   CAST(NULL AS VARCHAR) AS discontinued_date,
                   CAST(NULL AS VARCHAR) AS list_price
            FROM (SELECT DISTINCT CAST(StockCode AS VARCHAR) AS StockCode FROM src) c
            LEFT JOIN best b USING (StockCode)
            ORDER BY product_id
            """
        )
        con.execute(
            "CREATE TEMP TABLE locations AS SELECT ? AS location_id, 'Online shop (UK)' AS location_name, "
            "'online' AS location_type, CAST(NULL AS VARCHAR) AS replenished_from, 'United Kingdom' AS region",
            [location_id],
        )

        output_rows: dict[str, int] = {}
        files = write_landing_tables(
            con, out_dir, (("sales_lines", "sales"), ("products", "master"), ("locations", "master")), fmt)

        # ---- integrity: totals from the written files vs totals from the input
        out_sales, out_products, out_locations = (written_relation(p, fmt) for p in files)
        for rel, p in zip((out_sales, out_products, out_locations), files, strict=True):
            output_rows[p.relative_to(out_dir).as_posix()] = con.execute(f"SELECT count(*) FROM {rel}").fetchone()[0]

        src_totals = con.execute(
            _TOTALS_SQL.format(
                code="StockCode",
                invoice="InvoiceNo",
                qty="CAST(Quantity AS DOUBLE)",
                price="CAST(UnitPrice AS DOUBLE)",
                is_return="starts_with(CAST(InvoiceNo AS VARCHAR), 'C')",
                customer="CustomerID",
                rel="src",
            )
        ).fetchone()
        out_totals = con.execute(
            _TOTALS_SQL.format(
                code="product_id",
                invoice="transaction_id",
                qty="CAST(quantity AS DOUBLE)",
                price="CAST(unit_price AS DOUBLE)",
                is_return="line_type = 'return'",
                customer="customer_id",
                rel=out_sales,
            )
        ).fetchone()
        input_checks = [Check(n, e, a) for n, e, a in zip(_TOTAL_NAMES, src_totals, out_totals, strict=True)]
        # every line reads back to exactly the input values (order-free multiset comparison, both directions)
        src_cols = (
            "CAST(InvoiceNo AS VARCHAR), CAST(InvoiceDate AS TIMESTAMP), CAST(StockCode AS VARCHAR), "
            "CAST(Quantity AS DOUBLE), CAST(UnitPrice AS DOUBLE), CAST(CustomerID AS BIGINT)"
        )
        out_cols = (
            "transaction_id, CAST(sold_at AS TIMESTAMP), product_id, CAST(quantity AS DOUBLE), "
            "CAST(unit_price AS DOUBLE), CAST(customer_id AS BIGINT)"
        )
        mismatched = con.execute(
            f"SELECT (SELECT count(*) FROM (SELECT {src_cols} FROM src EXCEPT ALL SELECT {out_cols} FROM {out_sales}))"
            f" + (SELECT count(*) FROM (SELECT {out_cols} FROM {out_sales} EXCEPT ALL SELECT {src_cols} FROM src))"
        ).fetchone()[0]
        input_checks.append(Check("lines_with_changed_values", 0, mismatched))
        n_codes_out = con.execute(f"SELECT count(DISTINCT product_id) FROM {out_products}").fetchone()[0]
        n_products = output_rows[files[1].relative_to(out_dir).as_posix()]
        input_checks.append(Check("products_rows", src_totals[1], n_products))
        input_checks.append(Check("products_distinct_codes", src_totals[1], n_codes_out))
        unknown = con.execute(
            f"SELECT count(*) FROM {out_sales} s ANTI JOIN {out_products} p USING (product_id)"
        ).fetchone()[0]
        input_checks.append(Check("sales_lines_with_unknown_product", 0, unknown))

        known = dict(zip(_TOTAL_NAMES, out_totals, strict=False))
        known_checks = [Check(n, v, known[n]) for n, v in KNOWN_TOTALS.items()]

        non_stock = con.execute(
            f"SELECT product_id FROM {out_products} WHERE product_type = 'non_stock' ORDER BY product_id"
        ).fetchall()
        non_stock_codes = [r[0] for r in non_stock]
        non_stock_lines = con.execute(
            f"SELECT count(*) FROM {out_sales} s SEMI JOIN "
            f"(SELECT product_id FROM {out_products} WHERE product_type = 'non_stock') USING (product_id)"
        ).fetchone()[0]
    finally:
        con.close()

    summary = ImportSummary(
        source=source,
        out_dir=out_dir,
        input_rows=int(src_totals[0]),
        output_rows=output_rows,
        input_checks=input_checks,
        known_total_checks=known_checks,
        non_stock_codes=non_stock_codes,
        non_stock_lines=non_stock_lines,
        elapsed_seconds=time.perf_counter() - t0,
        files=files,
    )
    bad = [c for c in input_checks if not c.ok]
    if bad:
        raise ImportIntegrityError(
            "the written files do not reproduce the input: "
            + "; ".join(f"{c.name}: input {c.expected:,} vs output {c.actual:,}" for c in bad)
        )
    if not summary.matches_known_totals:
        log.warning("%s does not match the known totals of the UCI extract (a different extract?)", source)
    log.info("imported %s lines in %.1f s", f"{summary.input_rows:,}", summary.elapsed_seconds)
    return summary


def main(argv: list[str] | None = None) -> int:
    """``python -m ml.ingest.online_retail --source FILE --out DIR`` (the CLI's import-transactions)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--location-id", default="ONLINE")
    parser.add_argument("--format", dest="fmt", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    summary = import_online_retail(
        args.source, args.out, location_id=args.location_id, fmt=args.fmt, overwrite=args.overwrite
    )
    print(summary.format())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
