-- The days, products and locations of kept COGS postings that a build removed or replaced (macros/incremental_staging.sql,
-- staged_rows_withdrawn): runs before stg_finance__cogs_ledger writes, and tells fct_sales_daily which days lost postings.
-- depends_on: {{ ref('stg_finance__cogs_ledger__validated') }}
-- depends_on: {{ source('landing', 'landing_files') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
) }}

{{ staged_rows_withdrawn('stg_finance__cogs_ledger', 'stg_finance__cogs_ledger__validated', 'cogs_ledger', 'posting_date') }}
