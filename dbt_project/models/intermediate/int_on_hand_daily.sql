-- Book on-hand at the close of every day for every product x location, reconstructed from anchors
-- (stock snapshots and posted cycle counts, which fix the book at the close of their day) and the daily
-- movements in between:
--   on_hand(d) = cumulative_change(d) + offset of the governing anchor,
--   offset(anchor a) = quantity(a) - cumulative_change(a).
-- The governing anchor is the latest one on or before d; before the first anchor, the first one (working
-- backwards). A location with snapshots lists every product it holds, so a product missing from a
-- snapshot of its location is anchored at zero that day. Without any anchor on-hand is null.
with bounds as (
    select as_of_date from {{ ref('int_calendar_bounds') }}
),

product_locations as (
    select
        product_id,
        location_id,
        history_start_date
    from {{ ref('int_product_locations') }}
),

spine as (
    select
        product_id,
        location_id,
        cast(unnest(generate_series(
            cast(history_start_date as timestamp),
            cast((select as_of_date from bounds) as timestamp),
            interval 1 day
        )) as date) as date_day
    from product_locations
),

snapshot_days as (
    select distinct
        location_id,
        snapshot_date
    from {{ ref('stg_inventory__stock_snapshots') }}
),

snapshot_anchors as (
    select
        product_locations.product_id,
        product_locations.location_id,
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
        product_id,
        location_id,
        count_date as date_day,
        arg_max(counted_qty, count_id) as anchor_qty
    from {{ ref('stg_inventory__cycle_counts') }}
    group by all
),

anchors as (
    -- a snapshot (close of business) takes precedence over a count on the same day
    select
        coalesce(snapshot_anchors.product_id, count_anchors.product_id) as product_id,
        coalesce(snapshot_anchors.location_id, count_anchors.location_id) as location_id,
        coalesce(snapshot_anchors.date_day, count_anchors.date_day) as date_day,
        coalesce(snapshot_anchors.anchor_qty, count_anchors.anchor_qty) as anchor_qty,
        case when snapshot_anchors.anchor_qty is not null then 'snapshot' else 'cycle_count' end as anchor_type
    from snapshot_anchors
    full outer join count_anchors
        on
            snapshot_anchors.product_id = count_anchors.product_id
            and snapshot_anchors.location_id = count_anchors.location_id
            and snapshot_anchors.date_day = count_anchors.date_day
),

joined as (
    select
        spine.product_id,
        spine.location_id,
        spine.date_day,
        coalesce(movements.units_sold, 0) as units_sold,
        coalesce(movements.units_returned, 0) as units_returned,
        coalesce(movements.units_received, 0) as units_received,
        coalesce(movements.transfers_in_units, 0) as transfers_in_units,
        coalesce(movements.transfers_out_units, 0) as transfers_out_units,
        coalesce(movements.count_adjustment_units, 0) as count_adjustment_units,
        coalesce(movements.net_change_units, 0) as net_change_units,
        anchors.anchor_qty,
        anchors.anchor_type
    from spine
    left join {{ ref('int_stock_movements_daily') }} as movements
        on
            spine.product_id = movements.product_id
            and spine.location_id = movements.location_id
            and spine.date_day = movements.date_day
    left join anchors
        on
            spine.product_id = anchors.product_id
            and spine.location_id = anchors.location_id
            and spine.date_day = anchors.date_day
),

cumulated as (
    select
        *,
        sum(net_change_units) over (
            partition by product_id, location_id order by date_day
            rows between unbounded preceding and current row
        ) as cumulative_change_units
    from joined
),

offsets as (
    select
        *,
        anchor_qty - cumulative_change_units as anchor_offset
    from cumulated
),

governed as (
    select
        *,
        last_value(anchor_offset ignore nulls) over (
            partition by product_id, location_id order by date_day
            rows between unbounded preceding and current row
        ) as offset_from_previous_anchor,
        first_value(anchor_offset ignore nulls) over (
            partition by product_id, location_id order by date_day
            rows between current row and unbounded following
        ) as offset_from_next_anchor,
        anchor_offset - last_value(anchor_offset ignore nulls) over (
            partition by product_id, location_id order by date_day
            rows between unbounded preceding and 1 preceding
        ) as anchor_drift_units
    from offsets
)

select
    product_id,
    location_id,
    date_day,
    units_sold,
    units_returned,
    units_received,
    transfers_in_units,
    transfers_out_units,
    count_adjustment_units,
    net_change_units,
    coalesce(
        lag(cumulative_change_units + coalesce(offset_from_previous_anchor, offset_from_next_anchor)) over (
            partition by product_id, location_id order by date_day
        ),
        cumulative_change_units + coalesce(offset_from_previous_anchor, offset_from_next_anchor) - net_change_units
    ) as on_hand_open_units,
    cumulative_change_units + coalesce(offset_from_previous_anchor, offset_from_next_anchor) as on_hand_units,
    anchor_type,
    anchor_qty,
    anchor_drift_units,
    case
        when offset_from_previous_anchor is not null then 'previous_anchor'
        when offset_from_next_anchor is not null then 'next_anchor'
    end as anchored_from
from governed
