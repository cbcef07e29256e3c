{#-
    Incremental validation of the large landing entities (sales lines, the COGS ledger; issue 11): a nightly build
    validates the rows of the files that are new or changed since the last build, and re-validates only the earlier
    rows whose verdict can have changed. Each validated row records what its verdict was judged against
    (`_file_sha256`, `_parsed`, the product's and location's master state, `_rules`), so a build can tell which
    earlier rows must be judged again:

    * rows of a file that is new, or whose checksum changed (`raw.landing_files.sha256`);
    * rows whose plausibility verdict can change with their product's scale (its median quantity / price / amount
      over all its rows as they stand after this build): the rows now above the scale's bound and the rows whose
      verdict quotes a scale (flagged). A row below the bound that was not flagged keeps its verdict whatever the
      scale was when it was judged, so the scale the last build judged with is not needed;
    * rows of a product whose master state changed (added, removed, made a non-stock item), and rows of a
      location added or removed;
    * rows quarantined as `future_date` (the build day moved on);
    * every row sharing a key (the transaction or posting id) with a row of those, or with a row whose file is
      gone: duplicates are decided among rows with the same key;
    * everything when a validation setting changed (`_rules`, pre-hook `staging_rules_changed_delete`).

    Rows of files no longer landed, and the old rows of a changed file, are deleted after the write
    (`staged_rows_gone_delete`). A chain of nightly builds equals a full rebuild (tests/test_incremental_mart.py).
-#}


{#- The validation settings a verdict depends on, as one text: a row judged under other settings is judged again. -#}
{% macro staging_rules() -%}
    '{{ "future_date_tolerance_days=%s;date_floor=%s;implausible_quantity_factor=%s;implausible_price_factor=%s" | format(
        var("future_date_tolerance_days", 2), var("date_floor", "1990-01-01"), var("implausible_quantity_factor", 1000),
        var("implausible_price_factor", 100)) }}'
{%- endmacro %}


