-- Daily changes of the order book per product x receiving location: units going on order (open
-- purchase-order lines, transfer requests not yet shipped) and in transit (transfers shipped, not yet
-- received). int_stock_positions_daily accumulates them into on-order and in-transit units per day.
--
-- A purchase-order line is outstanding from its order date for quantity_ordered - received so far (never
-- below zero). It stops being outstanding when it is cancelled (never counted), or when it is closed: at its
-- last receipt (or on the order date if closed without any receipt). Open lines stay outstanding.
--
-- Incremental (delete+insert on day x product x location). A nightly build rewrites only the days that can have
-- changed since this table's last build: the request, shipping and receiving days of the transfers staged since
-- (new, corrected, judged again) or withdrawn since (stg_logistics__transfers__withdrawn), found from their build
-- stamps as int_stock_movements_daily finds them; the days whose purchase-order changes differ from the stored
-- ones (order lines and receipts are small: their changes are computed whole and compared, in
-- purchase_order_change_units); the days of any transfer after the last stored day (an as-of date moved on); the
-- stored days after the as-of date; and every day when the transfer staging was written whole (then what it
-- withdrew is not on record). A rewritten day is summed again from all its records. A day left without any is
-- written as a row of nulls, which the post-hook deletes. `stockturn build --full-refresh` rebuilds the table
-- from scratch; tests/test_incremental_mart.py proves a chain of nightly builds equals a full rebuild.
-- depends_on: {{ ref('stg_logistics__transfers__withdrawn') }}
-- sqlfluff:indentation:template_blocks_indent:False
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['date_day', 'product_id', 'location_id'],
    on_schema_change='fail',
    post_hook="delete from {{ this }} where on_order_change_units is null",
) }}

with bounds as (
    select as_of_date from {{ ref('int_calendar_bounds') }}
),

order_lines as (
    select * from {{ ref('stg_procurement__purchase_order_lines') }}
    where coalesce(status, 'open') <> 'cancelled'
),

receipts as (
    select
        po_id,
        po_line,
        received_date,
        sum(quantity_received) as quantity_received
    from {{ ref('stg_procurement__receipts') }}
    group by all
),

receipt_steps as (
    -- outstanding quantity after each receipt day of a line
    select
        order_lines.po_id,
        order_lines.po_line,
        order_lines.product_id,
        order_lines.location_id,
        order_lines.quantity_ordered,
        order_lines.status,
        receipts.received_date,
        greatest(
            order_lines.quantity_ordered - sum(receipts.quantity_received) over (
                partition by order_lines.po_id, order_lines.po_line order by receipts.received_date
                rows between unbounded preceding and current row
            ),
            0
        ) as outstanding_after,
        row_number() over (
            partition by order_lines.po_id, order_lines.po_line order by receipts.received_date desc
        ) = 1 as is_last_receipt
    from order_lines
    inner join receipts
        on
            order_lines.po_id = receipts.po_id
            and order_lines.po_line = receipts.po_line
),

receipt_deltas as (
    -- the change in outstanding quantity on each receipt day; a closed line drops to zero at its last receipt
    select
        received_date as date_day,
        product_id,
        location_id,
        (case when status = 'closed' and is_last_receipt then 0 else outstanding_after end)
        - coalesce(
            lag(outstanding_after) over (partition by po_id, po_line order by received_date),
            quantity_ordered
        ) as on_order_delta
    from receipt_steps
),

closed_unreceived as (
    -- a line closed without any receipt was never really on order: it leaves on its order date
    select
        order_lines.order_date as date_day,
        order_lines.product_id,
        order_lines.location_id,
        -order_lines.quantity_ordered as on_order_delta
    from order_lines
    anti join receipts
        on
            order_lines.po_id = receipts.po_id
            and order_lines.po_line = receipts.po_line
    where order_lines.status = 'closed'
),

po_events as (
    select
        order_date as date_day,
        product_id,
        location_id,
        quantity_ordered as on_order_delta
    from order_lines
    union all
    select
        date_day,
        product_id,
        location_id,
        on_order_delta
    from closed_unreceived
    union all
    select
        date_day,
        product_id,
        location_id,
        on_order_delta
    from receipt_deltas
),

purchase_order_daily as (
    -- the purchase-order changes per day: small enough to compute whole every build
    select
        date_day,
        product_id,
        location_id,
        sum(on_order_delta) as purchase_order_change_units
    from po_events
    where date_day <= (select bounds.as_of_date from bounds)
    group by all
),

transfer_events as (
    -- a transfer is on order at its receiving location from its request to its shipping, then in transit
    select
        ordered_date as date_day,
        product_id,
        to_location_id as location_id,
        quantity as on_order_delta,
        0 as in_transit_delta,
        _built_at
    from {{ ref('stg_logistics__transfers') }}
    union all
    select
        shipped_date,
        product_id,
        to_location_id,
        -quantity as on_order_delta,
        quantity as in_transit_delta,
        _built_at
    from {{ ref('stg_logistics__transfers') }}
    union all
    select
        received_date,
        product_id,
        to_location_id,
        0 as on_order_delta,
        -quantity as in_transit_delta,
        _built_at
    from {{ ref('stg_logistics__transfers') }}
    where received_date is not null
),

{% if is_incremental() %}
last_build as (
    -- the stamp and the last day of this table's last build (none: every day is new)
    select
        coalesce(max(_built_at), cast('-infinity' as timestamp)) as built_at,
        coalesce(max(date_day), cast('-infinity' as date)) as last_day
    from {{ this }}
),

