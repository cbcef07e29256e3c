"""Polars frames of the landing entities, with exactly the contract's columns in the contract's order.

Dates are ISO strings (``YYYY-MM-DD``) in every format; blank values are nulls (empty in CSV).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from ml.demo_company.catalog import DC_ID, NO_DAY, Catalog
from ml.demo_company.config import DemoConfig
from ml.demo_company.pricing import PriceBook
from ml.demo_company.simulation import Chunk, SimulationResult
from ml.ingest.contract import entity

EPOCH = date(1970, 1, 1)


def columns(name: str) -> list[str]:
    return [c.name for c in entity(name).columns]


def date_str(cfg: DemoConfig, days: np.ndarray, missing: int | None = None) -> pl.Series:
    """ISO date strings for day offsets from cfg.start; days equal to ``missing`` become null (blank)."""
    days = np.asarray(days, dtype=np.int64)
    if len(days) == 0:
        return pl.Series([], dtype=pl.String)
    blank = days == missing if missing is not None else np.zeros(len(days), dtype=bool)
    safe = np.where(blank, days[~blank].min() if (~blank).any() else 0, days)
    lo, hi = int(safe.min()), int(safe.max())
    offset = (cfg.start - EPOCH).days
    lookup = pl.Series(np.arange(lo, hi + 1) + offset).cast(pl.Int32).cast(pl.Date).dt.to_string("%Y-%m-%d")
    out = lookup.gather(pl.Series(safe - lo))
    if blank.any():
        out = out.scatter(np.flatnonzero(blank), None)
    return out


def _gather(values: np.ndarray, idx: np.ndarray) -> pl.Series:
    return pl.Series(values.astype(str)).gather(pl.Series(np.asarray(idx, dtype=np.int64)))


def _null_str(n: int) -> pl.Series:
    return pl.repeat(None, n, dtype=pl.String, eager=True)


def _repeat(value: str, n: int) -> pl.Series:
    return pl.repeat(value, n, dtype=pl.String, eager=True)


def _frame(name: str, data: dict[str, pl.Series | np.ndarray | list]) -> pl.DataFrame:
    cols = columns(name)
    if list(data) != cols:
        raise AssertionError(f"{name}: columns {list(data)} differ from the contract's {cols}")
    return pl.DataFrame({k: v for k, v in data.items()})


# ---------------------------------------------------------------------- master data
def products(cfg: DemoConfig, cat: Catalog, prices: PriceBook) -> pl.DataFrame:
    current = prices.list_price.values_at(cfg.days - 1, cat.n_products, cat.price0)
    cat_names = np.array([c.name for c in cfg.categories])
    sup_ids = np.array([s.supplier_id for s in cfg.suppliers])
    return _frame(
        "products",
        {
            "product_id": cat.product_ids.astype(str),
            "product_name": cat.product_names,
            "category": cat_names[cat.category],
            "supplier_id": sup_ids[cat.supplier],
            "unit_of_measure": cat.uom,
            "product_type": _repeat("stock", cat.n_products),
            "launch_date": date_str(cfg, cat.launch),
            "discontinued_date": date_str(cfg, cat.discontinued, missing=NO_DAY),
            "list_price": current,
            # the demo does not model per-item ordering costs or holding rates: the planning settings apply
            "ordering_cost": _null_str(cat.n_products),
            "annual_holding_rate": _null_str(cat.n_products),
        },
    )


def locations(cfg: DemoConfig, cat: Catalog) -> pl.DataFrame:
    n = cat.n_stores
    return _frame(
        "locations",
        {
            "location_id": [DC_ID, *cat.store_ids.tolist()],
            "location_name": ["Central Distribution Centre", *cat.store_names.tolist()],
            "location_type": ["dc", *(["store"] * n)],
            "replenished_from": pl.Series([None, *([DC_ID] * n)], dtype=pl.String),
            "region": ["Central", *cat.store_regions.tolist()],
        },
    )


def suppliers(cfg: DemoConfig) -> pl.DataFrame:
    return _frame(
        "suppliers",
        {
            "supplier_id": [s.supplier_id for s in cfg.suppliers],
            "supplier_name": [s.name for s in cfg.suppliers],
            "country": [s.country for s in cfg.suppliers],
            "nominal_lead_time_days": [s.nominal_lead_days for s in cfg.suppliers],
            "ordering_cost": _null_str(len(cfg.suppliers)),
            "annual_holding_rate": _null_str(len(cfg.suppliers)),
        },
    )


def product_suppliers(cfg: DemoConfig, cat: Catalog) -> pl.DataFrame:
    sup_ids = np.array([s.supplier_id for s in cfg.suppliers])
    return _frame(
        "product_suppliers",
        {
            "product_id": cat.product_ids.astype(str),
            "supplier_id": sup_ids[cat.supplier],
            "min_order_qty": cat.min_order_qty,
            "pack_size": cat.pack_size,
            "nominal_lead_time_days": cat.nominal_lead,
            "is_primary": np.ones(cat.n_products, dtype=bool),
        },
    )


# ---------------------------------------------------------------------- prices, promotions, costs
def prices_frame(cfg: DemoConfig, cat: Catalog, prices: PriceBook) -> pl.DataFrame:
    s = prices.list_price
    order = np.lexsort((s.day, s.index))
    return _frame(
        "prices",
        {
            "product_id": _gather(cat.product_ids, s.index[order]),
            "location_id": _null_str(len(order)),
            "valid_from": date_str(cfg, s.day[order]),
            "list_price": s.value[order],
        },
    )


def promotions(cfg: DemoConfig, cat: Catalog, prices: PriceBook) -> pl.DataFrame:
    p = prices.promotions
    n = len(p)
    store_ids = np.concatenate([cat.store_ids.astype(str), np.array([""])])
    loc = _gather(store_ids, np.where(p.store < 0, len(store_ids) - 1, p.store))
    return _frame(
        "promotions",
        {
            "promotion_id": [f"PR{i + 1:05d}" for i in range(n)],
            "product_id": _gather(cat.product_ids, p.product),
            "location_id": loc.replace("", None),
            "start_date": date_str(cfg, p.start),
            "end_date": date_str(cfg, p.end),
            "discount_pct": np.round(p.discount, 2),
        },
    )


def standard_costs(cfg: DemoConfig, cat: Catalog, prices: PriceBook) -> pl.DataFrame:
    s = prices.cost
    keep = s.day < cfg.days
    order = np.lexsort((s.day[keep], s.index[keep]))
    return _frame(
        "standard_costs",
        {
            "product_id": _gather(cat.product_ids, s.index[keep][order]),
            "valid_from": date_str(cfg, s.day[keep][order]),
            "unit_cost": s.value[keep][order],
        },
    )


# ---------------------------------------------------------------------- per-quarter movements
def transaction_ids(
    cfg: DemoConfig, cat: Catalog, day: np.ndarray, store: np.ndarray, is_return: np.ndarray
) -> pl.Series:
    """``S01-20230102`` for a store's daily sales summary, ``S01-20230102-R`` for its returns.

    Built once per distinct (day, store, line type) and gathered, which is much cheaper than per-row strings.
    """
    if len(day) == 0:
        return pl.Series([], dtype=pl.String)
    first = int(day.min())
    n_days = int(day.max()) - first + 1
    n_st = cat.n_stores
    grid_day = np.repeat(np.arange(first, first + n_days), n_st * 2)
    grid_store = np.tile(np.repeat(np.arange(n_st), 2), n_days)
    grid_ret = np.tile(np.array([False, True]), n_days * n_st)
    compact = date_str(cfg, grid_day).str.replace_all("-", "", literal=True)
    lookup = (
        pl.DataFrame({"store": _gather(cat.store_ids, grid_store), "day": compact, "ret": grid_ret})
        .select(
            pl.concat_str(
                [
                    pl.col("store"),
                    pl.lit("-"),
                    pl.col("day"),
                    pl.when(pl.col("ret")).then(pl.lit("-R")).otherwise(pl.lit("")),
                ]
            )
        )
        .to_series()
    )
    key = ((day - first) * n_st + store) * 2 + is_return
    return lookup.gather(pl.Series(key.astype(np.int64)))


def positive_return_stores(n_stores: int) -> np.ndarray:
    """Stores whose till exports returns with a positive quantity (S02, S06, ...); the rest export negative."""
    return (np.arange(n_stores) % 4) == 1


def sales_and_cogs(
    cfg: DemoConfig, cat: Catalog, chunk: Chunk, first_posting: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Daily POS summary lines (sales, then returns per store and day) and one COGS posting per line."""
    n_p = cat.n_products
    day = np.concatenate([chunk.sale_day, chunk.ret_day])
    series = np.concatenate([chunk.sale_series, chunk.ret_series])
    is_ret = np.concatenate([np.zeros(len(chunk.sale_day), bool), np.ones(len(chunk.ret_day), bool)])
    units = np.concatenate([chunk.sale_qty, chunk.ret_qty])
    price = np.concatenate([chunk.sale_price, chunk.ret_price])
    cost = np.concatenate([chunk.sale_cost, chunk.ret_cost])
    store, product = np.divmod(series, n_p)
    # sales arrive sorted by day and series (store-major), returns likewise: a stable sort on (day, store,
    # line type) keeps products in order within each group
    order = np.argsort((day * cat.n_stores + store) * 2 + is_ret, kind="stable")
    day, store, product, is_ret, units, price, cost = (
        a[order] for a in (day, store, product, is_ret, units, price, cost)
    )
    positive = positive_return_stores(cat.n_stores)[store]
    qty = np.where(is_ret & ~positive, -units, units)
    ledger_qty = np.where(is_ret, -units, units)
    iso = date_str(cfg, day)
    tx = transaction_ids(cfg, cat, day, store, is_ret)
    product_ids = _gather(cat.product_ids, product)
    location_ids = _gather(cat.store_ids, store)
    n = len(day)
    sales = _frame(
        "sales_lines",
        {
            "transaction_id": tx,
            "line_number": product + 1,
            "sold_at": iso,
            "product_id": product_ids,
            "location_id": location_ids,
            "quantity": qty,
            "unit_price": price,
            "line_type": pl.Series(["sale", "return"]).gather(pl.Series(is_ret.astype(np.int64))),
            "customer_id": _null_str(n),
        },
    )
    posting = pl.Series(np.arange(first_posting, first_posting + n, dtype=np.int64) + 1)
    cogs = _frame(
        "cogs_ledger",
        {
            "posting_id": ("CG" + posting.cast(pl.String).str.zfill(10)),
            "posting_date": iso,
            "product_id": product_ids,
            "location_id": location_ids,
            "quantity": ledger_qty,
            "amount": np.round(ledger_qty * cost, 2),
            "document_ref": tx,
        },
    )
    return sales, cogs


