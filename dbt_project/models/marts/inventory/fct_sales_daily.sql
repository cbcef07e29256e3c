-- One row per day, product and selling location, every day from the product-location's first activity to the
-- as-of date (days without sales are rows with zero units): units, revenue, COGS, returns, price and
-- promotion, and whether the shelf was empty (a stock-out day, on which recorded sales understate demand).
-- Lines without a usable unit price (none exported, or negative / not a number: stg_sales__sales_lines.price_issue)
-- count in the units and are left out of the amounts; unpriced_sales_lines says how many there were.
-- The day grid, units and on-hand come from fct_inventory_daily (whose history covers these days), so the
-- only large join is with the days that have sales or ledger postings.
with availability as (
    select * from {{ ref('int_source_availability') }}
),

product_locations as (
    select
        product_id,
        location_id,
        first_activity_date
    from {{ ref('int_product_locations') }}
    where has_sales
),

-- not materialized: read twice (the rows, and the days that need a location price), a scan and a small join each
selling_days as not materialized (
    select
        inventory.date_day,
        inventory.product_id,
        inventory.location_id,
        inventory.units_sold,
        inventory.units_returned,
        inventory.unit_cost,
        inventory.on_hand_units,
        inventory.is_stockout_day
    from {{ ref('fct_inventory_daily') }} as inventory
    inner join product_locations
        on
            inventory.product_id = product_locations.product_id
            and inventory.location_id = product_locations.location_id
            and inventory.date_day >= product_locations.first_activity_date
),

sales_amounts as (
    select
        sold_on as date_day,
        product_id,
        location_id,
        gross_sales_amount,
        returns_amount,
        net_sales_amount,
        case when unit_price is not null then units_sold else 0 end as priced_units_sold,
        1 as sales_line,
        case when unit_price is null then 1 else 0 end as unpriced_sales_line,
        cast(null as double) as ledger_cogs_amount
    from {{ ref('stg_sales__sales_lines') }}
    union all
    select
        posting_date as date_day,
        product_id,
        location_id,
        null as gross_sales_amount,
        null as returns_amount,
        null as net_sales_amount,
        0 as priced_units_sold,
        0 as sales_line,
        0 as unpriced_sales_line,
        amount as ledger_cogs_amount
    from {{ ref('stg_finance__cogs_ledger') }}
),

amounts as (
    select
        date_day,
        product_id,
        location_id,
        sum(gross_sales_amount) as gross_sales_amount,
        sum(returns_amount) as returns_amount,
        sum(net_sales_amount) as net_sales_amount,
        sum(priced_units_sold) as priced_units_sold,
        cast(sum(sales_line) as bigint) as sales_lines,
        cast(sum(unpriced_sales_line) as bigint) as unpriced_sales_lines,
        sum(ledger_cogs_amount) as ledger_cogs_amount
    from sales_amounts
    group by all
),

joined as (
    select
        selling_days.*,
        coalesce(amounts.gross_sales_amount, 0) as gross_sales_amount,
        coalesce(amounts.returns_amount, 0) as returns_amount,
        coalesce(amounts.net_sales_amount, 0) as net_sales_amount,
        coalesce(amounts.priced_units_sold, 0) as priced_units_sold,
        coalesce(amounts.sales_lines, 0) as sales_lines,
        coalesce(amounts.unpriced_sales_lines, 0) as unpriced_sales_lines,
        amounts.ledger_cogs_amount
    from selling_days
    left join amounts
        on
            selling_days.product_id = amounts.product_id
            and selling_days.location_id = amounts.location_id
            and selling_days.date_day = amounts.date_day
),

location_prices as (
    select
        product_id,
        location_id,
        valid_from,
        list_price
    from {{ ref('stg_sales__prices') }}
    where location_id is not null
),

product_days as (
    select
        product_id,
        date_day,
        generic_list_price
    from {{ ref('int_product_days') }}
),

products as (
    select
        product_id,
        list_price
    from {{ ref('stg_master__products') }}
),

location_priced_days as (
    -- the location's own list price on each day, for the product-locations that have one: an as-of join on the
    -- narrow day keys only (sorting every wide row of the fact for it cost most of this model's time at scale,
    -- even when no location has its own prices)
    select
        location_days.product_id,
        location_days.location_id,
        location_days.date_day,
        location_prices.list_price as location_list_price
    from (
        select
            selling_days.product_id,
            selling_days.location_id,
            selling_days.date_day
        from selling_days
        where exists (
            select 1
            from location_prices as priced_locations
            where
                priced_locations.product_id = selling_days.product_id
                and priced_locations.location_id = selling_days.location_id
        )
    ) as location_days
    asof inner join location_prices
        on
            location_days.product_id = location_prices.product_id
            and location_days.location_id = location_prices.location_id
            and location_days.date_day >= location_prices.valid_from
),

priced as (
    select
        joined.*,
        location_priced_days.location_list_price
    from joined
    left join location_priced_days
        on
            joined.product_id = location_priced_days.product_id
            and joined.location_id = location_priced_days.location_id
            and joined.date_day = location_priced_days.date_day
),

generic_priced as (
    select
        priced.*,
        product_days.generic_list_price
    from priced
    left join product_days
        on
            priced.product_id = product_days.product_id
            and priced.date_day = product_days.date_day
)

select
    generic_priced.date_day,
    generic_priced.product_id,
    generic_priced.location_id,
    generic_priced.units_sold,
    generic_priced.units_returned,
    generic_priced.units_sold - generic_priced.units_returned as net_units,
    generic_priced.gross_sales_amount,
    generic_priced.returns_amount,
    generic_priced.net_sales_amount,
    generic_priced.sales_lines,
    generic_priced.gross_sales_amount / nullif(generic_priced.priced_units_sold, 0) as avg_selling_price,
    coalesce(generic_priced.location_list_price, generic_priced.generic_list_price, products.list_price)
        as list_price,
    promotions.promotion_id,
    coalesce(promotions.discount_pct, 0) as promotion_discount_pct,
    promotions.promotion_id is not null as is_on_promotion,
    (generic_priced.units_sold - generic_priced.units_returned) * generic_priced.unit_cost as cogs_at_standard_cost,
    case
        when availability.has_cogs_ledger then coalesce(generic_priced.ledger_cogs_amount, 0)
        else (generic_priced.units_sold - generic_priced.units_returned) * generic_priced.unit_cost
    end as cogs_amount,
    case
        when availability.has_cogs_ledger then 'ledger'
        when generic_priced.unit_cost is not null then 'standard_cost'
        else 'unavailable'
    end as cogs_basis,
    generic_priced.on_hand_units,
    generic_priced.is_stockout_day,
    generic_priced.unpriced_sales_lines
from generic_priced
cross join availability
left join products on generic_priced.product_id = products.product_id
left join {{ ref('int_promotion_days') }} as promotions
    on
        generic_priced.product_id = promotions.product_id
        and generic_priced.location_id = promotions.location_id
        and generic_priced.date_day = promotions.date_day
