-- One row per day, product and selling location, every day from the product-location's first activity to the
-- as-of date (days without sales are rows with zero units): units, revenue, COGS, returns, price and
-- promotion, and whether the shelf was empty (a stock-out day, on which recorded sales understate demand).
with bounds as (
    select as_of_date from {{ ref('int_calendar_bounds') }}
),

availability as (
    select * from {{ ref('int_source_availability') }}
),

product_locations as (
    select product_id, location_id, first_activity_date
    from {{ ref('int_product_locations') }}
    where has_sales
),

spine as (
    select
        product_id,
        location_id,
        cast(unnest(generate_series(
            cast(first_activity_date as timestamp),
            cast((select as_of_date from bounds) as timestamp),
            interval 1 day
        )) as date) as date_day
    from product_locations
),

sales as (
    select
        sold_on as date_day,
        product_id,
        location_id,
        sum(units_sold) as units_sold,
        sum(units_returned) as units_returned,
        sum(net_units) as net_units,
        sum(gross_sales_amount) as gross_sales_amount,
        sum(returns_amount) as returns_amount,
        sum(net_sales_amount) as net_sales_amount,
        count(*) as sales_lines
    from {{ ref('stg_sales__sales_lines') }}
    group by all
),

ledger as (
    select
        posting_date as date_day,
        product_id,
        location_id,
        sum(amount) as cogs_amount
    from {{ ref('stg_finance__cogs_ledger') }}
    group by all
),

inventory as (
    select date_day, product_id, location_id, on_hand_units, is_stockout_day, unit_cost
    from {{ ref('fct_inventory_daily') }}
),

location_prices as (
    select product_id, location_id, valid_from, list_price
    from {{ ref('stg_sales__prices') }}
    where location_id is not null
),

generic_prices as (
    select product_id, valid_from, list_price
    from {{ ref('stg_sales__prices') }}
    where location_id is null
),

products as (
    select product_id, list_price from {{ ref('stg_master__products') }}
),

joined as (
    select
        spine.date_day,
        spine.product_id,
        spine.location_id,
        coalesce(sales.units_sold, 0) as units_sold,
        coalesce(sales.units_returned, 0) as units_returned,
        coalesce(sales.net_units, 0) as net_units,
        coalesce(sales.gross_sales_amount, 0) as gross_sales_amount,
        coalesce(sales.returns_amount, 0) as returns_amount,
        coalesce(sales.net_sales_amount, 0) as net_sales_amount,
        coalesce(sales.sales_lines, 0) as sales_lines,
        ledger.cogs_amount as ledger_cogs_amount,
        inventory.unit_cost,
        inventory.on_hand_units,
        inventory.is_stockout_day
    from spine
    left join sales
        on spine.product_id = sales.product_id
        and spine.location_id = sales.location_id
        and spine.date_day = sales.date_day
    left join ledger
        on spine.product_id = ledger.product_id
        and spine.location_id = ledger.location_id
        and spine.date_day = ledger.date_day
    left join inventory
        on spine.product_id = inventory.product_id
        and spine.location_id = inventory.location_id
        and spine.date_day = inventory.date_day
),

priced as (
    select
        joined.*,
        location_prices.list_price as location_list_price
    from joined
    asof left join location_prices
        on joined.product_id = location_prices.product_id
        and joined.location_id = location_prices.location_id
        and joined.date_day >= location_prices.valid_from
),

generic_priced as (
    select
        priced.*,
        generic_prices.list_price as generic_list_price
    from priced
    asof left join generic_prices
        on priced.product_id = generic_prices.product_id
        and priced.date_day >= generic_prices.valid_from
)

select
    generic_priced.date_day,
    generic_priced.product_id,
    generic_priced.location_id,
    generic_priced.units_sold,
    generic_priced.units_returned,
    generic_priced.net_units,
    generic_priced.gross_sales_amount,
    generic_priced.returns_amount,
    generic_priced.net_sales_amount,
    generic_priced.sales_lines,
    generic_priced.gross_sales_amount / nullif(generic_priced.units_sold, 0) as avg_selling_price,
    coalesce(generic_priced.location_list_price, generic_priced.generic_list_price, products.list_price)
        as list_price,
    promotions.promotion_id,
    coalesce(promotions.discount_pct, 0) as promotion_discount_pct,
    promotions.promotion_id is not null as is_on_promotion,
    generic_priced.net_units * generic_priced.unit_cost as cogs_at_standard_cost,
    case
        when availability.has_cogs_ledger then coalesce(generic_priced.ledger_cogs_amount, 0)
        else generic_priced.net_units * generic_priced.unit_cost
    end as cogs_amount,
    case
        when availability.has_cogs_ledger then 'ledger'
        when generic_priced.unit_cost is not null then 'standard_cost'
        else 'unavailable'
    end as cogs_basis,
    generic_priced.on_hand_units,
    generic_priced.is_stockout_day
from generic_priced
cross join availability
left join products on generic_priced.product_id = products.product_id
left join {{ ref('int_promotion_days') }} as promotions
    on generic_priced.product_id = promotions.product_id
    and generic_priced.location_id = promotions.location_id
    and generic_priced.date_day = promotions.date_day
