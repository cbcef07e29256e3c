"""The report's definitions section: each KPI's formula and data source, in the words finance uses.

Kept consistent with the dbt documentation of the marts (dbt_project/models/marts/*/_*.yml) and with the SQL of
the sections (reports.sections).
"""

from __future__ import annotations

from reports.context import Context
from reports.html import Definition
from reports.sections.days_of_supply import EXCESS_DAYS
from reports.sections.service import LOST_SALES_MIN_DAYS, LOST_SALES_WINDOW_DAYS


def definitions(ctx: Context | None = None) -> list[Definition]:
    w, min_days, excess = LOST_SALES_WINDOW_DAYS, LOST_SALES_MIN_DAYS, EXCESS_DAYS
    return [
        Definition(
            "Periods",
            "Last 12 months: the 12 calendar months up to and including the month of the as-of date (the last "
            "one may be partial). Prior 12 months: the 12 months before them. Ratios over a period divide the "
            "period's totals (for example the 12 months' COGS by the 12 months' average inventory), never "
            "average monthly ratios.",
        ),
        Definition(
            "Inventory value at cost",
            "Units on hand at the close of each day × the standard cost valid that day. Stock below zero on the "
            "book is not valued. On-hand is reconstructed from stock snapshots, cycle counts and every recorded "
            "movement (sales, returns, receipts, transfers, count corrections).",
            "marts.fct_inventory_daily (inventory/stock_snapshots, inventory/cycle_counts, movements; "
            "finance/standard_costs)",
        ),
        Definition(
            "Average inventory at cost",
            "Sum of the daily closing inventory values at cost ÷ number of days in the period. Days before a "
            "product was first stocked count as zero, so categories and locations add up to the company.",
            "marts.fct_inventory_turnover_monthly.avg_inventory_value",
        ),
        Definition(
            "Cost of goods sold (COGS)",
            "From the COGS ledger when one is supplied; otherwise net units sold (sales less returns) × the "
            "standard cost of the day.",
            "marts.fct_sales_daily.cogs_amount (finance/cogs_ledger, else finance/standard_costs)",
        ),
        Definition(
            "Inventory turnover (turns a year)",
            "Outflow at cost ÷ average inventory at cost, annualised: × 365 ÷ days in the period. A turnover of "
            "7x means the average stock left and was replaced seven times a year. For the company, a category or a "
            "product the outflow is COGS: stock moved between two own locations has not left the company, so it "
            "is not counted.",
            "marts.fct_inventory_turnover_monthly.inventory_turnover_annualised (grain company, category, product)",
        ),
        Definition(
            "Turnover of a location (sales + transfers out at cost)",
            "(COGS + transfers out to other locations at standard cost) ÷ the location's average inventory at "
            "cost, annualised. Stock leaves a location by being sold or by being shipped to another location, so "
            "a distribution centre, which sells nothing, turns on its shipments to stores (shown \"on "
            "shipments\"); a store that ships nothing turns on its COGS. The locations' outflows add up to more "
            "than the company's COGS by the transfers between them, which is why the company figure counts COGS "
            "only.",
            "marts.fct_inventory_turnover_monthly.inventory_turnover_annualised (grain location; outflow_at_cost, "
            "transfers_out_cost)",
        ),
        Definition(
            "Days inventory outstanding (DIO)",
            "Average inventory at cost ÷ the same outflow at cost as the turnover × days in the period: how many "
            "days of outflow the stock represents (365 ÷ turns a year). COGS for the company and a category; COGS "
            "+ transfers out for a location. Lower means less cash tied up in stock.",
            "marts.fct_inventory_turnover_monthly.days_inventory_outstanding",
        ),
        Definition(
            "Gross margin return on inventory (GMROI)",
            "Gross margin (net sales − COGS) ÷ average inventory at cost, annualised: the gross margin earned in "
            "a year for each 1 of inventory at cost. Below 1 the stock earns less than it costs to hold. Margin "
            "comes from sales only: transfers between locations earn none.",
            "marts.fct_inventory_turnover_monthly.gmroi_annualised",
        ),
        Definition(
            "Days of supply (backward-looking)",
            "Units on hand ÷ average daily use over the trailing window (default 28 days), where use = units "
            "sold + units shipped to other locations. 0 when out of stock; 'no recent sales' when there is "
            "stock but no use in the window (excess risk).",
            "marts.fct_days_of_supply",
        ),
        Definition(
            f"Value beyond {excess} days of supply (excess)",
            f"On-hand value at cost × (1 − {excess} ÷ days of supply) for items with more than {excess} days of "
            "supply; all of the on-hand value when nothing was used in the window.",
            "marts.fct_days_of_supply",
        ),
        Definition(
            "Stock-out day and stock-out rate",
            "A product-location day that started or ended with nothing on hand on the book; recorded sales that "
            "day understate demand. Stock-out rate = stock-out days ÷ product-location days. In the service "
            "section it counts selling locations only and leaves out the days after a product was discontinued.",
            "marts.fct_sales_daily.is_stockout_day (from marts.fct_inventory_daily)",
        ),
        Definition(
            "Estimated lost sales",
            f"Demand on a stock-out day is not recorded, so it is estimated from the days the product was in "
            f"stock. (1) Usual demand: the product's average daily units sold at that location on its in-stock "
            f"days without a promotion, within {w} days either side (at least {min_days} such days, otherwise the "
            "day is not estimated and counts as no loss). (2) Expected demand = usual demand × a day-of-week and "
            "promotion factor of the category, measured on in-stock days. (3) A day that opened with an empty "
            "shelf lost expected demand − units sold, if positive. A day that opened with stock and sold out "
            "sold all it had; the demand above that is estimated as its expected excess for Poisson demand with "
            "the expected mean. (4) Lost sales value = lost units × that day's selling price (list price less "
            "any promotion discount). Covers the last 12 months. It is a floor: sales lost while the book wrongly "
            "showed stock (ghost stock) are not included, and volatile demand loses more on sold-out days than "
            "the Poisson estimate.",
            "marts.fct_sales_daily, marts.dim_product (computed in reports/sections/service.py)",
        ),
        Definition(
            "Fill rate (estimated)",
            "Units sold ÷ (units sold + estimated lost units). By volume: totals over all items. Average item: "
            "each product-location's fill rate, averaged, so a slow item weighs as much as a fast one. Volume "
            "fill can look good while the average item is served worse: read both.",
        ),
        Definition(
            "Book-vs-count discrepancy, shrinkage and ghost stock",
            "At each cycle count: counted quantity − book quantity, × the standard cost of the count day. "
            "Negative = shrinkage (loss, theft, damage, unrecorded sales), positive = surplus. Ghost stock: the "
            "book showed stock but the shelf was empty; the system does not reorder what it believes is there, "
            "so these items often sat out of stock.",
            "marts.fct_inventory_discrepancies (inventory/cycle_counts)",
        ),
        Definition(
            "Days of supply (forward-looking)",
            "Units on hand ÷ forecast mean demand per day from the planning run, for every product-location the "
            "plan covers. 'Runs out before an order can arrive': stock on hand plus stock on order lasts less "
            "than the replenishment lead time. 'Over 180 days': more than half a year of forecast demand on hand.",
            "marts.fct_days_of_supply_forecast (ml.demand_forecast, ml.inventory_policy, marts.fct_inventory_daily)",
        ),
        Definition(
            "Value above the order-up-to level (forward excess)",
            "(Units on hand − recommended order-up-to level) × unit cost, when positive. The order-up-to level is "
            "the reorder point plus the order quantity: the most stock the recommended policy ever plans to hold.",
            "marts.fct_days_of_supply_forecast.excess_value_at_cost",
        ),
        Definition(
            "Forecast accuracy: MASE, WAPE and the seasonal-naive baseline",
            "Measured on a rolling-origin backtest: the forecast is rebuilt as of past planning days using only "
            "the data known then, and compared with the sales that followed (held-out origins, not used to choose "
            "the models). MASE = mean absolute error ÷ the mean absolute error of a naive forecast within the "
            "history; below 1 beats it. WAPE = sum of absolute errors ÷ sum of actual sales. Seasonal naive "
            "forecasts each day with the same day a season earlier: the baseline any forecast must beat. Days "
            "that were stock-outs are not scored.",
            "ml.forecast_backtest (metric mase, wape; model 'selected' vs 'seasonal_naive'; split 'holdout')",
        ),
        Definition(
            "Forecast bias",
            "Sum of (forecast − actual) ÷ sum of actual sales over the backtest. +5% means the forecast was 5% too "
            "high on the whole (excess stock risk), −5% too low (stock-out risk).",
            "ml.forecast_backtest (metric bias)",
        ),
        Definition(
            "Interval coverage",
            "The share of actual demand that fell inside the forecast's uncertainty band: a calibrated 80% "
            "interval holds about 80% of actual days. For lead-time demand, the share of replenishment windows "
            "whose demand stayed at or below the predicted quantile; reorder points are set from these quantiles, "
            "so coverage below the promise means more stock-outs than planned.",
            "ml.forecast_backtest (metrics coverage_80, coverage_95, ltd_coverage_p50 ... p99)",
        ),
        Definition(
            "Signal gain (external signals and events)",
            "1 − (squared error of a category's daily totals per store with the signal) ÷ (the same without it), "
            "in the backtest, on the days the signal's values were known at the forecast date. A signal is used "
            "for a category only when the gain is at least 0.5% and its interval is above zero.",
            "ml.forecast_backtest (level signal_gating: metrics gain, gain_ci_low, gain_ci_high)",
        ),
        Definition(
            "Classical policy (the baseline)",
            "The textbook reorder point at the same service target: demand over the lead time and review period "
            "taken as normal with last year's daily mean and standard deviation and a fixed average lead time; "
            "safety stock = safety factor × that standard deviation. It stands for current practice.",
            "ml.inventory_policy (classical_* columns)",
        ),
        Definition(
            "Recommended safety stock and reorder point",
            "stockturn's policy: the reorder point is the quantile of the forecast's lead-time demand distribution "
            "(simulated from forecast errors and measured lead times) that meets the service target; safety stock "
            "= reorder point − mean lead-time demand. Order quantity: economic order quantity rounded to the "
            "minimum order and pack size.",
            "ml.inventory_policy, marts.rpt_reorder_recommendations",
        ),
        Definition(
            "Safeguards",
            "Checks between a forecast and a purchase order. Each recommendation is compared with two references "
            "at the same service target: the classical policy and the same rule applied to the item's own demand "
            "history (the evidence). Safety stock capped: a safety stock more than the guard factor (default 2) × "
            "the larger reference safety stock falls back to that reference; money = the safety stock removed × "
            "unit cost. Reorder point above both references: kept but flagged; money = the reorder point's excess "
            "over the larger reference × unit cost. Forecast level guard: a forecast that collapsed far below the "
            "series' recent sales is replaced by a robust local method. Products with no forecast: active stock "
            "products that have never sold. Plan vs evidence: the plan's total safety stock at cost ÷ the sum of "
            "the larger reference safety stock × unit cost.",
            "ml.inventory_policy (is_safety_stock_guarded, is_above_references, guard_reference_* columns), "
            "ml.demand_forecast (model 'level_guard'), ml.exceptions (no_forecast)",
        ),
        Definition(
            "Inventory freed or added, expected turnover",
            "Expected average inventory at cost = (safety stock + half the order quantity) × unit cost, per "
            "product-location. Freed / added = recommended − classical, summed where negative / positive. "
            "Expected turnover = forecast annual demand at selling locations × unit cost ÷ expected average "
            "inventory at cost at all locations. Expected fill rate: the share of demand each policy is expected "
            "to serve from stock on the forecast's demand distribution.",
            "marts.rpt_reorder_recommendations (inventory_value_change, *_expected_avg_inventory_value, "
            "*_expected_fill_rate)",
        ),
        Definition(
            "Purchase proposals awaiting approval",
            "Orders (from a supplier) and transfers (from a distribution centre) raised where the inventory "
            "position (on hand + on order) is at or below the recommended reorder point; value = units × unit "
            "cost. Routine ones are approved by the rules in seeds/approval_rules.csv (author rule:<name>); "
            "exceptions and proposals a planner decided on never are. The rest wait for a planner's approval "
            "('proposed'), with the reason they wait; decisions are kept across runs.",
            "ml.purchase_proposals, ml.proposal_decisions, ml.proposal_approval",
        ),
        Definition(
            "Value of planner decisions",
            "Every planner override of a reorder point or order quantity is replayed on the same recent demand "
            "(91 days) with the planner's numbers and with the policy's, from the same opening stock and lead-time "
            "draws. Net value = lost margin saved - extra holding cost (annual holding rate x the change in average "
            "inventory value, over the replayed days); gain or loss beyond 1% of the larger total cost. A proposal "
            "a planner rejected or approved with another quantity is replayed forward from its day on the demand "
            "that landed since (up to 91 days, at least 14), from that day's stock and open orders, ordering the "
            "quantity proposed in one arm and the planner's in the other, under the policy in force that day.",
            "ml.planner_decision_value, ml.proposal_decisions (ml/simulation/decision_value.py)",
        ),
        Definition(
            "Policy backtest",
            "Each policy is replayed day by day over past demand: orders placed by its rules arrive after the "
            "recorded lead times, demand is served from stock or lost. The main study lowers or raises the "
            "classical policy's safety factor until it reaches stockturn's fill rate, then compares the average "
            "inventory each needs; the interval comes from resampling product-locations (bootstrap). Scenarios "
            "repeat this under changed conditions. Holding, ordering and shortage costs use the configured rates.",
            "ml.policy_backtest, ml.policy_backtest_comparison (`stockturn backtest`)",
        ),
        Definition(
            "Data reconciliation",
            "Every landed row is either kept or quarantined with a reason code; rows in = rows kept + rows "
            "quarantined for every file, and the build fails otherwise.",
            "marts.data_quality_reconciliation, marts.data_quality_rejections",
        ),
    ]
