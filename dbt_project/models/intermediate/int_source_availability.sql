-- One row of flags: which optional sources delivered usable rows. Marts use it to null and flag measures
-- whose source is missing instead of inventing them.
select
    (select count(*) from {{ ref('stg_inventory__stock_snapshots') }}) > 0 as has_stock_snapshots,
    (select count(*) from {{ ref('stg_inventory__cycle_counts') }}) > 0 as has_cycle_counts,
    (select count(*) from {{ ref('stg_procurement__purchase_order_lines') }}) > 0 as has_purchase_orders,
    (select count(*) from {{ ref('stg_procurement__receipts') }}) > 0 as has_receipts,
    (select count(*) from {{ ref('stg_logistics__transfers') }}) > 0 as has_transfers,
    (select count(*) from {{ ref('stg_finance__standard_costs') }}) > 0 as has_standard_costs,
    (select count(*) from {{ ref('stg_finance__cogs_ledger') }}) > 0 as has_cogs_ledger,
    (select count(*) from {{ ref('stg_sales__prices') }}) > 0 as has_price_list,
    (select count(*) from {{ ref('stg_sales__promotions') }}) > 0 as has_promotions
