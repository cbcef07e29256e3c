"""The landing-zone contract: which files stockturn reads, their columns, types and keys.

This module is the single source of truth for the contract. The loader validates files against it, the dbt
sources (`dbt_project/models/staging/*/__sources.yml`) declare the same columns, and `docs/data-contract.md` is
checked against it by the test suite, so the three cannot drift apart.

Conventions for every file:
- One folder per source system under the landing root (``master/``, ``sales/`` ...).
- An entity may be one file (``sales/sales_lines.csv``) or many parts (``sales/sales_lines_2024q1.csv``,
  ``sales/sales_lines/part-0001.parquet``); all parts are read and unioned.
- CSV: UTF-8, comma separated, a header row, ``.`` as decimal point, no thousands separators.
  Parquet: any column type that casts to text. Column names are matched case-insensitively.
- Dates are ISO 8601 ``YYYY-MM-DD``; timestamps ``YYYY-MM-DD HH:MM:SS`` (a date alone is accepted).
- Quantities are in the product's stock-keeping unit; money in one reporting currency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["text", "date", "timestamp", "integer", "decimal", "boolean"]

#: DuckDB type each contract type is cast to in staging.
DUCKDB_TYPES: dict[str, str] = {
    "text": "varchar",
    "date": "date",
    "timestamp": "timestamp",
    "integer": "bigint",
    "decimal": "double",
    "boolean": "boolean",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    description: str
    required: bool = False  # the file must have this column and every row a value in it
    unit: str | None = None


@dataclass(frozen=True)
class Entity:
    system: str  # landing sub-folder
    name: str  # file stem
    description: str
    grain: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    required: bool = False  # the build fails without this file
    feeds: str = ""  # which marts / measures need it
    extra: tuple[str, ...] = field(default_factory=tuple)  # further rules, in words

    @property
    def path(self) -> str:
        return f"{self.system}/{self.name}"

    @property
    def raw_table(self) -> str:
        return f"{self.system}__{self.name}"

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.path} has no column {name!r}")

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


C = Column

ENTITIES: tuple[Entity, ...] = (
    # ------------------------------------------------------------------ master data
    Entity(
        system="master",
        name="products",
        required=True,
        description="Product (item, SKU) master: one row per product.",
        grain="one row per product",
        key=("product_id",),
        feeds="every mart; category roll-ups; lifecycle (launch, discontinuation); order quantities (ordering cost, "
        "holding rate)",
        extra=(
            "ordering_cost and annual_holding_rate set the economic order quantity (EOQ) of a product at the "
            "locations that buy from suppliers. Each is taken from the product, else from its primary supplier "
            "(master/suppliers), else from the planning settings (ordering_cost_per_line, "
            "annual_holding_rate); marts.dim_product says which (ordering_cost_basis, holding_rate_basis). "
            "Store replenishment from a distribution centre uses the transfer_cost_per_line setting.",
            "A negative or non-finite ordering_cost, or an annual_holding_rate not above 0 or above 5, quarantines "
            "the product or supplier row (invalid_value, the detail names the column and value), like any other "
            "out-of-range value; a quarantined product's sales lines are then quarantined as unknown_product.",
        ),
        columns=(
            C("product_id", "text", "Product code as used in every other file.", required=True),
            C("product_name", "text", "Human-readable name."),
            C("category", "text", "Merchandise category used for roll-ups. Blank becomes 'Uncategorised'."),
            C("supplier_id", "text", "Primary supplier (see suppliers)."),
            C("unit_of_measure", "text", "Stock-keeping unit, e.g. EA, KG. Blank becomes 'EA'."),
            C(
                "product_type",
                "text",
                "'stock' (held in inventory, the default) or 'non_stock' (services, fees, postage). "
                "Sales lines of non-stock products are quarantined with reason non_stock_item.",
            ),
            C("launch_date", "date", "First day the product could be sold."),
            C("discontinued_date", "date", "Last day the product is sold or replenished; blank if active."),
            C("list_price", "decimal", "Current regular selling price per unit.", unit="currency/unit"),
            C(
                "ordering_cost",
                "decimal",
                "Fixed cost of one purchase-order line for this product (raising the line, receiving, checking and "
                "putting away one delivery, its invoice share); overrides its supplier's. Not negative.",
                unit="currency/order line",
            ),
            C(
                "annual_holding_rate",
                "decimal",
                "Cost of holding one unit for a year as a fraction of its unit cost (0.25 = 25% a year: capital, "
                "storage, shrinkage, obsolescence); overrides its supplier's. Above 0, at most 5.",
                unit="fraction of unit cost/year",
            ),
        ),
    ),
    Entity(
        system="master",
        name="locations",
        required=True,
        description="Stores, distribution centres and warehouses that hold stock.",
        grain="one row per location",
        key=("location_id",),
        feeds="every mart; location roll-ups; replenishment network",
        columns=(
            C("location_id", "text", "Location code as used in every other file.", required=True),
            C("location_name", "text", "Human-readable name."),
            C(
                "location_type",
                "text",
                "'store', 'dc' (distribution centre), 'warehouse' or 'online'. Blank becomes 'store'.",
            ),
            C(
                "replenished_from",
                "text",
                "location_id of the location that replenishes this one by transfer; blank if it buys "
                "directly from suppliers.",
            ),
            C("region", "text", "Region or country, for grouping."),
        ),
    ),
    Entity(
        system="master",
        name="suppliers",
        description="Suppliers (vendors) that purchase orders are placed with.",
        grain="one row per supplier",
        key=("supplier_id",),
        feeds="dim_supplier; lead-time defaults; order quantities (ordering cost, holding rate)",
        columns=(
            C("supplier_id", "text", "Supplier code.", required=True),
            C("supplier_name", "text", "Human-readable name."),
            C("country", "text", "Country of the shipping site."),
            C(
                "nominal_lead_time_days",
                "integer",
                "Quoted lead time from order to receipt, used only where no receipts have been observed.",
                unit="days",
            ),
            C(
                "ordering_cost",
                "decimal",
                "Fixed cost of one purchase-order line with this supplier, for its products without their own "
                "(products.ordering_cost). Not negative.",
                unit="currency/order line",
            ),
            C(
                "annual_holding_rate",
                "decimal",
                "Holding cost per year as a fraction of unit cost, for this supplier's products without their own "
                "(products.annual_holding_rate). Above 0, at most 5.",
                unit="fraction of unit cost/year",
            ),
        ),
    ),
    Entity(
        system="master",
        name="product_suppliers",
        description="Purchasing terms per product and supplier.",
        grain="one row per product and supplier",
        key=("product_id", "supplier_id"),
        feeds="order quantities (MOQ, pack size); lead-time defaults",
        columns=(
            C("product_id", "text", "Product code.", required=True),
            C("supplier_id", "text", "Supplier code.", required=True),
            C("min_order_qty", "decimal", "Minimum order quantity per purchase-order line.", unit="units"),
            C("pack_size", "decimal", "Order quantities must be a multiple of this.", unit="units"),
            C("nominal_lead_time_days", "integer", "Quoted lead time for this product.", unit="days"),
            C("is_primary", "boolean", "true for the supplier normally ordered from."),
        ),
    ),
    # ------------------------------------------------------------------ sales
    Entity(
        system="sales",
        name="sales_lines",
        required=True,
        description=(
            "Point-of-sale or order lines: one row per sold (or returned) product on a transaction. Daily "
            "summaries (one line per product, location and day) and weekly or monthly totals are also accepted."
        ),
        grain="one row per transaction line",
        key=(),  # no natural key: exact duplicates are quarantined, see extra
        feeds="fct_sales_daily, turnover, days of supply, demand forecasts",
        extra=(
            "Sales have quantity > 0. Returns have line_type 'return'; their quantity may be exported "
            "negative or positive and is read as a return of abs(quantity) units.",
            "A negative quantity on a line that is not marked as a return is quarantined "
            "(negative_quantity_not_return): stockturn cannot tell a return from a correction.",
            "Rows identical in every column (an accidental re-export) are quarantined as duplicate_line; "
            "give repeated scans of the same product a distinct line_number if they are real.",
            "A unit_price that is negative or not a number does not quarantine the line: its units still count as "
            "demand. The line is kept with the price set to null and flagged (price_issue negative_price or "
            "invalid_price), its revenue is left out (never negative), and it is listed in "
            "marts.data_quality_field_issues.",
        ),
        columns=(
            C("transaction_id", "text", "Receipt, invoice or order number.", required=True),
            C("line_number", "integer", "Line within the transaction (optional)."),
            C("sold_at", "timestamp", "Date or date and time of the sale.", required=True),
            C("product_id", "text", "Product code (must exist in products).", required=True),
            C("location_id", "text", "Selling location (must exist in locations).", required=True),
            C("quantity", "decimal", "Units sold (returns: see line_type).", required=True, unit="units"),
            C(
                "unit_price",
                "decimal",
                "Net selling price per unit after discounts, before tax. Blank, negative or not a number: the line "
                "is kept without a price, its units still count.",
                unit="currency/unit",
            ),
            C("line_type", "text", "'sale' (default) or 'return'."),
            C("customer_id", "text", "Customer, if known."),
        ),
    ),
    Entity(
        system="sales",
        name="promotions",
        description="Promotions, past and planned. Planned (future) promotions feed the forecasts.",
        grain="one row per promotion, product and location",
        key=("promotion_id", "product_id", "location_id"),
        feeds="forecast features (promotion flag and depth)",
        columns=(
            C("promotion_id", "text", "Promotion code.", required=True),
            C("product_id", "text", "Product on promotion.", required=True),
            C("location_id", "text", "Location; blank means every location."),
            C("start_date", "date", "First day of the promotion.", required=True),
            C("end_date", "date", "Last day of the promotion.", required=True),
            C("discount_pct", "decimal", "Price reduction as a fraction of the list price (0.2 = 20% off)."),
        ),
    ),
    Entity(
        system="sales",
        name="prices",
        description="Regular (list) selling price history, including planned future changes.",
        grain="one row per product, location and valid_from date",
        key=("product_id", "location_id", "valid_from"),
        feeds="forecast features (price); GMROI where sales lines carry no price",
        columns=(
            C("product_id", "text", "Product code.", required=True),
            C("location_id", "text", "Location; blank means every location."),
            C("valid_from", "date", "First day this price applies; it holds until the next valid_from.", required=True),
            C("list_price", "decimal", "Regular selling price per unit.", required=True, unit="currency/unit"),
        ),
    ),
    # ------------------------------------------------------------------ procurement
    Entity(
        system="procurement",
        name="purchase_order_lines",
        description="Purchase-order lines placed with suppliers.",
        grain="one row per purchase order line",
        key=("po_id", "po_line"),
        feeds="fct_purchase_order_lines (lead times, fill), on-order units, lead-time distributions",
        columns=(
            C("po_id", "text", "Purchase order number.", required=True),
            C("po_line", "integer", "Line number within the purchase order.", required=True),
            C("supplier_id", "text", "Supplier the order is placed with.", required=True),
            C("product_id", "text", "Product ordered.", required=True),
            C("location_id", "text", "Receiving location.", required=True),
            C("order_date", "date", "Date the order was sent to the supplier.", required=True),
            C("quantity_ordered", "decimal", "Units ordered.", required=True, unit="units"),
            C("unit_cost", "decimal", "Agreed purchase price per unit.", unit="currency/unit"),
            C("promised_date", "date", "Delivery date confirmed by the supplier."),
            C("status", "text", "'open', 'closed' (no more receipts expected) or 'cancelled'."),
        ),
    ),
    Entity(
        system="procurement",
        name="receipts",
        description="Goods receipts against purchase-order lines; a line may be received in several parts.",
        grain="one row per receipt of a purchase order line",
        key=("receipt_id", "po_id", "po_line"),
        feeds="realised lead times, supplier fill, on-hand reconstruction (inflows)",
        columns=(
            C("receipt_id", "text", "Goods-receipt document number.", required=True),
            C("po_id", "text", "Purchase order received against.", required=True),
            C("po_line", "integer", "Purchase order line received against.", required=True),
            C("received_date", "date", "Date the goods were booked into stock.", required=True),
            C("quantity_received", "decimal", "Units received.", required=True, unit="units"),
        ),
    ),
    # ------------------------------------------------------------------ logistics
    Entity(
        system="logistics",
        name="transfers",
        description="Stock transfers between locations (for example distribution centre to store).",
        grain="one row per transfer line",
        key=("transfer_id", "product_id"),
        feeds="on-hand reconstruction (outflow at source, inflow at destination), in-transit units, "
        "store replenishment lead times, a location's turnover (transfers out at cost: a distribution centre "
        "turns on its shipments)",
        columns=(
            C("transfer_id", "text", "Transfer order number.", required=True),
            C("product_id", "text", "Product transferred.", required=True),
            C("from_location_id", "text", "Shipping location.", required=True),
            C("to_location_id", "text", "Receiving location.", required=True),
            C("ordered_date", "date", "Date the transfer was requested."),
            C("shipped_date", "date", "Date stock left the shipping location.", required=True),
            C("received_date", "date", "Date stock was booked in at the destination; blank while in transit."),
            C("quantity", "decimal", "Units shipped.", required=True, unit="units"),
        ),
    ),
    # ------------------------------------------------------------------ finance
    Entity(
        system="finance",
        name="standard_costs",
        description="Standard (or average) unit cost history used to value inventory.",
        grain="one row per product and valid_from date",
        key=("product_id", "valid_from"),
        feeds="inventory value at cost, COGS where no ledger is supplied, GMROI, turnover",
        columns=(
            C("product_id", "text", "Product code.", required=True),
            C("valid_from", "date", "First day this cost applies; it holds until the next valid_from.", required=True),
            C("unit_cost", "decimal", "Cost per unit.", required=True, unit="currency/unit"),
        ),
    ),
    Entity(
        system="finance",
        name="cogs_ledger",
        description="Cost-of-goods-sold postings from the general ledger (sales and reversals for returns).",
        grain="one row per ledger posting",
        key=("posting_id",),
        feeds="COGS in turnover, DIO and GMROI (takes precedence over units x standard cost)",
        columns=(
            C("posting_id", "text", "Ledger line identifier.", required=True),
            C("posting_date", "date", "Accounting date.", required=True),
            C("product_id", "text", "Product code.", required=True),
            C("location_id", "text", "Location code.", required=True),
            C("quantity", "decimal", "Units the posting is for (negative for reversals).", unit="units"),
            C("amount", "decimal", "COGS amount (negative for reversals).", required=True, unit="currency"),
            C("document_ref", "text", "Originating sales transaction, if any."),
        ),
    ),
    # ------------------------------------------------------------------ inventory
    Entity(
        system="inventory",
        name="stock_snapshots",
        description="Book on-hand quantity from the stock system, at the end of the given day.",
        grain="one row per snapshot date, product and location",
        key=("snapshot_date", "product_id", "location_id"),
        feeds="on-hand reconstruction (anchors), inventory value, days of supply, stock-outs",
        extra=(
            "A snapshot is complete for its location and day: a product with activity at that location but no "
            "row in that day's snapshot is taken to have had zero on hand (exports often omit zero rows).",
            "Take a first snapshot on or before the first day of the sales and movement history; before it, "
            "stockturn works on-hand backwards from the first snapshot.",
        ),
        columns=(
            C("snapshot_date", "date", "Day whose closing stock this is.", required=True),
            C("product_id", "text", "Product code.", required=True),
            C("location_id", "text", "Location code.", required=True),
            C("on_hand_qty", "decimal", "Book quantity on hand at close of business.", required=True, unit="units"),
        ),
    ),
    Entity(
        system="inventory",
        name="cycle_counts",
        description="Physical counts: what the stock system said (book) and what was counted.",
        grain="one row per count of a product at a location",
        key=("count_id",),
        feeds="fct_inventory_discrepancies (ghost stock, shrinkage); book reset after a count",
        extra=(
            "stockturn treats a count as posted at close of business on count_date: from then on the book "
            "equals counted_qty, as in ERPs that post count differences as adjustments.",
        ),
        columns=(
            C("count_id", "text", "Count document line.", required=True),
            C("count_date", "date", "Day of the count.", required=True),
            C("product_id", "text", "Product code.", required=True),
            C("location_id", "text", "Location code.", required=True),
            C("book_qty", "decimal", "Quantity the stock system held before the count.", required=True, unit="units"),
            C("counted_qty", "decimal", "Quantity physically counted.", required=True, unit="units"),
        ),
    ),
    # ------------------------------------------------------------------ external signals
    Entity(
        system="calendar",
        name="events",
        description="Holidays, local events, paydays and benefit days that move demand, past and planned.",
        grain="one row per event occurrence and scope",
        key=("event_name", "start_date", "scope", "scope_id"),
        feeds="forecast features (one indicator per event_type, gated per category: docs/signals.md)",
        extra=(
            "A calendar is known in advance: an event listed in the file is used at every forecast origin, "
            "including for past origins. List an event only once it is planned.",
            "scope 'region' matches locations.region; 'location' a location_id; 'all' (or blank) every location.",
        ),
        columns=(
            C("event_name", "text", "Name of the event (for example 'Easter Monday', 'City Marathon').",
              required=True),
            C("event_type", "text", "Kind of event; one forecast feature per type (for example 'holiday', "
              "'local_event', 'payday', 'benefit_day'). Lowercase letters, digits and underscores.", required=True),
            C("start_date", "date", "First day of the event.", required=True),
            C("end_date", "date", "Last day of the event; blank means start_date (a one-day event)."),
            C("scope", "text", "'all' (blank), 'region' or 'location'."),
            C("scope_id", "text", "The region (locations.region) or location_id the event applies to; blank for "
              "scope 'all'."),
        ),
    ),
    Entity(
        system="external",
        name="signals",
        description="External signals (weather, macro indicators, marketing, web traffic), observed or "
        "forecast, with the date each value became known.",
        grain="one row per signal, period, scope and known_date (a later known_date is a revision or a "
        "newer forecast of the same period)",
        key=("signal_name", "period_start", "scope", "scope_id", "known_date"),
        feeds="forecast features (the value and its deviation from the signal's trailing 28-day mean, gated per "
        "category: docs/signals.md)",
        extra=(
            "At a forecast origin a value is used only if its known_date is on or before the origin; of several "
            "values for the same period and scope, the one with the latest such known_date. Beyond the last "
            "known value the feature is missing (a forecast of the signal is used only if it was known by the "
            "origin), so nothing leaks from the future.",
            "A signal's scope is matched to each product-location series: location, then region, then category, "
            "then all; the most specific scope with a known value wins.",
        ),
        columns=(
            C("signal_name", "text", "Signal code (for example 'temperature_c', 'consumer_confidence'). "
              "Lowercase letters, digits and underscores.", required=True),
            C("period_start", "date", "First day the value describes.", required=True),
            C("period_end", "date", "Last day the value describes; blank means period_start (a daily value). "
              "A monthly figure spans its month."),
            C("scope", "text", "'all' (blank), 'region', 'location' or 'category'."),
            C("scope_id", "text", "The region, location_id or category the value applies to; blank for scope "
              "'all'."),
            C("value", "decimal", "The signal's value for the period.", required=True),
            C("known_date", "date", "Day the value became known (published, observed or forecast). Blank means "
              "the day after period_end: an observation known the next day. A weather forecast made on day d "
              "has known_date d; a macro figure published weeks after its month carries its publication day."),
        ),
    ),
)

ENTITIES_BY_NAME: dict[str, Entity] = {e.name: e for e in ENTITIES}
SYSTEMS: tuple[str, ...] = tuple(dict.fromkeys(e.system for e in ENTITIES))

#: Reason codes staging models attach to quarantined rows (``<model>__rejected``).
REJECT_REASONS: dict[str, str] = {
    "repeated_header": "The row repeats the header line (export files concatenated with their headers).",
    "missing_value": "A required column is blank.",
    "invalid_date": "A date or timestamp column does not parse as ISO 8601.",
    "invalid_number": "A numeric column does not parse as a finite number (NaN and infinities included).",
    "invalid_boolean": "A boolean column is not true/false/yes/no/1/0.",
    "invalid_value": "A value is outside the allowed set or range (for example a negative pack size).",
    "duplicate_key": "Another row has the same key; the first row (by file and row number) is kept.",
    "duplicate_line": "An exact copy of another sales line (accidental re-export); the first copy is kept.",
    "unknown_product": "product_id is not in master/products.",
    "unknown_location": "A location_id is not in master/locations.",
    "unknown_scope": "An event's or signal's scope_id is not a known region (locations.region), location or category "
    "(products.category) for its scope, or the scope is not one of all / region / location (/ category for "
    "signals).",
    "unknown_supplier": "supplier_id is not in master/suppliers (only checked when suppliers are supplied).",
    "unknown_purchase_order": "A receipt refers to a purchase-order line that is not in purchase_order_lines.",
    "negative_quantity_not_return": "A negative quantity on a line that is not marked as a return.",
    "negative_price": "A negative list price (sales/prices). Sales lines with a negative unit price are kept: "
    "see the field issue codes.",
    "non_stock_item": "The product is marked non_stock in the product master (fees, postage, services).",
    "future_date": "A transaction (sale, receipt, transfer, count, snapshot, COGS posting) dated after the day of the "
    "build plus "
    "dbt var future_date_tolerance_days (2). Planned promotions and price changes may be in the future.",
    "implausible_date": "A transaction dated before dbt var date_floor (1990-01-01).",
    "implausible_quantity": "A quantity whose absolute size is more than dbt var implausible_quantity_factor (1000) "
    "times the product's own typical quantity in the same file (the median absolute value, at least 1): sales "
    "lines, purchase-order lines, transfers, stock snapshots, cycle counts (counted or book quantity), COGS postings, "
    "and receipts "
    "(judged against the larger of the order line's quantity and the product's median receipt). A fat-finger 1e15 "
    "is caught; a spare part and a bag of sugar are each judged against their own scale.",
    "implausible_price": "A standard cost or list price more than dbt var implausible_price_factor (100) times the "
    "product's typical price: its median positive selling price (sales lines), else the median of the file's own "
    "positive values for the product; a COGS posting whose absolute amount is more than implausible_quantity_factor "
    "(1000) times the product's median posting amount. Sales-line prices and purchase-order costs are kept rows "
    "with a field issue instead (their units count).",
    # set by the loader, for CSV records that cannot be split into the file's columns (raw._load_rejects)
    "too_many_fields": "A CSV record has more fields than the header.",
    "too_few_fields": "A CSV record has fewer fields than the header.",
    "bad_quoting": "A CSV record has a stray or unbalanced quote on one line.",
    "invalid_utf8": "A CSV record is not valid UTF-8.",
    "line_too_long": "A CSV record is longer than the reader's maximum line size.",
}


#: Issue codes of kept rows whose value in one field could not be used: the value is set to null and flagged, the
#: row is kept (``marts.data_quality_field_issues``; counted as kept in ``marts.data_quality_reconciliation``).
FIELD_ISSUES: dict[str, str] = {
    "negative_price": "sales_lines.unit_price is negative: the line's units count, its price and revenue are null.",
    "invalid_price": "sales_lines.unit_price is not a number (or not finite): the line's units count, its price and "
    "revenue are null.",
    "implausible_price": "sales_lines.unit_price is more than dbt var implausible_price_factor (100) times the "
    "product's median positive unit price, or purchase_order_lines.unit_cost more than that factor times the "
    "product's typical price (median selling price, else median order cost): the value is null, the row kept.",
    "unknown_location": "locations.replenished_from names a location that is not in master/locations (or was "
    "quarantined): it is set to null, so the location is planned as buying direct; the location and its sales are "
    "kept.",
}


def entity(name: str) -> Entity:
    try:
        return ENTITIES_BY_NAME[name]
    except KeyError:
        known = ", ".join(sorted(ENTITIES_BY_NAME))
        raise KeyError(f"unknown landing entity {name!r}; known: {known}") from None
