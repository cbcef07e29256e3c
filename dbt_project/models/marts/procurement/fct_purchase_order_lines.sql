-- One row per purchase-order line: what was ordered, what arrived, when, and how complete.
with order_lines as (
    select * from {{ ref('stg_procurement__purchase_order_lines') }}
),

receipts as (
    select
        po_id,
        po_line,
        count(*) as receipt_count,
        sum(quantity_received) as quantity_received,
        min(received_date) as first_receipt_date,
        max(received_date) as last_receipt_date,
        sum(quantity_received * lead_time_days) / sum(quantity_received) as lead_time_weighted_days
    from {{ ref('fct_purchase_receipts') }}
    group by all
)

select
    order_lines.po_id,
    order_lines.po_line,
    order_lines.supplier_id,
    order_lines.product_id,
    order_lines.location_id,
    order_lines.order_date,
    order_lines.promised_date,
    coalesce(
        order_lines.status, case when coalesce(receipts.quantity_received, 0) >= order_lines.quantity_ordered then 'closed' else 'open' end
    ) as status,
    order_lines.quantity_ordered,
    order_lines.unit_cost,
    order_lines.quantity_ordered * order_lines.unit_cost as ordered_value,
    coalesce(receipts.quantity_received, 0) as quantity_received,
    case
        when order_lines.status in ('closed', 'cancelled') then 0
        else greatest(order_lines.quantity_ordered - coalesce(receipts.quantity_received, 0), 0)
    end as quantity_outstanding,
    cast(coalesce(receipts.receipt_count, 0) as integer) as receipt_count,
    receipts.first_receipt_date,
    receipts.last_receipt_date,
    cast(receipts.first_receipt_date - order_lines.order_date as integer) as lead_time_first_receipt_days,
    cast(receipts.last_receipt_date - order_lines.order_date as integer) as lead_time_last_receipt_days,
    receipts.lead_time_weighted_days,
    coalesce(receipts.quantity_received, 0) / order_lines.quantity_ordered as fill_rate,
    coalesce(receipts.quantity_received, 0) >= order_lines.quantity_ordered as is_fully_received,
    receipts.first_receipt_date <= order_lines.promised_date as is_first_receipt_on_time
from order_lines
left join receipts
    on
        order_lines.po_id = receipts.po_id
        and order_lines.po_line = receipts.po_line
