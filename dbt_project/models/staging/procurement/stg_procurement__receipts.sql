with validated as (
    select * from {{ ref('stg_procurement__receipts__validated') }}
    where reject_reason is null
),

order_lines as (
    select
        po_id,
        po_line,
        product_id,
        location_id,
        supplier_id,
        order_date
    from {{ ref('stg_procurement__purchase_order_lines') }}
)

select
    validated.receipt_id,
    validated.po_id,
    validated.po_line,
    order_lines.product_id,
    order_lines.location_id,
    order_lines.supplier_id,
    order_lines.order_date,
    validated.received_date,
    validated.quantity_received,
    validated._source_file,
    validated._source_row
from validated
inner join order_lines
    on
        validated.po_id = order_lines.po_id
        and validated.po_line = order_lines.po_line
