with validated as (
    select * from {{ ref('stg_external__signals__validated') }}
    where reject_reason is null
)

select
    signal_name,
    period_start,
    period_end,
    scope,
    scope_id,
    value,
    known_date,
    known_date_defaulted,
    _source_file,
    _source_row
from validated
