"""True (uncensored) daily demand per store x product series.

mean(s, t) = base(product) x store size x store-item fit
           x weekly profile(category, weekday) x yearly seasonality(category, day of year) x open(t)
           x exp(trend(product) x years + drift(product, t))          -- the level moves over time per item
           x (list price(t) / initial list price) ^ elasticity         -- permanent price changes
           x [(1 - discount) ^ elasticity x promo bump]                -- while a promotion runs
           x life cycle (launch ramp-up, run-down, zero after discontinuation)
           x signals(store, category, t)                               -- temperature anomaly, events
                                                                          (ml.demo_company.signals)
demand(s, t) ~ negative binomial(mean, size k): Poisson with a gamma-distributed rate.

Series are ordered store-major: series = store index x n_products + product index.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from ml.demo_company.catalog import Catalog
from ml.demo_company.config import DemoConfig

#: Monday..Sunday deviations of the default weekly profile (scaled by a category's weekly_amplitude).
WEEKLY_SHAPE = np.array([-0.12, -0.15, -0.10, -0.03, 0.10, 0.25, 0.05])


def _calendar(cfg: DemoConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weekday (0 = Monday), day of year (1..366) and open flag of each history day."""
    dates = [cfg.start + timedelta(days=t) for t in range(cfg.days)]
    weekday = np.array([d.weekday() for d in dates])
    doy = np.array([d.timetuple().tm_yday for d in dates])
    closed = {(m, d) for m, d in cfg.closed_days}
    is_open = np.array([(d.month, d.day) not in closed for d in dates], dtype=np.float64)
    return weekday, doy, is_open


def seasonality(kind: str, amplitude: float, doy: np.ndarray) -> np.ndarray:
    """Yearly factor with mean about 1 over a year."""
    grid = np.arange(1, 366)
    if kind == "summer":

        def f(d: np.ndarray) -> np.ndarray:
            return np.exp(amplitude * np.cos(2 * np.pi * (d - 182) / 365.25))
    elif kind == "q4":

        def f(d: np.ndarray) -> np.ndarray:
            december = np.exp(-0.5 * ((d - 350) / 14.0) ** 2)
            black_friday = 0.3 * np.exp(-0.5 * ((d - 330) / 4.0) ** 2)
            return 1.0 + amplitude * (december + black_friday)
    else:
        return np.ones(len(doy))
    return f(doy.astype(np.float64)) / f(grid.astype(np.float64)).mean()


class DemandModel:
    def __init__(self, cfg: DemoConfig, cat: Catalog, rng: np.random.Generator,
                 signal_multiplier: np.ndarray | None = None) -> None:
        n_p, n_st = cat.n_products, cat.n_stores
        self.n_products = n_p
        self.prod_of = np.tile(np.arange(n_p), n_st)
        self.store_of = np.repeat(np.arange(n_st), n_p)
        ns = n_p * n_st
        sigma = cfg.store_item_sigma
        store_item = rng.lognormal(-0.5 * sigma**2, sigma, ns)
        self.static = cat.base_demand[self.prod_of] * cat.store_size[self.store_of] * store_item

        k_fast = rng.uniform(*cfg.dispersion_fast, n_p)
        k_slow = rng.uniform(*cfg.dispersion_slow, n_p)
        self.k = np.where(cat.intermittent, k_slow, k_fast)[self.prod_of]
        self.elasticity = rng.uniform(*cfg.elasticity, n_p)
        self.bump = rng.uniform(*cfg.promo_bump, n_p)
        self.trend = rng.normal(0.0, cfg.trend_sigma, n_p)
        self.ramp = rng.uniform(*cfg.launch_ramp_days, n_p)
        self.launch = cat.launch
        self.discontinued = cat.discontinued
        self.rundown = float(cfg.rundown_days)
        self.ref_price = cat.price0

        # drift: AR(1) log level on knots every drift_knot_days, linearly interpolated per day
        self.knot = cfg.drift_knot_days
        n_knots = cfg.days // self.knot + 2
        sd0 = cfg.drift_sigma / np.sqrt(1.0 - cfg.drift_phi**2)
        eps = rng.normal(0.0, cfg.drift_sigma, (n_knots, n_p))
        knots = np.empty((n_knots, n_p))
        knots[0] = rng.normal(0.0, sd0, n_p)
        for j in range(1, n_knots):
            knots[j] = cfg.drift_phi * knots[j - 1] + eps[j]
        self.knots = knots

        weekday, doy, is_open = _calendar(cfg)
        cat_day = np.empty((len(cfg.categories), cfg.days))
        for ci, spec in enumerate(cfg.categories):
            weekly = 1.0 + spec.weekly_amplitude * WEEKLY_SHAPE
            weekly = weekly / weekly.mean()
            cat_day[ci] = weekly[weekday] * seasonality(spec.season, spec.season_amplitude, doy) * is_open
        self.cat_day = cat_day
        self.category = cat.category
        self.series_category = cat.category[self.prod_of]
        self.signal_multiplier = signal_multiplier  # (n_stores, n_categories, days) or None

    # ------------------------------------------------------------------ components
    def level(self, t: int) -> np.ndarray:
        """Per-product level multiplier exp(trend + drift) on day t."""
        j, w = divmod(t, self.knot)
        w = w / self.knot
        drift = (1.0 - w) * self.knots[j] + w * self.knots[j + 1]
        return np.exp(self.trend * (t / 365.0) + drift)

    def lifecycle(self, t: int) -> np.ndarray:
        age = t - self.launch
        ramp = np.where(age >= 0, 1.0 - np.exp(-3.0 * np.maximum(age, 0) / self.ramp), 0.0)
        to_end = self.discontinued - t
        fade = np.clip(0.5 + 0.5 * to_end / self.rundown, 0.5, 1.0)
        return np.where(to_end >= 0, ramp * fade, 0.0)

    def mean(self, t: int, list_price: np.ndarray, discount: np.ndarray) -> np.ndarray:
        """Expected demand of every series on day t, given the list price per product and discount per series."""
        price_effect = (list_price / self.ref_price) ** self.elasticity
        product = self.cat_day[self.category, t] * self.lifecycle(t) * self.level(t) * price_effect
        mu = self.static * product[self.prod_of]
        if self.signal_multiplier is not None:
            mu = mu * self.signal_multiplier[self.store_of, self.series_category, t]
        promo = discount > 0
        if promo.any():
            p = self.prod_of[promo]
            mu[promo] *= (1.0 - discount[promo]) ** self.elasticity[p] * self.bump[p]
        return mu

    def plateau(self, t: int) -> np.ndarray:
        """Average daily demand per series at full life cycle, without weekly/seasonal/promotional effects."""
        return self.static * self.level(t)[self.prod_of]

    @staticmethod
    def draw(mu: np.ndarray, k: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Negative-binomial demand with mean mu and size k (gamma-Poisson mixture)."""
        rate = rng.gamma(k, mu / k)
        return rng.poisson(rate).astype(np.int64)
