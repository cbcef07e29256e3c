{#-
    Typing and validation of landing columns.

    The loader lands every file as text, so a malformed value never fails the load. Staging types each column
    with the helpers below and records the first problem of a row as a struct {reason, detail}; rows with a
    problem go to the model's __rejected relation instead of being dropped. Numbers must be finite: NaN and
    infinities (in any spelling DuckDB parses, and overflows such as 1e400) are `invalid_number`.

    A column spec is a tuple (name, contract_type, required) where contract_type is one of
    text, date, timestamp, integer, decimal, boolean (see ml/ingest/contract.py).

    The validated models of the large transaction entities declare their `landed` and `parsed` CTEs `not
    materialized`. They are read more than once (the rows themselves, and the per-product scales of the
    plausibility checks), so DuckDB would otherwise materialize every landed text column of every row: at M5
    size (22 M sales lines) that spilled tens of GB to the temp folder and made the sales and ledger staging 2-5x
    slower. Inlined, each reader scans only the columns it needs.
-#}

{% macro contract_duckdb_type(contract_type) -%}
    {%- set types = {
        'text': 'varchar', 'date': 'date', 'timestamp': 'timestamp',
        'integer': 'bigint', 'decimal': 'double', 'boolean': 'boolean'
    } -%}
    {%- if contract_type not in types -%}
        {{ exceptions.raise_compiler_error("unknown contract type '" ~ contract_type ~ "'") }}
    {%- endif -%}
    {{ types[contract_type] }}
{%- endmacro %}


{% macro blank_as_null(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro %}


{% macro parse_landing_value(column, contract_type) -%}
    {%- if contract_type == 'text' -%}
        {{ blank_as_null(column) }}
    {%- elif contract_type == 'boolean' -%}
        case
            when lower(trim({{ column }})) in ('true', 't', 'yes', 'y', '1') then true
            when lower(trim({{ column }})) in ('false', 'f', 'no', 'n', '0') then false
        end
    {%- elif contract_type == 'integer' -%}
        {#- accept "12" and "12.0" (spreadsheets), reject "12.5" -#}
        case
            when try_cast({{ blank_as_null(column) }} as double)
                = trunc(try_cast({{ blank_as_null(column) }} as double))
                then try_cast(try_cast({{ blank_as_null(column) }} as double) as bigint)
        end
    {%- elif contract_type == 'decimal' -%}
        {#- NaN, inf, -inf, Infinity, 1e400 parse as doubles but are no quantity, price or cost: invalid_number -#}
        case
            when isfinite(try_cast({{ blank_as_null(column) }} as double))
                then try_cast({{ blank_as_null(column) }} as double)
        end
    {%- else -%}
        try_cast({{ blank_as_null(column) }} as {{ contract_duckdb_type(contract_type) }})
    {%- endif -%}
{%- endmacro %}


{#- The typed columns, as a select list: `<expr> as <name>, ...` -#}
{% macro parse_landing_columns(columns) -%}
    {%- for name, contract_type, required in columns %}
        {{ parse_landing_value(name, contract_type) }} as {{ name }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}


{#- A struct {reason, detail} for the first problem of a row, else null: a repeated header line (exports
    concatenated with their headers: every required column holds its own name, every optional one its name or
    nothing), a blank required value, an unparseable value. -#}
{% macro first_parse_failure(columns) -%}
    case
        when
    {%- for name, contract_type, required in columns %}
        {%- if required %}
            coalesce(lower(trim({{ name }})) = '{{ name }}', false)
        {%- else %}
            coalesce(lower(trim({{ name }})) = '{{ name }}' or trim({{ name }}) = '', true)
        {%- endif %}{{ " and" if not loop.last }}
    {%- endfor %}
            then struct_pack(reason := 'repeated_header', detail := 'the row repeats the header line (files concatenated with their headers)')
    {%- for name, contract_type, required in columns %}
        {%- if required %}
        when {{ blank_as_null(name) }} is null
            then struct_pack(reason := 'missing_value', detail := '{{ name }} is blank')
        {%- endif %}
        {%- if contract_type != 'text' %}
        when {{ blank_as_null(name) }} is not null and ({{ parse_landing_value(name, contract_type) }}) is null
            then struct_pack(
                reason := '{{ {"integer": "invalid_number", "decimal": "invalid_number", "date": "invalid_date", "timestamp": "invalid_date", "boolean": "invalid_boolean"}[contract_type] }}',
                detail := '{{ name }} ''' || left(trim({{ name }}), 60) || ''' is not a valid {{ contract_type }}'
            )
        {%- endif %}
    {%- endfor %}
    end
{%- endmacro %}


{#-
    The quarantine relation of a staging entity: every raw column exactly as landed, plus the reason.
    Joined back on the file and row the loader recorded, so the user sees what they sent.
-#}
{% macro rejected_rows(source_name, table_name, validated_model) -%}
with validated as (
    select * from {{ ref(validated_model) }}
),

landed as (
    select * from {{ source(source_name, table_name) }}
)

select
    landed.*,
    validated.reject_reason,
    validated.reject_detail
from validated
inner join landed
    on validated._source_file = landed._source_file
    and validated._source_row = landed._source_row
where validated.reject_reason is not null
{%- endmacro %}


{#-
    Closes a validated staging model. Expects a preceding CTE `checked` with the typed columns, `parse_failure`
    and `rejection` (a {reason, detail} struct or null). Among rows with no rejection so far, every row after the
    first (by file and row number) with the same key is rejected with `duplicate_reason`; then the struct is
    unpacked into reject_reason / reject_detail.
-#}
{% macro finish_validation(key_columns, duplicate_reason='duplicate_key') -%}
, deduplicated as (
    select
        *,
        case
            when rejection is null
                and row_number() over (
                    partition by {{ key_columns | join(', ') }}, rejection is null
                    order by _source_file, _source_row
                ) > 1
                then struct_pack(
                    reason := '{{ duplicate_reason }}',
                    detail := 'same {{ key_columns | join(", ") }} as an earlier row: '
                        || concat_ws(' | ', {% for k in key_columns %}cast({{ k }} as varchar){{ ", " if not loop.last }}{% endfor %})
                )
            else rejection
        end as final_rejection
    from checked
)

select
    * exclude (parse_failure, rejection, final_rejection),
    final_rejection.reason as reject_reason,
    final_rejection.detail as reject_detail
from deduplicated
{%- endmacro %}


{#-
    Plausibility of a transaction date (sales, receipts, transfers, counts, snapshots), as `when ... then` branches
    of a rejection case: after the load date (the day the build runs) plus `future_date_tolerance_days` is
    `future_date` (a sale dated 2099 would move the plan's as-of date), before `date_floor` is `implausible_date`.
    Planned promotions and price changes are not transactions: they may be dated in the future.
-#}
{% macro transaction_date_checks(column) -%}
    {%- set tolerance = var('future_date_tolerance_days', 2) | int -%}
    {%- set floor = var('date_floor', '1990-01-01') -%}
    when {{ column }}::date > current_date + {{ tolerance }}
        then struct_pack(
            reason := 'future_date',
            detail := '{{ column }} ' || {{ column }}::date || ' is after the load date ' || current_date
                || ' (tolerance {{ tolerance }} days)'
        )
    when {{ column }}::date < date '{{ floor }}'
        then struct_pack(reason := 'implausible_date', detail := '{{ column }} ' || {{ column }}::date || ' is before {{ floor }}')
{%- endmacro %}


{#-
    Plausibility of a quantity or a price, as a `when ... then` branch of a rejection case: a value whose absolute
    size is more than var `factor_var` times `scale` (the product's own typical value, computed by the caller) is
    `reason`. Scale-free: a spare part and a bag of sugar are each judged against their own history. A null
    scale (nothing to compare with) never rejects.
-#}
{% macro plausibility_check(column, scale, reason, factor_var, default_factor, scale_label) -%}
    {%- set factor = var(factor_var, default_factor) -%}
    when abs({{ column }}) > {{ scale }} * {{ factor }}
        then struct_pack(
            reason := '{{ reason }}',
            detail := '{{ column }} ' || {{ column }} || ' is more than {{ factor }} x {{ scale_label }} ' || round({{ scale }}, 4)
                || ' ({{ factor_var }})'
        )
{%- endmacro %}


{#- The product's typical absolute quantity in a parsed landing entity: the median of |column| over rows that
    parsed, at least 1 (so a product sold one at a time is judged against 1). -#}
{% macro product_quantity_scale(column, from_cte='parsed') -%}
    select product_id, greatest(median(abs({{ column }})), 1) as quantity_scale
    from {{ from_cte }}
    where parse_failure is null and isfinite({{ column }})
    group by product_id
{%- endmacro %}


{#- The product's typical price in a parsed landing entity: the median of the positive values of `column` (null
    when the product has none, so nothing is judged against zero). -#}
{% macro product_price_scale(column, from_cte='parsed') -%}
    select product_id, median({{ column }}) as price_scale
    from {{ from_cte }}
    where {{ column }} > 0 and isfinite({{ column }})
    group by product_id
{%- endmacro %}


{#- The product's typical selling price: the median positive unit price of its kept sales lines (the reference
    costs, list prices and order costs are judged against). -#}
{% macro product_selling_price() -%}
    select
        product_id,
        median(unit_price) as price_scale
    from {{ ref('stg_sales__sales_lines') }}
    where unit_price > 0
    group by product_id
{%- endmacro %}


{#-
    The scope checks of an optional feature entity (calendar events, external signals): a {reason, detail}
    struct for a scope outside `scopes` (plus 'all'), a blank scope_id, or a scope_id that names no region /
    location / category; null when the scope is fine. Expects `relation` to carry scope and scope_id, and the
    CTEs `regions`, `locations` (and `categories` when 'category' is allowed) joined by `scope_joins`.
-#}
{% macro scope_rejection(relation, scopes) -%}
    case
        when {{ relation }}.scope not in ('all', '{{ scopes | join("', '") }}')
            then struct_pack(
                reason := 'unknown_scope',
                detail := 'scope ''' || {{ relation }}.scope || ''' is not all, {{ scopes | join(", ") }}'
            )
        when {{ relation }}.scope != 'all' and {{ relation }}.scope_id is null
            then struct_pack(reason := 'missing_value', detail := 'scope_id is blank for scope ''' || {{ relation }}.scope || '''')
        when {{ relation }}.scope = 'region' and regions.region is null
            then struct_pack(
                reason := 'unknown_scope',
                detail := 'region ''' || {{ relation }}.scope_id || ''' is not the region of any location in master/locations'
            )
        when {{ relation }}.scope = 'location' and locations.location_id is null
            then struct_pack(
                reason := 'unknown_scope',
                detail := 'location_id ''' || {{ relation }}.scope_id || ''' is not in master/locations'
            )
    {%- if 'category' in scopes %}
        when {{ relation }}.scope = 'category' and categories.category is null
            then struct_pack(
                reason := 'unknown_scope',
                detail := 'category ''' || {{ relation }}.scope_id || ''' is not a category in master/products'
            )
    {%- endif %}
    end
{%- endmacro %}


{#- The left joins `scope_rejection` reads. -#}
{% macro scope_joins(relation, scopes) -%}
    left join regions on {{ relation }}.scope = 'region' and {{ relation }}.scope_id = regions.region
    left join locations on {{ relation }}.scope = 'location' and {{ relation }}.scope_id = locations.location_id
    {%- if 'category' in scopes %}
    left join categories on {{ relation }}.scope = 'category' and {{ relation }}.scope_id = categories.category
    {%- endif %}
{%- endmacro %}
