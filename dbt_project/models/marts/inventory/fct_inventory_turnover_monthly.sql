-- Monthly turnover, days inventory outstanding, GMROI, stock-outs and sell-through, per product x location and
-- rolled up (grain column): product, category x location, category, location, company.
--
-- Formulas (period = the calendar month, clipped to the history for the first and last month):
--   average inventory value = sum of daily closing inventory values at cost / days in the period
--                             (days before a product was stocked count as zero, so roll-ups add up)
--   outflow at cost          = what leaves the stock of the row, at cost. It depends on the grain:
--                              location grains (product_location, category_location, location):
--                                  COGS + transfers out to other locations at standard cost, so a distribution
--                                  centre, which ships to stores rather than selling, turns on its shipments;
--                              grains summed over every location (product, category, company):
--                                  COGS only: a transfer between two own locations does not leave the company
--                                  (it is out of one location and into another), so it is not counted twice.
--   inventory turnover       = outflow at cost / average inventory value          (for the period)
--   annualised turnover      = inventory turnover x 365 / days in the period
--   days inventory outstanding (DIO) = average inventory value / outflow at cost x days in the period
--   gross margin             = net sales - COGS (margin comes from sales only, transfers earn none)
--   GMROI                    = gross margin / average inventory value        (for the period; also annualised)
--   sell-through             = units sold / (units on hand at the start + units received in the period)
--   stock-out rate           = stock-out days / product-location days
--
-- Incremental, a month at a time (every grain of a month at once). The pre-hook
-- (macros/incremental_models.sql, turnover_months_to_rewrite_delete) deletes the months to rewrite: those of the
-- daily rows fct_inventory_daily and fct_sales_daily wrote in this build (their _built_at), the months whose
-- stored product-location days are not the grid's (a product-location gone or starting on another day, whose rows
-- those facts' pre-hooks deleted), the months whose length or partial flag moved with the history bounds, the
-- months of a product whose category changed, and the months outside the history. The model then appends the
-- history's months the table does not hold. (A delete+insert keyed on the month joined every stored row of a
-- month with every new one: 9 s for one month at M5 size.) A chain of nightly builds equals a full rebuild
-- (tests/test_incremental_mart.py).
-- depends_on: {{ ref('int_product_locations') }} (the pre-hook's grid)
-- sqlfluff:indentation:template_blocks_indent:False
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ turnover_months_to_rewrite_delete() }}",
) }}

with bounds as (
    select
        history_start_date,
        as_of_date
    from {{ ref('int_calendar_bounds') }}
),

products as (
    select
        product_id,
        category
    from {{ ref('dim_product') }}
),

{% if is_incremental() %}
dirty_months as (
    -- the months this build writes: the pre-hook deleted the months to rewrite, so they are the history's months
    -- the table does not hold
    {{ history_month_starts('bounds') }}
    except
    select month_start_date from {{ this }}
),
{% endif %}

inventory_monthly as (
    select
        cast(date_trunc('month', date_day) as date) as month_start_date,
        product_id,
        location_id,
        sum(on_hand_value) as inventory_value_days,
        sum(on_hand_units) as inventory_unit_days,
        count(*) filter (where valuation_basis <> 'standard_cost') as unvalued_days,
        -- null, not zero, where on-hand is unknown
        sum(case when is_stockout_day then 1 when not is_stockout_day then 0 end) as stockout_days,
        count(*) as product_location_days,
        arg_min(on_hand_open_units, date_day) as opening_units,
        sum(units_received + transfers_in_units) as units_received,
        sum(transfers_out_units * unit_cost) as transfers_out_cost
    from {{ ref('fct_inventory_daily') }}
    {% if is_incremental() -%}
    where cast(date_trunc('month', date_day) as date) in (select dirty_months.month_start_date from dirty_months)
    {%- endif %}
    group by all
),

sales_monthly as (
    select
        cast(date_trunc('month', date_day) as date) as month_start_date,
        product_id,
        location_id,
        sum(units_sold) as units_sold,
        sum(net_units) as net_units_sold,
        sum(net_sales_amount) as net_sales_amount,
        sum(cogs_amount) as cogs_amount,
        count(*) filter (where cogs_basis = 'unavailable' and net_units <> 0) as uncosted_sales_days
    from {{ ref('fct_sales_daily') }}
    {% if is_incremental() -%}
    where cast(date_trunc('month', date_day) as date) in (select dirty_months.month_start_date from dirty_months)
    {%- endif %}
    group by all
),

