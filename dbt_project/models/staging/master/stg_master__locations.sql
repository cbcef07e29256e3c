with validated as (
    select * from {{ ref('stg_master__locations__validated') }}
    where reject_reason is null
)

select
    location_id,
    coalesce(location_name, location_id) as location_name,
    coalesce(lower(location_type), 'store') as location_type,
    case when replenished_from_issue is null then replenished_from end as replenished_from,
    replenished_from_issue,
    replenished_from_issue_detail,
    region,
    _source_file,
    _source_row
from validated