{#- The files of one landing entity as the loader last recorded them, with their checksums. -#}
{% macro landed_files(entity) -%}
    select
        file as _source_file,
        sha256 as _file_sha256
    from {{ source('landing', 'landing_files') }}
    where entity = '{{ entity }}'
{%- endmacro %}


{#- pre-hook: rows judged under other validation settings are deleted, so the build validates them again. -#}
{% macro staging_rules_changed_delete() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where _rules is distinct from {{ staging_rules() }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}


{#- Whether row `alias` comes from a file the loader still records with the checksum the row was loaded with (a
    file withdrawn, or landed again with other contents, fails it). -#}
{% macro staged_row_is_landed(alias, entity) -%}
    exists (
        select 1
        from {{ source('landing', 'landing_files') }} as f
        where
            f.entity = '{{ entity }}'
            and f.file = {{ alias }}._source_file
            and f.sha256 = {{ alias }}._file_sha256
    )
{%- endmacro %}


{#- post-hook: rows of a file no longer landed, or of an earlier version of a changed file, are deleted. -#}
{% macro staged_rows_gone_delete(entity) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as t
        where not {{ staged_row_is_landed('t', entity) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}


{#- The product's state a transaction line is judged against: 'unknown' (not in master/products), 'non_stock' or
    'stock'. `products` is the caller's CTE of stg_master__products. -#}
{% macro product_master_state(products='products') -%}
    case
        when {{ products }}.product_id is null then 'unknown'
        when {{ products }}.product_type = 'non_stock' then 'non_stock'
        else 'stock'
    end
{%- endmacro %}


{#-
    The CTEs that decide which landed rows an incremental build validates (after the caller's `files_now`,
    `products`, `locations` and `missing_parsed`: the parsed rows of the new and changed files (`new_files`), with
    `_parsed`). Ends with CTE `scope_rows` (_source_file, _source_row of the earlier rows to judge again) and
    `scales_now` (product_id and every scale, over all rows as they will be after this build).

    scales: a list of plausibility scales, each a dict with
      name: the scale's column in `scales_now`;
      aggregate: its aggregate over the rows selected by the placeholder `{rows}` (e.g. "median(abs(quantity))
        filter (where _parsed and {rows})"), computed over the rows as they stand after this build;
      value, factor: a row is implausible when `value > scale * factor`;
      flagged: the rows whose verdict names the scale (their detail text quotes it).
    `scale_inputs`: the columns the aggregates read; `key`: the column duplicates are decided within (a text column
    of the row's natural key, or its first column: every row sharing it is judged again);
    `location_columns`: the row's location columns, each with the column recording whether the location was in
    the master when the row was judged (a row of a location added or removed since is judged again).
-#}
{% macro incremental_staging_scope(
    scales, scale_inputs, key, location_columns=[('location_id', '_location_known')]
) -%}
    {%- set scale_now, rejudge = [], [] -%}
    {%- set judged_locations, location_moved = [], [] -%}
    {%- for column, known in location_columns -%}
        {%- do judged_locations.append('select distinct ' ~ column ~ ' as location_id, ' ~ known
            ~ ' as location_known from current_rows') -%}
        {%- do location_moved.append(column ~ ' in (select locations_changed.location_id from locations_changed)') -%}
    {%- endfor -%}
    {%- for sc in scales -%}
        {%- do scale_now.append(sc.aggregate | replace('{rows}', 'is_now') ~ ' as ' ~ sc.name) -%}
        {%- do rejudge.append('coalesce(' ~ sc.value ~ ' > scales_now.' ~ sc.name ~ ' * ' ~ sc.factor ~ ', false) or ('
            ~ sc.flagged ~ ')') -%}
    {%- endfor %}
gone_files as (
    -- a file's rows in the table all carry the checksum they were loaded with: its name is enough below
    select
        _source_file,
        _file_sha256
    from (select distinct _source_file, _file_sha256 from {{ this }}) as before
    except
    select
        _source_file,
        _file_sha256
    from files_now
),

current_rows as not materialized (
    select t.*
    from {{ this }} as t
    where t._source_file not in (select gone_files._source_file from gone_files)
),

gone_keys as (
    select distinct t.{{ key }}
    from {{ this }} as t
    where t._source_file in (select gone_files._source_file from gone_files)
),

scale_rows as (
    select
        product_id,
        {{ scale_inputs | join(', ') }},
        _product_state,
        t._source_file not in (select gone_files._source_file from gone_files) as is_now
    from {{ this }} as t
    union all
    select
        product_id,
        {{ scale_inputs | join(', ') }},
        null as _product_state,
        true as is_now
    from missing_parsed
),

{#- per product, in one pass: its scales now (the earlier rows still landed and the new files' rows), and the
    master state its earlier rows were judged with -#}
products_before_and_now as (
    select
        product_id,
        {{ scale_now | join(', ') }},
        min(_product_state) as product_state_min,
        max(_product_state) as product_state_max
    from scale_rows
    group by product_id
),

scales_now as (
    select
        product_id,
        {{ scales | map(attribute='name') | join(', ') }}
    from products_before_and_now
),

products_state_changed as (
    select judged.product_id
    from products_before_and_now as judged
    left join products on judged.product_id = products.product_id
    where
        judged.product_state_min is not null
        and (
            judged.product_state_min is distinct from {{ product_master_state() }}
            or judged.product_state_max is distinct from {{ product_master_state() }}
        )
),

locations_changed as (
    select judged.location_id
    from (
        {{ judged_locations | join(' union ') }}
    ) as judged
    left join locations on judged.location_id = locations.location_id
    where judged.location_known is distinct from (locations.location_id is not null)
),

seed_rows as (
    select
        _source_file,
        _source_row,
        {{ key }}
    from current_rows
    where
        reject_reason = 'future_date'
        or product_id in (select products_state_changed.product_id from products_state_changed)
        or {{ location_moved | join(' or ') }}
    union
    select
        current_rows._source_file,
        current_rows._source_row,
        current_rows.{{ key }}
    from current_rows
    inner join scales_now on current_rows.product_id = scales_now.product_id
    where {{ rejudge | join(' or ') }}
),

scope_keys as (
    select {{ key }} from seed_rows
    union
    select {{ key }} from missing_parsed
    union
    select {{ key }} from gone_keys
),

scope_rows as (
    select
        _source_file,
        _source_row
    from seed_rows
    union
    {#- the stored rows of the scope's keys: rows of a file that is gone are no longer in the raw table, so they
        need no filter here (`landed` reads the raw rows). Read from the table, not from current_rows: DuckDB
        estimates the filtered rows below the keys and would hash every stored row instead of the few keys. #}
    select
        t._source_file,
        t._source_row
    from {{ this }} as t
    where t.{{ key }} in (select scope_keys.{{ key }} from scope_keys)
)
{%- endmacro %}


{#- The files of an entity that are new or changed since the last build (their rows are validated whole). -#}
{% macro new_landed_files(entity) -%}
    select
        _source_file,
        _file_sha256
    from files_now
    except
    select distinct
        _source_file,
        _file_sha256
    from {{ this }}
{%- endmacro %}


{#- pre-hook of a kept-rows table: rows whose validated row was judged again since this table's last build and is
    now rejected are removed (the rows still kept are rewritten by the build itself). -#}
{#- Whether kept row `alias` of table `kept` was judged again since `kept`'s last build and is now rejected. -#}
{% macro staged_row_now_rejected(alias, kept, validated_model) -%}
    exists (
        select 1
        from {{ ref(validated_model) }} as v
        where
            v._built_at > (select max(k._built_at) from {{ kept }} as k)
            and v.reject_reason is not null
            and v._source_file = {{ alias }}._source_file
            and v._source_row = {{ alias }}._source_row
    )
{%- endmacro %}


{% macro staged_rows_now_rejected_delete(validated_model) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as t
        where {{ staged_row_now_rejected('t', this, validated_model) }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}


{#- The filter of a kept-rows table on its validated model: in an incremental build, the rows validated since this
    table's last build. -#}
{% macro validated_since_last_build() -%}
    {%- if is_incremental() -%}
        and _built_at > (select coalesce(max(k._built_at), '-infinity'::timestamp) from {{ this }} as k)
    {%- endif -%}
{%- endmacro %}


{#- The CTEs every incrementally validated landing entity starts with, ending with a comma (the model's own CTEs
    follow): files_now (the landed files and their checksums), products and locations (the master data rows are
    judged against) and landed (the raw rows this build validates: all of them on a full build; on an
    incremental one the rows of new and changed files and the earlier rows whose verdict can change,
    incremental_staging_scope). parse_columns: the columns whose parse failure rejects a row; key and
    location_columns: see incremental_staging_scope. -#}
{% macro validated_landing_inputs(
    source_name, entity, columns, parse_columns, scales, scale_inputs, key,
    location_columns=[('location_id', '_location_known')]
) -%}
files_now as (
    {{ landed_files(entity) }}
),

products as (
    select
        product_id,
        product_type
    from {{ ref('stg_master__products') }}
),

locations as (
    select location_id from {{ ref('stg_master__locations') }}
),

{% if is_incremental() %}
new_files as (
    {{ new_landed_files(entity) }}
),

missing_parsed as (
    select
        l._source_file,
        l._source_row,
        {{ parse_landing_columns(columns) }},
        ({{ first_parse_failure(parse_columns) }}) is null as _parsed
    from {{ source(source_name, entity) }} as l
    where l._source_file in (select new_files._source_file from new_files)
),

{{ incremental_staging_scope(scales, scale_inputs, key, location_columns) }},

landed as not materialized (
    select l.*
    from {{ source(source_name, entity) }} as l
    where
        l._source_file in (select new_files._source_file from new_files)
        or exists (
            select 1
            from scope_rows as s
            where
                s._source_file = l._source_file
                and s._source_row = l._source_row
        )
),
{% else %}
landed as not materialized (
    select * from {{ source(source_name, entity) }}
),
{% endif %}
{%- endmacro %}


{#-
    The body of a `*__withdrawn` model: the day, product and location of every kept row that this build removes
    or replaces, before the kept model (`kept_model`, which depends on it) writes: rows of a file no longer landed
    or landed again with another checksum, and rows judged again and now rejected. The daily facts downstream
    rewrite these days, and the days of the rows staged since their last build, instead of comparing every day's
    amounts (fct_sales_daily). Append-only, stamped with the build (_built_at); a full build starts it empty (it
    then withdraws nothing: the kept model is written whole). `date_column` and `location_column`: the kept
    model's day and location (a row without that day, a transfer not yet received, withdraws none); `more_days`
    further (day, location) pairs of the same row, read in the same pass.
-#}
{% macro staged_rows_withdrawn(kept_model, validated_model, entity, date_column, location_column='location_id', more_days=[]) -%}
    {%- set kept = none -%}
    {#- sqlfluff's templater has no adapter -#}
    {%- if is_incremental() and adapter is defined -%}
        {%- set kept = adapter.get_relation(database=this.database, schema=this.schema, identifier=kept_model) -%}
    {%- endif -%}
    {%- set named_days = [] -%}
    {%- for day_column, day_location in [(date_column, location_column)] + more_days -%}
        {%- do named_days.append("{'date_day': kept." ~ day_column ~ ", 'location_id': kept." ~ day_location ~ "}") -%}
    {%- endfor -%}
    {%- if kept is not none %}
        select distinct
            named_days.date_day,
            named_days.product_id,
            named_days.location_id,
            {{ build_stamp() }} as _built_at
        from (
            -- one pass over the kept rows, each withdrawn row naming each of its days
            select
                kept.product_id,
                unnest([{{ named_days | join(', ') }}], recursive := true)
            from {{ kept }} as kept
            where
                not {{ staged_row_is_landed('kept', entity) }}
                or {{ staged_row_now_rejected('kept', kept, validated_model) }}
        ) as named_days
        where named_days.date_day is not null
    {%- else %}
        select
            cast(null as date) as date_day,
            cast(null as varchar) as product_id,
            cast(null as varchar) as location_id,
            {{ build_stamp() }} as _built_at
        where false
    {%- endif %}
{%- endmacro %}
