-- One row: the first day of history and the as-of date (last day of history) every mart is built to.
with sales as (
    select
        min(sold_on) as first_sale_date,
        max(sold_on) as last_sale_date
    from {{ ref('stg_sales__sales_lines') }}
),

snapshots as (
    select min(snapshot_date) as first_snapshot_date
    from {{ ref('stg_inventory__stock_snapshots') }}
),

bounds as (
    select
        least(sales.first_sale_date, coalesce(snapshots.first_snapshot_date, sales.first_sale_date))
            as history_start_date,
        {% if var('as_of_date') %}
            cast('{{ var("as_of_date") }}' as date)
        {% else %}
            sales.last_sale_date
        {% endif %} as as_of_date
    from sales
    cross join snapshots
)

select
    history_start_date,
    as_of_date,
    as_of_date - history_start_date + 1 as history_days
from bounds
