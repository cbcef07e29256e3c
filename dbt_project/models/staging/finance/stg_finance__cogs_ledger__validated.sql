-- Every landed row, typed, with reject_reason / reject_detail for rows that cannot be used (computed once,
-- read by the staging model and its __rejected quarantine).
{%- set columns = [
    ('posting_id', 'text', true),
    ('posting_date', 'date', true),
    ('product_id', 'text', true),
    ('location_id', 'text', true),
    ('quantity', 'decimal', false),
    ('amount', 'decimal', true),
    ('document_ref', 'text', false),
] %}

with landed as not materialized (
    select * from {{ source('finance', 'cogs_ledger') }}
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

{# a posting far above the product's typical posting (its median absolute amount and quantity in the ledger) is
    implausible: an amount scales with the quantity posted, so both are judged with implausible_quantity_factor -#}
product_scale as (
    {{ product_quantity_scale('quantity') }}
),

amount_scale as (
    select
        product_id,
        median(abs(amount)) as amount_scale
    from parsed
    where parse_failure is null and amount <> 0
    group by product_id
),

checked as (
    select
        parsed.*,
        coalesce(
            parsed.parse_failure,
            case
                {{ transaction_date_checks('posting_date') }}
                when products.product_id is null
                    then struct_pack(
                        reason := 'unknown_product',
                        detail := 'product_id ''' || parsed.product_id || ''' is not in master/products'
                    )
                when locations.location_id is null
                    then
                        struct_pack(
                            reason := 'unknown_location',
                            detail := 'location_id ''' || parsed.location_id || ''' is not in master/locations'
                        )
                {{ plausibility_check(
                    'quantity', 'product_scale.quantity_scale', 'implausible_quantity', 'implausible_quantity_factor', 1000,
                    "the product''s median posted quantity"
                ) }}
                {{ plausibility_check(
                    'amount', 'amount_scale.amount_scale', 'implausible_price', 'implausible_quantity_factor', 1000,
                    "the product''s median posting amount"
                ) }}
            end
        ) as rejection
    from parsed
    left join products on parsed.product_id = products.product_id
    left join locations on parsed.location_id = locations.location_id
    left join product_scale on parsed.product_id = product_scale.product_id
    left join amount_scale on parsed.product_id = amount_scale.product_id
)

{{ finish_validation(['posting_id']) }}
