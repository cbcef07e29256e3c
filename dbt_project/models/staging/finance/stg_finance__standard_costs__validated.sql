-- Every landed row, typed, with reject_reason / reject_detail for rows that cannot be used (computed once,
-- read by the staging model and its __rejected quarantine).
{%- set columns = [
    ('product_id', 'text', true),
    ('valid_from', 'date', true),
    ('unit_cost', 'decimal', true),
] %}

with landed as not materialized (
    select * from {{ source('finance', 'standard_costs') }}
),

products as (
    select product_id from {{ ref('stg_master__products') }}
),

parsed as not materialized (
    select
        _source_file,
        _source_row,
        {{ parse_landing_columns(columns) }},
        {{ first_parse_failure(columns) }} as parse_failure
    from landed
),

{# a standard cost far above the product's typical price (its median selling price, else the median of this
    file's own values for the product) is implausible_price (scale-free, var implausible_price_factor) -#}
selling_price as (
    {{ product_selling_price() }}
),

own_price as (
    {{ product_price_scale('unit_cost') }}
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
                when parsed.unit_cost < 0
                    then struct_pack(reason := 'invalid_value', detail := 'unit_cost ' || parsed.unit_cost || ' is negative')
                {{ plausibility_check(
                    'unit_cost', 'coalesce(selling_price.price_scale, own_price.price_scale)', 'implausible_price',
                    'implausible_price_factor', 100,
                    "the product''s typical price"
                ) }}
            end
        ) as rejection
    from parsed
    left join products on parsed.product_id = products.product_id
    left join selling_price on parsed.product_id = selling_price.product_id
    left join own_price on parsed.product_id = own_price.product_id
)

{{ finish_validation(['product_id', 'valid_from']) }}
