-- One row per cycle count: book quantity vs counted quantity, in units and at the standard cost of the count
-- day. Negative discrepancies are shrinkage (book higher than shelf); a count of zero against a positive book
-- is ghost stock: the system believed there was stock, so nothing was reordered while the shelf was empty.
--
-- Incremental (delete+insert on count_id). A nightly build rewrites only the counts that can have changed since
-- its last build: counts new, gone, or with another quantity or cost (the counts are small: compared whole), and
-- the counts on or after a day whose sales changed at their product-location (the movement days written since,
-- and the days the sales staging withdrew lines from: stg_sales__sales_lines__withdrawn), whose last sale may
-- have moved. A count gone is written as a row of nulls, which the post-hook deletes. `stockturn build
-- --full-refresh` rebuilds it from scratch; tests/test_incremental_mart.py proves a chain of nightly builds
-- equals a full rebuild.
-- depends_on: {{ ref('stg_sales__sales_lines__withdrawn') }}
-- sqlfluff:indentation:template_blocks_indent:False
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='count_id',
    on_schema_change='fail',
    post_hook="delete from {{ this }} where count_date is null",
) }}

with counts as (
    select * from {{ ref('stg_inventory__cycle_counts') }}
),

costs as (
    select
        product_id,
        valid_from,
        unit_cost
    from {{ ref('stg_finance__standard_costs') }}
),

valued as (
    select
        counts.*,
        costs.unit_cost
    from counts
    asof left join costs
        on
            counts.product_id = costs.product_id
            and counts.count_date >= costs.valid_from
),

{% if is_incremental() %}
last_build as (
    select coalesce(max(_built_at), cast('-infinity' as timestamp)) as built_at from {{ this }}
),

changed_sales as (
    -- per product-location, the first day whose sales can have changed since the last build
    select
        product_id,
        location_id,
        min(date_day) as changed_from
    from (
        select
            product_id,
            location_id,
            date_day
        from {{ ref('int_stock_movements_daily') }}
        where _built_at > (select last_build.built_at from last_build)
        union all
        select
            product_id,
            location_id,
            date_day
        from {{ ref('stg_sales__sales_lines__withdrawn') }}
        where _built_at > (select last_build.built_at from last_build)
    ) as changed_days
    group by all
),

rewritten_counts as (
    -- counts new, gone, or with another quantity or cost
    select coalesce(valued.count_id, stored_counts.count_id) as count_id
    from valued
    full outer join {{ this }} as stored_counts on valued.count_id = stored_counts.count_id
    where
        valued.count_id is null
        or stored_counts.count_id is null
        or valued.count_date is distinct from stored_counts.count_date
        or valued.product_id is distinct from stored_counts.product_id
        or valued.location_id is distinct from stored_counts.location_id
        or valued.book_qty is distinct from stored_counts.book_qty
        or valued.counted_qty is distinct from stored_counts.counted_qty
        or valued.adjustment_qty is distinct from stored_counts.discrepancy_units
        or valued.unit_cost is distinct from stored_counts.unit_cost
    union
    -- counts whose last sale may have moved
    select valued.count_id
    from valued
    inner join changed_sales
        on
            valued.product_id = changed_sales.product_id
            and valued.location_id = changed_sales.location_id
            and valued.count_date >= changed_sales.changed_from
),

rewritten as (
    select valued.*
    from valued
    semi join rewritten_counts on valued.count_id = rewritten_counts.count_id
),

sale_days as (
    -- the sale days of the rewritten counts' product-locations
    select
        movements.product_id,
        movements.location_id,
        movements.date_day as last_sale_date
    from {{ ref('int_stock_movements_daily') }} as movements
    semi join rewritten
        on
            movements.product_id = rewritten.product_id
            and movements.location_id = rewritten.location_id
    where movements.units_sold > 0
),
{% else %}
rewritten as (
    select * from valued
),

sale_days as (
    select
        product_id,
        location_id,
        date_day as last_sale_date
    from {{ ref('int_stock_movements_daily') }}
    where units_sold > 0
),
{% endif %}

last_sales as (
    -- the last day with a sale on or before the count
    select
        rewritten.count_id,
        sale_days.last_sale_date
    from rewritten
    asof inner join sale_days
        on
            rewritten.product_id = sale_days.product_id
            and rewritten.location_id = sale_days.location_id
            and rewritten.count_date >= sale_days.last_sale_date
),

discrepancies as (
    select
        rewritten.count_id,
        rewritten.count_date,
        rewritten.product_id,
        rewritten.location_id,
        rewritten.book_qty,
        rewritten.counted_qty,
        rewritten.adjustment_qty as discrepancy_units,
        rewritten.unit_cost,
        rewritten.adjustment_qty * rewritten.unit_cost as discrepancy_value,
        abs(rewritten.adjustment_qty) * rewritten.unit_cost as abs_discrepancy_value,
        case
            when rewritten.adjustment_qty < 0 then 'shrinkage'
            when rewritten.adjustment_qty > 0 then 'surplus'
            else 'match'
        end as discrepancy_type,
        rewritten.book_qty > 0 and rewritten.counted_qty = 0 as is_ghost_stock,
        last_sales.last_sale_date,
        cast(rewritten.count_date - last_sales.last_sale_date as integer) as days_since_last_sale,
        {{ build_stamp() }} as _built_at
    from rewritten
    left join last_sales on rewritten.count_id = last_sales.count_id
)

select * from discrepancies
{% if is_incremental() %}
union all by name
-- a count gone: a row of nulls under its id, deleted by the post-hook
select
    rewritten_counts.count_id,
    {{ build_stamp() }} as _built_at
from rewritten_counts
anti join valued on rewritten_counts.count_id = valued.count_id
{% endif %}
