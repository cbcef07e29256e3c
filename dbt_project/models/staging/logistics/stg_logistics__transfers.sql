with validated as (
    select * from {{ ref('stg_logistics__transfers__validated') }}
    where reject_reason is null
)

select
    transfer_id,
    product_id,
    from_location_id,
    to_location_id,
    coalesce(ordered_date, shipped_date) as ordered_date,
    shipped_date,
    received_date,
    quantity,
    _source_file,
    _source_row
from validated
