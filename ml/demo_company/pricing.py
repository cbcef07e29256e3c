"""List-price history, promotions (past and planned) and standard-cost history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from ml.demo_company.catalog import NO_DAY, Catalog, _round_price
from ml.demo_company.config import DemoConfig
from ml.demo_company.schedule import StepSchedule


@dataclass(frozen=True)
class Promotions:
    """One row per promotion, product and scope (store index, -1 = every store)."""

    product: np.ndarray
    store: np.ndarray
    start: np.ndarray  # first day
    end: np.ndarray  # last day (inclusive)
    discount: np.ndarray  # fraction of the list price

    def __len__(self) -> int:
        return len(self.product)


@dataclass(frozen=True)
class PriceBook:
    list_price: StepSchedule  # per product
    cost: StepSchedule  # per product (standard cost)
    promo: StepSchedule  # per store x product series: the discount in force
    promotions: Promotions


def _sequential(start: np.ndarray, factors: np.ndarray, rounding) -> np.ndarray:
    """values[:, k] = rounding(values[:, k-1] * factors[:, k]) with values[:, -1] = start."""
    out = np.empty_like(factors)
    prev = start
    for k in range(factors.shape[1]):
        prev = rounding(prev * factors[:, k])
        out[:, k] = prev
    return out


def _events(days: np.ndarray, values: np.ndarray, first_day: np.ndarray, first_value: np.ndarray) -> StepSchedule:
    n_p, k = days.shape
    valid = days < NO_DAY
    rows = np.repeat(np.arange(n_p), k).reshape(n_p, k)
    return StepSchedule.build(
        np.concatenate([first_day, days[valid]]),
        np.concatenate([np.arange(n_p), rows[valid]]),
        np.concatenate([first_value, values[valid]]),
    )


def _sorted_rows(days: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row's events by day (unused slots, day NO_DAY, last) and drop same-day repeats."""
    order = np.argsort(days, axis=1, kind="stable")
    days = np.take_along_axis(days, order, axis=1)
    factors = np.take_along_axis(factors, order, axis=1)
    repeat = np.zeros_like(days, dtype=bool)
    repeat[:, 1:] = days[:, 1:] == days[:, :-1]
    days = np.where(repeat, NO_DAY, days)
    factors = np.where(repeat | (days >= NO_DAY), 1.0, factors)
    return days, factors


def _list_prices(cfg: DemoConfig, cat: Catalog, rng: np.random.Generator) -> StepSchedule:
    n_p = cat.n_products
    lo = np.maximum(cat.launch, 0) + 30
    hi = np.minimum(cat.discontinued, cfg.days)
    n_changes = rng.integers(cfg.price_changes[0], cfg.price_changes[1] + 1, n_p)
    past = lo[:, None] + (rng.random((n_p, 2)) * np.maximum(hi - lo, 1)[:, None]).astype(np.int64)
    past = np.where((np.arange(2)[None, :] < n_changes[:, None]) & (past < hi[:, None]), past, NO_DAY)
    future_on = (rng.random(n_p) < cfg.share_future_price_change) & (cat.discontinued >= NO_DAY)
    if not future_on.any():  # at least one planned change
        eligible = np.flatnonzero(cat.discontinued >= NO_DAY)
        future_on[eligible[rng.integers(0, len(eligible))]] = True
    n_future = rng.integers(1, 3, n_p)
    future = cfg.days + rng.integers(0, cfg.plan_horizon_days, (n_p, 2))
    future = np.where(future_on[:, None] & (np.arange(2)[None, :] < n_future[:, None]), future, NO_DAY)
    days = np.concatenate([past, future], axis=1)
    pct = rng.uniform(*cfg.price_change_pct, days.shape)
    sign = np.where(rng.random(days.shape) < cfg.price_increase_share, 1.0, -1.0)
    days, factors = _sorted_rows(days, 1.0 + sign * pct)
    prices = np.empty_like(factors)
    prev = cat.price0
    for k in range(factors.shape[1]):
        new = _round_price(prev * factors[:, k])
        # a change too small to move the price point moves it by 10 cents
        unchanged = (new == prev) & (days[:, k] < NO_DAY)
        new = np.where(unchanged, np.maximum(np.round(prev + np.sign(factors[:, k] - 1.0) * 0.10, 2), 0.49), new)
        prices[:, k] = prev = new
    return _events(days, prices, cat.first_valid, cat.price0)


def _january_firsts(cfg: DemoConfig) -> list[int]:
    out = []
    for year in range(cfg.start.year + 1, cfg.end.year + 1):
        out.append((date(year, 1, 1) - cfg.start).days)
    if cfg.start.month == 1 and cfg.start.day == 1:
        out.insert(0, 0)
    return out


