-- Every day's close = the previous close + the day's movements, except on an anchor day (snapshot or posted
-- count) whose quantity differs from the carried-forward book: there the difference is the anchor drift.
-- Returns the rows where the on-hand history does not balance.
select
    product_id,
    location_id,
    date_day,
    on_hand_open_units,
    net_change_units,
    anchor_drift_units,
    on_hand_units
from {{ ref('int_stock_positions_daily') }}
where on_hand_units is not null
    and abs(on_hand_open_units + net_change_units + coalesce(anchor_drift_units, 0) - on_hand_units) > 1e-6
