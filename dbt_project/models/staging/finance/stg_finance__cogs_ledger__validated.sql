-- Every landed row, typed, with reject_reason / reject_detail for rows that cannot be used (computed once,
-- read by the staging model and its __rejected quarantine).
--
-- Incremental (delete+insert on the file and row): a nightly build validates the rows of new and changed files
-- and judges again only the earlier rows whose verdict can have changed (macros/incremental_staging.sql). Each
-- row records what it was judged against (file checksum, master states, settings).
-- sqlfluff:indentation:template_blocks_indent:False
{%- set columns = [
    ('posting_id', 'text', true),
    ('posting_date', 'date', true),
    ('product_id', 'text', true),
    ('location_id', 'text', true),
    ('quantity', 'decimal', false),
    ('amount', 'decimal', true),
    ('document_ref', 'text', false),
] %}


{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['_source_file', '_source_row'],
    on_schema_change='fail',
    pre_hook="{{ staging_rules_changed_delete() }}",
    post_hook="{{ staged_rows_gone_delete('cogs_ledger') }}",
) }}
{%- set scales = [
    {
        'name': '_quantity_scale',
        'aggregate': "case when count(*) filter (where _parsed and {rows}) > 0 then greatest(median(abs(quantity)) filter (where _parsed and {rows}), 1) end",
        'value': 'abs(current_rows.quantity)',
        'factor': var('implausible_quantity_factor', 1000),
        'flagged': "current_rows.reject_reason = 'implausible_quantity'",
    },
    {
        'name': '_amount_scale',
        'aggregate': "median(abs(amount)) filter (where _parsed and amount <> 0 and {rows})",
        'value': 'abs(current_rows.amount)',
        'factor': var('implausible_quantity_factor', 1000),
        'flagged': "current_rows.reject_reason = 'implausible_price'",
    },
] %}

with {{ validated_landing_inputs(
    'finance', 'cogs_ledger', columns, columns, scales, ['quantity', 'amount', '_parsed'], 'posting_id'
) }}

parsed as not materialized (
    select
        _source_file,
        _source_row,
        {{ parse_landing_columns(columns) }},
        {{ first_parse_failure(columns) }} as parse_failure
    from landed
),

{# a posting far above the product's typical posting (its median absolute amount and quantity in the ledger) is
    implausible: an amount scales with the quantity posted, so both are judged with implausible_quantity_factor -#}
{#- the product's scales over all its rows as they stand after this build (incremental: earlier rows + new files) -#}
{%- if is_incremental() %}
product_scale as (
    select
        product_id,
        _quantity_scale as quantity_scale
    from scales_now
),

amount_scale as (
    select
        product_id,
        _amount_scale as amount_scale
    from scales_now
),
{%- else %}
product_scale as (
    {{ product_quantity_scale('quantity') }}
),

amount_scale as (
    select
        product_id,
        median(abs(amount)) as amount_scale
    from parsed
    where parse_failure is null and amount <> 0
    group by product_id
),
{%- endif %}

checked as (
    select
        parsed.*,
        files_now._file_sha256,
        parsed.parse_failure is null as _parsed,
        {{ product_master_state() }} as _product_state,
        locations.location_id is not null as _location_known,
        {{ staging_rules() }} as _rules,
        {{ build_stamp() }} as _built_at,
        coalesce(
            parsed.parse_failure,
            case
                {{ transaction_date_checks('posting_date') }}
                when products.product_id is null
                    then struct_pack(
                        reason := 'unknown_product',
                        detail := 'product_id ''' || parsed.product_id || ''' is not in master/products'
                    )
                when locations.location_id is null
                    then
                        struct_pack(
                            reason := 'unknown_location',
                            detail := 'location_id ''' || parsed.location_id || ''' is not in master/locations'
                        )
                {{ plausibility_check(
                    'quantity', 'product_scale.quantity_scale', 'implausible_quantity', 'implausible_quantity_factor', 1000,
                    "the product''s median posted quantity"
                ) }}
                {{ plausibility_check(
                    'amount', 'amount_scale.amount_scale', 'implausible_price', 'implausible_quantity_factor', 1000,
                    "the product''s median posting amount"
                ) }}
            end
        ) as rejection
    from parsed
    left join products on parsed.product_id = products.product_id
    left join locations on parsed.location_id = locations.location_id
    left join product_scale on parsed.product_id = product_scale.product_id
    left join amount_scale on parsed.product_id = amount_scale.product_id
    left join files_now on parsed._source_file = files_now._source_file
)

{{ finish_validation(['posting_id']) }}
