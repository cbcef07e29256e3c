with locations as (
    select * from {{ ref('stg_master__locations') }}
),

activity as (
    select
        location_id,
        bool_or(has_sales) as is_selling_location,
        count(*) as product_locations
    from {{ ref('int_product_locations') }}
    group by all
)

select
    locations.location_id,
    locations.location_name,
    locations.location_type,
    locations.region,
    locations.replenished_from,
    case when locations.replenished_from is null then 'supplier' else 'transfer' end as replenishment_source,
    coalesce(activity.is_selling_location, false) as is_selling_location,
    coalesce(activity.product_locations, 0) as product_locations
from locations
left join activity on locations.location_id = activity.location_id
