-- One row per day, product and selling location, every day from the product-location's first activity to the
-- as-of date (days without sales are rows with zero units): units, revenue, COGS, returns, price and
-- promotion, and whether the shelf was empty (a stock-out day, on which recorded sales understate demand).
-- Lines without a usable unit price (none exported, or negative / not a number: stg_sales__sales_lines.price_issue)
-- count in the units and are left out of the amounts; unpriced_sales_lines says how many there were.
-- The day grid, units and on-hand come from fct_inventory_daily (whose history covers these days), so the
-- only large join is with the days that have sales or ledger postings.
--
-- Incremental (delete+insert on product_location_key x date_day): a build writes the days fct_inventory_daily
-- rewrote (units, on-hand, cost, available sources), the days of the sales lines and COGS postings staged or
-- withdrawn since its last build (found from their build stamps and the staging *__withdrawn logs, not by comparing
-- every day's amounts; every amount day when staging was built whole), the days whose promotion changed, every
-- day of a product whose master or location price lists changed (int_product_price_lists) and of a
-- product-location whose first activity moved. The pre-hook removes
-- the rows no longer on the grid. A chain of nightly builds equals a full rebuild (tests/test_incremental_mart.py).
-- depends_on: {{ ref('int_calendar_bounds') }} (the pre-hook's)
-- depends_on: {{ ref('int_product_price_lists') }}
-- depends_on: {{ ref('stg_sales__sales_lines__withdrawn') }}
-- depends_on: {{ ref('stg_finance__cogs_ledger__withdrawn') }}
-- sqlfluff:indentation:template_blocks_indent:False
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['product_location_key', 'date_day'],
    on_schema_change='fail',
    pre_hook="{{ off_grid_delete('product_location_key', 'first_activity_date', 'product_locations.has_sales') }}",
) }}

with availability as (
    select * from {{ ref('int_source_availability') }}
),

product_locations as (
    select
        product_location_key,
        product_id,
        location_id,
        first_activity_date
    from {{ ref('int_product_locations') }}
    where has_sales
),

{% if is_incremental() %}
last_build as (
    select max(_built_at) as built_at from {{ this }}
),

first_kept_lines as (
    select min(_built_at) as built_at from {{ ref('stg_sales__sales_lines') }}
),

first_kept_postings as (
    select min(_built_at) as built_at from {{ ref('stg_finance__cogs_ledger') }}
),

restaged as (
    -- whether the kept lines or postings were all written since this table's last build (staging built whole):
    -- then the lines withdrawn meanwhile are not on record, and every stored amount day is written again
    select
        coalesce(first_kept_lines.built_at > last_build.built_at, false)
        or coalesce(first_kept_postings.built_at > last_build.built_at, false) as is_whole
    from last_build
    cross join first_kept_lines
    cross join first_kept_postings
),

amount_changes as (
    -- the days whose sales amounts or ledger COGS can have changed since this table's last build: the days of
    -- lines and postings staged since (new, corrected, judged again), of those withdrawn since (removed, or
    -- replaced by a corrected file), and every stored amount day when staging was built whole
    select
        product_id,
        location_id,
        sold_on as date_day
    from {{ ref('stg_sales__sales_lines') }}
    where _built_at > (select last_build.built_at from last_build)
    union
    select
        product_id,
        location_id,
        posting_date as date_day
    from {{ ref('stg_finance__cogs_ledger') }}
    where _built_at > (select last_build.built_at from last_build)
    union
    select
        product_id,
        location_id,
        date_day
    from {{ ref('stg_sales__sales_lines__withdrawn') }}
    where _built_at > (select last_build.built_at from last_build)
    union
    select
        product_id,
        location_id,
        date_day
    from {{ ref('stg_finance__cogs_ledger__withdrawn') }}
    where _built_at > (select last_build.built_at from last_build)
    union
    select
        product_id,
        location_id,
        date_day
    from {{ this }}
    where
        (select restaged.is_whole from restaged)
        and (sales_lines > 0 or (cogs_basis = 'ledger' and cogs_amount <> 0))
),

stored_promotions as (
    select
        product_id,
        location_id,
        date_day,
        promotion_id,
        promotion_discount_pct
    from {{ this }}
    where promotion_id is not null
),

promotion_changes as (
    -- days whose promotion is not the stored one
    select
        coalesce(promotion_days.product_id, stored_promotions.product_id) as product_id,
        coalesce(promotion_days.location_id, stored_promotions.location_id) as location_id,
        coalesce(promotion_days.date_day, stored_promotions.date_day) as date_day
    from {{ ref('int_promotion_days') }} as promotion_days
    full outer join stored_promotions
        on
            promotion_days.product_id = stored_promotions.product_id
            and promotion_days.location_id = stored_promotions.location_id
            and promotion_days.date_day = stored_promotions.date_day
    where
        promotion_days.product_id is null
        or stored_promotions.product_id is null
        or promotion_days.promotion_id is distinct from stored_promotions.promotion_id
        or coalesce(promotion_days.discount_pct, 0) <> stored_promotions.promotion_discount_pct
),

