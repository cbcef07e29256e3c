"""Every parameter of the demo company, in one frozen dataclass.

The defaults describe a mid-sized general retailer: one distribution centre, a handful of stores, eight
merchandise categories with one supplier each (one supplier serves two categories). Changing a parameter changes
the generated company; the whole configuration (and the seed) is written to the truth folder as
``generator_config.json`` so a run can be reproduced and explained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

import numpy as np

FileFormat = Literal["csv", "parquet"]
Season = Literal["none", "summer", "q4"]

#: Names of the independent random streams (numpy SeedSequence children, in this order). Append new streams at
#: the end: a child's bits depend only on the seed and its position, so existing streams stay unchanged.
STREAMS: tuple[str, ...] = (
    "catalog",
    "pricing",
    "promotions",
    "costs",
    "demand_params",
    "demand_noise",
    "planning",
    "lead_times",
    "transfers",
    "returns",
    "shrink",
    "counts",
    "defects",
    "signals",
)


@dataclass(frozen=True)
class SupplierSpec:
    supplier_id: str
    name: str
    country: str
    mean_lead_days: float  # mean of the true (realised) lead-time distribution
    lead_cv: float  # coefficient of variation of the true lead time
    shift_fraction: float  # minimum lead time as a fraction of the mean (shifted gamma)
    nominal_lead_days: int  # the quoted lead time (often optimistic)

    @property
    def shift_days(self) -> float:
        return self.shift_fraction * self.mean_lead_days

    @property
    def gamma_shape(self) -> float:
        return ((1.0 - self.shift_fraction) / self.lead_cv) ** 2

    @property
    def gamma_scale(self) -> float:
        return (self.lead_cv * self.mean_lead_days) ** 2 / ((1.0 - self.shift_fraction) * self.mean_lead_days)


@dataclass(frozen=True)
class CategorySpec:
    name: str
    supplier_id: str
    weight: float  # share of the assortment
    weekly_amplitude: float  # 0 = flat week, 1 = the default weekend peak
    season: Season
    season_amplitude: float
    intermittent_share: float  # share of the category's products that are slow, intermittent movers
    return_rate: float  # fraction of units sold that come back
    shrink_factor: float  # multiplier on the base shrinkage rate (theft-prone categories > 1)
    cost_median: float
    cost_sigma: float
    uom: str
    promotable: bool
    brands: tuple[str, ...]
    items: tuple[str, ...]
    variants: tuple[str, ...]


DEFAULT_SUPPLIERS: tuple[SupplierSpec, ...] = (
    SupplierSpec("SUP01", "Brookfield Beverages", "Netherlands", 4.0, 0.15, 0.5, 4),
    SupplierSpec("SUP02", "Crunchwell Foods", "Belgium", 6.0, 0.15, 0.5, 5),
    SupplierSpec("SUP03", "Clearwater Home & Care", "Netherlands", 9.0, 0.20, 0.5, 7),
    SupplierSpec("SUP04", "Pawsome Wholesale", "Germany", 7.0, 0.15, 0.5, 7),
    SupplierSpec("SUP05", "Green Delta Imports", "China", 45.0, 0.40, 0.5, 35),
    SupplierSpec("SUP06", "Lucky Star Toys", "China", 55.0, 0.45, 0.5, 42),
    SupplierSpec("SUP07", "Precision Parts Co", "Taiwan", 32.0, 0.30, 0.5, 28),
)

DEFAULT_CATEGORIES: tuple[CategorySpec, ...] = (
    CategorySpec(
        "Beverages", "SUP01", 0.17, 1.0, "summer", 0.25, 0.10, 0.003, 1.0, 1.1, 0.5, "EA", True,
        ("Aqua Nova", "Brisk Valley", "Fizzco"),
        ("Sparkling Water", "Still Water", "Cola", "Lemon Soda", "Orange Juice", "Apple Juice", "Iced Tea",
         "Energy Drink", "Ginger Ale", "Cold Brew Coffee", "Tonic Water", "Sports Drink"),
        ("330ml", "500ml", "1L", "1.5L", "6x330ml", "12x330ml"),
    ),
    CategorySpec(
        "Snacks", "SUP02", 0.17, 1.0, "none", 0.0, 0.12, 0.002, 1.3, 1.4, 0.5, "EA", True,
        ("Crunchwell", "Golden Field", "Munchies"),
        ("Potato Chips", "Tortilla Chips", "Salted Pretzels", "Mixed Nuts", "Granola Bar", "Chocolate Bar",
         "Popcorn", "Rice Crackers", "Gummy Bears", "Oat Cookies", "Trail Mix", "Beef Jerky"),
        ("40g", "100g", "150g", "200g", "Family Pack", "Multipack 6"),
    ),
    CategorySpec(
        "Household", "SUP03", 0.14, 0.6, "none", 0.0, 0.25, 0.010, 1.0, 3.2, 0.6, "EA", True,
        ("Clearwater", "HomePro", "Sparkle"),
        ("Dish Soap", "Laundry Liquid", "Paper Towels", "Trash Bags", "Sponges", "All-Purpose Cleaner",
         "Glass Cleaner", "Aluminium Foil", "Cling Film", "LED Bulb", "AA Batteries", "Toilet Paper"),
        ("Small", "Regular", "Large", "XL", "2-pack", "4-pack"),
    ),
    CategorySpec(
        "Personal Care", "SUP03", 0.13, 0.7, "none", 0.0, 0.25, 0.015, 2.0, 3.6, 0.6, "EA", True,
        ("Pure Glow", "Mintfresh", "Silkline"),
        ("Shampoo", "Conditioner", "Shower Gel", "Toothpaste", "Toothbrush", "Deodorant", "Hand Soap",
         "Body Lotion", "Razor Blades", "Sunscreen SPF30", "Lip Balm", "Cotton Pads"),
        ("50ml", "100ml", "250ml", "400ml", "Travel", "Value Pack"),
    ),
    CategorySpec(
        "Pet", "SUP04", 0.10, 0.6, "none", 0.0, 0.20, 0.010, 1.0, 5.5, 0.7, "EA", True,
        ("Pawsome", "Happy Tail", "Whiskers"),
        ("Dry Dog Food", "Wet Cat Food", "Cat Litter", "Dog Treats", "Bird Seed", "Fish Flakes", "Chew Toy",
         "Poop Bags", "Cat Scratcher", "Pet Shampoo"),
        ("400g", "1kg", "3kg", "10kg", "12-pack", "Single"),
    ),
    CategorySpec(
        "Garden", "SUP05", 0.09, 1.2, "summer", 1.0, 0.30, 0.020, 1.0, 7.5, 0.7, "EA", True,
        ("Green Delta", "Bloomfield", "Terra"),
        ("Potting Soil", "Lawn Seed", "Plant Fertiliser", "Garden Hose", "Pruning Shears", "Flower Pot",
         "Watering Can", "Garden Gloves", "Slug Pellets", "Bird Feeder", "Solar Lamp", "Weed Killer"),
        ("Small", "Medium", "Large", "20L", "40L", "Set"),
    ),
    CategorySpec(
        "Toys", "SUP06", 0.08, 1.3, "q4", 2.5, 0.30, 0.040, 2.0, 9.0, 0.7, "EA", True,
        ("Lucky Star", "Playmakers", "Tiny Town"),
        ("Building Blocks", "Puzzle 500pc", "Plush Bear", "Toy Car", "Board Game", "Doll", "Water Pistol",
         "Kite", "Craft Kit", "Card Game", "Remote Control Car", "Science Kit"),
        ("Mini", "Classic", "Deluxe", "Junior", "Family Edition", "Gift Set"),
    ),
    CategorySpec(
        "Spare Parts", "SUP07", 0.12, 0.3, "none", 0.0, 1.00, 0.050, 0.5, 24.0, 1.1, "PC", False,
        ("Precision", "Mechanix", "Duraparts"),
        ("Drive Belt", "Bearing 6204", "Air Filter", "Oil Filter", "Spark Plug", "Fuse Set", "Gasket Kit",
         "Brake Pad", "Hydraulic Hose", "V-Belt", "Seal Ring", "Pump Impeller"),
        ("Type A", "Type B", "Type C", "M8", "M10", "Heavy Duty"),
    ),
)  # fmt: skip

STORE_NAMES: tuple[str, ...] = (
    "Riverside", "Old Town", "Harbour", "Hillcrest", "Market Square", "Northgate", "Westfield", "Lakeside",
    "Station Road", "Parkview", "Eastbrook", "Mill Lane",
)  # fmt: skip
REGIONS: tuple[str, ...] = ("North", "South", "East", "West")


@dataclass(frozen=True)
class DemoConfig:
    """All parameters of one demo company. Ranges are (low, high) of a uniform draw unless noted."""

    skus: int = 150
    stores: int = 5
    days: int = 1095
    seed: int = 42
    start: date = date(2023, 1, 2)
    fmt: FileFormat = "csv"

    categories: tuple[CategorySpec, ...] = DEFAULT_CATEGORIES
    suppliers: tuple[SupplierSpec, ...] = DEFAULT_SUPPLIERS

    # --- assortment and life cycle
    share_launch_during: float = 0.15  # launched during the history (with a ramp-up)
    share_launch_future: float = 0.03  # listed in the master, launched after the last history day
    share_discontinued: float = 0.09  # discontinued during the history
    launch_ramp_days: tuple[int, int] = (28, 90)
    rundown_days: int = 60  # demand fades to half over the last days before discontinuation

    # --- demand (units per day at an average store)
    fast_base_median: float = 1.2
    fast_base_sigma: float = 1.0
    fast_base_max: float = 60.0
    slow_base_median: float = 0.07
    slow_base_sigma: float = 0.6
    slow_base_max: float = 0.25
    store_size_sigma: float = 0.35
    store_item_sigma: float = 0.25  # per store x product assortment fit
    trend_sigma: float = 0.15  # annual log growth per product
    drift_knot_days: int = 28
    drift_sigma: float = 0.10  # log-level innovation per knot (AR(1) random walk)
    drift_phi: float = 0.96
    elasticity: tuple[float, float] = (-3.0, -1.0)
    promo_bump: tuple[float, float] = (1.1, 1.6)  # extra lift of a promotion beyond its price effect
    dispersion_fast: tuple[float, float] = (3.0, 15.0)  # negative-binomial size k (variance = mu + mu^2/k)
    dispersion_slow: tuple[float, float] = (0.3, 0.8)
    closed_days: tuple[tuple[int, int], ...] = ((12, 25),)  # (month, day) all stores are closed
    launch_forecast_sigma: float = 0.4  # planners' error on a new product's demand
    planner_forecast_sigma: float = 0.2  # planners' error on the opening demand estimate

    # --- prices, promotions and costs
    markup: tuple[float, float] = (1.3, 2.5)
    expensive_share: float = 0.02  # products costing 10-40x their category's median
    price_changes: tuple[int, int] = (1, 2)  # list-price changes per product over the history
    price_change_pct: tuple[float, float] = (0.03, 0.12)
    price_increase_share: float = 0.7
    share_future_price_change: float = 0.05  # products with a planned list-price change after the history
    promo_share_products: float = 0.5  # of products in promotable categories
    promo_gap_days: tuple[int, int] = (45, 240)
    promo_days: tuple[int, int] = (7, 14)
    promo_discount: tuple[float, float] = (0.10, 0.35)
    promo_single_store_share: float = 0.3
    plan_horizon_days: int = 56  # planned promotions and price changes after the last history day
    cost_yearly_increase: tuple[float, float] = (0.0, 0.08)
    cost_midyear_share: float = 0.10  # products with an extra mid-year cost change per year
    po_cost_noise: float = 0.02

    # --- store replenishment (periodic review, order-up-to, from DC01)
    store_review_days: tuple[int, int] = (1, 3)
    transfer_extra_day_share: float = 0.2  # a transfer takes one day longer than the store's usual transit
    store_forecast_window: int = 28
    store_safety_days: tuple[float, float] = (1.0, 4.0)
    store_z: float = 1.0
    overcover_sigma: float = 0.25
    overcover_share: float = 0.10  # series a planner over-covers by a large factor
    overcover_factor: tuple[float, float] = (1.5, 3.0)

    # --- DC replenishment (continuous review (s, Q) on the inventory position, from suppliers)
    dc_forecast_window: int = 56
    dc_safety_days_domestic: tuple[float, float] = (3.0, 8.0)
    dc_safety_days_overseas: tuple[float, float] = (7.0, 21.0)
    dc_cover_days: tuple[float, float] = (14.0, 42.0)
    partial_receipt_share: float = 0.08
    short_ship_share: float = 0.04
    short_ship_fill: tuple[float, float] = (0.5, 0.95)
    cancel_share: float = 0.01
    partial_gap_days: tuple[int, int] = (2, 10)
    max_lead_days: int = 240

    # --- returns, shrinkage, counts
    return_delay_days: tuple[int, int] = (1, 20)
    shrink_share: float = 0.008  # units lost per unit of expected demand (x category shrink_factor)
    shrink_rate: float = 0.001  # plus a daily loss rate per store x product, independent of velocity
    gain_rate: float = 0.0003  # daily probability of an unrecorded gain of one unit (e.g. found stock)
    delivery_error_share: float = 0.02  # store deliveries physically one unit off the transfer document
    dc_shrink_rate: float = 0.0005
    count_interval_days: tuple[int, int, int] = (60, 90, 120)  # fast, medium, slow movers

    # --- external signals and events (ml/demo_company/signals.py)
    temperature_mean: float = 11.0  # degrees C, yearly mean of the seasonal normal
    temperature_amplitude: float = 8.0  # summer peak above the yearly mean
    temperature_anomaly_sd: float = 3.0  # standard deviation of the daily anomaly (AR(1))
    temperature_forecast_sd: float = 0.8  # error of a 1-day-ahead temperature forecast (x sqrt(days ahead))
    temperature_sensitivity: tuple[tuple[str, float], ...] = (("Beverages", 0.04), ("Garden", 0.06))  # per deg C
    local_events_per_year: float = 3.0  # per region
    event_uplifts: tuple[tuple[str, str, float], ...] = (
        ("holiday", "Beverages", 1.5), ("holiday", "Snacks", 1.4),
        ("local_event", "Beverages", 1.8), ("local_event", "Snacks", 1.5), ("local_event", "Toys", 1.3),
    )  # (event_type, category, demand multiplier while the event runs)

    # --- data-quality defects (rows added to the landing files; never replacing genuine rows)
    defect_duplicate_lines: int = 36
    defect_unknown_products: int = 5
    defect_invalid_dates: int = 2
    defect_negative_sales: int = 2
    defect_unknown_po_receipts: int = 1
    defect_unknown_location_counts: int = 1
    defect_invalid_costs: int = 1

    def __post_init__(self) -> None:
        min_skus = 2 * len(self.categories)
        if self.skus < min_skus:
            raise ValueError(f"skus must be at least {min_skus} (two per category), got {self.skus}")
        if self.stores < 1:
            raise ValueError(f"stores must be at least 1, got {self.stores}")
        if self.days < 60:
            raise ValueError(f"days must be at least 60, got {self.days}")
        if self.fmt not in ("csv", "parquet"):
            raise ValueError(f"fmt must be 'csv' or 'parquet', got {self.fmt!r}")
        supplier_ids = {s.supplier_id for s in self.suppliers}
        for cat in self.categories:
            if cat.supplier_id not in supplier_ids:
                raise ValueError(f"category {cat.name!r} names unknown supplier {cat.supplier_id!r}")

    # ------------------------------------------------------------------ derived
    @property
    def end(self) -> date:
        """Last day of the history."""
        return self.start + timedelta(days=self.days - 1)

    @property
    def n_series(self) -> int:
        return self.skus * self.stores

    def rngs(self) -> dict[str, np.random.Generator]:
        """One independent PCG64 generator per named stream (see STREAMS)."""
        children = np.random.SeedSequence(self.seed).spawn(len(STREAMS))
        return {
            name: np.random.Generator(np.random.PCG64(child)) for name, child in zip(STREAMS, children, strict=True)
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every parameter (dates as ISO strings, tuples as lists)."""

        def convert(value: Any) -> Any:
            if isinstance(value, date):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: convert(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [convert(v) for v in value]
            return value

        out = convert(dataclasses.asdict(self))
        out["end"] = self.end.isoformat()
        out["streams"] = list(STREAMS)
        return out
