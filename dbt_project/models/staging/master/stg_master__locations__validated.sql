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

row_checked as (
    select
        *,
        coalesce(
            parse_failure,
            case
                when lower(location_type) not in ('store', 'dc', 'warehouse', 'online')
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'location_type ''' || location_type || ''' is not store, dc, warehouse or online'
                    )
                when replenished_from = location_id
                    then struct_pack(reason := 'invalid_value', detail := 'location ''' || location_id || ''' is replenished from itself')
            end
        ) as rejection
    from parsed
),

{# a replenishing location that is not itself a usable location is an issue on the row, not a reason to lose
    the location (and every sale at it): replenished_from is set to null, so it is planned as buying direct -#}
usable_locations as (
    select distinct location_id from row_checked
    where rejection is null
),

replenishment_checked as (
    select
        row_checked.*,
        case
            when
                row_checked.rejection is null and row_checked.replenished_from is not null
                and usable_locations.location_id is null
                then struct_pack(
                    issue := 'unknown_location',
                    detail := 'replenished_from ''' || row_checked.replenished_from
                    || ''' is not a location in master/locations (or was quarantined): '
                    || 'set to null, the location is planned as buying direct'
                )
        end as replenished_from_problem
    from row_checked
    left join usable_locations on row_checked.replenished_from = usable_locations.location_id
),

checked as (
    select
        -- RF03 is a false positive here: sqlfluff takes a name in `* exclude (...)` for an unqualified column reference
        replenishment_checked.* exclude (replenished_from_problem),  -- noqa: RF03
        replenishment_checked.replenished_from_problem.issue as replenished_from_issue,
        replenishment_checked.replenished_from_problem.detail as replenished_from_issue_detail
    from replenishment_checked
)

{{ finish_validation(['location_id']) }}
