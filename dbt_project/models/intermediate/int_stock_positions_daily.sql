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
-- Incremental (dbt incremental, delete+insert on product_location_key x date_day). A nightly build rebuilds each
-- product-location only from the first day whose inputs (net movement and its breakdown, order-book change,
-- anchor) differ from the stored ones, or from the first new day; the running sums restart from the stored close
-- of the day before. The changed product-locations are found by summing a hash of each input day, as it is and as
-- the stored rows hold it (one scan of each table); for theirs, the sums per month find the first changed month,
-- and only that month is compared day by day. Every row written
-- carries the build's start time (_built_at): fct_inventory_daily rewrites exactly those days.
-- That restart is exact only when the stored day before is governed by an earlier anchor (or has no anchor at
-- all, and none arrives): otherwise the product-location is rebuilt from its first day, because a new first
-- anchor changes the days before it. The pre-hook removes every stored row that is no longer on the grid (a
-- product-location gone or starting on another day: rebuilt whole; an as-of date moved back: everything
-- rebuilt). `stockturn build --full-refresh` (dbt --full-refresh) rebuilds the table from scratch.
-- tests/test_incremental_mart.py proves a chain of nightly builds equals a full rebuild, row for row.
--
-- For speed and memory at scale the running sums run only on the days with an input (a movement, an order-book
-- change or an anchor) and each product-location's first rebuilt day, keyed by the integer product_location_key;
-- every other day carries the close of the input day before it, so the dense days are written out at the end
-- (unnest), without a spine joined to the inputs or a window over every day. At M5 size this took the model
-- from 94 s to 39 s, with 0.15 GB spilled instead of 16 GB (docs/benchmarks.md). Product and location codes and
-- the movement breakdown are joined back in fct_inventory_daily.
-- sqlfluff:indentation:template_blocks_indent:False
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['product_location_key', 'date_day'],
    on_schema_change='fail',
    pre_hook="{{ product_location_days_off_grid_delete() }}",
) }}

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

movement_days as (
    select
        product_locations.product_location_key,
        movements.date_day,
        movements.net_change_units,
        -- the day's movement breakdown: a correction that leaves the net change as it was (one more unit sold,
        -- one more received) still changes the day's row in fct_inventory_daily
        hash(
            movements.units_sold,
            movements.units_returned,
            movements.units_received,
            movements.transfers_in_units,
            movements.transfers_out_units,
            movements.count_adjustment_units
        ) as movement_fingerprint
    from {{ ref('int_stock_movements_daily') }} as movements
    inner join product_locations
        on
            movements.product_id = product_locations.product_id
            and movements.location_id = product_locations.location_id
),

