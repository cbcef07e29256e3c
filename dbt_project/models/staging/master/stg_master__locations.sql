with validated as (
    select * from {{ ref('stg_master__locations__validated') }}
    where reject_reason is null
)

select
    location_id,
    coalesce(location_name, location_id) as location_name,
    coalesce(lower(location_type), 'store') as location_type,
    replenished_from,
    region,
    _source_file,
    _source_row
from validated
