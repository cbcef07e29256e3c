-- Forward-looking days of supply per product x location on the planning run's as-of date: how long the stock
-- on hand lasts against the forecast, when it runs out, and how it compares with the recommended policy.
--   forecast daily demand = forecast units over the next var('dos_forecast_window_days') days / those days
--   forward days of supply = on-hand units / forecast daily demand
--   projected stock-out date = the day cumulative forecast demand first reaches the units on hand
--   excess = on-hand units above the recommended order-up-to level (more than the policy ever holds right
--            after a receipt), at cost; shortfall = reorder point - inventory position when below it.
{%- set window_days = var('dos_forecast_window_days', 28) | int %}
{%- set excess_days = var('excess_days_of_supply', 180) | int %}

with forecast as (
    select
        as_of_date,
        product_id,
        location_id,
        period_start,
        period_end,
        forecast,
        cast(period_end - period_start + 1 as double) as period_days
    from {{ source('ml', 'demand_forecast') }}
),

run_date as (
    select max(as_of_date) as as_of_date from forecast
),

positions as (
    select
        inventory.product_id,
        inventory.location_id,
        inventory.on_hand_units,
        inventory.inventory_position_units,
        inventory.unit_cost,
        inventory.on_hand_value
    from {{ ref('fct_inventory_daily') }} as inventory
    where inventory.date_day = (select run_date.as_of_date from run_date)
),

window_rates as (
    -- the part of each forecast period inside the window, pro rata for weekly or monthly periods
    select
        forecast.product_id,
        forecast.location_id,
        sum(
            forecast.forecast
            * greatest(
                least(forecast.period_end, run_date.as_of_date + {{ window_days }})
                - greatest(forecast.period_start, run_date.as_of_date + 1) + 1,
                0
            ) / forecast.period_days
        ) / {{ window_days }} as forecast_daily_units
    from forecast
    cross join run_date
    group by all
),

cumulative as (
    select
        forecast.*,
        sum(forecast.forecast) over (
            partition by forecast.product_id, forecast.location_id order by forecast.period_start
        ) as cumulative_forecast
    from forecast
),

stockout_periods as (
    -- the first forecast period by whose end the forecast demand reaches the stock on hand
    select
        cumulative.product_id,
        cumulative.location_id,
        cumulative.period_start
        + cast(ceil(
            (positions.on_hand_units - (cumulative.cumulative_forecast - cumulative.forecast))
            / (cumulative.forecast / cumulative.period_days)
        ) as integer) - 1 as projected_stockout_date
    from cumulative
    inner join positions
        on
            cumulative.product_id = positions.product_id
            and cumulative.location_id = positions.location_id
    where
        positions.on_hand_units > 0
        and cumulative.forecast > 0
        and cumulative.cumulative_forecast >= positions.on_hand_units
    qualify row_number() over (
        partition by cumulative.product_id, cumulative.location_id order by cumulative.period_start
    ) = 1
),

policy as (
    select
        product_id,
        location_id,
        reorder_point,
        order_up_to_level,
        lead_time_days
    from {{ source('ml', 'inventory_policy') }}
),

joined as (
    select
        run_date.as_of_date,
        window_rates.product_id,
        window_rates.location_id,
        positions.on_hand_units,
        positions.inventory_position_units,
        positions.unit_cost,
        positions.on_hand_value,
        window_rates.forecast_daily_units,
        -- negative book stock (sold past an empty book: a count or receipt is missing) has no days of supply
        greatest(positions.on_hand_units, 0) / nullif(window_rates.forecast_daily_units, 0) as forward_days_of_supply,
        positions.on_hand_units < 0 as is_negative_book_stock,
        stockout_periods.projected_stockout_date,
        policy.lead_time_days,
        policy.reorder_point,
        policy.order_up_to_level,
        policy.order_up_to_level / nullif(window_rates.forecast_daily_units, 0) as target_days_of_supply
    from window_rates
    cross join run_date
    left join positions
        on
            window_rates.product_id = positions.product_id
            and window_rates.location_id = positions.location_id
    left join stockout_periods
        on
            window_rates.product_id = stockout_periods.product_id
            and window_rates.location_id = stockout_periods.location_id
    left join policy
        on
            window_rates.product_id = policy.product_id
            and window_rates.location_id = policy.location_id
)

select
    *,
    greatest(on_hand_units - order_up_to_level, 0) as excess_units,
    greatest(on_hand_units - order_up_to_level, 0) * unit_cost as excess_value_at_cost,
    greatest(reorder_point - inventory_position_units, 0) as shortfall_units,
    case
        when on_hand_units is null then 'unavailable'
        when on_hand_units <= 0 then 'out_of_stock'
        when projected_stockout_date <= as_of_date + cast(ceil(coalesce(lead_time_days, 0)) as integer)
            then 'stockout_before_receipt'
        when forecast_daily_units <= 0 then 'no_forecast_demand'
        when forward_days_of_supply > {{ excess_days }} then 'excess'
        else 'in_stock'
    end as supply_status
from joined
