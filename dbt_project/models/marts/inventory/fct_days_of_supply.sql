-- Backward-looking days of supply, at every week end (Sunday) and on the as-of date, per product and location:
--   days_of_supply = on-hand units / average daily usage over the trailing window,
--   usage = units sold to customers + units shipped to other locations,
-- with the window set by var('dos_window_days') (default 28 days, fewer at the start of a history).
--
-- Incremental (delete+insert on product_location_key x date_day): a build recomputes, per product-location, the
-- reporting days from the first day fct_inventory_daily rewrote (and from the previous as-of date, whose row is
-- no longer the as-of row), reading the daily rows from one window earlier. The pre-hook removes the rows no
-- longer on the grid, the post-hook the previous as-of row when it is not a week end. Changing
-- dos_window_days needs `stockturn build --full-refresh`.
{%- set window_days = var('dos_window_days') | int %}
-- depends_on: {{ ref('int_product_locations') }} (the pre-hook's)
-- sqlfluff:indentation:template_blocks_indent:False
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['product_location_key', 'date_day'],
    on_schema_change='fail',
    pre_hook="{{ off_grid_delete('product_location_key', 'history_start_date') }}",
    post_hook="{{ days_of_supply_previous_as_of_delete() }}",
) }}

with bounds as (
    select as_of_date from {{ ref('int_calendar_bounds') }}
),

{% if is_incremental() %}
rewrite_windows as (
    select
        product_location_key,
        min(date_day) as rewrite_from
    from (
        select
            product_location_key,
            date_day
        from {{ ref('fct_inventory_daily') }}
        where _built_at = {{ build_stamp() }}
        union all
        select
            product_location_key,
            date_day
        from {{ this }}
        where is_as_of_date and date_day <> (select bounds.as_of_date from bounds)
    )
    group by product_location_key
),
{% else %}
rewrite_windows as (
    -- a full build: every product-location, every day
    select
        product_location_key,
        cast(null as date) as rewrite_from
    from {{ ref('int_product_locations') }}
),
{% endif %}

daily as (
    select
        inventory.date_day,
        inventory.product_id,
        inventory.location_id,
        inventory.product_location_key,
        inventory.on_hand_units,
        inventory.on_hand_value,
        inventory.units_sold + inventory.transfers_out_units as usage_units,
        rewrite_windows.rewrite_from
    from {{ ref('fct_inventory_daily') }} as inventory
    inner join rewrite_windows
        on
            inventory.product_location_key = rewrite_windows.product_location_key
            -- the days of the rewritten week ends' trailing windows
            and (
                rewrite_windows.rewrite_from is null
                or inventory.date_day >= rewrite_windows.rewrite_from - {{ window_days - 1 }}
            )
),

trailing_usage as (
    select
        *,
        sum(usage_units) over usage_window as window_usage_units,
        count(*) over usage_window as window_days
    from daily
    window usage_window as (
        partition by product_id, location_id order by date_day
        -- sqlfluff renders var() as a placeholder (0), so it reads this frame as `-1 preceding` and cannot parse it
        rows between {{ window_days - 1 }} preceding and current row  -- noqa: PRS
    )
),

reporting_days as (
    select trailing_usage.*
    from trailing_usage
    where
        (
            isodow(trailing_usage.date_day) = 7
            or trailing_usage.date_day = (select bounds.as_of_date from bounds)
        )
        and (trailing_usage.rewrite_from is null or trailing_usage.date_day >= trailing_usage.rewrite_from)
)

select
    date_day,
    product_id,
    location_id,
    date_day = (select bounds.as_of_date from bounds) as is_as_of_date,
    on_hand_units,
    on_hand_value,
    cast(window_days as integer) as window_days,
    window_usage_units / window_days as avg_daily_usage_units,
    case
        when on_hand_units is null then null
        when on_hand_units <= 0 then 0
        when window_usage_units > 0 then on_hand_units / (window_usage_units / window_days)
    end as days_of_supply,
    case
        when on_hand_units is null then 'unavailable'
        when on_hand_units <= 0 then 'out_of_stock'
        when window_usage_units <= 0 then 'no_recent_usage'
        else 'in_stock'
    end as supply_status,
    product_location_key,
    {{ build_stamp() }} as _built_at
from reporting_days
