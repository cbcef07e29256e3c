-- The kept rows of stg_sales__sales_lines__validated. Incremental (delete+insert on the file and row): a build writes the
-- rows validated since this table's last build, stamped with this build (_built_at: a build that writes the
-- table whole stamps every row, which tells fct_sales_daily so), removes the rows
-- judged again and now rejected (pre-hook) and the rows of files no longer landed (post-hook).
-- Runs after stg_sales__sales_lines__withdrawn, which records the rows this build removes or replaces.
-- depends_on: {{ ref('stg_sales__sales_lines__withdrawn') }}
-- sqlfluff:indentation:template_blocks_indent:False
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['_source_file', '_source_row'],
    on_schema_change='fail',
    pre_hook="{{ staged_rows_now_rejected_delete('stg_sales__sales_lines__validated') }}",
    post_hook="{{ staged_rows_gone_delete('sales_lines') }}",
) }}

with validated as (
    select * from {{ ref('stg_sales__sales_lines__validated') }}
    where
        reject_reason is null
        {{ validated_since_last_build() }}
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
        _source_row,
        _file_sha256,
        {{ build_stamp() }} as _built_at
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
