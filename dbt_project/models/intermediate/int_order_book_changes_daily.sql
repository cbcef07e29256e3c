-- Daily changes of the order book per product x receiving location: units going on order (open
-- purchase-order lines, transfer requests not yet shipped) and in transit (transfers shipped, not yet
-- received). int_stock_positions_daily accumulates them into on-order and in-transit units per day.
--
-- A purchase-order line is outstanding from its order date for quantity_ordered - received so far (never
-- below zero). It stops being outstanding when it is cancelled (never counted), or when it is closed: at its
-- last receipt (or on the order date if closed without any receipt). Open lines stay outstanding.
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

transfer_events as (
    select
        ordered_date as date_day,
        product_id,
        to_location_id as location_id,
        quantity as on_order_delta,
        0 as in_transit_delta
    from {{ ref('stg_logistics__transfers') }}
    union all
    select
        shipped_date,
        product_id,
        to_location_id,
        -quantity as on_order_delta,
        quantity as in_transit_delta
    from {{ ref('stg_logistics__transfers') }}
    union all
    select
        received_date,
        product_id,
        to_location_id,
        0 as on_order_delta,
        -quantity as in_transit_delta
    from {{ ref('stg_logistics__transfers') }}
    where received_date is not null
),

events as (
    select
        date_day,
        product_id,
        location_id,
        on_order_delta,
        0 as in_transit_delta
    from po_events
    union all
    select
        date_day,
        product_id,
        location_id,
        on_order_delta,
        in_transit_delta
    from transfer_events
),

daily as (
    select
        date_day,
        product_id,
        location_id,
        sum(on_order_delta) as on_order_change_units,
        sum(in_transit_delta) as in_transit_change_units
    from events
    where date_day <= (select bounds.as_of_date from bounds)
    group by all
)

select * from daily
