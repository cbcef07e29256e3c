-- Every landed row, typed, with reject_reason / reject_detail for rows that cannot be used (computed once,
-- read by the staging model and its __rejected quarantine).
{%- set columns = [
    ('product_id', 'text', true),
    ('product_name', 'text', false),
    ('category', 'text', false),
    ('supplier_id', 'text', false),
    ('unit_of_measure', 'text', false),
    ('product_type', 'text', false),
    ('launch_date', 'date', false),
    ('discontinued_date', 'date', false),
    ('list_price', 'decimal', false),
    ('ordering_cost', 'decimal', false),
    ('annual_holding_rate', 'decimal', false),
] %}

with landed as (
    select * from {{ source('master', 'products') }}
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
                when lower(product_type) not in ('stock', 'non_stock')
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'product_type ''' || product_type || ''' is not stock or non_stock'
                    )
                when list_price < 0
                    then struct_pack(reason := 'invalid_value', detail := 'list_price ' || list_price || ' is negative')
                when discontinued_date < launch_date
                    then struct_pack(reason := 'invalid_value', detail := 'discontinued_date is before launch_date')
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

{{ finish_validation(['product_id']) }}
