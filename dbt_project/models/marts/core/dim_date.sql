with bounds as (
    select * from {{ ref('int_calendar_bounds') }}
),

days as (
    select
        cast(unnest(generate_series(
            cast(history_start_date as timestamp),
            cast(as_of_date + {{ var('calendar_future_days') }} as timestamp),
            interval 1 day
        )) as date) as date_day
    from bounds
)

select
    days.date_day,
    cast(year(days.date_day) as integer) as year_number,
    cast(quarter(days.date_day) as integer) as quarter_number,
    cast(month(days.date_day) as integer) as month_number,
    monthname(days.date_day) as month_name,
    cast(date_trunc('month', days.date_day) as date) as month_start_date,
    last_day(days.date_day) as month_end_date,
    cast(day(last_day(days.date_day)) as integer) as days_in_month,
    cast(date_trunc('week', days.date_day) as date) as week_start_date,
    cast(isoyear(days.date_day) as integer) as iso_year,
    cast(weekofyear(days.date_day) as integer) as iso_week,
    cast(isodow(days.date_day) as integer) as iso_day_of_week,
    dayname(days.date_day) as day_name,
    cast(dayofyear(days.date_day) as integer) as day_of_year,
    isodow(days.date_day) in (6, 7) as is_weekend,
    days.date_day > bounds.as_of_date as is_future
from days
cross join bounds
