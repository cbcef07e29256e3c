with validated as (
    select * from {{ ref('stg_finance__standard_costs__validated') }}
    where reject_reason is null
)

select
    product_id,
    valid_from,
    lead(valid_from) over (partition by product_id order by valid_from) - 1 as valid_to,
    unit_cost,
    _source_file,
    _source_row
from validated
