-- The days, products and locations of kept sales lines that a build removed or replaced (macros/incremental_staging.sql,
-- staged_rows_withdrawn): runs before stg_sales__sales_lines writes, and tells fct_sales_daily which days lost lines.
-- depends_on: {{ ref('stg_sales__sales_lines__validated') }}
-- depends_on: {{ source('landing', 'landing_files') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
) }}

{{ staged_rows_withdrawn('stg_sales__sales_lines', 'stg_sales__sales_lines__validated', 'sales_lines', 'sold_on') }}
