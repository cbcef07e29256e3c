-- Every landed row, typed, with reject_reason / reject_detail for rows that cannot be used (computed once,
-- read by the staging model and its __rejected quarantine).
{%- set columns = [
    ('po_id', 'text', true),
    ('po_line', 'integer', true),
    ('supplier_id', 'text', true),
    ('product_id', 'text', true),
    ('location_id', 'text', true),
    ('order_date', 'date', true),
    ('quantity_ordered', 'decimal', true),
    ('unit_cost', 'decimal', false),
    ('promised_date', 'date', false),
    ('status', 'text', false),
] %}

with landed as (
    select * from {{ source('procurement', 'purchase_order_lines') }}
),

products as (
    select product_id from {{ ref('stg_master__products') }}
),

locations as (
    select location_id from {{ ref('stg_master__locations') }}
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
            parse_failure,
            case
                when lower(status) not in ('open', 'closed', 'cancelled')
                    then struct_pack(reason := 'invalid_value', detail := 'status ''' || status || ''' is not open, closed or cancelled')
                when products.product_id is null
                    then struct_pack(reason := 'unknown_product', detail := 'product_id ''' || parsed.product_id || ''' is not in master/products')
                when locations.location_id is null
                    then struct_pack(reason := 'unknown_location', detail := 'location_id ''' || parsed.location_id || ''' is not in master/locations')
                when suppliers.supplier_id is null and (select count(*) from suppliers) > 0
                    then struct_pack(reason := 'unknown_supplier', detail := 'supplier_id ''' || parsed.supplier_id || ''' is not in master/suppliers')
                when quantity_ordered <= 0
                    then struct_pack(reason := 'invalid_value', detail := 'quantity_ordered ' || quantity_ordered || ' is not positive')
                when unit_cost < 0
                    then struct_pack(reason := 'invalid_value', detail := 'unit_cost ' || unit_cost || ' is negative')
            end
        ) as rejection
    from parsed
    left join products on parsed.product_id = products.product_id
    left join locations on parsed.location_id = locations.location_id
    left join suppliers on parsed.supplier_id = suppliers.supplier_id
)

{{ finish_validation(['po_id', 'po_line']) }}
