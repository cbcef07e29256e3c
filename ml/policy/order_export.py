"""Export approved proposals as purchase and transfer orders an ERP can import, exactly once.

``export_orders(con, out_dir)`` takes every approved proposal in ``ml.purchase_proposals`` that was never exported,
at the quantity approved (a planner may approve another quantity than the one proposed: ``approved_quantity``),
groups it into orders and writes one batch folder ``<out_dir>/<export_id>/`` with four CSV files (layout in
``docs/order-export.md``, :data:`FILES`):

- ``purchase_order_headers.csv`` / ``purchase_order_lines.csv``: one purchase order per supplier and order date,
  its lines carrying the ship-to location;
- ``transfer_order_headers.csv`` / ``transfer_order_lines.csv``: one transfer order per source and destination
  location and order date.

Order numbers are ``PO-<export_seq>-<n>`` and ``TO-<export_seq>-<n>``: unique across exports, so an order an ERP has
imported is never reissued under its number.

**Exactly once.** Every exported line is recorded in ``ml.order_export_lines`` (and the batch in
``ml.order_exports``); a proposal with a recorded line is never exported again, whatever its status does later.
The files are written to a temporary folder first, the lines are recorded in one transaction, then the folder is
renamed into place. A run killed after the commit and before the rename leaves the batch recorded without its
folder: the next export writes the missing folder again from the recorded lines (same numbers, same content) before
it exports anything new, so nothing is lost and nothing is issued twice. Files an ERP already picked up are the
ERP's; stockturn never rewrites a folder that exists.

Plain Python (no Dagster); ``stockturn proposals export`` and the ``order_release`` asset call it.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from ml.warehouse import ML_SCHEMA, read_frame, table_columns, table_exists

log = logging.getLogger("stockturn.orders")

EXPORTS_TABLE = "order_exports"
LINES_TABLE = "order_export_lines"
EXPORTS_DDL = f"""
create table if not exists {ML_SCHEMA}.{EXPORTS_TABLE} (
    export_seq bigint not null,
    export_id varchar not null,
    exported_at timestamp not null,
    folder varchar not null,
    purchase_orders bigint not null,
    transfer_orders bigint not null,
    lines bigint not null,
    value double
)
"""
LINES_DDL = f"""
create table if not exists {ML_SCHEMA}.{LINES_TABLE} (
    export_id varchar not null,
    order_type varchar not null,
    order_number varchar not null,
    line_number bigint not null,
    proposal_id varchar not null,
    supplier_id varchar,
    source_location_id varchar,
    location_id varchar not null,
    product_id varchar not null,
    quantity double not null,
    unit_cost double,
    line_value double,
    order_date date not null,
    expected_arrival_date date,
    approved_by varchar
)
"""

#: file -> columns, in order (docs/order-export.md documents each)
FILES: dict[str, tuple[str, ...]] = {
    "purchase_order_headers.csv": ("order_number", "supplier_id", "order_date", "lines", "total_quantity",
                                   "total_value", "export_id"),
    "purchase_order_lines.csv": ("order_number", "line_number", "product_id", "ship_to_location_id", "quantity",
                                 "unit_cost", "line_value", "expected_arrival_date", "proposal_id", "approved_by"),
    "transfer_order_headers.csv": ("order_number", "from_location_id", "to_location_id", "order_date", "lines",
                                   "total_quantity", "total_value", "export_id"),
    "transfer_order_lines.csv": ("order_number", "line_number", "product_id", "quantity", "unit_cost",
                                 "line_value", "expected_arrival_date", "proposal_id", "approved_by"),
}


@dataclass(frozen=True)
class ExportResult:
    export_id: str | None  # None: nothing new to export
    folder: Path | None
    purchase_orders: int = 0
    transfer_orders: int = 0
    lines: int = 0
    value: float = 0.0
    recovered: list[str] = field(default_factory=list)  # batches whose folder was written again

    def describe(self) -> str:
        text = (f"exported {self.purchase_orders:,} purchase orders and {self.transfer_orders:,} transfer orders "
                f"({self.lines:,} lines, value {self.value:,.2f}) to {self.folder}" if self.export_id
                else "no approved proposals left to export")
        if self.recovered:
            text += f"; wrote the missing folders of earlier exports {', '.join(self.recovered)} again"
        return text


def ensure_export_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {ML_SCHEMA}")
    con.execute(EXPORTS_DDL)
    con.execute(LINES_DDL)


def _whole(column: str) -> pl.Expr:
    """Quantities are whole units (rounded to packs by the policy): written without a decimal part."""
    return pl.col(column).round(0).cast(pl.Int64)


def _files(lines: pl.DataFrame, export_id: str) -> dict[str, pl.DataFrame]:
    """The four files of one batch from its recorded lines."""
    out: dict[str, pl.DataFrame] = {}
    for kind, head, cols in (("purchase_order", "purchase_order", ["supplier_id"]),
                             ("transfer", "transfer_order", ["source_location_id", "location_id"])):
        part = lines.filter(pl.col("order_type") == kind).sort("order_number", "line_number")
        headers = part.group_by("order_number", maintain_order=True).agg(
            *[pl.col(c).first() for c in cols], pl.col("order_date").first(), pl.len().alias("lines"),
            pl.col("quantity").sum().alias("total_quantity"), pl.col("line_value").sum().round(2).alias("total_value"),
        ).with_columns(pl.lit(export_id).alias("export_id"))
        line_rows = part.with_columns(pl.col("line_value").round(2), _whole("quantity"))
        headers = headers.with_columns(_whole("total_quantity"))
        if kind == "purchase_order":
            line_rows = line_rows.rename({"location_id": "ship_to_location_id"})
        else:
            headers = headers.rename({"source_location_id": "from_location_id", "location_id": "to_location_id"})
        out[f"{head}_headers.csv"] = headers.select(FILES[f"{head}_headers.csv"])
        out[f"{head}_lines.csv"] = line_rows.select(FILES[f"{head}_lines.csv"])
    return out


def _write_partial(lines: pl.DataFrame, export_id: str, out_dir: Path) -> Path:
    """The batch's files in a temporary folder beside the final one (renamed into place by the caller)."""
    tmp = out_dir / f".{export_id}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name, frame in _files(lines, export_id).items():
        frame.write_csv(tmp / name, date_format="%Y-%m-%d")
    return tmp


