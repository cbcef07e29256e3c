-- Every movement that changes the book on-hand, summed per day, product and location.
-- Signs are from the location's point of view: + into stock, - out of stock.
--
-- Incremental (delete+insert on day x product x location). A nightly build rewrites only the days that can have
-- changed since this table's last build: the days of the sales lines and transfers staged since (new, corrected,
-- judged again) or withdrawn since (stg_sales__sales_lines__withdrawn, stg_logistics__transfers__withdrawn),
-- found from their build stamps as fct_sales_daily finds them; the days whose receipts or cycle counts differ from
-- the stored ones (small tables, compared whole, with stock_record_count, so a count that changed nothing still
-- counts); the days of any line or record after the last stored day (an as-of date moved on); the stored days
-- after the as-of date; and every day when the sales or transfer staging was written whole (then what it withdrew
-- is not on record). A rewritten day is summed again from all its lines and records. A day that no longer has any
-- is written as a row of nulls, which the post-hook deletes. `stockturn build --full-refresh` rebuilds the table
-- from scratch; tests/test_incremental_mart.py proves a chain of nightly builds equals a full rebuild.
-- depends_on: {{ ref('stg_sales__sales_lines__withdrawn') }}
-- depends_on: {{ ref('stg_logistics__transfers__withdrawn') }}
-- sqlfluff:indentation:template_blocks_indent:False
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['date_day', 'product_id', 'location_id'],
    on_schema_change='fail',
    post_hook="delete from {{ this }} where units_sold is null",
) }}

with bounds as (
    select as_of_date from {{ ref('int_calendar_bounds') }}
),

sales_lines as (
    select
        sold_on as date_day,
        product_id,
        location_id,
        units_sold,
        units_returned,
        _built_at
    from {{ ref('stg_sales__sales_lines') }}
),

transfer_records as (
    select
        shipped_date as date_day,
        product_id,
        from_location_id as location_id,
        quantity as transfers_out_units,
        _built_at
    from {{ ref('stg_logistics__transfers') }}
    union all by name
    select
        received_date as date_day,
        product_id,
        to_location_id as location_id,
        quantity as transfers_in_units,
        _built_at
    from {{ ref('stg_logistics__transfers') }}
    where received_date is not null
),

stock_records as (
    -- receipts and cycle-count corrections
    select
        received_date as date_day,
        product_id,
        location_id,
        quantity_received as units_received
    from {{ ref('stg_procurement__receipts') }}
    union all by name
    select
        count_date as date_day,
        product_id,
        location_id,
        adjustment_qty as count_adjustment_units
    from {{ ref('stg_inventory__cycle_counts') }}
),

stock_daily as (
    -- receipts and cycle-count corrections per day, and how many records they sum
    select
        date_day,
        product_id,
        location_id,
        coalesce(sum(units_received), 0) as units_received,
        coalesce(sum(count_adjustment_units), 0) as count_adjustment_units,
        count(*) as stock_record_count
    from stock_records
    where date_day <= (select bounds.as_of_date from bounds)
    group by all
),

{% if is_incremental() %}
last_build as (
    -- the stamp and the last day of this table's last build (none: every line is new)
    select
        coalesce(max(_built_at), cast('-infinity' as timestamp)) as built_at,
        coalesce(max(date_day), cast('-infinity' as date)) as last_day
    from {{ this }}
),

restaged as (
    -- whether every kept sales line, or every kept transfer, was written since this table's last build (that
    -- staging built whole: what it withdrew is not on record)
    select
        coalesce((select min(sales_lines._built_at) from sales_lines) > last_build.built_at, false)
        or coalesce((select min(transfer_records._built_at) from transfer_records) > last_build.built_at, false)
            as is_whole
    from last_build
),

stored_stock as (
    select
        date_day,
        product_id,
        location_id,
        units_received,
        count_adjustment_units,
        stock_record_count
    from {{ this }}
    where stock_record_count > 0
),

staged_days as (
    -- the days of every kept sales line and transfer, and of those the staging withdrew, with the build that
    -- wrote or withdrew them
    select
        date_day,
        product_id,
        location_id,
        _built_at
    from sales_lines
    union all
    select
        date_day,
        product_id,
        location_id,
        _built_at
    from transfer_records
    union all
    select
        date_day,
        product_id,
        location_id,
        _built_at
    from {{ ref('stg_sales__sales_lines__withdrawn') }}
    union all
    select
        date_day,
        product_id,
        location_id,
        _built_at
    from {{ ref('stg_logistics__transfers__withdrawn') }}
),

