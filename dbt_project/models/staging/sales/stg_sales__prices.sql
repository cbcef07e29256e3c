with validated as (
    select * from {{ ref('stg_sales__prices__validated') }}
    where reject_reason is null
)

select
    product_id,
    location_id,
    valid_from,
    lead(valid_from) over (partition by product_id, location_id order by valid_from) - 1 as valid_to,
    list_price,
    _source_file,
    _source_row
from validated
