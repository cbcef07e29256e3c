with validated as (
    select * from {{ ref('stg_master__suppliers__validated') }}
    where reject_reason is null
)

select
    supplier_id,
    coalesce(supplier_name, supplier_id) as supplier_name,
    country,
    nominal_lead_time_days,
    ordering_cost,
    annual_holding_rate,
    _source_file,
    _source_row
from validated
