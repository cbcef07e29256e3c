-- One row per product and day of its history (from the earliest history start of any of its locations to the
-- as-of date): the standard cost and the generic list price valid that day. Looked up once per product and
-- day, so the large daily facts join them on equality instead of searching the cost history per row.
--
-- Incremental: every day is computed (a few million narrow rows), but only the days whose cost or price differ
-- from the stored ones are written, stamped with the build (_built_at): a corrected cost from last March
-- rewrites the product's days from March in the daily facts, and a night with no cost change writes only the
-- new day. The pre-hook removes the days no longer on the grid (a product gone, a history that starts later, an
-- as-of date moved back).
-- sqlfluff:indentation:template_blocks_indent:False
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['product_id', 'date_day'],
    on_schema_change='fail',
    pre_hook="{{ off_grid_delete('product_id', 'history_start_date') }}",
) }}

with bounds as (
    select as_of_date from {{ ref('int_calendar_bounds') }}
),

products as (
    select
        product_id,
        min(history_start_date) as first_date
    from {{ ref('int_product_locations') }}
    group by all
),

days as (
    select
        product_id,
        cast(unnest(generate_series(
            cast(first_date as timestamp),
            cast((select bounds.as_of_date from bounds) as timestamp),
            interval 1 day
        )) as date) as date_day
    from products
),

costs as (
    select
        product_id,
        valid_from,
        unit_cost
    from {{ ref('stg_finance__standard_costs') }}
),

generic_prices as (
    select
        product_id,
        valid_from,
        list_price
    from {{ ref('stg_sales__prices') }}
    where location_id is null
),

costed as (
    select
        days.product_id,
        days.date_day,
        costs.unit_cost
    from days
    asof left join costs
        on
            days.product_id = costs.product_id
            and days.date_day >= costs.valid_from
),

priced as (
    select
        costed.product_id,
        costed.date_day,
        costed.unit_cost,
        generic_prices.list_price as generic_list_price
    from costed
    asof left join generic_prices
        on
            costed.product_id = generic_prices.product_id
            and costed.date_day >= generic_prices.valid_from
)

select
    priced.*,
    {{ build_stamp() }} as _built_at
from priced
{% if is_incremental() %}
left join {{ this }} as stored_days
    on
        priced.product_id = stored_days.product_id
        and priced.date_day = stored_days.date_day
where
    stored_days.product_id is null
    or priced.unit_cost is distinct from stored_days.unit_cost
    or priced.generic_list_price is distinct from stored_days.generic_list_price
{% endif %}
