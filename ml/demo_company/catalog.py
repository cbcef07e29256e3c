"""Master data of the demo company: suppliers, categories, products and locations.

Days are integer offsets from the first history day (day 0 = ``config.start``); :data:`NO_DAY` marks "never"
(a product that is not discontinued).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.demo_company.config import REGIONS, STORE_NAMES, DemoConfig

NO_DAY = 1_000_000_000
DC_ID = "DC01"


@dataclass(frozen=True)
class Catalog:
    # products (length P)
    product_ids: np.ndarray  # str
    product_names: np.ndarray  # str
    category: np.ndarray  # int, index into config.categories
    supplier: np.ndarray  # int, index into config.suppliers
    uom: np.ndarray  # str
    intermittent: np.ndarray  # bool
    base_demand: np.ndarray  # float, units/day at an average store at the plateau of the life cycle
    launch: np.ndarray  # int day
    discontinued: np.ndarray  # int day or NO_DAY
    first_valid: np.ndarray  # int day of the first price and cost record (before any stock movement)
    cost0: np.ndarray  # float, standard cost at first_valid
    price0: np.ndarray  # float, list price at first_valid
    pack_size: np.ndarray  # int
    min_order_qty: np.ndarray  # int
    nominal_lead: np.ndarray  # int, quoted lead time for the product (days)
    store_case: np.ndarray  # int, quantity stores order in multiples of
    # stores (length S); DC01 is the single distribution centre
    store_ids: np.ndarray  # str
    store_names: np.ndarray  # str
    store_regions: np.ndarray  # str
    store_size: np.ndarray  # float demand multiplier
    store_review_period: np.ndarray  # int days
    store_review_phase: np.ndarray  # int
    store_transit: np.ndarray  # int usual DC -> store transit days (0 or 1; +1 sometimes)

    @property
    def n_products(self) -> int:
        return len(self.product_ids)

    @property
    def n_stores(self) -> int:
        return len(self.store_ids)

    @property
    def location_ids(self) -> np.ndarray:
        """DC01 first, then the stores (location index 0 = DC, 1.. = stores)."""
        return np.concatenate([np.array([DC_ID]), self.store_ids])


def allocate_categories(cfg: DemoConfig) -> np.ndarray:
    """Number of products per category: proportional to the weights, at least two each, summing to skus."""
    weights = np.array([c.weight for c in cfg.categories], dtype=np.float64)
    weights = weights / weights.sum()
    spare = cfg.skus - 2 * len(weights)
    raw = weights * spare
    counts = np.floor(raw).astype(np.int64)
    remainder = spare - int(counts.sum())
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:remainder]] += 1
    return counts + 2


def _round_price(x: np.ndarray) -> np.ndarray:
    """Retail price points ending in 9 (0.49, 2.99, 14.49 ...)."""
    return np.maximum(np.round(np.round(x + 0.01, 1) - 0.01, 2), 0.49)


def build_catalog(cfg: DemoConfig, rng: np.random.Generator) -> Catalog:
    cats = cfg.categories
    n_p = cfg.skus
    counts = allocate_categories(cfg)
    category = np.repeat(np.arange(len(cats)), counts)
    supplier_index = {s.supplier_id: i for i, s in enumerate(cfg.suppliers)}
    cat_supplier = np.array([supplier_index[c.supplier_id] for c in cats])
    supplier = cat_supplier[category]

    # ---- names: brand + item + variant, cycling through the category's word lists
    names = np.empty(n_p, dtype=object)
    uom = np.empty(n_p, dtype=object)
    for ci, cat in enumerate(cats):
        idx = np.flatnonzero(category == ci)
        brand = rng.integers(0, len(cat.brands), len(idx))
        item = rng.permutation(np.arange(len(idx)) % len(cat.items))
        variant = rng.integers(0, len(cat.variants), len(idx))
        names[idx] = [
            f"{cat.brands[b]} {cat.items[i]} {cat.variants[v]}" for b, i, v in zip(brand, item, variant, strict=True)
        ]
        uom[idx] = cat.uom
    product_ids = np.array([f"P{i + 1:05d}" for i in range(n_p)])

    # ---- intermittent slow movers: a fixed share per category (all of Spare Parts)
    intermittent = np.zeros(n_p, dtype=bool)
    for ci, cat in enumerate(cats):
        idx = np.flatnonzero(category == ci)
        k = int(round(cat.intermittent_share * len(idx)))
        intermittent[rng.choice(idx, size=k, replace=False)] = True

    # ---- demand level: heavy-tailed lognormal (few fast movers, many slow)
    fast = np.minimum(rng.lognormal(np.log(cfg.fast_base_median), cfg.fast_base_sigma, n_p), cfg.fast_base_max)
    slow = np.clip(rng.lognormal(np.log(cfg.slow_base_median), cfg.slow_base_sigma, n_p), 0.01, cfg.slow_base_max)
    base_demand = np.where(intermittent, slow, np.maximum(fast, 0.3))

    # ---- life cycle
    u = rng.random(n_p)
    during = u < cfg.share_launch_during
    future = (u >= cfg.share_launch_during) & (u < cfg.share_launch_during + cfg.share_launch_future)
    launch = -rng.integers(1, 6 * 365, n_p)
    lo, hi = min(30, cfg.days // 4), max(min(30, cfg.days // 4) + 1, cfg.days - 60)
    launch = np.where(during, rng.integers(lo, hi, n_p), launch)
    launch = np.where(future, cfg.days + rng.integers(1, max(2, cfg.plan_horizon_days), n_p), launch)
    discontinued = np.full(n_p, NO_DAY, dtype=np.int64)
    n_disc = int(round(cfg.share_discontinued * n_p))
    d_lo, d_hi = min(90, cfg.days // 3), max(min(90, cfg.days // 3) + 1, cfg.days - 30)
    candidates = np.flatnonzero(launch < d_lo - 60)
    chosen = rng.choice(candidates, size=min(n_disc, len(candidates)), replace=False)
    discontinued[chosen] = rng.integers(d_lo, d_hi, len(chosen))
    # the first price/cost record: some time before the history, or ahead of a new product's first purchase
    first_valid = np.where(launch < 0, np.maximum(launch, -rng.integers(1, 365, n_p)), launch - 120)

    # ---- cost and price
    cost_median = np.array([c.cost_median for c in cats])[category]
    cost_sigma = np.array([c.cost_sigma for c in cats])[category]
    cost0 = rng.lognormal(np.log(cost_median), cost_sigma)
    expensive = rng.random(n_p) < cfg.expensive_share
    cost0 = np.where(expensive, cost0 * rng.uniform(10, 40, n_p), cost0)
    cost0 = np.maximum(np.round(cost0, 2), 0.05)
    markup = rng.uniform(*cfg.markup, n_p)
    price0 = _round_price(cost0 * markup)
    price0 = np.maximum(price0, _round_price(cost0 * cfg.markup[0]))

    # ---- stores
    n_s = cfg.stores
    store_ids = np.array([f"S{i + 1:0{max(2, len(str(n_s)))}d}" for i in range(n_s)])
    store_names = np.array(
        [f"Store {STORE_NAMES[i]}" if i < len(STORE_NAMES) else f"Store {i + 1:02d}" for i in range(n_s)]
    )
    store_regions = np.array([REGIONS[i % len(REGIONS)] for i in range(n_s)])
    size = rng.lognormal(0.0, cfg.store_size_sigma, n_s)
    size[0] = max(size.max() * 1.2, 1.3) if n_s > 1 else 1.0  # S01 is the flagship
    store_size = np.round(size / size.mean(), 2)
    store_review_period = rng.integers(cfg.store_review_days[0], cfg.store_review_days[1] + 1, n_s)
    store_review_period[0] = 1  # the flagship is replenished daily
    store_review_phase = rng.integers(0, 3, n_s)
    store_transit = rng.integers(0, 2, n_s)

    # ---- purchasing terms
    dc_week = base_demand * store_size.sum() * 7.0
    packs = np.array([1, 6, 12, 24, 48])
    pack_idx = np.searchsorted(packs, dc_week / 2.0, side="right") - 1
    pack_idx = np.clip(pack_idx + rng.integers(-1, 1, n_p), 0, len(packs) - 1)
    pack_size = packs[pack_idx]
    pack_size = np.where(intermittent & (rng.random(n_p) < 0.7), 1, pack_size)
    moq_mult = rng.choice(np.array([1, 1, 1, 2, 4, 5, 10]), n_p)
    min_order_qty = pack_size * moq_mult
    nominal = np.array([s.nominal_lead_days for s in cfg.suppliers])[supplier]
    nominal_lead = np.maximum(nominal + rng.choice(np.array([0, 0, 0, -1, 1, 2]), n_p), 1)
    store_day = base_demand * store_size.mean()
    cases = np.array([1, 2, 4, 6, 12])
    case_idx = np.clip(np.searchsorted(cases, store_day * 2.0, side="right") - 1, 0, len(cases) - 1)
    store_case = np.minimum(cases[case_idx], np.maximum(pack_size, 1))

    return Catalog(
        product_ids=product_ids,
        product_names=names.astype(str),
        category=category,
        supplier=supplier,
        uom=uom.astype(str),
        intermittent=intermittent,
        base_demand=base_demand,
        launch=launch.astype(np.int64),
        discontinued=discontinued,
        first_valid=first_valid.astype(np.int64),
        cost0=cost0,
        price0=price0,
        pack_size=pack_size.astype(np.int64),
        min_order_qty=min_order_qty.astype(np.int64),
        nominal_lead=nominal_lead.astype(np.int64),
        store_case=store_case.astype(np.int64),
        store_ids=store_ids,
        store_names=store_names,
        store_regions=store_regions,
        store_size=store_size,
        store_review_period=store_review_period.astype(np.int64),
        store_review_phase=store_review_phase.astype(np.int64),
        store_transit=store_transit.astype(np.int64),
    )
