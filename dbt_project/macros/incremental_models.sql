{#-
    Helpers of the incremental models: the grid clean-ups, the build stamp (_built_at), the data tests of the
    rows of the latest build, and the rebuild of tables written by an earlier version.
-#}

{#- Pre-hook of int_stock_positions_daily and fct_inventory_daily (both keyed by product_location_key x
    date_day): remove every stored row that is no longer on the product-location x day
    grid, so that delete+insert (which only replaces the keys it writes) leaves nothing stale behind. A
    product-location that is gone, or whose history now starts on another day, loses all its rows (and is rebuilt
    whole); an as-of date moved back empties the table (everything is rebuilt). -#}
{% macro product_location_days_off_grid_delete() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where
            (select max(date_day) from {{ this }}) > (select as_of_date from {{ ref('int_calendar_bounds') }})
            or product_location_key in (
                select stored.product_location_key
                from (
                    select
                        product_location_key,
                        min(date_day) as first_day
                    from {{ this }}
                    group by product_location_key
                ) as stored
                left join {{ ref('int_product_locations') }} as product_locations
                    on stored.product_location_key = product_locations.product_location_key
                where
                    product_locations.product_location_key is null
                    or product_locations.history_start_date <> stored.first_day
            )
    {%- endif -%}
{%- endmacro %}


{#- Pre-hook of the incremental models keyed by a product or product-location and a day (int_product_days,
    fct_sales_daily, fct_days_of_supply): remove the stored rows no longer on the grid of
    int_product_locations, so that delete+insert (which only replaces the keys it writes) leaves nothing stale:
    an as-of date moved back, a product (-location) gone or no longer in `grid_filter`, days before a start
    (`start_column`) that moved later. -#}
{% macro off_grid_delete(grid_key, start_column, grid_filter='true') -%}
    {#- A stored row is off the grid when no product-location of its key (in `grid_filter`) starts on or before its
        day (its key is gone, or its day is before the key's earliest start), or its day is after the as-of date.
        Only keys whose stored days reach outside their grid can have such rows: they are found on the per-key
        first and last days (a narrow aggregate), and only their rows are tested (testing every stored row
        against the grid cost 9 s a night on the M5-size fact). -#}
    {%- if is_incremental() -%}
        delete from {{ this }} as stored
        using (
            select
                stored_keys.{{ grid_key }},
                grid.start_day,
                bounds.as_of_date
            from (
                select
                    {{ grid_key }},
                    min(date_day) as first_day,
                    max(date_day) as last_day
                from {{ this }}
                group by {{ grid_key }}
            ) as stored_keys
            cross join {{ ref('int_calendar_bounds') }} as bounds
            left join (
                select
                    product_locations.{{ grid_key }},
                    min(product_locations.{{ start_column }}) as start_day
                from {{ ref('int_product_locations') }} as product_locations
                where {{ grid_filter }}
                group by product_locations.{{ grid_key }}
            ) as grid
                on stored_keys.{{ grid_key }} = grid.{{ grid_key }}
            where
                grid.start_day is null
                or grid.start_day > stored_keys.first_day
                or stored_keys.last_day > bounds.as_of_date
        ) as off_grid
        where
            off_grid.{{ grid_key }} = stored.{{ grid_key }}
            and (
                off_grid.start_day is null
                or stored.date_day < off_grid.start_day
                or stored.date_day > off_grid.as_of_date
            )
    {%- endif -%}
{%- endmacro %}


{#- A filter of the rows of `alias` (with product_id, location_id and a day `date_column`) on the product-location
    days listed in `days` (a CTE or relation with product_id, location_id and date_day): an incremental model sums
    only the source rows of the days it writes. -#}
{% macro on_product_location_days(days, alias, date_column) -%}
    exists (
        select 1
        from {{ days }}
        where
            {{ days }}.product_id = {{ alias }}.product_id
            and {{ days }}.location_id = {{ alias }}.location_id
            and {{ days }}.date_day = {{ alias }}.{{ date_column }}
    )
{%- endmacro %}


{#- Post-hook of fct_days_of_supply: the previous as-of row, when it was not a week end (a week end's row has
    just been rewritten as an ordinary week-end row). -#}
{% macro days_of_supply_previous_as_of_delete() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where is_as_of_date and date_day <> (select as_of_date from {{ ref('int_calendar_bounds') }})
    {%- endif -%}
{%- endmacro %}


{#- The first day of every month of the history, from a relation `bounds` with history_start_date and as_of_date
    (int_calendar_bounds), as column month_start_date. -#}
{% macro history_month_starts(bounds) -%}
    select
        cast(unnest(generate_series(
            date_trunc('month', {{ bounds }}.history_start_date),
            cast({{ bounds }}.as_of_date as timestamp),
            interval 1 month
        )) as date) as month_start_date
    from {{ bounds }}
{%- endmacro %}


{#- Pre-hook of fct_inventory_turnover_monthly: delete the months this build rewrites (the model then appends the
    history's months the table does not hold). A month is rewritten when a daily row of it was written by this
    build (fct_inventory_daily, fct_sales_daily), when its stored product-location days are not the grid's (a
    product-location gone or starting on another day: the daily facts' pre-hooks deleted its rows), when its length
    or partial flag moved with the history bounds, and when a product in it changed category; months outside the
    history go. -#}
{% macro turnover_months_to_rewrite_delete() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where month_start_date in (
            with bounds as (
                select
                    history_start_date,
                    as_of_date
                from {{ ref('int_calendar_bounds') }}
            ),

            history_months as (
                {{ history_month_starts('bounds') }}
            ),

            grid_days as (
                -- the product-location days fct_inventory_daily holds in each month: its grid runs from each
                -- product-location's history start to the as-of date
                select
                    history_months.month_start_date,
                    product_locations.product_id,
                    product_locations.location_id,
                    cast(
                        least(last_day(history_months.month_start_date), bounds.as_of_date)
                        - greatest(history_months.month_start_date, product_locations.history_start_date)
                        + 1 as bigint
                    ) as product_location_days
                from {{ ref('int_product_locations') }} as product_locations
                cross join bounds
                inner join history_months
                    on last_day(history_months.month_start_date) >= product_locations.history_start_date
                where product_locations.history_start_date <= bounds.as_of_date
            ),

            stored_product_locations as (
                select
                    month_start_date,
                    product_id,
                    location_id,
                    product_location_days
                from {{ this }}
                where grain = 'product_location'
            )

            select cast(date_trunc('month', date_day) as date)
            from {{ ref('fct_inventory_daily') }}
            where _built_at = {{ build_stamp() }}
            union
            select cast(date_trunc('month', date_day) as date)
            from {{ ref('fct_sales_daily') }}
            where _built_at = {{ build_stamp() }}
            union
            select coalesce(grid_days.month_start_date, stored_product_locations.month_start_date)
            from grid_days
            full outer join stored_product_locations
                on
                    grid_days.month_start_date = stored_product_locations.month_start_date
                    and grid_days.product_id = stored_product_locations.product_id
                    and grid_days.location_id = stored_product_locations.location_id
            where grid_days.product_location_days is distinct from stored_product_locations.product_location_days
            union
            select stored.month_start_date
            from {{ this }} as stored
            cross join bounds
            where
                stored.grain = 'company'
                and (
                    stored.month_start_date > bounds.as_of_date
                    or last_day(stored.month_start_date) < bounds.history_start_date
                    or stored.period_days <> cast(
                        least(last_day(stored.month_start_date), bounds.as_of_date)
                        - greatest(stored.month_start_date, bounds.history_start_date)
                        + 1 as integer
                    )
                    or stored.is_partial_month <> (
                        stored.month_start_date < bounds.history_start_date
                        or last_day(stored.month_start_date) > bounds.as_of_date
                    )
                )
            union
            select stored.month_start_date
            from {{ this }} as stored
            left join {{ ref('dim_product') }} as products on stored.product_id = products.product_id
            where stored.grain = 'product' and products.category is distinct from stored.category
        )
    {%- endif -%}
{%- endmacro %}


{#- Post-hook of int_product_price_lists: the products no longer in the master. -#}
{% macro product_price_lists_gone_delete() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where product_id not in (select product_id from {{ ref('stg_master__products') }})
    {%- endif -%}
{%- endmacro %}


{#- on-run-start: an incremental table written by an earlier stockturn version (a column missing, or a key of
    another type) cannot be extended row by row. It is dropped, so this build writes it whole. -#}
{% macro drop_outdated_incremental_tables() -%}
    {%- if execute -%}
        {%- set required = {
            'int_stock_positions_daily': {
                'product_location_key': 'UBIGINT', 'in_transit_change_units': none, 'movement_fingerprint': none,
                '_built_at': none,
            },
            'int_stock_movements_daily': {'stock_record_count': none, '_built_at': none},
            'int_order_book_changes_daily': {'purchase_order_change_units': none, '_built_at': none},
            'int_source_availability': {'_built_at': none},
            'int_product_days': {'_built_at': none},
            'fct_inventory_daily': {'product_location_key': 'UBIGINT', '_built_at': none},
            'fct_days_of_supply': {'_built_at': none},
            'fct_inventory_discrepancies': {'_built_at': none},
            'fct_inventory_turnover_monthly': {'_built_at': none},
            'fct_sales_daily': {'product_location_key': 'UBIGINT', '_built_at': none},
            'stg_sales__sales_lines__validated': {'_file_sha256': none, '_rules': none, '_built_at': none},
            'stg_finance__cogs_ledger__validated': {'_file_sha256': none, '_rules': none, '_built_at': none},
            'stg_sales__sales_lines': {'_file_sha256': none, '_built_at': none},
            'stg_finance__cogs_ledger': {'_file_sha256': none, '_built_at': none},
            'stg_logistics__transfers__validated': {'_file_sha256': none, '_rules': none, '_built_at': none},
            'stg_logistics__transfers': {'_file_sha256': none, '_built_at': none},
        } -%}
        {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.name in required -%}
            {%- set relation = adapter.get_relation(node.database, node.schema, node.alias or node.name) -%}
            {%- if relation is not none -%}
                {%- set stored = {} -%}
                {%- for column in adapter.get_columns_in_relation(relation) -%}
                    {%- do stored.update({column.name: column.dtype | upper}) -%}
                {%- endfor -%}
                {%- set outdated = [] -%}
                {%- for name, dtype in required[node.name].items() -%}
                    {%- if name not in stored or (dtype is not none and stored[name] != dtype) -%}
                        {%- do outdated.append(name) -%}
                    {%- endif -%}
                {%- endfor -%}
                {%- if outdated -%}
                    {%- do log("stockturn: " ~ relation ~ " was written by an earlier version (" ~ outdated | join(", ")
                        ~ "); it is rebuilt in full", info=true) -%}
                    {%- do adapter.drop_relation(relation) -%}
                    {%- do adapter.commit() -%}
                {%- endif -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}


{#- The body of a CTE: per product_location_key, the first `period` (a day or a month) at which the rows of
    `new_rows` and `stored_rows` (one row per key and period) differ in any of `compared` or exist on one side only,
    as `first_changed`. -#}
{% macro first_changed_period(new_rows, stored_rows, period, compared) -%}
    {%- set differs = [] -%}
    {%- for column in compared -%}
        {%- do differs.append(new_rows ~ '.' ~ column ~ ' <> ' ~ stored_rows ~ '.' ~ column) -%}
    {%- endfor %}
    select
        coalesce({{ new_rows }}.product_location_key, {{ stored_rows }}.product_location_key) as product_location_key,
        min(coalesce({{ new_rows }}.{{ period }}, {{ stored_rows }}.{{ period }})) as first_changed
    from {{ new_rows }}
    full outer join {{ stored_rows }}
        on
            {{ new_rows }}.product_location_key = {{ stored_rows }}.product_location_key
            and {{ new_rows }}.{{ period }} = {{ stored_rows }}.{{ period }}
    where
        {{ new_rows }}.product_location_key is null
        or {{ stored_rows }}.product_location_key is null
        or {{ differs | join(' or ') }}
    group by 1
{%- endmacro %}


{#- The time this dbt invocation started, as a timestamp: every row an incremental model writes carries it in
    _built_at, so the models downstream (and the data tests) know which rows this build wrote. -#}
{% macro build_stamp() -%}
    {#- run_started_at is dbt's; sqlfluff's plain jinja templater has none -#}
    {%- if run_started_at is defined -%}
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
    {%- else -%}
        cast(null as timestamp)
    {%- endif -%}
{%- endmacro %}


{#- Data tests on the large incremental tables test what the build wrote, not the whole history again
    (issue 11: "test the new partition"): a test configured with `where: written_by_the_last_build` sees only the
    rows stamped by the latest build (_built_at, see build_stamp). A full build stamps every row, so it tests all
    of them. Any other `where` works as in dbt. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where == 'written_by_the_last_build' -%}
        {%- set filtered -%}
            (select * from {{ relation }} where _built_at = (select max(_built_at) from {{ relation }})) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(adapter.dispatch('get_where_subquery', 'dbt')(relation)) -%}
    {%- endif -%}
{%- endmacro %}
