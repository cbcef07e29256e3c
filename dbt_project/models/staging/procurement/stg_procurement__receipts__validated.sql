-- Every landed row, typed, with reject_reason / reject_detail for rows that cannot be used (computed once,
-- read by the staging model and its __rejected quarantine).
{%- set columns = [
    ('receipt_id', 'text', true),
    ('po_id', 'text', true),
    ('po_line', 'integer', true),
    ('received_date', 'date', true),
    ('quantity_received', 'decimal', true),
] %}

with landed as (
    select * from {{ source('procurement', 'receipts') }}
),

order_lines as (
    select po_id, po_line, order_date from {{ ref('stg_procurement__purchase_order_lines') }}
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
{{ transaction_date_checks('received_date') }}
                when order_lines.po_id is null
                    then struct_pack(reason := 'unknown_purchase_order', detail := 'purchase order line ' || parsed.po_id || '/' || parsed.po_line || ' is not in purchase_order_lines')
                when quantity_received <= 0
                    then struct_pack(reason := 'invalid_value', detail := 'quantity_received ' || quantity_received || ' is not positive')
                when received_date < order_lines.order_date
                    then struct_pack(reason := 'invalid_value', detail := 'received_date ' || received_date || ' is before the order_date ' || order_lines.order_date)
            end
        ) as rejection
    from parsed
    left join order_lines
        on parsed.po_id = order_lines.po_id
        and parsed.po_line = order_lines.po_line
)

{{ finish_validation(['receipt_id', 'po_id', 'po_line']) }}
