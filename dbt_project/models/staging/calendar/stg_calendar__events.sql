with validated as (
    select * from {{ ref('stg_calendar__events__validated') }}
    where reject_reason is null
)

select
    event_name,
    event_type,
    start_date,
    end_date,
    scope,
    scope_id,
    _source_file,
    _source_row
from validated
