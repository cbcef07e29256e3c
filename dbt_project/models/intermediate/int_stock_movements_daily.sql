-- Every movement that changes the book on-hand, summed per day, product and location.
-- Signs are from the location's point of view: + into stock, - out of stock.
with bounds as (
    select as_of_date from {{ ref('int_calendar_bounds') }}
),

sales as (
    select
        sold_on as date_day,
        product_id,
        location_id,
        sum(units_sold) as units_sold,
        sum(units_returned) as units_returned
    from {{ ref('stg_sales__sales_lines') }}
    group by all
),

receipts as (
    select
        received_date as date_day,
        product_id,
        location_id,
        sum(quantity_received) as units_received
    from {{ ref('stg_procurement__receipts') }}
    group by all
),

transfers_out as (
    select
        shipped_date as date_day,
        product_id,
        from_location_id as location_id,
        sum(quantity) as transfers_out_units
    from {{ ref('stg_logistics__transfers') }}
    group by all
),

transfers_in as (
    select
        received_date as date_day,
        product_id,
        to_location_id as location_id,
        sum(quantity) as transfers_in_units
    from {{ ref('stg_logistics__transfers') }}
    where received_date is not null
    group by all
),

count_adjustments as (
    select
        count_date as date_day,
        product_id,
        location_id,
        sum(adjustment_qty) as count_adjustment_units
    from {{ ref('stg_inventory__cycle_counts') }}
    group by all
),

unioned as (
    select * from sales
    union all by name
    select * from receipts
    union all by name
    select * from transfers_out
    union all by name
    select * from transfers_in
    union all by name
    select * from count_adjustments
),

daily as (
    select
        date_day,
        product_id,
        location_id,
        coalesce(sum(units_sold), 0) as units_sold,
        coalesce(sum(units_returned), 0) as units_returned,
        coalesce(sum(units_received), 0) as units_received,
        coalesce(sum(transfers_in_units), 0) as transfers_in_units,
        coalesce(sum(transfers_out_units), 0) as transfers_out_units,
        coalesce(sum(count_adjustment_units), 0) as count_adjustment_units
    from unioned
    where date_day <= (select bounds.as_of_date from bounds)
    group by all
)

select
    *,
    units_received + transfers_in_units + units_returned + count_adjustment_units
    - units_sold - transfers_out_units as net_change_units
from daily