stored_first_days as (
    select
        product_location_key,
        min(date_day) as first_day
    from {{ this }}
    group by product_location_key
),

rewritten_locations as (
    -- every day of a product whose price lists changed, and of a product-location whose first activity moved
    select product_locations.product_location_key
    from product_locations
    inner join {{ ref('int_product_price_lists') }} as price_lists
        on product_locations.product_id = price_lists.product_id
    where price_lists._built_at = {{ build_stamp() }}
    union
    select product_locations.product_location_key
    from product_locations
    left join stored_first_days
        on product_locations.product_location_key = stored_first_days.product_location_key
    where stored_first_days.first_day is distinct from product_locations.first_activity_date
),

changed_days as (
    select
        product_id,
        location_id,
        date_day
    from amount_changes
    union
    select
        product_id,
        location_id,
        date_day
    from promotion_changes
),

rewritten_days as (
    select
        product_locations.product_location_key,
        changes.date_day
    from changed_days as changes
    inner join product_locations
        on
            changes.product_id = product_locations.product_id
            and changes.location_id = product_locations.location_id
),

dirty_days as (
    -- the days this build writes: those fct_inventory_daily rewrote, and the ones above
    select
        product_location_key,
        date_day
    from {{ ref('fct_inventory_daily') }}
    where _built_at = {{ build_stamp() }}
    union
    select
        inventory.product_location_key,
        inventory.date_day
    from {{ ref('fct_inventory_daily') }} as inventory
    where
        exists (
            select 1
            from rewritten_locations
            where rewritten_locations.product_location_key = inventory.product_location_key
        )
    union
    select
        product_location_key,
        date_day
    from rewritten_days
),

dirty_keys as (
    -- the same days by product and location: the lines and postings whose amounts this build sums
    select
        product_locations.product_id,
        product_locations.location_id,
        dirty_days.date_day
    from dirty_days
    inner join product_locations
        on dirty_days.product_location_key = product_locations.product_location_key
),
{% endif %}

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
    from {{ ref('stg_sales__sales_lines') }} as sold_lines
    {% if is_incremental() -%}
    where {{ on_product_location_days('dirty_keys', 'sold_lines', 'sold_on') }}
    {%- endif %}
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
    from {{ ref('stg_finance__cogs_ledger') }} as postings
    {% if is_incremental() -%}
    where {{ on_product_location_days('dirty_keys', 'postings', 'posting_date') }}
    {%- endif %}
),

amounts as (
    -- summed by the integer product_location_key: the lines and postings of a product-location that does not sell
    -- have no row in this table anyway (selling_days below)
    select
        sales_amounts.date_day,
        product_locations.product_location_key,
        sum(sales_amounts.gross_sales_amount) as gross_sales_amount,
        sum(sales_amounts.returns_amount) as returns_amount,
        sum(sales_amounts.net_sales_amount) as net_sales_amount,
        sum(sales_amounts.priced_units_sold) as priced_units_sold,
        cast(sum(sales_amounts.sales_line) as bigint) as sales_lines,
        cast(sum(sales_amounts.unpriced_sales_line) as bigint) as unpriced_sales_lines,
        sum(sales_amounts.ledger_cogs_amount) as ledger_cogs_amount
    from sales_amounts
    inner join product_locations
        on
            sales_amounts.product_id = product_locations.product_id
            and sales_amounts.location_id = product_locations.location_id
    group by all
),

-- not materialized: read twice (the rows, and the days that need a location price), a scan and a small join each
selling_days as not materialized (
    select
        inventory.date_day,
        inventory.product_id,
        inventory.location_id,
        inventory.product_location_key,
        inventory.units_sold,
        inventory.units_returned,
        inventory.unit_cost,
        inventory.on_hand_units,
        inventory.is_stockout_day
    from {{ ref('fct_inventory_daily') }} as inventory
    inner join product_locations
        on
            inventory.product_location_key = product_locations.product_location_key
            and inventory.date_day >= product_locations.first_activity_date
    {% if is_incremental() -%}
    where
        exists (
            select 1
            from dirty_days
            where
                dirty_days.product_location_key = inventory.product_location_key
                and dirty_days.date_day = inventory.date_day
        )
    {%- endif %}
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
            selling_days.product_location_key = amounts.product_location_key
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
    generic_priced.unpriced_sales_lines,
    generic_priced.product_location_key,
    {{ build_stamp() }} as _built_at
from generic_priced
cross join availability
left join products on generic_priced.product_id = products.product_id
left join {{ ref('int_promotion_days') }} as promotions
    on
        generic_priced.product_id = promotions.product_id
        and generic_priced.location_id = promotions.location_id
        and generic_priced.date_day = promotions.date_day
