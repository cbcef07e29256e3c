-- Every landed row, typed, with reject_reason / reject_detail for rows that cannot be used (computed once,
-- read by the staging model and its __rejected quarantine).
{%- set columns = [
    ('supplier_id', 'text', true),
    ('supplier_name', 'text', false),
    ('country', 'text', false),
    ('nominal_lead_time_days', 'integer', false),
] %}

with landed as (
    select * from {{ source('master', 'suppliers') }}
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
                when nominal_lead_time_days < 0
                    then struct_pack(reason := 'invalid_value', detail := 'nominal_lead_time_days ' || nominal_lead_time_days || ' is negative')
            end
        ) as rejection
    from parsed
)

{{ finish_validation(['supplier_id']) }}
