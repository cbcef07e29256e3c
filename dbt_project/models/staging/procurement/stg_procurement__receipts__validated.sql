-- Every landed row, typed, with reject_reason / reject_detail for rows that cannot be used (computed once,
-- read by the staging model and its __rejected quarantine).
{%- set columns = [
    ('receipt_id', 'text', true),
    ('po_id', 'text', true),
    ('po_line', 'integer', true),
    ('received_date', 'date', true),
    ('quantity_received', 'decimal', true),
] %}

with landed as not materialized (
    select * from {{ source('procurement', 'receipts') }}
),

order_lines as (
    select
        po_id,
        po_line,
        product_id,
        order_date,
        quantity_ordered
    from {{ ref('stg_procurement__purchase_order_lines') }}
),

parsed as not materialized (
    select
        _source_file,
        _source_row,
        {{ parse_landing_columns(columns) }},
        {{ first_parse_failure(columns) }} as parse_failure
    from landed
),

{# a receipt far above both its order line and the product's median receipt is implausible (scale-free) -#}
product_scale as (
    select
        order_lines.product_id,
        greatest(median(abs(parsed.quantity_received)), 1) as quantity_scale
    from parsed
    inner join order_lines
        on
            parsed.po_id = order_lines.po_id
            and parsed.po_line = order_lines.po_line
    where parsed.parse_failure is null
    group by order_lines.product_id
),

checked as (
    select
        parsed.*,
        coalesce(
            parsed.parse_failure,
            case
                {{ transaction_date_checks('received_date') }}
                when order_lines.po_id is null
                    then struct_pack(
                        reason := 'unknown_purchase_order',
                        detail := 'purchase order line ' || parsed.po_id || '/' || parsed.po_line || ' is not in purchase_order_lines'
                    )
                when parsed.quantity_received <= 0
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'quantity_received ' || parsed.quantity_received || ' is not positive'
                    )
                when parsed.received_date < order_lines.order_date
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'received_date ' || parsed.received_date || ' is before the order_date ' || order_lines.order_date
                    )
                {{ plausibility_check(
                    'quantity_received', 'greatest(product_scale.quantity_scale, order_lines.quantity_ordered)', 'implausible_quantity',
                    'implausible_quantity_factor', 1000,
                    "the larger of the order line''s quantity and the product''s median receipt"
                ) }}
            end
        ) as rejection
    from parsed
    left join order_lines
        on
            parsed.po_id = order_lines.po_id
            and parsed.po_line = order_lines.po_line
    left join product_scale on order_lines.product_id = product_scale.product_id
)

{{ finish_validation(['receipt_id', 'po_id', 'po_line']) }}