combined as (
    select
        coalesce(inventory_monthly.month_start_date, sales_monthly.month_start_date) as month_start_date,
        coalesce(inventory_monthly.product_id, sales_monthly.product_id) as product_id,
        coalesce(inventory_monthly.location_id, sales_monthly.location_id) as location_id,
        inventory_monthly.inventory_value_days,
        inventory_monthly.inventory_unit_days,
        coalesce(inventory_monthly.unvalued_days, 0) as unvalued_days,
        inventory_monthly.stockout_days,
        coalesce(inventory_monthly.product_location_days, 0) as product_location_days,
        coalesce(inventory_monthly.opening_units, 0) as opening_units,
        coalesce(inventory_monthly.units_received, 0) as units_received,
        coalesce(inventory_monthly.transfers_out_cost, 0) as transfers_out_cost,
        coalesce(sales_monthly.units_sold, 0) as units_sold,
        coalesce(sales_monthly.net_units_sold, 0) as net_units_sold,
        coalesce(sales_monthly.net_sales_amount, 0) as net_sales_amount,
        -- a product-location that does not sell (a distribution centre) has no COGS: zero, not unknown
        coalesce(sales_monthly.cogs_amount, case when sales_monthly.product_id is null then 0 end) as cogs_amount,
        coalesce(sales_monthly.uncosted_sales_days, 0) as uncosted_sales_days
    from inventory_monthly
    full outer join sales_monthly
        on
            inventory_monthly.month_start_date = sales_monthly.month_start_date
            and inventory_monthly.product_id = sales_monthly.product_id
            and inventory_monthly.location_id = sales_monthly.location_id
),

rolled_up as (
    select
        case
            when grouping(combined.product_id) = 0 and grouping(combined.location_id) = 0 then 'product_location'
            when grouping(combined.product_id) = 0 then 'product'
            when grouping(products.category) = 0 and grouping(combined.location_id) = 0 then 'category_location'
            when grouping(products.category) = 0 then 'category'
            when grouping(combined.location_id) = 0 then 'location'
            else 'company'
        end as grain,
        combined.month_start_date,
        combined.product_id,
        combined.location_id,
        products.category,
        sum(combined.inventory_value_days) as inventory_value_days,
        sum(combined.inventory_unit_days) as inventory_unit_days,
        sum(combined.unvalued_days) as unvalued_days,
        sum(combined.stockout_days) as stockout_days,
        sum(combined.product_location_days) as product_location_days,
        sum(combined.opening_units) as opening_units,
        sum(combined.units_received) as units_received,
        sum(combined.transfers_out_cost) as transfers_out_cost,
        sum(combined.units_sold) as units_sold,
        sum(combined.net_units_sold) as net_units_sold,
        sum(combined.net_sales_amount) as net_sales_amount,
        sum(combined.cogs_amount) as cogs_amount,
        sum(combined.uncosted_sales_days) as uncosted_sales_days
    from combined
    left join products on combined.product_id = products.product_id
    -- sqlfluff's duckdb dialect cannot parse `grouping sets` (its postgres dialect can), and then takes `grouping`
    -- for a column reference
    group by grouping sets (  -- noqa: PRS, RF02
        (combined.month_start_date, combined.product_id, combined.location_id, products.category),
        (combined.month_start_date, combined.product_id, products.category),
        (combined.month_start_date, products.category, combined.location_id),
        (combined.month_start_date, products.category),
        (combined.month_start_date, combined.location_id),
        (combined.month_start_date)
    )
),

periods as (
    select
        rolled_up.*,
        cast(
            least(last_day(rolled_up.month_start_date), bounds.as_of_date)
            - greatest(rolled_up.month_start_date, bounds.history_start_date)
            + 1 as integer
        ) as period_days,
        rolled_up.month_start_date < bounds.history_start_date
        or last_day(rolled_up.month_start_date) > bounds.as_of_date as is_partial_month
    from rolled_up
    cross join bounds
),

measures as (
    select
        *,
        inventory_value_days / period_days as avg_inventory_value,
        inventory_unit_days / period_days as avg_inventory_units,
        net_sales_amount - cogs_amount as gross_margin,
        -- a location's stock leaves it by sales and by transfers out; the company's only by sales
        case
            when grain in ('product_location', 'category_location', 'location')
                then cogs_amount + transfers_out_cost
            else cogs_amount
        end as outflow_at_cost
    from periods
)

select
    grain,
    month_start_date,
    product_id,
    location_id,
    category,
    period_days,
    is_partial_month,
    cast(product_location_days as bigint) as product_location_days,
    units_sold,
    net_units_sold,
    net_sales_amount,
    cogs_amount,
    gross_margin,
    avg_inventory_units,
    avg_inventory_value,
    transfers_out_cost,
    outflow_at_cost,
    outflow_at_cost / nullif(avg_inventory_value, 0) as inventory_turnover,
    outflow_at_cost / nullif(avg_inventory_value, 0) * 365.0 / period_days as inventory_turnover_annualised,
    case when outflow_at_cost > 0 then avg_inventory_value / outflow_at_cost * period_days end
        as days_inventory_outstanding,
    gross_margin / nullif(avg_inventory_value, 0) as gmroi,
    gross_margin / nullif(avg_inventory_value, 0) * 365.0 / period_days as gmroi_annualised,
    opening_units,
    units_received,
    units_sold / nullif(opening_units + units_received, 0) as sell_through_rate,
    cast(stockout_days as bigint) as stockout_days,
    stockout_days / nullif(product_location_days, 0) as stockout_rate,
    cast(unvalued_days as bigint) as unvalued_product_location_days,
    cast(uncosted_sales_days as bigint) as uncosted_sales_days,
    {{ build_stamp() }} as _built_at
from measures
