-- Every landed row, typed, with reject_reason / reject_detail for rows that cannot be used (computed once,
-- read by the staging model and its __rejected quarantine).
{%- set columns = [
    ('transaction_id', 'text', true),
    ('line_number', 'integer', false),
    ('sold_at', 'timestamp', true),
    ('product_id', 'text', true),
    ('location_id', 'text', true),
    ('quantity', 'decimal', true),
    ('unit_price', 'decimal', false),
    ('line_type', 'text', false),
    ('customer_id', 'text', false),
] %}

with landed as (
    select * from {{ source('sales', 'sales_lines') }}
),

products as (
    select product_id, product_type from {{ ref('stg_master__products') }}
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
            parse_failure,
            case
                when lower(line_type) not in ('sale', 'return')
                    then struct_pack(reason := 'invalid_value', detail := 'line_type ''' || line_type || ''' is not sale or return')
                when products.product_id is null
                    then struct_pack(reason := 'unknown_product', detail := 'product_id ''' || parsed.product_id || ''' is not in master/products')
                when locations.location_id is null
                    then struct_pack(reason := 'unknown_location', detail := 'location_id ''' || parsed.location_id || ''' is not in master/locations')
                when products.product_type = 'non_stock'
                    then struct_pack(reason := 'non_stock_item', detail := 'product_id ''' || parsed.product_id || ''' is a non-stock item')
                when quantity < 0 and coalesce(lower(line_type), 'sale') = 'sale'
                    then struct_pack(reason := 'negative_quantity_not_return', detail := 'quantity ' || quantity || ' on a line that is not marked as a return')
                when unit_price < 0
                    then struct_pack(reason := 'negative_price', detail := 'unit_price ' || unit_price || ' is negative')
            end
        ) as rejection
    from parsed
    left join products on parsed.product_id = products.product_id
    left join locations on parsed.location_id = locations.location_id
)

{#- Sales lines have no natural key: a row identical in every column to an earlier one is an accidental re-export. -#}
{{ finish_validation(
    ['transaction_id', 'line_number', 'sold_at', 'product_id', 'location_id', 'quantity', 'unit_price', 'line_type', 'customer_id'],
    duplicate_reason='duplicate_line'
) }}
