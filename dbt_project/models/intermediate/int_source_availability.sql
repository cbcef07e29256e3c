-- One row of flags: which optional sources delivered usable rows. Marts use it to null and flag measures
-- whose source is missing instead of inventing them.
--
-- Incremental: the row is written again only when a flag changes, so its _built_at says when the sources last
-- changed; the incremental daily facts rewrite every row when that was this build (a first purchase-order file,
-- say, changes the basis of every day).
-- sqlfluff:indentation:template_blocks_indent:False
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='availability_key',
    on_schema_change='fail',
) }}

with flags as (
    select
        1 as availability_key,
        (select count(*) from {{ ref('stg_inventory__stock_snapshots') }}) > 0 as has_stock_snapshots,
        (select count(*) from {{ ref('stg_inventory__cycle_counts') }}) > 0 as has_cycle_counts,
        (select count(*) from {{ ref('stg_procurement__purchase_order_lines') }}) > 0 as has_purchase_orders,
        (select count(*) from {{ ref('stg_procurement__receipts') }}) > 0 as has_receipts,
        (select count(*) from {{ ref('stg_logistics__transfers') }}) > 0 as has_transfers,
        (select count(*) from {{ ref('stg_finance__standard_costs') }}) > 0 as has_standard_costs,
        (select count(*) from {{ ref('stg_finance__cogs_ledger') }}) > 0 as has_cogs_ledger,
        (select count(*) from {{ ref('stg_sales__prices') }}) > 0 as has_price_list,
        (select count(*) from {{ ref('stg_sales__promotions') }}) > 0 as has_promotions
)

select
    flags.*,
    {{ build_stamp() }} as _built_at
from flags
{% if is_incremental() %}
where
    not exists (
        select 1
        from {{ this }} as stored_flags
        where
            stored_flags.has_stock_snapshots = flags.has_stock_snapshots
            and stored_flags.has_cycle_counts = flags.has_cycle_counts
            and stored_flags.has_purchase_orders = flags.has_purchase_orders
            and stored_flags.has_receipts = flags.has_receipts
            and stored_flags.has_transfers = flags.has_transfers
            and stored_flags.has_standard_costs = flags.has_standard_costs
            and stored_flags.has_cogs_ledger = flags.has_cogs_ledger
            and stored_flags.has_price_list = flags.has_price_list
            and stored_flags.has_promotions = flags.has_promotions
    )
{% endif %}
