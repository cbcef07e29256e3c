-- Anchors (snapshots, posted counts) that disagree with the book carried forward from the previous anchor:
-- a sign that a movement is missing from the exports (or an ERP adjustment stockturn does not see).
select
    product_id,
    location_id,
    date_day as anchor_date,
    anchor_type,
    anchor_qty,
    anchor_qty - anchor_drift_units as carried_forward_units,
    anchor_drift_units
from {{ ref('int_stock_positions_daily') }}
where
    anchor_drift_units is not null
    and anchor_drift_units <> 0
