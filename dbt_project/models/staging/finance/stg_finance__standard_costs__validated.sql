-- Every landed row, typed, with reject_reason / reject_detail for rows that cannot be used (computed once,
-- read by the staging model and its __rejected quarantine).
{%- set columns = [
    ('product_id', 'text', true),
    ('valid_from', 'date', true),
    ('unit_cost', 'decimal', true),
] %}

with landed as (
    select * from {{ source('finance', 'standard_costs') }}
),

products as (
    select product_id from {{ ref('stg_master__products') }}
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
        parsed.*,
        coalesce(
            parse_failure,
            case
                when products.product_id is null
                    then struct_pack(reason := 'unknown_product', detail := 'product_id ''' || parsed.product_id || ''' is not in master/products')
                when unit_cost < 0
                    then struct_pack(reason := 'invalid_value', detail := 'unit_cost ' || unit_cost || ' is negative')
            end
        ) as rejection
    from parsed
    left join products on parsed.product_id = products.product_id
)

{{ finish_validation(['product_id', 'valid_from']) }}
