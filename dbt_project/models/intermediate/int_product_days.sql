-- One row per product and day of its history (from the earliest history start of any of its locations to the
-- as-of date): the standard cost and the generic list price valid that day. Looked up once per product and
-- day, so the large daily facts join them on equality instead of searching the cost history per row.
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
)

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
