-- The kept rows of stg_finance__cogs_ledger__validated. Incremental (delete+insert on the file and row): a build writes the
-- rows validated since this table's last build, stamped with this build (_built_at: a build that writes the
-- table whole stamps every row, which tells fct_sales_daily so), removes the rows
-- judged again and now rejected (pre-hook) and the rows of files no longer landed (post-hook).
-- Runs after stg_finance__cogs_ledger__withdrawn, which records the rows this build removes or replaces.
-- depends_on: {{ ref('stg_finance__cogs_ledger__withdrawn') }}
-- sqlfluff:indentation:template_blocks_indent:False
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['_source_file', '_source_row'],
    on_schema_change='fail',
    pre_hook="{{ staged_rows_now_rejected_delete('stg_finance__cogs_ledger__validated') }}",
    post_hook="{{ staged_rows_gone_delete('cogs_ledger') }}",
) }}

with validated as (
    select * from {{ ref('stg_finance__cogs_ledger__validated') }}
    where
        reject_reason is null
        {{ validated_since_last_build() }}
)

select
    posting_id,
    posting_date,
    product_id,
    location_id,
    quantity,
    amount,
    document_ref,
    _source_file,
    _source_row,
    _file_sha256,
    {{ build_stamp() }} as _built_at
from validated
