with validated as (
    select * from {{ ref('stg_sales__sales_lines__validated') }}
    where reject_reason is null
),

typed as (
    select
        transaction_id,
        line_number,
        sold_at,
        cast(sold_at as date) as sold_on,
        product_id,
        location_id,
        quantity,
        -- a negative or unparseable price is not used (the line's units still count): null, and flagged
        case when price_issue is null then unit_price end as unit_price,
        price_issue,
        price_issue_detail,
        coalesce(lower(line_type), 'sale') as line_type,
        customer_id,
        _source_file,
        _source_row
    from validated
)

select
    *,
    case when line_type = 'sale' then quantity else 0 end as units_sold,
    case when line_type = 'return' then abs(quantity) else 0 end as units_returned,
    case when line_type = 'sale' then quantity else -abs(quantity) end as net_units,
    case when line_type = 'sale' then quantity * unit_price end as gross_sales_amount,
    case when line_type = 'return' then abs(quantity) * unit_price end as returns_amount,
    (case when line_type = 'sale' then quantity else -abs(quantity) end) * unit_price as net_sales_amount
from typed
