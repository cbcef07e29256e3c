-- Every landed row, typed, with reject_reason / reject_detail for rows that cannot be used (computed once,
-- read by the staging model and its __rejected quarantine).
{%- set columns = [
    ('product_id', 'text', true),
    ('location_id', 'text', false),
    ('valid_from', 'date', true),
    ('list_price', 'decimal', true),
] %}

with landed as not materialized (
    select * from {{ source('sales', 'prices') }}
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

{# a list price far above the product's typical price (its median selling price, else the median of this
    file's own values for the product) is implausible_price (scale-free, var implausible_price_factor) -#}
selling_price as (
    {{ product_selling_price() }}
),

own_price as (
    {{ product_price_scale('list_price') }}
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
                when parsed.list_price < 0
                    then struct_pack(reason := 'negative_price', detail := 'list_price ' || parsed.list_price || ' is negative')
                {{ plausibility_check(
                    'list_price', 'coalesce(selling_price.price_scale, own_price.price_scale)', 'implausible_price',
                    'implausible_price_factor', 100,
                    "the product''s typical price"
                ) }}
            end
        ) as rejection
    from parsed
    left join products on parsed.product_id = products.product_id
    left join locations on parsed.location_id = locations.location_id
    left join selling_price on parsed.product_id = selling_price.product_id
    left join own_price on parsed.product_id = own_price.product_id
)

{{ finish_validation(['product_id', 'location_id', 'valid_from']) }}
