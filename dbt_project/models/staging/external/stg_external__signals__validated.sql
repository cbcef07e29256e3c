-- Every landed external-signal value, typed, with reject_reason / reject_detail for rows that cannot be used
-- (computed once, read by the staging model and its __rejected quarantine). Blank scope means 'all', blank
-- period_end the period start, blank known_date the day after period_end (an observation known the next day).
{%- set columns = [
    ('signal_name', 'text', true),
    ('period_start', 'date', true),
    ('period_end', 'date', false),
    ('scope', 'text', false),
    ('scope_id', 'text', false),
    ('value', 'decimal', true),
    ('known_date', 'date', false),
] %}

with landed as (
    select * from {{ source('external', 'signals') }}
),

regions as (
    select distinct region from {{ ref('stg_master__locations') }}
    where region is not null
),

locations as (
    select location_id from {{ ref('stg_master__locations') }}
),

categories as (
    select distinct category from {{ ref('stg_master__products') }}
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
        * exclude (signal_name, period_end, scope, scope_id, known_date),
        lower(signal_name) as signal_name,
        coalesce(period_end, period_start) as period_end,
        coalesce(lower(scope), 'all') as scope,
        case when coalesce(lower(scope), 'all') = 'all' then null else scope_id end as scope_id,
        coalesce(known_date, cast(coalesce(period_end, period_start) + interval 1 day as date)) as known_date,
        known_date is null as known_date_defaulted
    from parsed
),

checked as (
    select
        normalized.*,
        coalesce(
            normalized.parse_failure,
            case
                when not regexp_full_match(normalized.signal_name, '[a-z0-9_]+')
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'signal_name ''' || normalized.signal_name
                        || ''' is not lowercase letters, digits and underscores'
                    )
                when normalized.period_end < normalized.period_start
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'period_end ' || normalized.period_end || ' is before period_start '
                        || normalized.period_start
                    )
            end,
            {{ scope_rejection('normalized', ['region', 'location', 'category']) }}
        ) as rejection
    from normalized
    {{ scope_joins('normalized', ['region', 'location', 'category']) }}
)

{{ finish_validation(['signal_name', 'period_start', 'scope', 'scope_id', 'known_date']) }}