def _recover_missing(con: duckdb.DuckDBPyConnection, out_dir: Path) -> list[str]:
    """Write again the folder of every recorded batch of ``out_dir`` whose folder is missing."""
    batches = read_frame(con, f"select export_id, folder from {ML_SCHEMA}.{EXPORTS_TABLE} order by export_seq")
    recovered = []
    for export_id, folder in batches.iter_rows():
        if Path(folder).resolve().parent != out_dir.resolve() or Path(folder).exists():
            continue
        lines = read_frame(con, f"select * from {ML_SCHEMA}.{LINES_TABLE} where export_id = ?", [export_id])
        _write_partial(lines, export_id, out_dir).rename(out_dir / export_id)
        recovered.append(export_id)
        log.warning("export %s was recorded but its folder %s was missing: written again from the recorded lines",
                    export_id, folder)
    return recovered


def export_orders(con: duckdb.DuckDBPyConnection, out_dir: Path | str, *,
                  exported_at: datetime | None = None) -> ExportResult:
    """Export every approved, never-exported proposal (module docstring); idempotent."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not table_exists(con, ML_SCHEMA, "purchase_proposals"):
        raise ValueError("ml.purchase_proposals does not exist: run the plan first")
    ensure_export_tables(con)
    recovered = _recover_missing(con, out_dir)
    has_approved = "approved_quantity" in table_columns(con, ML_SCHEMA, "purchase_proposals")
    qty = "coalesce(p.approved_quantity, p.quantity)" if has_approved else "p.quantity"  # a planner's quantity wins
    todo = read_frame(con, f"""
        select p.proposal_id, p.proposal_type as order_type, p.supplier_id, p.source_location_id, p.location_id,
               p.product_id, {qty} as quantity, p.unit_cost, {qty} * p.unit_cost as line_value, p.order_date,
               p.expected_arrival_date, p.status_author as approved_by
        from {ML_SCHEMA}.purchase_proposals p
        where p.status = 'approved'
          and p.proposal_id not in (select proposal_id from {ML_SCHEMA}.{LINES_TABLE})
        order by p.proposal_type, coalesce(p.supplier_id, p.source_location_id), p.location_id, p.product_id""")
    if todo.is_empty():
        return ExportResult(None, None, recovered=recovered)
    when = (exported_at or datetime.now(UTC)).replace(tzinfo=None)
    seq = con.execute(f"select coalesce(max(export_seq), 0) + 1 from {ML_SCHEMA}.{EXPORTS_TABLE}").fetchall()[0][0]
    export_id = f"{when:%Y%m%dT%H%M%S}-{seq:05d}"
    keys = {"purchase_order": ["supplier_id", "order_date"],
            "transfer": ["source_location_id", "location_id", "order_date"]}
    parts = []
    for kind, prefix in (("purchase_order", "PO"), ("transfer", "TO")):
        part = todo.filter(pl.col("order_type") == kind)
        if part.is_empty():
            continue
        part = part.sort([*keys[kind], "location_id", "product_id"]).with_columns(
            pl.struct(keys[kind]).rank("dense").cast(pl.Int64).alias("__n"))
        part = part.with_columns(
            (pl.lit(f"{prefix}-{seq:05d}-") + pl.col("__n").cast(pl.String).str.zfill(4)).alias("order_number"),
            pl.int_range(1, pl.len() + 1).over("__n").cast(pl.Int64).alias("line_number")).drop("__n")
        parts.append(part)
    lines = pl.concat(parts).with_columns(pl.lit(export_id).alias("export_id")).select(
        "export_id", "order_type", "order_number", "line_number", "proposal_id", "supplier_id", "source_location_id",
        "location_id", "product_id", "quantity", "unit_cost", "line_value", "order_date", "expected_arrival_date",
        "approved_by")
    n_po = lines.filter(pl.col("order_type") == "purchase_order")["order_number"].n_unique()
    n_to = lines.filter(pl.col("order_type") == "transfer")["order_number"].n_unique()
    value = float(lines["line_value"].fill_null(0).sum())
    tmp = _write_partial(lines, export_id, out_dir)
    final = out_dir / export_id
    con.execute("begin transaction")
    try:
        con.register("__lines", lines.to_arrow())
        con.execute(f"insert into {ML_SCHEMA}.{LINES_TABLE} by name select * from __lines")
        con.unregister("__lines")
        con.execute(f"insert into {ML_SCHEMA}.{EXPORTS_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?)",
                    [seq, export_id, when, str(final), n_po, n_to, lines.height, value])
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    tmp.rename(final)
    result = ExportResult(export_id, final, n_po, n_to, lines.height, value, recovered)
    log.info("%s", result.describe())
    return result