def _standard_costs(cfg: DemoConfig, cat: Catalog, rng: np.random.Generator) -> StepSchedule:
    n_p = cat.n_products
    jan = np.array(_january_firsts(cfg), dtype=np.int64)
    years = list(range(cfg.start.year, cfg.end.year + 1))
    jan_days = np.where(jan[None, :] > cat.first_valid[:, None], jan[None, :], NO_DAY)
    jan_days = np.broadcast_to(jan_days, (n_p, len(jan))).copy()
    jan_f = 1.0 + rng.uniform(*cfg.cost_yearly_increase, (n_p, len(jan)))
    mid_days = np.full((n_p, len(years)), NO_DAY, dtype=np.int64)
    for k, year in enumerate(years):
        y0 = max((date(year, 2, 1) - cfg.start).days, 0)
        y1 = min((date(year, 12, 1) - cfg.start).days, cfg.days)
        if y1 <= y0:
            continue
        on = rng.random(n_p) < cfg.cost_midyear_share
        d = rng.integers(y0, y1, n_p)
        mid_days[:, k] = np.where(on & (d > cat.first_valid) & (d < cat.discontinued), d, NO_DAY)
    mid_f = 1.0 + rng.uniform(0.02, 0.06, mid_days.shape) * np.where(rng.random(mid_days.shape) < 0.5, -1, 1)
    days, factors = _sorted_rows(np.concatenate([jan_days, mid_days], axis=1), np.concatenate([jan_f, mid_f], axis=1))
    costs = _sequential(cat.cost0, factors, lambda x: np.maximum(np.round(x, 2), 0.05))
    return _events(days, costs, cat.first_valid, cat.cost0)


def _promotions(cfg: DemoConfig, cat: Catalog, rng: np.random.Generator) -> Promotions:
    n_p = cat.n_products
    promotable = np.array([c.promotable for c in cfg.categories])[cat.category]
    active = promotable & (rng.random(n_p) < cfg.promo_share_products)
    horizon = cfg.days + cfg.plan_horizon_days
    t = rng.integers(0, cfg.promo_gap_days[1], n_p).astype(np.int64)
    parts: list[tuple[np.ndarray, ...]] = []
    while True:
        live = active & (t < horizon)
        if not live.any():
            break
        dur = rng.integers(cfg.promo_days[0], cfg.promo_days[1] + 1, n_p)
        disc = np.round(rng.uniform(*cfg.promo_discount, n_p) / 0.05) * 0.05
        single = rng.random(n_p) < cfg.promo_single_store_share
        store = np.where(single & (cfg.stores > 1), rng.integers(0, cfg.stores, n_p), -1)
        end = t + dur - 1
        ok = live & (t >= cat.launch) & (end < cat.discontinued)
        idx = np.flatnonzero(ok)
        parts.append((idx, store[idx], t[idx], end[idx], disc[idx]))
        t = end + 1 + rng.integers(cfg.promo_gap_days[0], cfg.promo_gap_days[1] + 1, n_p)
    product, store, start, end, disc = (np.concatenate([p[i] for p in parts]) for i in range(5))
    order = np.lexsort((product, start))
    return Promotions(product[order], store[order], start[order], end[order], disc[order])


def _promo_schedule(cfg: DemoConfig, cat: Catalog, promos: Promotions) -> StepSchedule:
    n_p, n_s = cat.n_products, cfg.stores
    all_stores = promos.store < 0
    reps = np.where(all_stores, n_s, 1)
    row = np.repeat(np.arange(len(promos)), reps)
    offset = np.arange(len(row)) - np.repeat(np.cumsum(reps) - reps, reps)
    store = np.where(all_stores[row], offset, promos.store[row])
    series = store * n_p + promos.product[row]
    start, end, disc = promos.start[row], promos.end[row], promos.discount[row]
    return StepSchedule.build(
        np.concatenate([start, end + 1]),
        np.concatenate([series, series]),
        np.concatenate([disc, np.zeros_like(disc)]),
    )


def build_pricebook(cfg: DemoConfig, cat: Catalog, rngs: dict[str, np.random.Generator]) -> PriceBook:
    promotions = _promotions(cfg, cat, rngs["promotions"])
    return PriceBook(
        list_price=_list_prices(cfg, cat, rngs["pricing"]),
        cost=_standard_costs(cfg, cat, rngs["costs"]),
        promo=_promo_schedule(cfg, cat, promotions),
        promotions=promotions,
    )
