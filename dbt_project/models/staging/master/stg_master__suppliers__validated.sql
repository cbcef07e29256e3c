-- Every landed row, typed, with reject_reason / reject_detail for rows that cannot be used (computed once,
-- read by the staging model and its __rejected quarantine).
{%- set columns = [
    ('supplier_id', 'text', true),
    ('supplier_name', 'text', false),
    ('country', 'text', false),
    ('nominal_lead_time_days', 'integer', false),
    ('ordering_cost', 'decimal', false),
    ('annual_holding_rate', 'decimal', false),
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
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'nominal_lead_time_days ' || nominal_lead_time_days || ' is negative'
                    )
                when ordering_cost < 0
                    then struct_pack(reason := 'invalid_value', detail := 'ordering_cost ' || ordering_cost || ' is negative')
                when not isfinite(ordering_cost)
                    then struct_pack(reason := 'invalid_value', detail := 'ordering_cost ' || ordering_cost || ' is not a finite number')
                when not (annual_holding_rate > 0 and annual_holding_rate <= 5)
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'annual_holding_rate ' || annual_holding_rate || ' is not above 0 and at most 5'
                    )
            end
        ) as rejection
    from parsed
)

{{ finish_validation(['supplier_id']) }}
