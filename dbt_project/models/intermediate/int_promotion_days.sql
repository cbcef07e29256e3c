-- Promotions expanded to one row per day, product and selling location (a promotion without a location
-- applies at every location that sells). Overlapping promotions: the deepest discount counts.
with promotions as (
    select * from {{ ref('stg_sales__promotions') }}
),

selling_locations as (
    select distinct location_id
    from {{ ref('int_product_locations') }}
    where has_sales
),

expanded as (
    select
        promotions.promotion_id,
        promotions.product_id,
        selling_locations.location_id,
        promotions.discount_pct,
        cast(unnest(generate_series(
            cast(promotions.start_date as timestamp), cast(promotions.end_date as timestamp), interval 1 day
        )) as date) as date_day
    from promotions
    inner join selling_locations
        on
            promotions.location_id is null
            or promotions.location_id = selling_locations.location_id
)

select
    date_day,
    product_id,
    location_id,
    arg_max(promotion_id, coalesce(discount_pct, 0)) as promotion_id,
    max(discount_pct) as discount_pct,
    count(*) as overlapping_promotions
from expanded
group by all
