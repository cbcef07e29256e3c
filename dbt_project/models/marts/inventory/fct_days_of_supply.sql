-- Backward-looking days of supply, at every week end (Sunday) and on the as-of date, per product and location:
--   days_of_supply = on-hand units / average daily usage over the trailing window,
--   usage = units sold to customers + units shipped to other locations,
-- with the window set by var('dos_window_days') (default 28 days, fewer at the start of a history).
{%- set window_days = var('dos_window_days') | int %}

with bounds as (
    select as_of_date from {{ ref('int_calendar_bounds') }}
),

daily as (
    select
        date_day,
        product_id,
        location_id,
        on_hand_units,
        on_hand_value,
        units_sold + transfers_out_units as usage_units
    from {{ ref('fct_inventory_daily') }}
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
        isodow(trailing_usage.date_day) = 7
        or trailing_usage.date_day = (select bounds.as_of_date from bounds)
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
    end as supply_status
from reporting_days
