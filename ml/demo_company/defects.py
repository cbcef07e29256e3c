"""Data-quality defects injected into the landing files, as real exports have them.

Every defect is an ADDED row (never a changed or removed genuine row), placed at a random position in its
file, so that once the loader quarantines it the remaining rows reconcile exactly with the hidden truth. Kinds
use the loader's reject-reason codes (``ml.ingest.contract.REJECT_REASONS``). Each injected row is logged with
its file (relative to the landing root), its 1-based data row number and its kind; the log is written to the
truth folder as ``defects.csv``.
"""

from __future__ import annotations

import calendar
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import polars as pl

from ml.demo_company.config import DemoConfig

UNKNOWN_PRODUCT_CODES: tuple[str, ...] = ("P99999X", "P00000", "X-10442", "P9999Z", "UNKNOWN", "P12345-OLD")
UNKNOWN_LOCATION = "S00"  # a closed store that no longer exists in the location master
SALES_KINDS: tuple[str, ...] = ("duplicate_line", "unknown_product", "invalid_date", "negative_quantity_not_return")


@dataclass(frozen=True)
class Defect:
    file: str
    row: int
    kind: str
    detail: str


@dataclass
class DefectLog:
    items: list[Defect] = field(default_factory=list)

    def add(self, file: str, rows: np.ndarray, kinds: list[str], details: list[str]) -> None:
        for r, k, d in zip(rows.tolist(), kinds, details, strict=True):
            self.items.append(Defect(file, int(r), k, d))

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(d.kind for d in self.items).items()))

    def frame(self) -> pl.DataFrame:
        items = sorted(self.items, key=lambda d: (d.file, d.row))
        return pl.DataFrame(
            {
                "file": [d.file for d in items],
                "row": [d.row for d in items],
                "kind": [d.kind for d in items],
                "detail": [d.detail for d in items],
            },
            schema={"file": pl.String, "row": pl.Int64, "kind": pl.String, "detail": pl.String},
        )


def insert_rows(
    df: pl.DataFrame, extra: pl.DataFrame, min_pos: np.ndarray, rng: np.random.Generator
) -> tuple[pl.DataFrame, np.ndarray]:
    """Insert ``extra`` rows at random positions (each after at least ``min_pos`` original rows).

    Returns the new frame and the 1-based row number of each inserted row, in ``extra``'s order.
    """
    n, k = df.height, extra.height
    pos = rng.integers(np.asarray(min_pos, dtype=np.int64), n + 1)
    order = np.argsort(pos, kind="stable")  # inserted rows in file order
    extra = extra.select(df.columns).cast(df.schema)
    pieces: list[pl.DataFrame] = []
    prev = 0
    for j in order:
        p = int(pos[j])
        pieces.append(df.slice(prev, p - prev))
        pieces.append(extra.slice(int(j), 1))
        prev = p
    pieces.append(df.slice(prev, n - prev))
    rows = np.empty(k, dtype=np.int64)
    rows[order] = pos[order] + np.arange(k) + 1
    return pl.concat(pieces, how="vertical", rechunk=False), rows


def plan_sales_defects(cfg: DemoConfig, n_parts: int, rng: np.random.Generator) -> list[dict[str, int]]:
    """How many defects of each kind go into each sales part."""
    totals = {
        "duplicate_line": cfg.defect_duplicate_lines,
        "unknown_product": cfg.defect_unknown_products,
        "invalid_date": cfg.defect_invalid_dates,
        "negative_quantity_not_return": cfg.defect_negative_sales,
    }
    plan: list[dict[str, int]] = [dict.fromkeys(SALES_KINDS, 0) for _ in range(n_parts)]
    for kind in SALES_KINDS:
        for part in rng.integers(0, n_parts, totals[kind]):
            plan[int(part)][kind] += 1
    return plan


def _bad_date(iso: str, style: int) -> str:
    """A malformed version of an ISO date: an impossible day (2023-02-30) or a day-first format (31/12/2023)."""
    y, m, d = (int(x) for x in iso.split("-"))
    if style % 2 == 0:
        return f"{y:04d}-{m:02d}-{calendar.monthrange(y, m)[1] + 1:02d}"
    return f"{d:02d}/{m:02d}/{y:04d}"


