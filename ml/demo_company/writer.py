"""Writing the landing files (CSV or Parquet, large entities in quarterly parts) and the hidden truth folder."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ml.demo_company.config import FileFormat
from ml.demo_company.simulation import Chunk
from ml.ingest.contract import ENTITIES, entity

PART_SUFFIX = r"_\d{4}q[1-4]"
TRUTH_FILES: tuple[str, ...] = (
    "true_demand.parquet",
    "lead_times.parquet",
    "product_params.parquet",
    "defects.csv",
    "generator_config.json",
    "README.md",
)
TRUTH_README = (
    "# Demo company ground truth\n\n"
    "Hidden ground truth of the stockturn demo company (true demand, lost sales, physical stock, lead-time\n"
    "distributions, injected defects, generator parameters). It is for evaluation only: nothing in stockturn's\n"
    "pipeline may read it, and it must never be placed inside the landing folder.\n"
)


def _entity_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(name)}(?:{PART_SUFFIX})?\.(?:csv|parquet)$", re.IGNORECASE)


class LandingWriter:
    """Writes contract entities under the landing root and remembers the row count of every file."""

    def __init__(self, root: Path, fmt: FileFormat) -> None:
        self.root = Path(root)
        self.fmt = fmt
        self.rows: dict[str, int] = {}

    def clean(self) -> list[Path]:
        """Remove files a previous run could have written (``<entity>.csv|parquet`` and quarterly parts)."""
        removed: list[Path] = []
        for e in ENTITIES:
            folder = self.root / e.system
            if not folder.is_dir():
                continue
            pattern = _entity_pattern(e.name)
            for f in sorted(folder.iterdir()):
                if f.is_file() and pattern.match(f.name):
                    f.unlink()
                    removed.append(f)
        return removed

    def write(self, name: str, df: pl.DataFrame, part: str | None = None) -> str:
        e = entity(name)
        expected = [c.name for c in e.columns]
        if df.columns != expected:
            raise AssertionError(f"{name}: columns {df.columns} differ from the contract's {expected}")
        rel = f"{e.system}/{e.name}{'_' + part if part else ''}.{self.fmt}"
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.fmt == "csv":
            df.write_csv(path)
        else:
            df.write_parquet(path, compression="zstd", statistics=True)
        self.rows[rel] = df.height
        return rel


class TruthWriter:
    """The hidden ground truth: true demand per store x product x day (streamed in row groups) and small tables."""

    SCHEMA = pa.schema(
        [
            ("date", pa.date32()),
            ("product_id", pa.string()),
            ("location_id", pa.string()),
            ("demand", pa.int32()),
            ("sold", pa.int32()),
            ("lost_sales", pa.int32()),
            ("physical_on_hand_close", pa.int32()),
            ("book_on_hand_close", pa.int32()),
            ("expected_demand", pa.float32()),
        ]
    )

    def __init__(
        self, root: Path, product_ids: np.ndarray, store_ids: np.ndarray, prod_of: np.ndarray, store_of: np.ndarray,
        epoch_offset: int,
    ) -> None:  # fmt: skip
        self.root = Path(root)
        self.products = pa.array(product_ids.astype(str).tolist(), type=pa.string())
        self.stores = pa.array(store_ids.astype(str).tolist(), type=pa.string())
        self.prod_of = prod_of.astype(np.int32)
        self.store_of = store_of.astype(np.int32)
        self.epoch_offset = epoch_offset
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def clean(self) -> None:
        if not self.root.is_dir():
            return
        for name in TRUTH_FILES:
            f = self.root / name
            if f.is_file():
                f.unlink()

    def write_chunk(self, chunk: Chunk) -> None:
        n_days, ns = chunk.demand.shape
        if self._writer is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.root / "true_demand.parquet", self.SCHEMA, compression="zstd")
        days = np.repeat(np.arange(chunk.first_day, chunk.last_day + 1, dtype=np.int32) + self.epoch_offset, ns)
        demand = chunk.demand.ravel()
        sold = chunk.sold.ravel()
        table = pa.Table.from_arrays(
            [
                pa.array(days, type=pa.int32()).cast(pa.date32()),
                self.products.take(pa.array(np.tile(self.prod_of, n_days))),
                self.stores.take(pa.array(np.tile(self.store_of, n_days))),
                pa.array(demand),
                pa.array(sold),
                pa.array(demand - sold),
                pa.array(chunk.physical.ravel()),
                pa.array(chunk.book.ravel()),
                pa.array(chunk.expected.ravel()),
            ],
            schema=self.SCHEMA,
        )
        self._writer.write_table(table, row_group_size=1 << 20)
        self.rows += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def write_tables(
        self, lead_times: pl.DataFrame, product_params: pl.DataFrame, defects: pl.DataFrame, config: dict[str, Any]
    ) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        lead_times.write_parquet(self.root / "lead_times.parquet")
        product_params.write_parquet(self.root / "product_params.parquet")
        defects.write_csv(self.root / "defects.csv")
        (self.root / "generator_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        (self.root / "README.md").write_text(TRUTH_README)
