-- Every landed row, typed, with reject_reason / reject_detail for rows that cannot be used (computed once,
-- read by the staging model and its __rejected quarantine).
{%- set columns = [
    ('count_id', 'text', true),
    ('count_date', 'date', true),
    ('product_id', 'text', true),
    ('location_id', 'text', true),
    ('book_qty', 'decimal', true),
    ('counted_qty', 'decimal', true),
] %}

with landed as not materialized (
    select * from {{ source('inventory', 'cycle_counts') }}
),

products as (
    select product_id from {{ ref('stg_master__products') }}
),

locations as (
    select location_id from {{ ref('stg_master__locations') }}
),

parsed as not materialized (
    select
        _source_file,
        _source_row,
        {{ parse_landing_columns(columns) }},
        {{ first_parse_failure(columns) }} as parse_failure
    from landed
),

{# a count (or the book quantity beside it) far above the product's median count is implausible (scale-free) -#}
product_scale as (
    {{ product_quantity_scale('counted_qty') }}
),

checked as (
    select
        parsed.*,
        coalesce(
            parsed.parse_failure,
            case
                {{ transaction_date_checks('count_date') }}
                when products.product_id is null
                    then struct_pack(
                        reason := 'unknown_product',
                        detail := 'product_id ''' || parsed.product_id || ''' is not in master/products'
                    )
                when locations.location_id is null
                    then struct_pack(
                        reason := 'unknown_location',
                        detail := 'location_id ''' || parsed.location_id || ''' is not in master/locations'
                    )
                when parsed.counted_qty < 0
                    then struct_pack(reason := 'invalid_value', detail := 'counted_qty ' || parsed.counted_qty || ' is negative')
                {{ plausibility_check(
                    'counted_qty', 'product_scale.quantity_scale', 'implausible_quantity', 'implausible_quantity_factor', 1000,
                    "the product''s median counted quantity"
                ) }}
                {{ plausibility_check(
                    'book_qty', 'product_scale.quantity_scale', 'implausible_quantity', 'implausible_quantity_factor', 1000,
                    "the product''s median counted quantity"
                ) }}
            end
        ) as rejection
    from parsed
    left join products on parsed.product_id = products.product_id
    left join locations on parsed.location_id = locations.location_id
    left join product_scale on parsed.product_id = product_scale.product_id
)

{{ finish_validation(['count_id']) }}
