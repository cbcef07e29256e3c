"""Every setting of the replenishment policy, with its default and the reason for it.

:class:`PolicyConfig` is a frozen dataclass so a run is fully described by it (its ``to_dict()`` goes into the
run id); :meth:`PolicyConfig.from_dict` builds one from Dagster run config or a JSON/YAML mapping and rejects
unknown keys, so a typo never silently falls back to a default.

Costs are in the warehouse's currency, quantities in stock-keeping units, times in days unless a name says
otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

ServiceMetric = Literal["cycle_service_level", "fill_rate"]
SERVICE_METRICS: tuple[str, ...] = ("cycle_service_level", "fill_rate")
AbcScope = Literal["location", "global"]


@dataclass(frozen=True)
class PolicyConfig:
    """Settings of :func:`ml.policy.run_policy`. Every default is documented with its rationale.

    Costs of ordering and holding (EOQ)
        ordering_cost_per_line: 15.0
            Fixed cost of one purchase-order line to a supplier: raising and sending the line, receiving,
            checking and putting away one delivery of one product, and paying its invoice share. Activity-based
            costings of retail and wholesale purchasing put this at roughly 10-30 per line; 15 is the middle of
            the commonly quoted range and the figure a company should replace with its own. A product's or its
            supplier's ``ordering_cost`` in the landing contract (master/products, master/suppliers) replaces it
            for that item (``ml.inventory_policy.ordering_cost_basis``).
        transfer_cost_per_line: 4.0
            Fixed cost of one store-replenishment line from the distribution centre: picking one product,
            its share of the delivery and putting it on the shelf. Much cheaper than a purchase line (no
            supplier, no invoice), so stores order smaller quantities more often.
        annual_holding_rate: 0.25
            Holding cost per year as a fraction of unit cost: cost of capital (8-10%), storage and handling
            (5-8%), shrinkage, damage and obsolescence (5-10%). Textbooks (Silver-Pyke-Thomas, Chopra-Meindl)
            quote 20-30% for retail; 25% is the usual planning figure. A product's or its supplier's
            ``annual_holding_rate`` in the landing contract replaces it for that item (``holding_rate_basis``).
        min_order_cover_days / max_order_cover_days: 1.0 / 90.0
            Bounds on the order quantity in days of expected demand, applied to the EOQ before MOQ and pack
            rounding. The EOQ of a cheap slow mover can be a year or more of demand (ageing, obsolescence and
            space the EOQ formula does not see); 90 days caps it at a quarter. The lower bound of one day stops
            an order of a fraction of a day's demand for very expensive items. MOQ and pack size may still push
            the final quantity above the cap: they are contractual.
        order_quantity_demand: "after_arrival"
            The demand rate the order quantity is sized on. "after_arrival": the forecast mean per day over the
            days the order will serve, from its arrival (as_of + lead time) over the cover of the EOQ computed on
            the horizon mean, so a season that ends before the order lands is not bought for and one that starts
            then is; where the forecast horizon covers less than half of that window (lead time longer than the
            horizon), or a series has no forecast rows, the horizon mean. "horizon_mean": the forecast mean per
            day over the whole forecast horizon (the rule before 2026-12-05). ``order_demand_daily`` /
            ``order_demand_basis`` in ml.inventory_policy say which rate each row used.

    Costs when the data has none
        default_margin: 0.35
            When an item has a list price but no standard cost, unit cost = list price x (1 - 0.35): a typical
            general-retail gross margin (the demo company's markups of 1.3-2.5x give margins of 23-60%).
            Also used in reverse (price = cost / (1 - margin)) when an item has a cost but no price.
        default_unit_cost: 1.0
            Last resort when an item has neither cost nor price: one currency unit, so that quantities still
            get an EOQ and money columns are not null; such rows carry unit_cost_basis = 'default' and their
            money figures should not be trusted.

    Shortages (money at stake of a stock-out)
        lost_sales_share: 1.0
            Share of demand not met from stock that is lost (1.0: walk-in retail, the customer buys elsewhere).
            Set towards 0 for businesses whose customers wait (spare parts, B2B), where a shortage is a late
            delivery rather than a lost sale.
        backorder_cost_fraction_of_price: 0.10
            Cost of one unit delivered late (expediting, goodwill), as a fraction of its price; applies to the
            (1 - lost_sales_share) part of a shortage.

    Classification (ABC by consumption value at cost, XYZ by demand variability)
        abc_a_share / abc_b_share: 0.80 / 0.95
            A = the items making up the first 80% of the cumulative annual consumption value at cost (sorted
            from the largest), B = the next 15% (up to 95%), C = the rest (the Pareto split of inventory
            practice). The item that crosses a boundary belongs to the upper class.
        abc_scope: 'location'
            Classify within each location (a store's A items are that store's best sellers): service targets
            are set where the stock is. 'global' ranks all product-locations together (then the distribution
            centre, which carries the whole network's consumption, is mostly A).
        xyz_x_max_cv / xyz_y_max_cv: 0.5 / 1.0
            X = coefficient of variation of weekly demand <= 0.5 (steady), Y = <= 1.0 (variable), Z = above,
            or no demand, or fewer than ``xyz_min_weeks`` complete weeks (erratic or unknown). Weekly buckets
            remove the weekday pattern that would make every daily series look erratic; 0.5 and 1.0 are the
            usual textbook cut-offs for weekly data.
        xyz_min_weeks: 8
            Fewer complete weeks than this and the CV is not trusted: the item is Z (new items are uncertain).
        history_window_days: 365
            Trailing window of history (ending at as_of) for the consumption value, the XYZ CV, and the
            classical baseline's mean and standard deviation of daily demand: one full year, so seasons
            average out.
        default_service_metric / default_service_target: 'cycle_service_level' / 0.95
            Used for an ABC/XYZ combination missing from the service-level seed (logged).

    Reorder point
        min_cycle_service_level: 0.80
            Floor on the cycle service level of a fill-rate reorder point: r = max(r_fill_rate,
            empirical quantile at 0.80). The exact (r, Q) fill rate is met by Q alone when Q is large relative
            to demand variability (MOQ, packs, EOQ on cheap items), which gives slow movers a reorder point
            below their mean demand and starves them (stack notes: the textbook fill-rate safety stock did worse
            than a cycle-service quantile at equal per-item fill). With the floor a fill-rate item is never
            protected less than in 4 of 5 replenishment cycles. Rows where the floor binds carry
            reorder_point_basis = 'fill_rate_csl_floor'.
        classical_k_min / classical_k_max: 0.0 / 4.0
            The classical fill-rate safety factor is the textbook solution of L(k) = (1 - fill rate) Q / sigma,
            clipped to [0, 4] (never negative safety stock, at most four sigma), as in Silver-Pyke-Thomas.
        transfer_min_order_qty / transfer_pack_size: 0.0 / 1.0
            Stores replenished by transfer from a distribution centre: the master data's MOQ and pack size are
            the supplier's terms for the distribution centre, not the store's, so stores order whole units
            with no minimum (unless a planner overrides min_order_qty or pack_size for the product-location).

    Forecast (ml.demand_forecast) and recent actuals
        forecast_date_column / forecast_mean_column: None
            Column names in the forecast frame; None = detect (date: date, ds, date_day, forecast_date, period,
            period_start, target_date; mean: forecast_mean, mean, yhat, forecast, demand_mean, y_hat,
            forecast_units). A ``period_end`` column, when present, gives each row's length in days (weekly
            and monthly forecasts); otherwise the row spacing does.
        forecast_window_days: 28
            The forecast daily demand used for excess days of supply and the forecast-vs-actuals check is the
            forecast mean over the first 28 days after as_of (four full weeks), compared with the same length
            of trailing actuals. It is also the window in which a product-location that sells without a
            forecast series is found (exception ``no_forecast`` with a location).
        plan_cold_start: True
            A product-location that sold in that window but has no forecast series (it began to sell after the
            forecast the plan uses was made: the nightly re-plan) is planned on its own usage since its first
            sale, its own lead times (``ml.forecasting.cold_start``), until the next forecast; so is a series
            whose forecast saw no demand (all its draws zero) when it sold after the forecast was made. False:
            the first is named in the exceptions only, with no reorder point; the second keeps its zero plan.

    Exceptions
        stockout_probability_threshold: 0.25
            Stock-out risk when P(demand over the lead time > inventory position) from the samples is above
            25%, or the mean demand over the lead time exceeds the position (a projected stock-out at the
            mean is P of about 50%). 25% catches items one bad week away from empty while a replenishment
            cannot arrive yet, without flagging every item sitting at its reorder point (P about 5%).
        excess_days_of_supply: 180
            Excess when on hand lasts more than 180 days at the forecast rate (half a year: beyond any
            seasonal pre-build in general retail). The excess is valued above max(order-up-to level,
            180 days of demand), so a pack or MOQ that alone is long cover is not called excess.
        forecast_ratio_low / forecast_ratio_high: 0.5 / 2.0
            Forecast far from actuals when forecast / trailing actual (both per day over 28 days) is below
            0.5 or above 2: a factor of two is beyond the level drift measured on real demand panels for most
            items (deciles 0.25x-2.3x) and is what a planner would look at.
        forecast_check_min_units: 10.0
            ... but only when forecast or actual amounts to at least 10 units over the 28 days: on slower
            items ratios are noise.
        guard_factor: 2.0
            ``ml.policy.guards``: a safety stock above 2x the larger of the classical and the empirical
            (bootstrapped own history) safety stock, plus one unit, falls back to that reference and raises a
            ``safety_stock_guard`` exception; a reorder point above 2x the larger reference reorder point raises
            ``reorder_point_above_references``. Two, because the normal formula and the bootstrap differ from the
            true requirement by well under that on the real panels measured (docs/benchmarks.md), while the
            failures the guard exists for were 5-70x. 0 disables the guards.
        multi_echelon: True
            ``ml.policy.echelon``: place safety stock between each DC and its stores (METRIC: the DC's reorder
            point that meets the stores' own targets at the least holding cost, the stores covering the expected
            wait at the DC; the DC's backorders judged at the busiest four weeks its lead time reaches, so a
            coming season is not met with a DC planned for the quiet weeks before it). False: every location
            keeps the reorder point set for its own target. Measured in the network replay of the default demo
            (docs/backtest.md, 2026-12-06): 9.5% less network inventory than the matched textbook with the
            placement, 1.3% less without it.
        dc_demand_in_store_lots: True
            A DC's lead-time-demand samples are read as its stores' requests: each store's whole order lots add
            their rounding variance (``ml.policy.echelon.with_store_order_lots``), so the DC's reorder point and
            its promise (``expected_fill_rate``) are set for the requests it gets, not its stores' customer units.
            Since policy-1.6 the undershoot of the DC's position is the periodic-review fill rate's own
            (``inventory_math.review_undershoot``) and is no longer added to the samples. Measured
            (docs/backtest.md, 2026-12-06): the DC's volume promise 0.974 against 0.934 delivered before, 0.953
            against 0.950 after, on the default demo; network inventory against the matched textbook 6.4% ->
            12.3% less there, 9.8% -> 8.4% less on the second demo company.
        echelon_min_dc_level: 0.9
            The lowest quantile of the DC's lead-time demand the placement may set as its reorder point. METRIC
            carries the mean wait at the DC, not its spread: with a floor of 0.5 the replay of the second demo
            company delivered 0.977 of volume against 0.991 promised (its erratic items 0.895 against 0.983).
            Chosen by measuring in the network replay (docs/backtest.md, 2026-12-06): 0.5, 0.75 and 0.9 on both
            demo companies; 0.9 is the one that keeps the stores' promise within a point on both.
        echelon_dc_ordering: True
            A DC orders on its **echelon** inventory position [Clark and Scarf 1960; Axsater, *Inventory
            Control*, ch. 5]: its own position plus its stores' positions, less the stock its reorder point assumes
            the stores hold (``echelon_store_target_units``: each store's reorder point plus half its order
            quantity, the midpoint of its (s, S) cycle). Its reorder point and order-up-to level are unchanged; a
            DC whose stores run low orders before their requests reach it, one whose stores are full waits. The
            classical baseline orders on each location's own position, as an ERP does. Measured in the network
            replay (docs/backtest.md, 2026-12-07): the default demo 15.5% -> 17.4% less network inventory than the
            matched textbook (five draws 12.8% -> 16.6%), with fewer units short. False: the DC's own position.
        max_safety_stock_ratio / warn_safety_stock_ratio: 3.0 / 1.5
            The blocking asset check ``safety_stock_vs_classical`` fails when the plan's total safety-stock value
            exceeds 3x the classical total and the items' own histories do not support it; the warning
            check ``safety_stock_above_classical`` flags anything above 1.5x. Not 2x blocking: where the textbook's
            i.i.d.-days formula is far below the item's own history (seasonal items on long lead times at a
            distribution centre, where the bootstrapped history needs more than the plan), a plan between 1.5x and
            3x can be right, and it is flagged, not stopped.
        policy_change_threshold: 0.5
            Policy change when the reorder point differs from the classical one, or from the previous run's,
            by more than 50% (relative to the larger of the two and one unit).
        policy_change_min_value: 50.0
            ... and the change is worth at least 50 at cost (average inventory for the classical comparison,
            reorder-point units for the previous-run comparison): small items are not worth a look.
        ghost_silence_multiple: 5.0
            Suspected ghost stock when the book shows stock but nothing has been sold (or transferred out) for
            more than 5 x the item's typical interval between sale days. For a Poisson seller the chance of
            such a silence by luck is about e^-5, under 1%.
        ghost_min_silence_days: 14
            ... and for at least 14 days in stock (two weekly cycles), so a fast mover is not flagged after a
            quiet weekend.
        ghost_min_sale_days: 4
            ... and only for items that sold on at least 4 days in the history window (otherwise there is no
            "usual" interval; dead stock shows up as excess instead).
        ghost_count_lookback_days: 365
            Cycle counts (marts.fct_inventory_discrepancies) within this many days before as_of are cited as
            evidence (ghost stock found, shrinkage).
        ghost_require_count_evidence: False
            If True, flag ghost stock only where a recent count also found ghost stock or shrinkage. Off by
            default: items are counted every 2-4 months, so waiting for a count means months of empty shelves.
        max_exceptions_per_type: None
            Keep only the top-N of each type by money at stake (None: keep all; every row is ranked).

    Orders (``ml.policy.approval``, ``ml.policy.order_export``; the ``order_release`` step after the plan)
        auto_approve: True
            Approve the proposals the rules in seeds/approval_rules.csv cover (never an exception, never over a
            planner's decision). False: every proposal waits for a planner.
        order_export_dir: None
            Folder the ``order_release`` step exports approved purchase and transfer orders to after every plan
            (one batch folder per export, each proposal exactly once; docs/order-export.md). None: orders are
            exported only by ``stockturn proposals export --out DIR``.

    Other
        seeds_dir: None
            Folder with service_levels.csv, planner_overrides.csv and approval_rules.csv, read when the
            planning.* tables are absent (None: ml.settings.SEEDS_DIR).
        days_per_year: 365.0
            Days per year for annualising demand (EOQ, consumption value, turnover).
    """

    # EOQ costs
    ordering_cost_per_line: float = 15.0
    transfer_cost_per_line: float = 4.0
    annual_holding_rate: float = 0.25
    min_order_cover_days: float = 1.0
    max_order_cover_days: float = 90.0
    order_quantity_demand: str = "after_arrival"
    # missing costs
    default_margin: float = 0.35
    default_unit_cost: float = 1.0
    # shortages
    lost_sales_share: float = 1.0
    backorder_cost_fraction_of_price: float = 0.10
    # classification
    abc_a_share: float = 0.80
    abc_b_share: float = 0.95
    abc_scope: AbcScope = "location"
    xyz_x_max_cv: float = 0.5
    xyz_y_max_cv: float = 1.0
    xyz_min_weeks: int = 8
    history_window_days: int = 365
    default_service_metric: ServiceMetric = "cycle_service_level"
    default_service_target: float = 0.95
    # reorder point
    min_cycle_service_level: float = 0.80
    classical_k_min: float = 0.0
    classical_k_max: float = 4.0
    guard_factor: float = 2.0
    multi_echelon: bool = True
    dc_demand_in_store_lots: bool = True
    echelon_min_dc_level: float = 0.9
    echelon_dc_ordering: bool = True
    max_safety_stock_ratio: float = 3.0
    warn_safety_stock_ratio: float = 1.5
    transfer_min_order_qty: float = 0.0
    transfer_pack_size: float = 1.0
    # forecast and actuals
    forecast_date_column: str | None = None
    forecast_mean_column: str | None = None
    forecast_window_days: int = 28
    plan_cold_start: bool = True
    # exceptions
    stockout_probability_threshold: float = 0.25
    excess_days_of_supply: float = 180.0
    forecast_ratio_low: float = 0.5
    forecast_ratio_high: float = 2.0
    forecast_check_min_units: float = 10.0
    policy_change_threshold: float = 0.5
    policy_change_min_value: float = 50.0
    ghost_silence_multiple: float = 5.0
    ghost_min_silence_days: int = 14
    ghost_min_sale_days: int = 4
    ghost_count_lookback_days: int = 365
    ghost_require_count_evidence: bool = False
    max_exceptions_per_type: int | None = None
    # orders
    auto_approve: bool = True
    order_export_dir: str | None = None
    # other
    seeds_dir: str | None = None
    days_per_year: float = 365.0

    def __post_init__(self) -> None:
        problems: list[str] = []

        def check(ok: bool, message: str) -> None:
            if not ok:
                problems.append(message)

        check(self.ordering_cost_per_line >= 0 and self.transfer_cost_per_line >= 0, "ordering costs must be >= 0")
        check(self.annual_holding_rate > 0, "annual_holding_rate must be > 0")
        check(0 < self.echelon_min_dc_level < 1, "echelon_min_dc_level must be in (0, 1)")
        check(0 < self.min_order_cover_days <= self.max_order_cover_days,
              "need 0 < min_order_cover_days <= max_order_cover_days")
        check(self.order_quantity_demand in ("after_arrival", "horizon_mean"),
              f"order_quantity_demand must be 'after_arrival' or 'horizon_mean', got {self.order_quantity_demand!r}")
        check(0 <= self.default_margin < 1, "default_margin must be in [0, 1)")
        check(self.default_unit_cost > 0, "default_unit_cost must be > 0")
        check(0 <= self.lost_sales_share <= 1, "lost_sales_share must be in [0, 1]")
        check(self.backorder_cost_fraction_of_price >= 0, "backorder_cost_fraction_of_price must be >= 0")
        check(0 < self.abc_a_share < self.abc_b_share <= 1, "need 0 < abc_a_share < abc_b_share <= 1")
        check(self.abc_scope in ("location", "global"), "abc_scope must be 'location' or 'global'")
        check(0 < self.xyz_x_max_cv < self.xyz_y_max_cv, "need 0 < xyz_x_max_cv < xyz_y_max_cv")
        check(self.xyz_min_weeks >= 2, "xyz_min_weeks must be >= 2")
        check(self.history_window_days >= 28, "history_window_days must be >= 28")
        check(self.default_service_metric in SERVICE_METRICS,
              f"default_service_metric must be one of {SERVICE_METRICS}")
        check(0 < self.default_service_target <= 1, "default_service_target must be in (0, 1]")
        check(0 <= self.min_cycle_service_level < 1, "min_cycle_service_level must be in [0, 1)")
        check(self.classical_k_min <= self.classical_k_max, "need classical_k_min <= classical_k_max")
        check(self.transfer_min_order_qty >= 0 and self.transfer_pack_size > 0, "bad transfer MOQ / pack size")
        check(self.forecast_window_days >= 1, "forecast_window_days must be >= 1")
        check(0 < self.stockout_probability_threshold < 1, "stockout_probability_threshold must be in (0, 1)")
        check(self.excess_days_of_supply > 0, "excess_days_of_supply must be > 0")
        check(0 < self.forecast_ratio_low < 1 < self.forecast_ratio_high, "need 0 < ratio_low < 1 < ratio_high")
        check(self.forecast_check_min_units >= 0, "forecast_check_min_units must be >= 0")
        check(self.policy_change_threshold > 0 and self.policy_change_min_value >= 0, "bad policy-change thresholds")
        check(self.ghost_silence_multiple > 0 and self.ghost_min_silence_days >= 0 and self.ghost_min_sale_days >= 1,
              "bad ghost-stock thresholds")
        check(self.ghost_count_lookback_days >= 0, "ghost_count_lookback_days must be >= 0")
        check(self.max_exceptions_per_type is None or self.max_exceptions_per_type >= 1,
              "max_exceptions_per_type must be None or >= 1")
        check(self.days_per_year > 0, "days_per_year must be > 0")
        if problems:
            raise ValueError("invalid PolicyConfig: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> PolicyConfig:
        """Build from a mapping (Dagster run config, JSON); unknown keys raise ``ValueError``, missing keys default."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown PolicyConfig keys: {unknown}; known keys: {sorted(known)}")
        if isinstance(values.get("seeds_dir"), Path):
            values["seeds_dir"] = str(values["seeds_dir"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every setting (JSON-serialisable); ``from_dict(to_dict())`` round-trips."""
        return dataclasses.asdict(self)

    def seeds_path(self) -> Path:
        from ml.settings import SEEDS_DIR

        return Path(self.seeds_dir) if self.seeds_dir else SEEDS_DIR
