-- One row per day, product and location: book on-hand at the close of the day (see int_stock_positions_daily
-- for the reconstruction), the movements of the day, its value at the standard cost valid that day, and what
-- is on order and in transit. Where a source is missing the measure is null and the *_basis columns say why.
--
-- Incremental (delete+insert on product_location_key x date_day): a build writes the days that
-- int_stock_positions_daily rewrote (new days, and days after a changed movement, anchor or order), the days
-- whose standard cost int_product_days rewrote, and every day when the sources available changed
-- (int_source_availability). Each row carries the build that wrote it (_built_at). A chain of nightly builds
-- equals a full rebuild (tests/test_incremental_mart.py).
-- depends_on: {{ ref('int_calendar_bounds') }} (the pre-hook's)
-- sqlfluff:indentation:template_blocks_indent:False
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['product_location_key', 'date_day'],
    on_schema_change='fail',
    pre_hook="{{ product_location_days_off_grid_delete() }}",
) }}

with availability as (
    select * from {{ ref('int_source_availability') }}
),

product_locations as (
    select
        product_location_key,
        product_id,
        location_id
    from {{ ref('int_product_locations') }}
),

{% if is_incremental() %}
sources_changed as (
    select count(*) > 0 as changed
    from availability
    where _built_at = {{ build_stamp() }}
),

repriced_days as (
    -- product-location days whose standard cost this build changed
    select
        product_locations.product_location_key,
        product_days.date_day
    from {{ ref('int_product_days') }} as product_days
    inner join product_locations on product_days.product_id = product_locations.product_id
    where product_days._built_at = {{ build_stamp() }}
),

positions as (
    select stored_positions.*
    from {{ ref('int_stock_positions_daily') }} as stored_positions
    where stored_positions._built_at = {{ build_stamp() }} or (select sources_changed.changed from sources_changed)
    union all
    select stored_positions.*
    from {{ ref('int_stock_positions_daily') }} as stored_positions
    where
        stored_positions._built_at <> {{ build_stamp() }}
        and not (select sources_changed.changed from sources_changed)
        and exists (
            select 1
            from repriced_days
            where
                repriced_days.product_location_key = stored_positions.product_location_key
                and repriced_days.date_day = stored_positions.date_day
        )
),

first_position_day as (
    -- the movements are read from the earliest day written tonight on: without this bound DuckDB hashes every
    -- stored movement day for the join below (it cannot estimate how few positions a night writes)
    select min(positions.date_day) as first_day
    from positions
),
{% else %}
positions as (
    select * from {{ ref('int_stock_positions_daily') }}
),
{% endif %}

movements as (
    select
        product_locations.product_location_key,
        movements.date_day,
        movements.units_sold,
        movements.units_returned,
        movements.units_received,
        movements.transfers_in_units,
        movements.transfers_out_units,
        movements.count_adjustment_units
    from {{ ref('int_stock_movements_daily') }} as movements
    inner join product_locations
        on
            movements.product_id = product_locations.product_id
            and movements.location_id = product_locations.location_id
    {%- if is_incremental() %}
    where movements.date_day >= (select first_position_day.first_day from first_position_day)
    {%- endif %}
),

product_days as (
    select
        product_id,
        date_day,
        unit_cost
    from {{ ref('int_product_days') }}
)

select
    positions.date_day,
    product_locations.product_id,
    product_locations.location_id,
    positions.on_hand_open_units,
    positions.on_hand_units,
    coalesce(movements.units_sold, 0) as units_sold,
    coalesce(movements.units_returned, 0) as units_returned,
    coalesce(movements.units_received, 0) as units_received,
    coalesce(movements.transfers_in_units, 0) as transfers_in_units,
    coalesce(movements.transfers_out_units, 0) as transfers_out_units,
    coalesce(movements.count_adjustment_units, 0) as count_adjustment_units,
    case
        when availability.has_purchase_orders or availability.has_transfers then positions.on_order_units
    end as on_order_units,
    case when availability.has_transfers then positions.in_transit_units end as in_transit_units,
    positions.on_hand_units + positions.on_order_units + positions.in_transit_units as inventory_position_units,
    product_days.unit_cost,
    greatest(positions.on_hand_units, 0) * product_days.unit_cost as on_hand_value,
    positions.on_hand_units < 0 as is_negative_book,
    positions.on_hand_units <= 0 or positions.on_hand_open_units <= 0 as is_stockout_day,
    case
        when positions.on_hand_units is null then 'unavailable'
        when availability.has_receipts or availability.has_transfers then 'reconstructed'
        else 'reconstructed_without_inflows'
    end as on_hand_basis,
    case
        when positions.on_hand_units is null then 'unavailable'
        when not availability.has_standard_costs then 'no_cost_source'
        when product_days.unit_cost is null then 'missing_cost'
        else 'standard_cost'
    end as valuation_basis,
    case
        when availability.has_purchase_orders and availability.has_transfers then 'purchase_orders_and_transfers'
        when availability.has_purchase_orders then 'purchase_orders_only'
        when availability.has_transfers then 'transfers_only'
        else 'unavailable'
    end as on_order_basis,
    positions.product_location_key,
    {{ build_stamp() }} as _built_at
from positions
inner join product_locations on positions.product_location_key = product_locations.product_location_key
cross join availability
left join movements
    on
        positions.product_location_key = movements.product_location_key
        and positions.date_day = movements.date_day
left join product_days
    on
        product_locations.product_id = product_days.product_id
        and positions.date_day = product_days.date_day
