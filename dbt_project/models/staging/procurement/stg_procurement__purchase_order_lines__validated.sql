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

with landed as not materialized (
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

parsed as not materialized (
    select
        _source_file,
        _source_row,
        {{ parse_landing_columns(columns) }},
        {{ first_parse_failure(columns) }} as parse_failure
    from landed
),

{# scale-free plausibility: a quantity far above the product's median ordered quantity is quarantined; a unit cost
    far above the product's typical price (its median selling price, else its median order cost) is an issue on
    the line: the cost is set to null and the line kept, since its quantity is still on order -#}
product_scale as (
    {{ product_quantity_scale('quantity_ordered') }}
),

selling_price as (
    {{ product_selling_price() }}
),

order_cost as (
    {{ product_price_scale('unit_cost') }}
),

cost_checked as (
    select
        parsed.*,
        case
            when parsed.unit_cost > coalesce(selling_price.price_scale, order_cost.price_scale) * {{ var('implausible_price_factor', 100) }}
                then struct_pack(
                    issue := 'implausible_price',
                    detail := 'unit_cost ' || parsed.unit_cost
                    || ' is more than {{ var('implausible_price_factor', 100) }} x the product''s typical price '
                    || round(coalesce(selling_price.price_scale, order_cost.price_scale), 4) || ' (implausible_price_factor)'
                )
        end as cost_problem
    from parsed
    left join selling_price on parsed.product_id = selling_price.product_id
    left join order_cost on parsed.product_id = order_cost.product_id
),

checked as (
    select
        -- RF02 and RF01 are false positives here: sqlfluff takes a name in `* exclude (...)` for a column
        -- reference, and a struct field (cost_problem.issue) for a column of a table cost_problem
        parsed.* exclude (cost_problem),  -- noqa: RF02
        parsed.cost_problem.issue as unit_cost_issue,  -- noqa: RF01
        parsed.cost_problem.detail as unit_cost_issue_detail,  -- noqa: RF01
        coalesce(
            parsed.parse_failure,
            case
                when lower(parsed.status) not in ('open', 'closed', 'cancelled')
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'status ''' || parsed.status || ''' is not open, closed or cancelled'
                    )
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
                when known_suppliers.supplier_id is null and (select count(*) from suppliers) > 0
                    then struct_pack(
                        reason := 'unknown_supplier',
                        detail := 'supplier_id ''' || parsed.supplier_id || ''' is not in master/suppliers'
                    )
                when parsed.quantity_ordered <= 0
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'quantity_ordered ' || parsed.quantity_ordered || ' is not positive'
                    )
                when parsed.unit_cost < 0
                    then struct_pack(reason := 'invalid_value', detail := 'unit_cost ' || parsed.unit_cost || ' is negative')
                {{ plausibility_check(
                    'quantity_ordered', 'product_scale.quantity_scale', 'implausible_quantity', 'implausible_quantity_factor', 1000,
                    "the product''s median ordered quantity"
                ) }}
            end
        ) as rejection
    from cost_checked as parsed
    left join products on parsed.product_id = products.product_id
    left join locations on parsed.location_id = locations.location_id
    left join suppliers as known_suppliers on parsed.supplier_id = known_suppliers.supplier_id
    left join product_scale on parsed.product_id = product_scale.product_id
)

{{ finish_validation(['po_id', 'po_line']) }}
