-- One row per goods receipt of a purchase-order line, with the realised lead time (order date to this receipt).
with receipts as (
    select * from {{ ref('stg_procurement__receipts') }}
),

order_lines as (
    select
        po_id,
        po_line,
        promised_date,
        quantity_ordered
    from {{ ref('stg_procurement__purchase_order_lines') }}
)

select
    receipts.receipt_id,
    receipts.po_id,
    receipts.po_line,
    receipts.supplier_id,
    receipts.product_id,
    receipts.location_id,
    receipts.order_date,
    order_lines.promised_date,
    receipts.received_date,
    receipts.quantity_received,
    cast(receipts.received_date - receipts.order_date as integer) as lead_time_days,
    cast(receipts.received_date - order_lines.promised_date as integer) as days_late,
    cast(row_number() over (
        partition by receipts.po_id, receipts.po_line
        order by receipts.received_date, receipts.receipt_id
    ) as integer) as receipt_sequence,
    sum(receipts.quantity_received) over (
        partition by receipts.po_id, receipts.po_line
        order by receipts.received_date, receipts.receipt_id
        rows between unbounded preceding and current row
    ) / order_lines.quantity_ordered as cumulative_fill_rate
from receipts
inner join order_lines
    on
        receipts.po_id = order_lines.po_id
        and receipts.po_line = order_lines.po_line
