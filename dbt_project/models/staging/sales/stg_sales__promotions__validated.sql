-- Every landed row, typed, with reject_reason / reject_detail for rows that cannot be used (computed once,
-- read by the staging model and its __rejected quarantine).
{%- set columns = [
    ('promotion_id', 'text', true),
    ('product_id', 'text', true),
    ('location_id', 'text', false),
    ('start_date', 'date', true),
    ('end_date', 'date', true),
    ('discount_pct', 'decimal', false),
] %}

with landed as (
    select * from {{ source('sales', 'promotions') }}
),

products as (
    select product_id from {{ ref('stg_master__products') }}
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

checked as (
    select
        parsed.*,
        coalesce(
            parsed.parse_failure,
            case
                when products.product_id is null
                    then struct_pack(
                        reason := 'unknown_product',
                        detail := 'product_id ''' || parsed.product_id || ''' is not in master/products'
                    )
                when parsed.location_id is not null and locations.location_id is null
                    then struct_pack(
                        reason := 'unknown_location',
                        detail := 'location_id ''' || parsed.location_id || ''' is not in master/locations'
                    )
                when parsed.end_date < parsed.start_date
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'end_date ' || parsed.end_date || ' is before start_date ' || parsed.start_date
                    )
                when parsed.discount_pct < 0 or parsed.discount_pct >= 1
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'discount_pct ' || parsed.discount_pct || ' is not a fraction in [0, 1)'
                    )
            end
        ) as rejection
    from parsed
    left join products on parsed.product_id = products.product_id
    left join locations on parsed.location_id = locations.location_id
)

{{ finish_validation(['promotion_id', 'product_id', 'location_id']) }}
