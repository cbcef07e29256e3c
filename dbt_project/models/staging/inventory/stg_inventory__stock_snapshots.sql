with validated as (
    select * from {{ ref('stg_inventory__stock_snapshots__validated') }}
    where reject_reason is null
)

select
    snapshot_date,
    product_id,
    location_id,
    on_hand_qty,
    _source_file,
    _source_row
from validated
