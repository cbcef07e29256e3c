-- The kept rows of stg_logistics__transfers__validated. Incremental (delete+insert on the file and row): a build
-- writes the rows validated since this table's last build, stamped with this build (_built_at), removes the rows
-- judged again and now rejected (pre-hook) and the rows of files no longer landed (post-hook).
-- Runs after stg_logistics__transfers__withdrawn, which records the rows this build removes or replaces.
-- depends_on: {{ ref('stg_logistics__transfers__withdrawn') }}
-- sqlfluff:indentation:template_blocks_indent:False
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['_source_file', '_source_row'],
    on_schema_change='fail',
    pre_hook="{{ staged_rows_now_rejected_delete('stg_logistics__transfers__validated') }}",
    post_hook="{{ staged_rows_gone_delete('transfers') }}",
) }}

with validated as (
    select * from {{ ref('stg_logistics__transfers__validated') }}
    where
        reject_reason is null
        {{ validated_since_last_build() }}
)

select
    transfer_id,
    product_id,
    from_location_id,
    to_location_id,
    coalesce(ordered_date, shipped_date) as ordered_date,
    shipped_date,
    received_date,
    quantity,
    _source_file,
    _source_row,
    _file_sha256,
    {{ build_stamp() }} as _built_at
from validated
