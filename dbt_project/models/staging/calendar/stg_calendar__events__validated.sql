-- Every landed calendar event, typed, with reject_reason / reject_detail for rows that cannot be used (computed
-- once, read by the staging model and its __rejected quarantine). Blank scope means 'all', blank end_date the
-- start date.
{%- set columns = [
    ('event_name', 'text', true),
    ('event_type', 'text', true),
    ('start_date', 'date', true),
    ('end_date', 'date', false),
    ('scope', 'text', false),
    ('scope_id', 'text', false),
] %}

with landed as (
    select * from {{ source('calendar', 'events') }}
),

regions as (
    select distinct region from {{ ref('stg_master__locations') }}
    where region is not null
),

locations as (
    select location_id from {{ ref('stg_master__locations') }}
),

parsed as (
    select
        _source_file,
        _source_row,
        {{ parse_landing_columns(columns) }},
        {{ first_parse_failure(columns) }} as parse_failure
    from landed
),

normalized as (
    select
        * exclude (event_type, end_date, scope, scope_id),
        lower(event_type) as event_type,
        coalesce(end_date, start_date) as end_date,
        coalesce(lower(scope), 'all') as scope,
        case when coalesce(lower(scope), 'all') = 'all' then null else scope_id end as scope_id
    from parsed
),

checked as (
    select
        normalized.*,
        coalesce(
            normalized.parse_failure,
            case
                when not regexp_full_match(normalized.event_type, '[a-z0-9_]+')
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'event_type ''' || normalized.event_type
                        || ''' is not lowercase letters, digits and underscores'
                    )
                when normalized.end_date < normalized.start_date
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'end_date ' || normalized.end_date || ' is before start_date ' || normalized.start_date
                    )
            end,
            {{ scope_rejection('normalized', ['region', 'location']) }}
        ) as rejection
    from normalized
    {{ scope_joins('normalized', ['region', 'location']) }}
)

{{ finish_validation(['event_name', 'start_date', 'scope', 'scope_id']) }}
