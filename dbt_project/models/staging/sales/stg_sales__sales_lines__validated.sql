-- Every landed row, typed, with reject_reason / reject_detail for rows that cannot be used (computed once,
-- read by the staging model and its __rejected quarantine). A bad unit_price (negative, not a number) does not
-- reject the line: its units are demand. The line is kept with price_issue / price_issue_detail set, and the
-- staging model nulls its price (marts.data_quality_field_issues lists it).
--
-- Incremental (delete+insert on the file and row): a nightly build validates the rows of new and changed files
-- and judges again only the earlier rows whose verdict can have changed (macros/incremental_staging.sql). Each
-- row records what it was judged against (file checksum, master states, settings).
-- sqlfluff:indentation:template_blocks_indent:False
{%- set columns = [
    ('transaction_id', 'text', true),
    ('line_number', 'integer', false),
    ('sold_at', 'timestamp', true),
    ('product_id', 'text', true),
    ('location_id', 'text', true),
    ('quantity', 'decimal', true),
    ('unit_price', 'decimal', false),
    ('line_type', 'text', false),
    ('customer_id', 'text', false),
] %}
{#- unit_price is checked on its own (price_issue), never as a reason to quarantine the line -#}
{%- set row_columns = columns | rejectattr('0', 'equalto', 'unit_price') | list %}

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['_source_file', '_source_row'],
    on_schema_change='fail',
    pre_hook="{{ staging_rules_changed_delete() }}",
    post_hook="{{ staged_rows_gone_delete('sales_lines') }}",
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
        'name': '_price_scale',
        'aggregate': "median(unit_price) filter (where unit_price > 0 and {rows})",
        'value': 'current_rows.unit_price',
        'factor': var('implausible_price_factor', 100),
        'flagged': "current_rows.price_issue = 'implausible_price'",
    },
] %}

with {{ validated_landing_inputs(
    'sales', 'sales_lines', columns, row_columns, scales, ['quantity', 'unit_price', '_parsed'], 'transaction_id'
) }}

parsed as not materialized (
    select
        _source_file,
        _source_row,
        {{ parse_landing_columns(columns) }},
        {{ first_parse_failure(row_columns) }} as parse_failure,
        case
            when
                {{ blank_as_null('unit_price') }} is not null
                and ({{ parse_landing_value('unit_price', 'decimal') }}) is null
                then struct_pack(
                    issue := 'invalid_price',
                    detail := 'unit_price ''' || left(trim(unit_price), 60) || ''' is not a valid decimal'
                )
        end as price_parse_issue
    from landed
),

{# the product's scales over all its rows as they stand after this build (incremental: earlier rows + new files) #}
product_price as (
    {%- if is_incremental() %}
    select
        product_id,
        _price_scale as price_scale
    from scales_now
    {%- else %}
    {{ product_price_scale('unit_price', 'parsed') }}
    {%- endif %}
),

price_checked as (
    select
        -- RF02 is a false positive here: sqlfluff takes a name in `* exclude (...)` for a column reference
        parsed.* exclude (price_parse_issue),  -- noqa: RF02
        product_price.price_scale,
        coalesce(
            parsed.price_parse_issue,
            case
                when not isfinite(parsed.unit_price)
                    then struct_pack(issue := 'invalid_price', detail := 'unit_price ' || parsed.unit_price || ' is not a finite number')
                when parsed.unit_price < 0
                    then struct_pack(issue := 'negative_price', detail := 'unit_price ' || parsed.unit_price || ' is negative')
                when parsed.unit_price > product_price.price_scale * {{ var('implausible_price_factor', 100) }}
                    then struct_pack(
                        issue := 'implausible_price',
                        detail := 'unit_price ' || parsed.unit_price
                        || ' is more than {{ var('implausible_price_factor', 100) }} x the product''s median price '
                        || round(product_price.price_scale, 4) || ' (implausible_price_factor)'
                    )
            end
        ) as price_problem
    from parsed
    left join product_price on parsed.product_id = product_price.product_id
),

{# a line far outside its product's own line sizes (a fat finger, 1e15) is implausible: the product's median
    absolute line quantity (at least 1) times var implausible_quantity_factor; a unit price far above the product's
    median positive price (var implausible_price_factor) is an issue on the row (its units still count). Both are
    scale-free: a spare part and a bag of sugar are judged each against itself. -#}
product_scale as (
    {%- if is_incremental() %}
    select
        product_id,
        _quantity_scale as quantity_scale
    from scales_now
    {%- else %}
    {{ product_quantity_scale('quantity', 'parsed') }}
    {%- endif %}
),

checked as (
    select
        -- RF02 and RF01 are false positives here: sqlfluff takes a name in `* exclude (...)` for a column
        -- reference, and a struct field (price_problem.issue) for a column of a table price_problem
        price_checked.* exclude (price_problem, price_scale),  -- noqa: RF02
        price_checked.price_problem.issue as price_issue,  -- noqa: RF01
        price_checked.price_problem.detail as price_issue_detail,  -- noqa: RF01
        files_now._file_sha256,
        price_checked.parse_failure is null as _parsed,
        {{ product_master_state() }} as _product_state,
        locations.location_id is not null as _location_known,
        {{ staging_rules() }} as _rules,
        {{ build_stamp() }} as _built_at,
        coalesce(
            price_checked.parse_failure,
            case
                {{ transaction_date_checks('sold_at') }}
                when lower(price_checked.line_type) not in ('sale', 'return')
                    then struct_pack(
                        reason := 'invalid_value',
                        detail := 'line_type ''' || price_checked.line_type || ''' is not sale or return'
                    )
                when products.product_id is null
                    then struct_pack(
                        reason := 'unknown_product',
                        detail := 'product_id ''' || price_checked.product_id || ''' is not in master/products'
                    )
                when locations.location_id is null
                    then struct_pack(
                        reason := 'unknown_location',
                        detail := 'location_id ''' || price_checked.location_id || ''' is not in master/locations'
                    )
                when products.product_type = 'non_stock'
                    then struct_pack(
                        reason := 'non_stock_item',
                        detail := 'product_id ''' || price_checked.product_id || ''' is a non-stock item'
                    )
                when price_checked.quantity < 0 and coalesce(lower(price_checked.line_type), 'sale') = 'sale'
                    then struct_pack(
                        reason := 'negative_quantity_not_return',
                        detail := 'quantity ' || price_checked.quantity || ' on a line that is not marked as a return'
                    )
                {{ plausibility_check(
                    'quantity', 'product_scale.quantity_scale', 'implausible_quantity', 'implausible_quantity_factor', 1000,
                    "the product''s median line quantity"
                ) }}
            end
        ) as rejection
    from price_checked
    left join products on price_checked.product_id = products.product_id
    left join locations on price_checked.location_id = locations.location_id
    left join product_scale on price_checked.product_id = product_scale.product_id
    left join files_now on price_checked._source_file = files_now._source_file
)

{#- Sales lines have no natural key: a row identical in every column to an earlier one is an accidental re-export
    (price_issue_detail tells apart lines that differ only in an unparseable price). -#}
{{ finish_validation(
    ['transaction_id', 'line_number', 'sold_at', 'product_id', 'location_id', 'quantity', 'unit_price', 'price_issue_detail', 'line_type', 'customer_id'],
    duplicate_reason='duplicate_line'
) }}
