with validated as (
    select * from {{ ref('stg_procurement__purchase_order_lines__validated') }}
    where reject_reason is null
)

select
    po_id,
    po_line,
    supplier_id,
    product_id,
    location_id,
    order_date,
    quantity_ordered,
    case when unit_cost_issue is null then unit_cost end as unit_cost,
    unit_cost_issue,
    unit_cost_issue_detail,
    promised_date,
    lower(status) as status,
    _source_file,
    _source_row
from validated
