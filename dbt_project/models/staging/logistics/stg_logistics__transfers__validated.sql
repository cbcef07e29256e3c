-- Every landed row, typed, with reject_reason / reject_detail for rows that cannot be used (computed once,
-- read by the staging model and its __rejected quarantine).
--
-- Incremental (delete+insert on the file and row): a nightly build validates the rows of new and changed files
-- and judges again only the earlier rows whose verdict can have changed (macros/incremental_staging.sql; every
-- row sharing a transfer_id with them, since duplicates are decided per transfer and product). Each row records
-- what it was judged against (file checksum, master states, settings).
-- sqlfluff:indentation:template_blocks_indent:False
{%- set columns = [
    ('transfer_id', 'text', true),
    ('product_id', 'text', true),
    ('from_location_id', 'text', true),
    ('to_location_id', 'text', true),
    ('ordered_date', 'date', false),
    ('shipped_date', 'date', true),
    ('received_date', 'date', false),
    ('quantity', 'decimal', true),
] %}

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['_source_file', '_source_row'],
    on_schema_change='fail',
    pre_hook="{{ staging_rules_changed_delete() }}",
    post_hook="{{ staged_rows_gone_delete('transfers') }}",
) }}
{%- set scales = [
    {
        'name': '_quantity_scale',
        'aggregate': "case when count(*) filter (where _parsed and {rows}) > 0 then greatest(median(abs(quantity)) filter (where _parsed and {rows}), 1) end",
        'value': 'abs(current_rows.quantity)',
        'factor': var('implausible_quantity_factor', 1000),
        'flagged': "current_rows.reject_reason = 'implausible_quantity'",
    },
] %}

with {{ validated_landing_inputs(
    'logistics', 'transfers', columns, columns, scales, ['quantity', '_parsed'], 'transfer_id',
    [('from_location_id', '_from_location_known'), ('to_location_id', '_to_location_known')]
) }}

parsed as not materialized (
    select
        _source_file,
        _source_row,
        {{ parse_landing_columns(columns) }},
        {{ first_parse_failure(columns) }} as parse_failure
    from landed
),

{# a transfer far above the product's median transfer is implausible (scale-free): the product's scale over all
    its rows as they stand after this build (incremental: earlier rows + new files) -#}
product_scale as (
    {%- if is_incremental() %}
    select
        product_id,
        _quantity_scale as quantity_scale
    from scales_now
    {%- else %}
    {{ product_quantity_scale('quantity') }}
    {%- endif %}
),

checked as (
    select
        parsed.*,
        files_now._file_sha256,
        parsed.parse_failure is null as _parsed,
        {{ product_master_state() }} as _product_state,
        from_locations.location_id is not null as _from_location_known,
        to_locations.location_id is not null as _to_location_known,
        {{ staging_rules() }} as _rules,
        {{ build_stamp() }} as _built_at,
        coalesce(
            parsed.parse_failure,
            case
                {{ transaction_date_checks('shipped_date') }}
                when products.product_id is null
                    then struct_pack(
                        reason := 'unknown_product',
                        detail := 'product_id ''' || parsed.product_id || ''' is not in master/products'
                    )
                when from_locations.location_id is null
                    then struct_pack(
                        reason := 'unknown_location',
                        detail := 'from_location_id ''' || parsed.from_location_id || ''' is not in master/locations'
                    )
                when to_locations.location_id is null
                    then struct_pack(
                        reason := 'unknown_location',
                        detail := 'to_location_id ''' || parsed.to_location_id || ''' is not in master/locations'
                    )
                when parsed.from_location_id = parsed.to_location_id
                    then struct_pack(reason := 'invalid_value', detail := 'transfer from ' || parsed.from_location_id || ' to itself')
                when parsed.quantity <= 0
                    then struct_pack(reason := 'invalid_value', detail := 'quantity ' || parsed.quantity || ' is not positive')
                when parsed.received_date < parsed.shipped_date
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'received_date ' || parsed.received_date || ' is before shipped_date ' || parsed.shipped_date
                    )
                when parsed.shipped_date < parsed.ordered_date
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'shipped_date ' || parsed.shipped_date || ' is before ordered_date ' || parsed.ordered_date
                    )
                {{ plausibility_check(
                    'quantity', 'product_scale.quantity_scale', 'implausible_quantity', 'implausible_quantity_factor', 1000,
                    "the product''s median transfer quantity"
                ) }}
            end
        ) as rejection
    from parsed
    left join products on parsed.product_id = products.product_id
    left join locations as from_locations on parsed.from_location_id = from_locations.location_id
    left join locations as to_locations on parsed.to_location_id = to_locations.location_id
    left join product_scale on parsed.product_id = product_scale.product_id
    left join files_now on parsed._source_file = files_now._source_file
)

{{ finish_validation(['transfer_id', 'product_id']) }}