rewritten_days as (
    select
        date_day,
        product_id,
        location_id
    from staged_days
    where
        _built_at > (select last_build.built_at from last_build)
        or date_day > (select last_build.last_day from last_build)
        or (select restaged.is_whole from restaged)
    union
    -- receipts and counts: the days whose sums or records are not the stored ones
    select
        coalesce(stock_daily.date_day, stored_stock.date_day) as date_day,
        coalesce(stock_daily.product_id, stored_stock.product_id) as product_id,
        coalesce(stock_daily.location_id, stored_stock.location_id) as location_id
    from stock_daily
    full outer join stored_stock
        on
            stock_daily.date_day = stored_stock.date_day
            and stock_daily.product_id = stored_stock.product_id
            and stock_daily.location_id = stored_stock.location_id
    where
        stock_daily.date_day is null
        or stored_stock.date_day is null
        or stock_daily.units_received <> stored_stock.units_received
        or stock_daily.count_adjustment_units <> stored_stock.count_adjustment_units
        or stock_daily.stock_record_count <> stored_stock.stock_record_count
    union
    select
        date_day,
        product_id,
        location_id
    from {{ this }}
    where
        date_day > (select bounds.as_of_date from bounds)
        or (select restaged.is_whole from restaged)
),

first_rewritten_day as (
    select min(date_day) as date_day from rewritten_days
),

sales_daily as (
    -- every line of the rewritten days (not only the new ones)
    select
        sales_lines.date_day,
        sales_lines.product_id,
        sales_lines.location_id,
        sum(sales_lines.units_sold) as units_sold,
        sum(sales_lines.units_returned) as units_returned
    from sales_lines
    inner join rewritten_days
        on
            sales_lines.date_day = rewritten_days.date_day
            and sales_lines.product_id = rewritten_days.product_id
            and sales_lines.location_id = rewritten_days.location_id
    where sales_lines.date_day >= (select first_rewritten_day.date_day from first_rewritten_day)
    group by all
),

transfers_daily as (
    -- every transfer of the rewritten days
    select
        transfer_records.date_day,
        transfer_records.product_id,
        transfer_records.location_id,
        coalesce(sum(transfer_records.transfers_in_units), 0) as transfers_in_units,
        coalesce(sum(transfer_records.transfers_out_units), 0) as transfers_out_units
    from transfer_records
    inner join rewritten_days
        on
            transfer_records.date_day = rewritten_days.date_day
            and transfer_records.product_id = rewritten_days.product_id
            and transfer_records.location_id = rewritten_days.location_id
    where transfer_records.date_day >= (select first_rewritten_day.date_day from first_rewritten_day)
    group by all
),

stock_days as (
    select stock_daily.*
    from stock_daily
    inner join rewritten_days
        on
            stock_daily.date_day = rewritten_days.date_day
            and stock_daily.product_id = rewritten_days.product_id
            and stock_daily.location_id = rewritten_days.location_id
),
{% else %}
sales_daily as (
    select
        date_day,
        product_id,
        location_id,
        sum(units_sold) as units_sold,
        sum(units_returned) as units_returned
    from sales_lines
    group by all
),

transfers_daily as (
    select
        date_day,
        product_id,
        location_id,
        coalesce(sum(transfers_in_units), 0) as transfers_in_units,
        coalesce(sum(transfers_out_units), 0) as transfers_out_units
    from transfer_records
    group by all
),

stock_days as (
    select * from stock_daily
),
{% endif %}

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
        coalesce(sum(count_adjustment_units), 0) as count_adjustment_units,
        cast(coalesce(sum(stock_record_count), 0) as bigint) as stock_record_count
    from (
        select * from sales_daily
        union all by name
        select * from transfers_daily
        union all by name
        select * from stock_days
    ) as unioned
    where date_day <= (select bounds.as_of_date from bounds)
    group by all
),

movements as (
    select
        *,
        units_received + transfers_in_units + units_returned + count_adjustment_units
        - units_sold - transfers_out_units as net_change_units
    from daily
)

{% if is_incremental() %}
-- every rewritten day: its sums, or a row of nulls (deleted by the post-hook) where nothing is left
select
    rewritten_days.date_day,
    rewritten_days.product_id,
    rewritten_days.location_id,
    movements.units_sold,
    movements.units_returned,
    movements.units_received,
    movements.transfers_in_units,
    movements.transfers_out_units,
    movements.count_adjustment_units,
    movements.stock_record_count,
    movements.net_change_units,
    {{ build_stamp() }} as _built_at
from rewritten_days
left join movements
    on
        rewritten_days.date_day = movements.date_day
        and rewritten_days.product_id = movements.product_id
        and rewritten_days.location_id = movements.location_id
{% else %}
select
    date_day,
    product_id,
    location_id,
    units_sold,
    units_returned,
    units_received,
    transfers_in_units,
    transfers_out_units,
    count_adjustment_units,
    stock_record_count,
    net_change_units,
    {{ build_stamp() }} as _built_at
from movements
{% endif %}
