with validated as (
    select * from {{ ref('stg_finance__cogs_ledger__validated') }}
    where reject_reason is null
)

select
    posting_id,
    posting_date,
    product_id,
    location_id,
    quantity,
    amount,
    document_ref,
    _source_file,
    _source_row
from validated
