-- Every landed row, typed, with reject_reason / reject_detail for rows that cannot be used (computed once,
-- read by the staging model and its __rejected quarantine).
{%- set columns = [
    ('transfer_id', 'text', true),
    ('product_id', 'text', true),
    ('from_location_id', 'text', true),
    ('to_location_id', 'text', true),
    ('ordered_date', 'date', false),
    ('shipped_date', 'date', true),
    ('received_date', 'date', false),
    ('quantity', 'decimal', true),
] %}

with landed as not materialized (
    select * from {{ source('logistics', 'transfers') }}
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

{# a transfer far above the product's median transfer is implausible (scale-free) -#}
product_scale as (
    {{ product_quantity_scale('quantity') }}
),

checked as (
    select
        parsed.*,
        coalesce(
            parsed.parse_failure,
            case
                {{ transaction_date_checks('shipped_date') }}
                when products.product_id is null
                    then struct_pack(
                        reason := 'unknown_product',
                        detail := 'product_id ''' || parsed.product_id || ''' is not in master/products'
                    )
                when from_locations.location_id is null
                    then struct_pack(
                        reason := 'unknown_location',
                        detail := 'from_location_id ''' || parsed.from_location_id || ''' is not in master/locations'
                    )
                when to_locations.location_id is null
                    then struct_pack(
                        reason := 'unknown_location',
                        detail := 'to_location_id ''' || parsed.to_location_id || ''' is not in master/locations'
                    )
                when parsed.from_location_id = parsed.to_location_id
                    then struct_pack(reason := 'invalid_value', detail := 'transfer from ' || parsed.from_location_id || ' to itself')
                when parsed.quantity <= 0
                    then struct_pack(reason := 'invalid_value', detail := 'quantity ' || parsed.quantity || ' is not positive')
                when parsed.received_date < parsed.shipped_date
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'received_date ' || parsed.received_date || ' is before shipped_date ' || parsed.shipped_date
                    )
                when parsed.shipped_date < parsed.ordered_date
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'shipped_date ' || parsed.shipped_date || ' is before ordered_date ' || parsed.ordered_date
                    )
                {{ plausibility_check(
                    'quantity', 'product_scale.quantity_scale', 'implausible_quantity', 'implausible_quantity_factor', 1000,
                    "the product''s median transfer quantity"
                ) }}
            end
        ) as rejection
    from parsed
    left join products on parsed.product_id = products.product_id
    left join locations as from_locations on parsed.from_location_id = from_locations.location_id
    left join locations as to_locations on parsed.to_location_id = to_locations.location_id
    left join product_scale on parsed.product_id = product_scale.product_id
)

{{ finish_validation(['transfer_id', 'product_id']) }}