def inject_sales_defects(
    df: pl.DataFrame, plan: dict[str, int], file: str, rng: np.random.Generator, log: DefectLog
) -> pl.DataFrame:
    n = df.height
    if n == 0 or not any(plan.values()):
        return df
    extras: list[pl.DataFrame] = []
    min_pos: list[np.ndarray] = []
    kinds: list[str] = []
    details: list[str] = []

    k = min(plan["duplicate_line"], n)
    if k:
        src = np.sort(rng.choice(n, size=k, replace=False))
        extras.append(df[src])
        min_pos.append(src + 1)
        kinds += ["duplicate_line"] * k
        details += ["exact copy of an earlier line"] * k

    k = plan["unknown_product"]
    if k:
        src = rng.integers(0, n, k)
        codes = [UNKNOWN_PRODUCT_CODES[int(i)] for i in rng.integers(0, len(UNKNOWN_PRODUCT_CODES), k)]
        extras.append(df[src].with_columns(product_id=pl.Series(codes, dtype=pl.String)))
        min_pos.append(np.zeros(k, dtype=np.int64))
        kinds += ["unknown_product"] * k
        details += [f"product_id {c}" for c in codes]

    k = plan["invalid_date"]
    if k:
        src = rng.integers(0, n, k)
        rows = df[src]
        done = sum(d.kind == "invalid_date" for d in log.items)  # alternate the two styles over the run
        bad = [_bad_date(iso, done + i) for i, iso in enumerate(rows["sold_at"])]
        extras.append(rows.with_columns(sold_at=pl.Series(bad, dtype=pl.String)))
        min_pos.append(np.zeros(k, dtype=np.int64))
        kinds += ["invalid_date"] * k
        details += [f"sold_at {b}" for b in bad]

    k = plan["negative_quantity_not_return"]
    sale_rows = np.flatnonzero((df["line_type"] == "sale").to_numpy())
    if k and len(sale_rows):
        src = sale_rows[rng.integers(0, len(sale_rows), k)]
        rows = df[src].with_columns(quantity=-pl.col("quantity"))
        extras.append(rows)
        min_pos.append(np.zeros(k, dtype=np.int64))
        kinds += ["negative_quantity_not_return"] * k
        details += [f"quantity {q} on a sale line" for q in rows["quantity"].to_list()]

    out, rows_no = insert_rows(df, pl.concat(extras), np.concatenate(min_pos), rng)
    log.add(file, rows_no, kinds, details)
    return out


def inject_receipt_defect(
    df: pl.DataFrame, count: int, file: str, rng: np.random.Generator, log: DefectLog
) -> pl.DataFrame:
    """Receipts against purchase-order lines that do not exist (a real PO number, line 99)."""
    if count == 0 or df.height == 0:
        return df
    src = rng.integers(0, df.height, count)
    extra = df[src].with_columns(
        receipt_id=pl.Series([f"GR{900000 + i}" for i in range(count)]),
        po_line=pl.lit(99, dtype=df.schema["po_line"]),
    )
    out, rows = insert_rows(df, extra, np.zeros(count, dtype=np.int64), rng)
    log.add(file, rows, ["unknown_purchase_order"] * count, [f"{p} line 99" for p in extra["po_id"].to_list()])
    return out


def inject_count_defect(
    df: pl.DataFrame, count: int, file: str, rng: np.random.Generator, log: DefectLog
) -> pl.DataFrame:
    """Cycle counts booked against a location that is not in the location master."""
    if count == 0 or df.height == 0:
        return df
    src = rng.integers(0, df.height, count)
    extra = df[src].with_columns(
        count_id=pl.Series([f"CC9{i:08d}" for i in range(count)]),
        location_id=pl.lit(UNKNOWN_LOCATION),
    )
    out, rows = insert_rows(df, extra, np.zeros(count, dtype=np.int64), rng)
    log.add(file, rows, ["unknown_location"] * count, [f"location_id {UNKNOWN_LOCATION}"] * count)
    return out


def inject_cost_defect(
    df: pl.DataFrame, cfg: DemoConfig, count: int, file: str, rng: np.random.Generator, log: DefectLog
) -> pl.DataFrame:
    """Standard-cost rows whose unit_cost is not a number. unit_cost becomes a text column (in Parquet too)."""
    df = df.with_columns(pl.col("unit_cost").cast(pl.String))
    if count == 0 or df.height == 0:
        return df
    src = rng.integers(0, df.height, count)
    # a mid-month date inside the history, distinct from the product's other valid_from dates (1st of January)
    iso = [(cfg.start + timedelta(days=int(d))).replace(day=15).isoformat() for d in rng.integers(0, cfg.days, count)]
    extra = df[src].with_columns(valid_from=pl.Series(iso), unit_cost=pl.lit("n/a"))
    existing = set(zip(df["product_id"].to_list(), df["valid_from"].to_list(), strict=True))
    keep = [i for i, key in enumerate(zip(extra["product_id"].to_list(), iso, strict=True)) if key not in existing]
    extra = extra[keep]
    if extra.height == 0:
        return df
    out, rows = insert_rows(df, extra, np.zeros(extra.height, dtype=np.int64), rng)
    log.add(file, rows, ["invalid_number"] * extra.height, ["unit_cost n/a"] * extra.height)
    return out
