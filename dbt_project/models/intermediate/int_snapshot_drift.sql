-- Anchors (snapshots, posted counts) that disagree with the book carried forward from the previous anchor:
-- a sign that a movement is missing from the exports (or an ERP adjustment stockturn does not see).
select
    product_locations.product_id,
    product_locations.location_id,
    positions.date_day as anchor_date,
    positions.anchor_type,
    positions.anchor_qty,
    positions.anchor_qty - positions.anchor_drift_units as carried_forward_units,
    positions.anchor_drift_units
from {{ ref('int_stock_positions_daily') }} as positions
inner join {{ ref('int_product_locations') }} as product_locations
    on positions.product_location_key = product_locations.product_location_key
where
    positions.anchor_drift_units is not null
    and positions.anchor_drift_units <> 0
