with validated as (
    select * from {{ ref('stg_sales__promotions__validated') }}
    where reject_reason is null
)

select
    promotion_id,
    product_id,
    location_id,
    start_date,
    end_date,
    discount_pct,
    _source_file,
    _source_row
from validated
