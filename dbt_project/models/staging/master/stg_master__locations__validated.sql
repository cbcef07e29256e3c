-- Every landed row, typed, with reject_reason / reject_detail for rows that cannot be used (computed once,
-- read by the staging model and its __rejected quarantine).
{%- set columns = [
    ('location_id', 'text', true),
    ('location_name', 'text', false),
    ('location_type', 'text', false),
    ('replenished_from', 'text', false),
    ('region', 'text', false),
] %}

with landed as (
    select * from {{ source('master', 'locations') }}
),

parsed as (
    select
        _source_file,
        _source_row,
        {{ parse_landing_columns(columns) }},
        {{ first_parse_failure(columns) }} as parse_failure
    from landed
),

checked as (
    select
        *,
        coalesce(
            parse_failure,
            case
                when lower(location_type) not in ('store', 'dc', 'warehouse', 'online')
                    then struct_pack(reason := 'invalid_value', detail := 'location_type ''' || location_type || ''' is not store, dc, warehouse or online')
                when replenished_from = location_id
                    then struct_pack(reason := 'invalid_value', detail := 'location ''' || location_id || ''' is replenished from itself')
            end
        ) as rejection
    from parsed
)

{{ finish_validation(['location_id']) }}
