-- One row per cycle count: book quantity vs counted quantity, in units and at the standard cost of the count
-- day. Negative discrepancies are shrinkage (book higher than shelf); a count of zero against a positive book
-- is ghost stock: the system believed there was stock, so nothing was reordered while the shelf was empty.
with counts as (
    select * from {{ ref('stg_inventory__cycle_counts') }}
),

costs as (
    select
        product_id,
        valid_from,
        unit_cost
    from {{ ref('stg_finance__standard_costs') }}
),

valued as (
    select
        counts.*,
        costs.unit_cost
    from counts
    asof left join costs
        on
            counts.product_id = costs.product_id
            and counts.count_date >= costs.valid_from
),

sale_days as (
    select
        product_id,
        location_id,
        date_day as last_sale_date
    from {{ ref('int_stock_movements_daily') }}
    where units_sold > 0
),

last_sales as (
    -- the last day with a sale on or before the count
    select
        valued.count_id,
        sale_days.last_sale_date
    from valued
    asof inner join sale_days
        on
            valued.product_id = sale_days.product_id
            and valued.location_id = sale_days.location_id
            and valued.count_date >= sale_days.last_sale_date
)

select
    valued.count_id,
    valued.count_date,
    valued.product_id,
    valued.location_id,
    valued.book_qty,
    valued.counted_qty,
    valued.adjustment_qty as discrepancy_units,
    valued.unit_cost,
    valued.adjustment_qty * valued.unit_cost as discrepancy_value,
    abs(valued.adjustment_qty) * valued.unit_cost as abs_discrepancy_value,
    case
        when valued.adjustment_qty < 0 then 'shrinkage'
        when valued.adjustment_qty > 0 then 'surplus'
        else 'match'
    end as discrepancy_type,
    valued.book_qty > 0 and valued.counted_qty = 0 as is_ghost_stock,
    last_sales.last_sale_date,
    cast(valued.count_date - last_sales.last_sale_date as integer) as days_since_last_sale
from valued
left join last_sales on valued.count_id = last_sales.count_id
