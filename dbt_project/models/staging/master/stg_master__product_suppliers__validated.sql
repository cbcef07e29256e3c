-- Every landed row, typed, with reject_reason / reject_detail for rows that cannot be used (computed once,
-- read by the staging model and its __rejected quarantine).
{%- set columns = [
    ('product_id', 'text', true),
    ('supplier_id', 'text', true),
    ('min_order_qty', 'decimal', false),
    ('pack_size', 'decimal', false),
    ('nominal_lead_time_days', 'integer', false),
    ('is_primary', 'boolean', false),
] %}

with landed as (
    select * from {{ source('master', 'product_suppliers') }}
),

products as (
    select product_id from {{ ref('stg_master__products') }}
),

suppliers as (
    select supplier_id from {{ ref('stg_master__suppliers') }}
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
                when known_suppliers.supplier_id is null and (select count(*) from suppliers) > 0
                    then struct_pack(
                        reason := 'unknown_supplier',
                        detail := 'supplier_id ''' || parsed.supplier_id || ''' is not in master/suppliers'
                    )
                when parsed.min_order_qty < 0
                    then struct_pack(reason := 'invalid_value', detail := 'min_order_qty ' || parsed.min_order_qty || ' is negative')
                when parsed.pack_size <= 0
                    then struct_pack(reason := 'invalid_value', detail := 'pack_size ' || parsed.pack_size || ' is not positive')
                when parsed.nominal_lead_time_days < 0
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'nominal_lead_time_days ' || parsed.nominal_lead_time_days || ' is negative'
                    )
            end
        ) as rejection
    from parsed
    left join products on parsed.product_id = products.product_id
    left join suppliers as known_suppliers on parsed.supplier_id = known_suppliers.supplier_id
)

{{ finish_validation(['product_id', 'supplier_id']) }}
