"""The deterministic demo company: a retailer's raw ERP/POS exports, with the difficulties real data has.

``generate(out_dir)`` writes every landing entity of :mod:`ml.ingest.contract` under ``out_dir`` (folders
``master/ sales/ procurement/ logistics/ finance/ inventory/``) and the hidden ground truth to a sibling folder
(``<out_dir>_truth`` by default, never inside the landing folder). It is the built-in demo data and the
benchmark workload.

The company: one distribution centre DC01 replenishing ``stores`` stores S01.. by transfer; eight categories
with their own weekly and yearly patterns (Garden in summer, Toys before Christmas, intermittent Spare Parts),
Garden and Beverages responding to the regional temperature, several categories to holidays and local events
(``ml.demo_company.signals``: ``calendar/events`` and ``external/signals`` with a weather forecast and a pure-noise
control signal),
each bought from one supplier with a stochastic lead time (domestic short and reliable, overseas long and
variable; the quoted lead time is often optimistic). True demand is negative binomial around a drifting,
trending, price- and promotion-sensitive level. A simulated replenishment process (stores: periodic review,
order-up-to from a trailing mean of their own censored sales; DC: continuous (s, Q) review with MOQs and pack
sizes, partial, short and late receipts) produces the stock-outs, so recorded sales are censored demand.
Shrinkage makes the book drift from the shelf (ghost stock blocks reordering) until a cycle count resets it.

File conventions (see also the contract):
- CSV: UTF-8, comma separated, header row, ``.`` decimals, no thousands separators, booleans ``true``/``false``,
  blank = empty field.
- Dates are ISO ``YYYY-MM-DD`` strings in CSV **and in Parquet**: Parquet date columns are written as text so
  that a malformed date (one of the injected defects) can exist in both formats. For the same reason
  ``finance/standard_costs.unit_cost`` is a text column (one injected row reads ``n/a``). Other Parquet columns
  are typed (int64 quantities, float64 money, boolean flags).
- ``sales/sales_lines``, ``finance/cogs_ledger`` and ``logistics/transfers`` are written in quarterly parts
  (``sales/sales_lines_2023q1.csv`` ...), so memory stays bounded at any size; the other entities are one file.
- Sales lines are a daily POS summary per store and product (transaction ``S01-20230102``, line_number = a
  stable per-product number); returns are ``line_type='return'`` lines on transaction ``S01-20230102-R``,
  exported with a negative quantity except by stores S02, S06, ... whose till exports them positive.
- Stock snapshots hold the BOOK quantity at close of business on the day before the first sales day and on
  every month end, for every product that is launched (or holds stock anywhere) at every location incl. DC01.
  A count posts at close of business on its count_date, so opening book + receipts + transfers in - transfers
  out - sales + returns + (counted - book) reproduces every snapshot exactly (after quarantining the defects).
- Defects (duplicates, unknown products, malformed dates, negative sales, a receipt for a non-existent PO line,
  a count at an unknown location, a non-numeric cost) are added rows, listed in the truth folder's
  ``defects.csv`` (file, 1-based data row, kind).

Same seed and arguments give byte-identical files. Re-running into the same folder removes the files an earlier
run wrote (entity files and their quarterly parts, csv or parquet) and nothing else.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from ml.demo_company import defects as defect_mod
from ml.demo_company import tables
from ml.demo_company.catalog import Catalog, build_catalog
from ml.demo_company.config import DemoConfig, FileFormat
from ml.demo_company.demand import DemandModel
from ml.demo_company.pricing import build_pricebook
from ml.demo_company.signals import build_signals
from ml.demo_company.simulation import Chunk, quarter_bounds, simulate
from ml.demo_company.writer import LandingWriter, TruthWriter
from ml.settings import truth_dir_for

__all__ = ["DemoConfig", "GenerationSummary", "generate"]


@dataclass(frozen=True)
class GenerationSummary:
    out_dir: Path
    truth_dir: Path
    fmt: str
    first_day: date
    last_day: date
    products: int
    locations: int
    series: int  # store x product series
    rows: dict[str, int]  # data rows per written file (path relative to out_dir)
    defects: dict[str, int]  # kind -> rows injected
    elapsed_seconds: float
    truth_rows: int = 0
    stats: dict[str, float] = field(default_factory=dict)  # simulation totals (units demanded, sold, ...)

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def entity_rows(self) -> dict[str, tuple[int, int]]:
        """entity path (e.g. 'sales/sales_lines') -> (files, rows)."""
        out: dict[str, tuple[int, int]] = {}
        for rel, n in self.rows.items():
            folder, name = rel.split("/", 1)
            stem = name.rsplit(".", 1)[0]
            base = stem.rsplit("_", 1)[0] if stem[-2:-1] == "q" and stem[-6:-2].isdigit() else stem
            key = f"{folder}/{base}"
            files, rows = out.get(key, (0, 0))
            out[key] = (files + 1, rows + n)
        return out

    def format(self) -> str:
        lines = [
            f"Demo company written to {self.out_dir} ({self.fmt})",
            f"  history   {self.first_day.isoformat()} .. {self.last_day.isoformat()} ({self.days:,} days)",
            f"  master    {self.products:,} products, {self.locations:,} locations, "
            f"{self.series:,} store-product series",
            f"  rows      {self.total_rows:,} in {len(self.rows):,} files",
        ]
        entities = self.entity_rows()
        width = max(len(k) for k in entities)
        for key, (files, rows) in entities.items():
            parts = f"  ({files} parts)" if files > 1 else ""
            lines.append(f"    {key:<{width}}  {rows:>12,}{parts}")
        defects = ", ".join(f"{k} {v:,}" for k, v in self.defects.items()) or "none"
        lines.append(f"  defects   {sum(self.defects.values()):,} rows injected: {defects}")
        lines.append(f"  truth     {self.truth_dir} ({self.truth_rows:,} store-product-days)")
        lines.append(f"  elapsed   {self.elapsed_seconds:,.1f} s")
        return "\n".join(lines)


def _check_dirs(out_dir: Path, truth_dir: Path) -> None:
    out_r, truth_r = out_dir.resolve(), truth_dir.resolve()
    if truth_r == out_r or out_r in truth_r.parents:
        raise ValueError(f"the truth folder {truth_dir} must not be inside the landing folder {out_dir}")


def _truth_tables(cfg: DemoConfig, cat: Catalog, demand: DemandModel) -> tuple[pl.DataFrame, pl.DataFrame]:
    sup = cfg.suppliers
    lead_times = pl.DataFrame(
        {
            "supplier_id": [s.supplier_id for s in sup],
            "supplier_name": [s.name for s in sup],
            "distribution": ["shifted_gamma, rounded to whole days, at least 1"] * len(sup),
            "shift_days": [s.shift_days for s in sup],
            "gamma_shape": [s.gamma_shape for s in sup],
            "gamma_scale": [s.gamma_scale for s in sup],
            "mean_days": [s.mean_lead_days for s in sup],
            "cv": [s.lead_cv for s in sup],
            "sd_days": [s.lead_cv * s.mean_lead_days for s in sup],
            "nominal_lead_time_days": [s.nominal_lead_days for s in sup],
            "max_lead_days": [cfg.max_lead_days] * len(sup),
        }
    )
    cat_names = np.array([c.name for c in cfg.categories])
    params = pl.DataFrame(
        {
            "product_id": cat.product_ids.astype(str),
            "category": cat_names[cat.category],
            "intermittent": cat.intermittent,
            "base_demand_per_store_day": cat.base_demand,
            "elasticity": demand.elasticity,
            "promo_bump": demand.bump,
            "trend_per_year": demand.trend,
            "dispersion_k": demand.k[: cat.n_products],
            "launch_ramp_days": demand.ramp,
            "unit_cost_initial": cat.cost0,
            "list_price_initial": cat.price0,
        }
    )
    return lead_times, params


def generate(
    out_dir: Path,
    *,
    truth_dir: Path | None = None,
    skus: int = 150,
    stores: int = 5,
    days: int = 1095,
    seed: int = 42,
    fmt: FileFormat = "csv",
    start: date = date(2023, 1, 2),
    progress: bool = True,
) -> GenerationSummary:
    """Generate the demo company's landing files under ``out_dir`` and its ground truth under ``truth_dir``."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    truth_dir = Path(truth_dir) if truth_dir is not None else truth_dir_for(out_dir)
    _check_dirs(out_dir, truth_dir)
    cfg = DemoConfig(skus=skus, stores=stores, days=days, seed=seed, fmt=fmt, start=start)
    rngs = cfg.rngs()
    cat = build_catalog(cfg, rngs["catalog"])
    prices = build_pricebook(cfg, cat, rngs)
    demo_signals = build_signals(cfg, cat, rngs["signals"])
    demand = DemandModel(cfg, cat, rngs["demand_params"], demo_signals.multiplier)

    landing = LandingWriter(out_dir, cfg.fmt)
    landing.clean()
    epoch_offset = (cfg.start - tables.EPOCH).days
    truth = TruthWriter(truth_dir, cat.product_ids, cat.store_ids, demand.prod_of, demand.store_of, epoch_offset)
    truth.clean()

    log = defect_mod.DefectLog()
    r_def = rngs["defects"]
    quarters = quarter_bounds(cfg)
    plan = defect_mod.plan_sales_defects(cfg, len(quarters), r_def)
    part_index = {label: i for i, (label, _, _) in enumerate(quarters)}
    postings = 0

    def write_chunk(chunk: Chunk) -> None:
        nonlocal postings
        sales, cogs = tables.sales_and_cogs(cfg, cat, chunk, postings)
        postings += cogs.height
        rel = f"sales/sales_lines_{chunk.label}.{cfg.fmt}"
        sales = defect_mod.inject_sales_defects(sales, plan[part_index[chunk.label]], rel, r_def, log)
        landing.write("sales_lines", sales, part=chunk.label)
        del sales
        landing.write("cogs_ledger", cogs, part=chunk.label)
        del cogs
        landing.write("transfers", tables.transfers(cfg, cat, chunk), part=chunk.label)
        truth.write_chunk(chunk)

    # Quarters are written by one background thread while the next quarter is simulated (polars and pyarrow
    # release the GIL); at most one finished quarter waits, so memory stays bounded. One worker keeps the
    # order of the writes, and so the output, deterministic.
    pending: list[Future[None]] = []

    def on_chunk(chunk: Chunk) -> None:
        while pending:
            pending.pop().result()
        pending.append(executor.submit(write_chunk, chunk))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-writer") as executor:
        try:
            result = simulate(cfg, cat, prices, demand, rngs, on_chunk, progress=progress)
            while pending:
                pending.pop().result()
        finally:
            for f in pending:
                f.cancel()
            executor.shutdown(wait=True)
            truth.close()

    landing.write("products", tables.products(cfg, cat, prices))
    landing.write("locations", tables.locations(cfg, cat))
    landing.write("suppliers", tables.suppliers(cfg))
    landing.write("product_suppliers", tables.product_suppliers(cfg, cat))
    landing.write("prices", tables.prices_frame(cfg, cat, prices))
    landing.write("promotions", tables.promotions(cfg, cat, prices))
    landing.write("events", demo_signals.events)
    landing.write("signals", demo_signals.signals)

    ext = cfg.fmt
    costs = tables.standard_costs(cfg, cat, prices)
    costs = defect_mod.inject_cost_defect(
        costs, cfg, cfg.defect_invalid_costs, f"finance/standard_costs.{ext}", r_def, log
    )
    landing.write("standard_costs", costs)
    po_frame, po_no, po_line = tables.purchase_orders(cfg, cat, result)
    landing.write("purchase_order_lines", po_frame)
    receipts = tables.receipts(cfg, result, po_no, po_line)
    receipts = defect_mod.inject_receipt_defect(
        receipts, cfg.defect_unknown_po_receipts, f"procurement/receipts.{ext}", r_def, log
    )
    landing.write("receipts", receipts)
    counts = tables.cycle_counts(cfg, cat, result)
    counts = defect_mod.inject_count_defect(
        counts, cfg.defect_unknown_location_counts, f"inventory/cycle_counts.{ext}", r_def, log
    )
    landing.write("cycle_counts", counts)
    landing.write("stock_snapshots", tables.stock_snapshots(cfg, cat, result))

    lead_times, params = _truth_tables(cfg, cat, demand)
    truth.write_tables(lead_times, params, log.frame(), cfg.to_dict())
    demo_signals.truth.write_parquet(truth_dir / "signals_truth.parquet")
    demo_signals.event_days.write_parquet(truth_dir / "event_days.parquet")

    return GenerationSummary(
        out_dir=out_dir,
        truth_dir=truth_dir,
        fmt=cfg.fmt,
        first_day=cfg.start,
        last_day=cfg.end,
        products=cat.n_products,
        locations=cat.n_stores + 1,
        series=cfg.n_series,
        rows=dict(sorted(landing.rows.items())),
        defects=log.counts(),
        elapsed_seconds=time.perf_counter() - t0,
        truth_rows=truth.rows,
        stats=dict(result.stats),
    )
