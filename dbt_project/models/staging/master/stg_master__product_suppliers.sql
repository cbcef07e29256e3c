with validated as (
    select * from {{ ref('stg_master__product_suppliers__validated') }}
    where reject_reason is null
)

select
    product_id,
    supplier_id,
    coalesce(min_order_qty, 0) as min_order_qty,
    coalesce(pack_size, 1) as pack_size,
    nominal_lead_time_days,
    coalesce(is_primary, false) as is_primary,
    _source_file,
    _source_row
from validated
