{#-
    Helpers of the incremental daily models (int_stock_positions_daily).
-#}

{#- Pre-hook of int_stock_positions_daily: remove every stored row that is no longer on the product-location x day
    grid, so that delete+insert (which only replaces the keys it writes) leaves nothing stale behind. A
    product-location that is gone, or whose history now starts on another day, loses all its rows (and is rebuilt
    whole); an as-of date moved back empties the table (everything is rebuilt). -#}
{% macro stock_positions_off_grid_delete() -%}
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


{#- on-run-start: an incremental table written by an earlier stockturn version (a column missing, or a key of
    another type) cannot be extended row by row. It is dropped, so this build writes it whole. -#}
{% macro drop_outdated_incremental_tables() -%}
    {%- if execute -%}
        {%- set required = {
            'int_stock_positions_daily': {'product_location_key': 'UBIGINT', 'in_transit_change_units': none},
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
