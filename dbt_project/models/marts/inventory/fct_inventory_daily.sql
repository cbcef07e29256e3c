-- One row per day, product and location: book on-hand at the close of the day, its value at the standard
-- cost valid that day, and what is on order and in transit. See int_on_hand_daily for the reconstruction.
with on_hand as (
    select * from {{ ref('int_on_hand_daily') }}
),

availability as (
    select * from {{ ref('int_source_availability') }}
),

costs as (
    select
        product_id,
        valid_from,
        unit_cost
    from {{ ref('stg_finance__standard_costs') }}
),

open_orders as (
    select * from {{ ref('int_open_orders_daily') }}
),

valued as (
    select
        on_hand.*,
        costs.unit_cost
    from on_hand
    asof left join costs
        on
            on_hand.product_id = costs.product_id
            and on_hand.date_day >= costs.valid_from
),

with_orders as (
    select
        valued.*,
        open_orders.on_order_units,
        open_orders.in_transit_units
    from valued
    asof left join open_orders
        on
            valued.product_id = open_orders.product_id
            and valued.location_id = open_orders.location_id
            and valued.date_day >= open_orders.date_day
)

select
    with_orders.date_day,
    with_orders.product_id,
    with_orders.location_id,
    with_orders.on_hand_open_units,
    with_orders.on_hand_units,
    with_orders.units_sold,
    with_orders.units_returned,
    with_orders.units_received,
    with_orders.transfers_in_units,
    with_orders.transfers_out_units,
    with_orders.count_adjustment_units,
    case
        when availability.has_purchase_orders or availability.has_transfers
            then coalesce(with_orders.on_order_units, 0)
    end as on_order_units,
    case when availability.has_transfers then coalesce(with_orders.in_transit_units, 0) end as in_transit_units,
    with_orders.on_hand_units
    + coalesce(with_orders.on_order_units, 0)
    + coalesce(with_orders.in_transit_units, 0) as inventory_position_units,
    with_orders.unit_cost,
    greatest(with_orders.on_hand_units, 0) * with_orders.unit_cost as on_hand_value,
    with_orders.on_hand_units < 0 as is_negative_book,
    with_orders.on_hand_units <= 0 or with_orders.on_hand_open_units <= 0 as is_stockout_day,
    case
        when with_orders.on_hand_units is null then 'unavailable'
        when availability.has_receipts or availability.has_transfers then 'reconstructed'
        else 'reconstructed_without_inflows'
    end as on_hand_basis,
    case
        when with_orders.on_hand_units is null then 'unavailable'
        when not availability.has_standard_costs then 'no_cost_source'
        when with_orders.unit_cost is null then 'missing_cost'
        else 'standard_cost'
    end as valuation_basis,
    case
        when availability.has_purchase_orders and availability.has_transfers then 'purchase_orders_and_transfers'
        when availability.has_purchase_orders then 'purchase_orders_only'
        when availability.has_transfers then 'transfers_only'
        else 'unavailable'
    end as on_order_basis
from with_orders
cross join availability
