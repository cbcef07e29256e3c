-- Every product x location that ever held, moved, ordered or sold stock, with the day its history starts.
with bounds as (
    select as_of_date from {{ ref('int_calendar_bounds') }}
),

movements as (
    select
        product_id,
        location_id,
        min(date_day) as first_date,
        min(case when units_sold > 0 or units_returned > 0 then date_day end) as first_sale_date,
        max(case when units_sold > 0 then date_day end) as last_sale_date
    from {{ ref('int_stock_movements_daily') }}
    group by all
),

purchase_orders as (
    select
        product_id,
        location_id,
        min(order_date) as first_date
    from {{ ref('stg_procurement__purchase_order_lines') }}
    group by all
),

transfer_orders as (
    select
        product_id,
        to_location_id as location_id,
        min(ordered_date) as first_date
    from {{ ref('stg_logistics__transfers') }}
    group by all
),

held_stock as (
    select
        product_id,
        location_id,
        min(snapshot_date) as first_date
    from {{ ref('stg_inventory__stock_snapshots') }}
    where on_hand_qty <> 0
    group by all
),

counted_stock as (
    select
        product_id,
        location_id,
        min(count_date) as first_date
    from {{ ref('stg_inventory__cycle_counts') }}
    group by all
),

activity as (
    select
        product_id,
        location_id,
        first_date
    from movements
    union all
    select
        product_id,
        location_id,
        first_date
    from purchase_orders
    union all
    select
        product_id,
        location_id,
        first_date
    from transfer_orders
    union all
    select
        product_id,
        location_id,
        first_date
    from held_stock
    union all
    select
        product_id,
        location_id,
        first_date
    from counted_stock
),

first_activity as (
    select
        product_id,
        location_id,
        min(first_date) as first_activity_date
    from activity
    where first_date <= (select bounds.as_of_date from bounds)
    group by all
),

location_snapshots as (
    -- A snapshot lists every product a location holds, so before its first activity a product had zero
    -- there: the on-hand history can start at the location's first snapshot.
    select
        location_id,
        min(snapshot_date) as first_snapshot_date
    from {{ ref('stg_inventory__stock_snapshots') }}
    group by all
)

select
    -- a compact integer key: the daily models partition and join on it (much cheaper than two text columns). A
    -- hash, so that it stays the same from one build to the next (the incremental daily models keep their rows);
    -- the uniqueness test on it catches a collision.
    hash(first_activity.product_id, first_activity.location_id) as product_location_key,
    first_activity.product_id,
    first_activity.location_id,
    first_activity.first_activity_date,
    least(
        first_activity.first_activity_date,
        coalesce(location_snapshots.first_snapshot_date, first_activity.first_activity_date)
    ) as history_start_date,
    movements.first_sale_date,
    movements.last_sale_date,
    movements.first_sale_date is not null as has_sales
from first_activity
left join movements
    on
        first_activity.product_id = movements.product_id
        and first_activity.location_id = movements.location_id
left join location_snapshots
    on first_activity.location_id = location_snapshots.location_id
