-- The reconstructed book is continuous: on every anchor day (snapshot or posted count) the day opens with the
-- previous day's close, whatever correction the anchor applies at the close. Returns the days that do not.
-- (On other days the opening is the close minus the day's movements by construction.) The tolerance is relative
-- to the size of the stock, so a large but legitimate quantity never fails on double rounding. It checks the days
-- the latest build wrote, against the day before whichever build wrote it. A value invariant:
-- it warns and its rows are kept in schema exceptions (see docs/data-tests.md), the build goes on.
{{ config(severity='warn', store_failures=true) }}

with positions as (
    select * from {{ ref('int_stock_positions_daily') }}
),

written as (
    -- the days the latest build wrote (every day after a full build): a pair of days neither of which it wrote
    -- was checked by the build that wrote them
    select * from positions
    where _built_at = (select max(latest._built_at) from positions as latest)
)

select
    today.product_location_key,
    today.date_day,
    today.on_hand_open_units,
    yesterday.on_hand_units as previous_close_units
from written as today
inner join positions as yesterday
    on
        today.product_location_key = yesterday.product_location_key
        and today.date_day - 1 = yesterday.date_day
where
    today.anchor_qty is not null
    and abs(today.on_hand_open_units - yesterday.on_hand_units)
    > 1e-6 * greatest(1, abs(today.on_hand_open_units), abs(yesterday.on_hand_units))
