-- One row per product: what its list price is made of besides the generic price list (int_product_days has
-- that one by day): the product master's list price, and a fingerprint of its location price lists.
--
-- Incremental: a row is written only when the product's master price or location price lists change, stamped
-- with the build (_built_at); fct_sales_daily then rewrites the product's days. The post-hook drops products
-- that left the master.
-- sqlfluff:indentation:template_blocks_indent:False
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='product_id',
    on_schema_change='fail',
    post_hook="{{ product_price_lists_gone_delete() }}",
) }}

with products as (
    select
        product_id,
        list_price
    from {{ ref('stg_master__products') }}
),

location_price_lists as (
    select
        product_id,
        count(*) as location_price_rows,
        -- order-free: the same rows in any order give the same sum
        sum(hash(location_id, valid_from, list_price)) as location_prices_fingerprint
    from {{ ref('stg_sales__prices') }}
    where location_id is not null
    group by product_id
),

price_lists as (
    select
        products.product_id,
        products.list_price as master_list_price,
        coalesce(location_price_lists.location_price_rows, 0) as location_price_rows,
        coalesce(location_price_lists.location_prices_fingerprint, 0) as location_prices_fingerprint
    from products
    left join location_price_lists on products.product_id = location_price_lists.product_id
)

select
    price_lists.*,
    {{ build_stamp() }} as _built_at
from price_lists
{% if is_incremental() %}
left join {{ this }} as stored_lists on price_lists.product_id = stored_lists.product_id
where
    stored_lists.product_id is null
    or price_lists.master_list_price is distinct from stored_lists.master_list_price
    or price_lists.location_price_rows <> stored_lists.location_price_rows
    or price_lists.location_prices_fingerprint <> stored_lists.location_prices_fingerprint
{% endif %}