def transfers(cfg: DemoConfig, cat: Catalog, chunk: Chunk) -> pl.DataFrame:
    store, product = np.divmod(chunk.tr_series, cat.n_products)
    ordered = date_str(cfg, chunk.tr_ordered)
    tid = (
        pl.DataFrame({"store": _gather(cat.store_ids, store), "iso": ordered})
        .select(pl.concat_str([pl.lit("TR-"), pl.col("store"), pl.lit("-"), pl.col("iso").str.replace_all("-", "")]))
        .to_series()
    )
    return _frame(
        "transfers",
        {
            "transfer_id": tid,
            "product_id": _gather(cat.product_ids, product),
            "from_location_id": _repeat(DC_ID, len(store)),
            "to_location_id": _gather(cat.store_ids, store),
            "ordered_date": ordered,
            "shipped_date": date_str(cfg, chunk.tr_shipped),
            "received_date": date_str(cfg, chunk.tr_received, missing=-1),
            "quantity": chunk.tr_qty,
        },
    )


# ---------------------------------------------------------------------- procurement and inventory
def purchase_orders(
    cfg: DemoConfig, cat: Catalog, res: SimulationResult
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """PO lines grouped into one purchase order per supplier and order day; returns (frame, po number, po line)
    per simulated line (indexed like res.po_*)."""
    supplier = cat.supplier[res.po_product]
    order = np.lexsort((res.po_product, supplier, res.po_day))
    day_s, sup_s = res.po_day[order], supplier[order]
    new_po = np.ones(len(order), dtype=bool)
    new_po[1:] = (day_s[1:] != day_s[:-1]) | (sup_s[1:] != sup_s[:-1])
    po_no = np.cumsum(new_po)
    start_of = np.flatnonzero(new_po)
    po_line = np.arange(len(order)) - start_of[po_no - 1] + 1
    po_no_by_line = np.empty(len(order), dtype=np.int64)
    po_line_by_line = np.empty(len(order), dtype=np.int64)
    po_no_by_line[order] = po_no
    po_line_by_line[order] = po_line
    sup_ids = np.array([s.supplier_id for s in cfg.suppliers])
    frame = _frame(
        "purchase_order_lines",
        {
            "po_id": [f"PO{n + 100000}" for n in po_no],
            "po_line": po_line,
            "supplier_id": sup_ids[sup_s],
            "product_id": _gather(cat.product_ids, res.po_product[order]),
            "location_id": _repeat(DC_ID, len(order)),
            "order_date": date_str(cfg, day_s),
            "quantity_ordered": res.po_qty[order],
            "unit_cost": res.po_unit_cost[order],
            "promised_date": date_str(cfg, res.po_promised[order]),
            "status": res.po_status[order],
        },
    )
    return frame, po_no_by_line, po_line_by_line


def receipts(cfg: DemoConfig, res: SimulationResult, po_no: np.ndarray, po_line: np.ndarray) -> pl.DataFrame:
    """One goods-receipt document per purchase order and day, one row per line received."""
    no, line = po_no[res.rc_line], po_line[res.rc_line]
    order = np.lexsort((line, no, res.rc_day))
    no, line, day, qty = no[order], line[order], res.rc_day[order], res.rc_qty[order]
    new_doc = np.ones(len(order), dtype=bool)
    new_doc[1:] = (day[1:] != day[:-1]) | (no[1:] != no[:-1])
    doc = np.cumsum(new_doc)
    return _frame(
        "receipts",
        {
            "receipt_id": [f"GR{d + 500000}" for d in doc],
            "po_id": [f"PO{n + 100000}" for n in no],
            "po_line": line,
            "received_date": date_str(cfg, day),
            "quantity_received": qty,
        },
    )


def cycle_counts(cfg: DemoConfig, cat: Catalog, res: SimulationResult) -> pl.DataFrame:
    order = np.lexsort((res.cc_product, res.cc_loc, res.cc_day))
    n = len(order)
    return _frame(
        "cycle_counts",
        {
            "count_id": [f"CC{i + 1:08d}" for i in range(n)],
            "count_date": date_str(cfg, res.cc_day[order]),
            "product_id": _gather(cat.product_ids, res.cc_product[order]),
            "location_id": _gather(cat.location_ids, res.cc_loc[order]),
            "book_qty": res.cc_book[order],
            "counted_qty": res.cc_counted[order],
        },
    )


def stock_snapshots(cfg: DemoConfig, cat: Catalog, res: SimulationResult) -> pl.DataFrame:
    order = np.lexsort((res.sn_product, res.sn_loc, res.sn_day))
    return _frame(
        "stock_snapshots",
        {
            "snapshot_date": date_str(cfg, res.sn_day[order]),
            "product_id": _gather(cat.product_ids, res.sn_product[order]),
            "location_id": _gather(cat.location_ids, res.sn_loc[order]),
            "on_hand_qty": res.sn_qty[order],
        },
    )
