with validated as (
    select * from {{ ref('stg_master__products__validated') }}
    where reject_reason is null
)

select
    product_id,
    coalesce(product_name, product_id) as product_name,
    coalesce(category, 'Uncategorised') as category,
    supplier_id,
    coalesce(unit_of_measure, 'EA') as unit_of_measure,
    coalesce(lower(product_type), 'stock') as product_type,
    launch_date,
    discontinued_date,
    list_price,
    ordering_cost,
    annual_holding_rate,
    _source_file,
    _source_row
from validated