restaged as (
    -- whether every kept transfer was written since this table's last build (the staging built whole: what it
    -- withdrew is not on record)
    select
        coalesce((select min(transfer_events._built_at) from transfer_events) > last_build.built_at, false)
            as is_whole
    from last_build
),

stored_purchase_orders as (
    select
        date_day,
        product_id,
        location_id,
        purchase_order_change_units
    from {{ this }}
    where purchase_order_change_units is not null
),

rewritten_days as (
    -- the days of the transfers staged or withdrawn since the last build (the withdrawn log also names the
    -- shipping locations' days: rewriting them again changes nothing)
    select
        date_day,
        product_id,
        location_id
    from transfer_events
    where
        date_day is not null
        and (
            _built_at > (select last_build.built_at from last_build)
            or date_day > (select last_build.last_day from last_build)
            or (select restaged.is_whole from restaged)
        )
    union
    select
        date_day,
        product_id,
        location_id
    from {{ ref('stg_logistics__transfers__withdrawn') }}
    where _built_at > (select last_build.built_at from last_build)
    union
    -- purchase orders: the days whose changes are not the stored ones
    select
        coalesce(purchase_order_daily.date_day, stored_purchase_orders.date_day) as date_day,
        coalesce(purchase_order_daily.product_id, stored_purchase_orders.product_id) as product_id,
        coalesce(purchase_order_daily.location_id, stored_purchase_orders.location_id) as location_id
    from purchase_order_daily
    full outer join stored_purchase_orders
        on
            purchase_order_daily.date_day = stored_purchase_orders.date_day
            and purchase_order_daily.product_id = stored_purchase_orders.product_id
            and purchase_order_daily.location_id = stored_purchase_orders.location_id
    where
        purchase_order_daily.date_day is null
        or stored_purchase_orders.date_day is null
        or purchase_order_daily.purchase_order_change_units <> stored_purchase_orders.purchase_order_change_units
    union
    select
        date_day,
        product_id,
        location_id
    from {{ this }}
    where
        date_day > (select bounds.as_of_date from bounds)
        or (select restaged.is_whole from restaged)
),

first_rewritten_day as (
    select min(date_day) as date_day from rewritten_days
),

transfers_daily as (
    -- every transfer event of the rewritten days (not only the new ones)
    select
        transfer_events.date_day,
        transfer_events.product_id,
        transfer_events.location_id,
        sum(transfer_events.on_order_delta) as on_order_delta,
        sum(transfer_events.in_transit_delta) as in_transit_delta
    from transfer_events
    inner join rewritten_days
        on
            transfer_events.date_day = rewritten_days.date_day
            and transfer_events.product_id = rewritten_days.product_id
            and transfer_events.location_id = rewritten_days.location_id
    where
        transfer_events.date_day >= (select first_rewritten_day.date_day from first_rewritten_day)
        and transfer_events.date_day <= (select bounds.as_of_date from bounds)
    group by all
),

purchase_orders_daily as (
    select purchase_order_daily.*
    from purchase_order_daily
    inner join rewritten_days
        on
            purchase_order_daily.date_day = rewritten_days.date_day
            and purchase_order_daily.product_id = rewritten_days.product_id
            and purchase_order_daily.location_id = rewritten_days.location_id
),
{% else %}
transfers_daily as (
    select
        date_day,
        product_id,
        location_id,
        sum(on_order_delta) as on_order_delta,
        sum(in_transit_delta) as in_transit_delta
    from transfer_events
    where date_day <= (select bounds.as_of_date from bounds)
    group by all
),

purchase_orders_daily as (
    select * from purchase_order_daily
),
{% endif %}

daily as (
    select
        coalesce(transfers_daily.date_day, purchase_orders_daily.date_day) as date_day,
        coalesce(transfers_daily.product_id, purchase_orders_daily.product_id) as product_id,
        coalesce(transfers_daily.location_id, purchase_orders_daily.location_id) as location_id,
        coalesce(transfers_daily.on_order_delta, 0) + coalesce(purchase_orders_daily.purchase_order_change_units, 0)
            as on_order_change_units,
        coalesce(transfers_daily.in_transit_delta, 0) as in_transit_change_units,
        purchase_orders_daily.purchase_order_change_units
    from transfers_daily
    full outer join purchase_orders_daily
        on
            transfers_daily.date_day = purchase_orders_daily.date_day
            and transfers_daily.product_id = purchase_orders_daily.product_id
            and transfers_daily.location_id = purchase_orders_daily.location_id
)

{% if is_incremental() %}
select
    rewritten_days.date_day,
    rewritten_days.product_id,
    rewritten_days.location_id,
    -- null on a rewritten day that has no change left: the post-hook deletes it
    daily.on_order_change_units,
    daily.in_transit_change_units,
    daily.purchase_order_change_units,
    {{ build_stamp() }} as _built_at
from rewritten_days
left join daily
    on
        rewritten_days.date_day = daily.date_day
        and rewritten_days.product_id = daily.product_id
        and rewritten_days.location_id = daily.location_id
{% else %}
select
    date_day,
    product_id,
    location_id,
    on_order_change_units,
    in_transit_change_units,
    purchase_order_change_units,
    {{ build_stamp() }} as _built_at
from daily
{% endif %}
