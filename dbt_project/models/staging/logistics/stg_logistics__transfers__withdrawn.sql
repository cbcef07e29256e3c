-- The days, products and locations of kept transfer lines that a build removed or replaced
-- (macros/incremental_staging.sql, staged_rows_withdrawn): the shipping location on the shipped day, and the
-- receiving location on the requested, shipped and received days. Runs before stg_logistics__transfers writes,
-- and tells int_stock_movements_daily and int_order_book_changes_daily which days lost transfers.
-- depends_on: {{ ref('stg_logistics__transfers__validated') }}
-- depends_on: {{ source('landing', 'landing_files') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
) }}

{{ staged_rows_withdrawn(
    'stg_logistics__transfers', 'stg_logistics__transfers__validated', 'transfers', 'shipped_date', 'from_location_id',
    more_days=[
        ('received_date', 'to_location_id'), ('ordered_date', 'to_location_id'), ('shipped_date', 'to_location_id')
    ],
) }}