order_book_days as (
    select
        product_locations.product_location_key,
        order_book.date_day,
        order_book.on_order_change_units,
        order_book.in_transit_change_units
    from {{ ref('int_order_book_changes_daily') }} as order_book
    inner join product_locations
        on
            order_book.product_id = product_locations.product_id
            and order_book.location_id = product_locations.location_id
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

{% if is_incremental() %}
stored_bounds as (
    select max(date_day) as last_stored_day from {{ this }}
),

-- Change detection. Each input day (a movement, an order-book change, an anchor) up to the last stored day is
-- hashed, as it is and as the stored row holds it; a product-location whose sum of hashes differs has changed
-- (a scan per table instead of joining every stored day with every input day). For those, the sums per month
-- find the first month that changed, and only that month's days are compared, to find the first day that changed.
new_day_hashes as not materialized (
    select
        product_location_key,
        date_day,
        hash('movement', date_day, net_change_units, movement_fingerprint) as day_hash
    from movement_days
    where date_day <= (select stored_bounds.last_stored_day from stored_bounds)
    union all
    select
        product_location_key,
        date_day,
        hash('order_book', date_day, on_order_change_units, in_transit_change_units) as day_hash
    from order_book_days
    where
        date_day <= (select stored_bounds.last_stored_day from stored_bounds)
        and (on_order_change_units <> 0 or in_transit_change_units <> 0)
    union all
    select
        product_location_key,
        date_day,
        hash('anchor', date_day, anchor_qty, anchor_type) as day_hash
    from anchors
    where
        date_day <= (select stored_bounds.last_stored_day from stored_bounds)
        and anchor_qty is not null
),

stored_day_hashes as not materialized (
    -- the same hashes from the stored rows: a movement day has a fingerprint, an order-book day a change
    select
        product_location_key,
        date_day,
        hash('movement', date_day, net_change_units, movement_fingerprint) as day_hash
    from {{ this }}
    where movement_fingerprint is not null
    union all
    select
        product_location_key,
        date_day,
        hash('order_book', date_day, on_order_change_units, in_transit_change_units) as day_hash
    from {{ this }}
    where on_order_change_units <> 0 or in_transit_change_units <> 0
    union all
    select
        product_location_key,
        date_day,
        hash('anchor', date_day, anchor_qty, anchor_type) as day_hash
    from {{ this }}
    where anchor_qty is not null
),

new_sums as (
    select
        product_location_key,
        sum(day_hash) as hash_sum,
        count(*) as day_count
    from new_day_hashes
    group by 1
),

stored_sums as (
    select
        product_location_key,
        sum(day_hash) as hash_sum,
        count(*) as day_count
    from stored_day_hashes
    group by 1
),

changed_locations as (
    select coalesce(new_sums.product_location_key, stored_sums.product_location_key) as product_location_key
    from new_sums
    full outer join stored_sums on new_sums.product_location_key = stored_sums.product_location_key
    where
        new_sums.product_location_key is null
        or stored_sums.product_location_key is null
        or new_sums.hash_sum <> stored_sums.hash_sum
        or new_sums.day_count <> stored_sums.day_count
),

new_months as (
    -- the changed product-locations' sums per month
    select
        product_location_key,
        cast(date_trunc('month', date_day) as date) as month_start,
        sum(day_hash) as hash_sum,
        count(*) as day_count
    from new_day_hashes
    where product_location_key in (select changed_locations.product_location_key from changed_locations)
    group by all
),

stored_months as (
    select
        product_location_key,
        cast(date_trunc('month', date_day) as date) as month_start,
        sum(day_hash) as hash_sum,
        count(*) as day_count
    from stored_day_hashes
    where product_location_key in (select changed_locations.product_location_key from changed_locations)
    group by all
),

changed_months as (
    -- per changed product-location, the first month whose sums differ: its first changed day is in that month
    {{ first_changed_period('new_months', 'stored_months', 'month_start', ['hash_sum', 'day_count']) }}
),

new_days as (
    -- the days of that first changed month only
    select
        new_day_hashes.product_location_key,
        new_day_hashes.date_day,
        sum(new_day_hashes.day_hash) as hash_sum
    from new_day_hashes
    inner join changed_months
        on
            new_day_hashes.product_location_key = changed_months.product_location_key
            and new_day_hashes.date_day >= changed_months.first_changed
            and new_day_hashes.date_day < changed_months.first_changed + interval 1 month
    group by all
),

stored_days as (
    select
        stored_day_hashes.product_location_key,
        stored_day_hashes.date_day,
        sum(stored_day_hashes.day_hash) as hash_sum
    from stored_day_hashes
    inner join changed_months
        on
            stored_day_hashes.product_location_key = changed_months.product_location_key
            and stored_day_hashes.date_day >= changed_months.first_changed
            and stored_day_hashes.date_day < changed_months.first_changed + interval 1 month
    group by all
),

changed_inputs as (
    -- per changed product-location, the first day whose inputs are not the stored ones (new, changed or gone)
    {{ first_changed_period('new_days', 'stored_days', 'date_day', ['hash_sum']) }}
),

candidates as (
    select
        product_locations.product_location_key,
        product_locations.history_start_date,
        least(
            coalesce(changed_inputs.first_changed, stored_bounds.last_stored_day + 1),
            stored_bounds.last_stored_day + 1
        ) as candidate_from
    from product_locations
    cross join stored_bounds
    left join changed_inputs on product_locations.product_location_key = changed_inputs.product_location_key
),

later_anchors as (
    select distinct candidates.product_location_key
    from candidates
    inner join anchors
        on
            candidates.product_location_key = anchors.product_location_key
            and candidates.candidate_from <= anchors.date_day
),

stored_states as (
    -- the stored close of the day before each candidate restart
    select
        stored_rows.product_location_key,
        stored_rows.on_hand_units,
        stored_rows.on_order_units,
        stored_rows.in_transit_units,
        stored_rows.anchored_from
    from {{ this }} as stored_rows
    inner join candidates
        on
            stored_rows.product_location_key = candidates.product_location_key
            and stored_rows.date_day = candidates.candidate_from - 1
),

restarts as (
    -- a restart from the stored state is exact when the day before is governed by an earlier anchor, or has no
    -- anchor at all and none arrives later
    select
        candidates.product_location_key,
        candidates.history_start_date,
        candidates.candidate_from,
        stored_states.on_hand_units,
        stored_states.on_order_units,
        stored_states.in_transit_units,
        stored_states.anchored_from,
        coalesce(
            stored_states.anchored_from = 'previous_anchor'
            or (
                stored_states.product_location_key is not null
                and stored_states.anchored_from is null
                and later_anchors.product_location_key is null
            ),
            false
        ) as is_seeded
    from candidates
    left join stored_states on candidates.product_location_key = stored_states.product_location_key
    left join later_anchors on candidates.product_location_key = later_anchors.product_location_key
),

windows as (
    -- restart from the stored state where that is exact, else rebuild the product-location whole
    select
        product_location_key,
        is_seeded,
        case when is_seeded then candidate_from else history_start_date end as rebuild_from,
        case when is_seeded then on_hand_units end as seed_on_hand_units,
        case when is_seeded then on_order_units else 0 end as seed_on_order_units,
        case when is_seeded then in_transit_units else 0 end as seed_in_transit_units,
        case when is_seeded then anchored_from end as seed_anchored_from
    from restarts
    where case when is_seeded then candidate_from else history_start_date end <= (select bounds.as_of_date from bounds)
),

first_rebuilt_day as (
    select min(rebuild_from) as first_day from windows
),

rebuilt_movement_days as (
    -- the inputs of the rebuilt days only, read from each product-location's first rebuilt day; the date filter
    -- first keeps a night's join to the last days (without it DuckDB hashed every stored input day: 6 s at M5 size)
    select movement_days.*
    from movement_days
    inner join windows
        on
            movement_days.product_location_key = windows.product_location_key
            and movement_days.date_day >= windows.rebuild_from
    where movement_days.date_day >= (select first_rebuilt_day.first_day from first_rebuilt_day)
),

rebuilt_order_book_days as (
    select order_book_days.*
    from order_book_days
    inner join windows
        on
            order_book_days.product_location_key = windows.product_location_key
            and order_book_days.date_day >= windows.rebuild_from
    where order_book_days.date_day >= (select first_rebuilt_day.first_day from first_rebuilt_day)
),

rebuilt_anchors as (
    select anchors.*
    from anchors
    inner join windows
        on
            anchors.product_location_key = windows.product_location_key
            and anchors.date_day >= windows.rebuild_from
    where anchors.date_day >= (select first_rebuilt_day.first_day from first_rebuilt_day)
),
{% else %}
windows as (
    select
        product_location_key,
        false as is_seeded,
        history_start_date as rebuild_from,
        cast(null as double) as seed_on_hand_units,
        0 as seed_on_order_units,
        0 as seed_in_transit_units,
        cast(null as varchar) as seed_anchored_from
    from product_locations
),

rebuilt_movement_days as (
    select * from movement_days
),

rebuilt_order_book_days as (
    select * from order_book_days
),

rebuilt_anchors as (
    select * from anchors
),
{% endif %}

daily_changes as (
    -- both inputs hold one row per product-location day (their key tests), so a full join pairs them: a quarter of
    -- the time of grouping their union by day at M5 size
    select
        coalesce(movement_days.product_location_key, order_book_days.product_location_key) as product_location_key,
        coalesce(movement_days.date_day, order_book_days.date_day) as date_day,
        coalesce(movement_days.net_change_units, 0) as net_change_units,
        coalesce(order_book_days.on_order_change_units, 0) as on_order_change_units,
        coalesce(order_book_days.in_transit_change_units, 0) as in_transit_change_units,
        movement_days.movement_fingerprint
    from rebuilt_movement_days as movement_days
    full outer join rebuilt_order_book_days as order_book_days
        on
            movement_days.product_location_key = order_book_days.product_location_key
            and movement_days.date_day = order_book_days.date_day
),

inputs as (
    -- every rebuilt product-location day with a movement, an order-book change or an anchor
    select
        coalesce(daily_changes.product_location_key, anchors.product_location_key) as product_location_key,
        coalesce(daily_changes.date_day, anchors.date_day) as date_day,
        coalesce(daily_changes.net_change_units, 0) as net_change_units,
        coalesce(daily_changes.on_order_change_units, 0) as on_order_change_units,
        coalesce(daily_changes.in_transit_change_units, 0) as in_transit_change_units,
        daily_changes.movement_fingerprint,
        anchors.anchor_qty,
        anchors.anchor_type
    from daily_changes
    full outer join rebuilt_anchors as anchors
        on
            daily_changes.product_location_key = anchors.product_location_key
            and daily_changes.date_day = anchors.date_day
),

input_days as (
    -- the rebuilt input days within each product-location's window, and the window's first day (the running
    -- sums start there, input or not)
    select
        coalesce(inputs.product_location_key, windows.product_location_key) as product_location_key,
        coalesce(inputs.date_day, windows.rebuild_from) as date_day,
        coalesce(inputs.net_change_units, 0) as net_change_units,
        coalesce(inputs.on_order_change_units, 0) as on_order_change_units,
        coalesce(inputs.in_transit_change_units, 0) as in_transit_change_units,
        inputs.movement_fingerprint,
        inputs.anchor_qty,
        inputs.anchor_type
    from inputs
    full outer join windows
        on
            inputs.product_location_key = windows.product_location_key
            and inputs.date_day = windows.rebuild_from
),

bounded_input_days as (
    select input_days.*
    from input_days
    inner join windows
        on
            input_days.product_location_key = windows.product_location_key
            and input_days.date_day >= windows.rebuild_from
            and input_days.date_day <= (select bounds.as_of_date from bounds)
),

cumulated as (
    -- running sums per product-location over the input days only: a day without inputs carries the sums of the
    -- input day before it, so the dense days are filled in at the end (about half the rows of every day at M5
    -- size, and no join with a spine of every day)
    select
        *,
        sum(net_change_units) over running as cumulative_change_units,
        sum(on_order_change_units) over running as on_order_units,
        sum(in_transit_change_units) over running as in_transit_units,
        count(anchor_qty) over running as anchor_sequence,
        lead(date_day) over running as next_input_day
    from bounded_input_days
    -- one row per day, so the default frame (everything up to this day) is the running total
    window running as (partition by product_location_key order by date_day)
),

anchor_offsets as (
    -- one row per anchor: the quantity it fixes minus the movements up to it, and how far it moved the book
    -- from where the previous anchor (or the restart's stored close) and the movements since had put it
    select
        cumulated.product_location_key,
        cumulated.anchor_sequence,
        cumulated.anchor_qty - cumulated.cumulative_change_units as anchor_offset,
        cumulated.anchor_qty - cumulated.cumulative_change_units - coalesce(
            lag(cumulated.anchor_qty - cumulated.cumulative_change_units) over (
                partition by cumulated.product_location_key order by cumulated.anchor_sequence
            ),
            windows.seed_on_hand_units
        ) as anchor_drift_units
    from cumulated
    inner join windows on cumulated.product_location_key = windows.product_location_key
    where cumulated.anchor_qty is not null
),

base_offsets as (
    -- the offset of the days before the first rebuilt anchor: the stored close before the restart, else the
    -- first anchor (working backwards)
    select
        windows.product_location_key,
        windows.is_seeded,
        windows.seed_anchored_from,
        windows.seed_on_order_units,
        windows.seed_in_transit_units,
        case
            when windows.is_seeded then windows.seed_on_hand_units
            else first_anchors.anchor_offset
        end as base_offset
    from windows
    left join anchor_offsets as first_anchors
        on
            windows.product_location_key = first_anchors.product_location_key
            and first_anchors.anchor_sequence = 1
),

input_day_positions as (
    -- the positions at the close of each input day
    select
        cumulated.product_location_key,
        cumulated.date_day,
        cumulated.next_input_day,
        cumulated.net_change_units,
        cumulated.on_order_change_units,
        cumulated.in_transit_change_units,
        cumulated.movement_fingerprint,
        -- yesterday's close: today's close without today's movements and without today's anchor correction
        cumulated.cumulative_change_units - cumulated.net_change_units
        + coalesce(anchor_offsets.anchor_offset, base_offsets.base_offset)
        - case when cumulated.anchor_qty is not null then coalesce(anchor_offsets.anchor_drift_units, 0) else 0 end
            as on_hand_open_units,
        cumulated.cumulative_change_units
        + coalesce(anchor_offsets.anchor_offset, base_offsets.base_offset) as on_hand_units,
        base_offsets.seed_on_order_units + cumulated.on_order_units as on_order_units,
        base_offsets.seed_in_transit_units + cumulated.in_transit_units as in_transit_units,
        cumulated.anchor_type,
        cumulated.anchor_qty,
        case when cumulated.anchor_qty is not null then anchor_offsets.anchor_drift_units end as anchor_drift_units,
        case
            when cumulated.anchor_sequence > 0 then 'previous_anchor'
            when base_offsets.is_seeded then base_offsets.seed_anchored_from
            when base_offsets.base_offset is not null then 'next_anchor'
        end as anchored_from
    from cumulated
    inner join base_offsets on cumulated.product_location_key = base_offsets.product_location_key
    left join anchor_offsets
        on
            cumulated.product_location_key = anchor_offsets.product_location_key
            and cumulated.anchor_sequence = anchor_offsets.anchor_sequence
),

covered_days as (
    -- each input day stands for itself and the days without inputs up to the next input day (or the as-of date)
    select
        *,
        cast(unnest(generate_series(
            cast(date_day as timestamp),
            cast(coalesce(next_input_day - 1, (select bounds.as_of_date from bounds)) as timestamp),
            interval 1 day
        )) as date) as covered_day
    from input_day_positions
)

-- a day without inputs has no changes and no anchor; its close is the close of the input day before it
select
    product_location_key,
    covered_day as date_day,
    case when covered_day = date_day then net_change_units else 0 end as net_change_units,
    case when covered_day = date_day then on_order_change_units else 0 end as on_order_change_units,
    case when covered_day = date_day then in_transit_change_units else 0 end as in_transit_change_units,
    case when covered_day = date_day then movement_fingerprint end as movement_fingerprint,
    case when covered_day = date_day then on_hand_open_units else on_hand_units end as on_hand_open_units,
    on_hand_units,
    on_order_units,
    in_transit_units,
    case when covered_day = date_day then anchor_type end as anchor_type,
    case when covered_day = date_day then anchor_qty end as anchor_qty,
    case when covered_day = date_day then anchor_drift_units end as anchor_drift_units,
    anchored_from,
    {{ build_stamp() }} as _built_at
from covered_days
