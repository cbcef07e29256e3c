with validated as (
    select * from {{ ref('stg_inventory__cycle_counts__validated') }}
    where reject_reason is null
)

select
    count_id,
    count_date,
    product_id,
    location_id,
    book_qty,
    counted_qty,
    counted_qty - book_qty as adjustment_qty,
    _source_file,
    _source_row
from validated
