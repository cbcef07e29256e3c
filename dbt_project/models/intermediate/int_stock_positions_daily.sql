-- Book on-hand, on-order and in-transit units at the close of every day, per product x location.
--
-- On-hand is reconstructed from anchors (stock snapshots and posted cycle counts, which fix the book at the
-- close of their day) and the daily net movements in between:
--     on_hand(d) = cumulative_change(d) + quantity(a) - cumulative_change(a)
-- for the governing anchor a: the latest one on or before d, or, before the first anchor, the first one
-- (working backwards). A location with snapshots lists every product it holds, so a product missing from a
-- snapshot of its location is anchored at zero that day. Without any anchor, on-hand is null.
-- anchor_drift_units is how far an anchor is from the book carried forward from the previous anchor: a
-- movement the exports do not contain.
--
-- On-order and in-transit are the running sums of int_order_book_changes_daily.
--
-- For speed and memory at scale the running sums run on a narrow table keyed by the integer product_location_key
-- (once for the anchors' offsets, once for every day, streamed, instead of holding the dense result in memory);
-- anchors are then looked up by their sequence number. Product and location codes and
-- the movement breakdown are joined back in fct_inventory_daily.
with bounds as (
    select as_of_date from {{ ref('int_calendar_bounds') }}
),

product_locations as (
    select
        product_location_key,
        product_id,
        location_id,
        history_start_date
    from {{ ref('int_product_locations') }}
),

spine as (
    select
        product_location_key,
        cast(unnest(generate_series(
            cast(history_start_date as timestamp),
            cast((select bounds.as_of_date from bounds) as timestamp),
            interval 1 day
        )) as date) as date_day
    from product_locations
),

changes as (
    select
        product_locations.product_location_key,
        movements.date_day,
        movements.net_change_units,
        0 as on_order_change_units,
        0 as in_transit_change_units
    from {{ ref('int_stock_movements_daily') }} as movements
    inner join product_locations
        on
            movements.product_id = product_locations.product_id
            and movements.location_id = product_locations.location_id
    union all
    select
        product_locations.product_location_key,
        order_book.date_day,
        0 as net_change_units,
        order_book.on_order_change_units,
        order_book.in_transit_change_units
    from {{ ref('int_order_book_changes_daily') }} as order_book
    inner join product_locations
        on
            order_book.product_id = product_locations.product_id
            and order_book.location_id = product_locations.location_id
),

daily_changes as (
    select
        product_location_key,
        date_day,
        sum(net_change_units) as net_change_units,
        sum(on_order_change_units) as on_order_change_units,
        sum(in_transit_change_units) as in_transit_change_units
    from changes
    group by all
),

snapshot_days as (
    select distinct
        location_id,
        snapshot_date
    from {{ ref('stg_inventory__stock_snapshots') }}
),

snapshot_anchors as (
    select
        product_locations.product_location_key,
        snapshot_days.snapshot_date as date_day,
        coalesce(snapshots.on_hand_qty, 0) as anchor_qty
    from product_locations
    inner join snapshot_days
        on
            product_locations.location_id = snapshot_days.location_id
            and product_locations.history_start_date <= snapshot_days.snapshot_date
    left join {{ ref('stg_inventory__stock_snapshots') }} as snapshots
        on
            product_locations.product_id = snapshots.product_id
            and product_locations.location_id = snapshots.location_id
            and snapshot_days.snapshot_date = snapshots.snapshot_date
),

count_anchors as (
    -- the last count of the day wins if a product was counted twice
    select
        product_locations.product_location_key,
        counts.count_date as date_day,
        arg_max(counts.counted_qty, counts.count_id) as anchor_qty
    from {{ ref('stg_inventory__cycle_counts') }} as counts
    inner join product_locations
        on
            counts.product_id = product_locations.product_id
            and counts.location_id = product_locations.location_id
    group by all
),

anchors as (
    -- a snapshot (close of business) takes precedence over a count on the same day
    select
        coalesce(snapshot_anchors.product_location_key, count_anchors.product_location_key)
            as product_location_key,
        coalesce(snapshot_anchors.date_day, count_anchors.date_day) as date_day,
        coalesce(snapshot_anchors.anchor_qty, count_anchors.anchor_qty) as anchor_qty,
        case when snapshot_anchors.anchor_qty is not null then 'snapshot' else 'cycle_count' end as anchor_type
    from snapshot_anchors
    full outer join count_anchors
        on
            snapshot_anchors.product_location_key = count_anchors.product_location_key
            and snapshot_anchors.date_day = count_anchors.date_day
),

joined as (
    select
        spine.product_location_key,
        spine.date_day,
        coalesce(daily_changes.net_change_units, 0) as net_change_units,
        coalesce(daily_changes.on_order_change_units, 0) as on_order_change_units,
        coalesce(daily_changes.in_transit_change_units, 0) as in_transit_change_units,
        anchors.anchor_qty,
        anchors.anchor_type
    from spine
    left join daily_changes
        on
            spine.product_location_key = daily_changes.product_location_key
            and spine.date_day = daily_changes.date_day
    left join anchors
        on
            spine.product_location_key = anchors.product_location_key
            and spine.date_day = anchors.date_day
),

-- not materialized: DuckDB would otherwise keep this dense CTE (every product-location day) in memory for its two
-- readers; recomputing its running sums for the small anchor_offsets costs one more sort but bounds the memory
cumulated as not materialized (
    -- running sums per product-location, and how many anchors so far
    select
        *,
        sum(net_change_units) over running as cumulative_change_units,
        sum(on_order_change_units) over running as on_order_units,
        sum(in_transit_change_units) over running as in_transit_units,
        count(anchor_qty) over running as anchor_sequence
    from joined
    -- one row per day, so the default frame (everything up to this day) is the running total
    window running as (partition by product_location_key order by date_day)
),

anchor_offsets as (
    -- one row per anchor: the quantity it fixes minus the movements up to it, and how far it moved the book
    -- from where the previous anchor and the movements since had put it
    select
        product_location_key,
        anchor_sequence,
        anchor_qty - cumulative_change_units as anchor_offset,
        anchor_qty - cumulative_change_units - lag(anchor_qty - cumulative_change_units) over (
            partition by product_location_key order by anchor_sequence
        ) as anchor_drift_units
    from cumulated
    where anchor_qty is not null
),

first_anchor_offsets as (
    select
        product_location_key,
        anchor_offset as first_anchor_offset
    from anchor_offsets
    where anchor_sequence = 1
)

select
    cumulated.product_location_key,
    cumulated.date_day,
    cumulated.net_change_units,
    -- yesterday's close: today's close without today's movements and without today's anchor correction
    cumulated.cumulative_change_units - cumulated.net_change_units
    + coalesce(anchor_offsets.anchor_offset, first_anchor_offsets.first_anchor_offset)
    - case when cumulated.anchor_qty is not null then coalesce(anchor_offsets.anchor_drift_units, 0) else 0 end
        as on_hand_open_units,
    cumulated.cumulative_change_units
    + coalesce(anchor_offsets.anchor_offset, first_anchor_offsets.first_anchor_offset) as on_hand_units,
    cumulated.on_order_units,
    cumulated.in_transit_units,
    cumulated.anchor_type,
    cumulated.anchor_qty,
    case when cumulated.anchor_qty is not null then anchor_offsets.anchor_drift_units end as anchor_drift_units,
    case
        when cumulated.anchor_sequence > 0 then 'previous_anchor'
        when first_anchor_offsets.first_anchor_offset is not null then 'next_anchor'
    end as anchored_from
from cumulated
left join anchor_offsets
    on
        cumulated.product_location_key = anchor_offsets.product_location_key
        and cumulated.anchor_sequence = anchor_offsets.anchor_sequence
left join first_anchor_offsets
    on cumulated.product_location_key = first_anchor_offsets.product_location_key
