with bounds as (
    select as_of_date from {{ ref('int_calendar_bounds') }}
),

products as (
    select * from {{ ref('stg_master__products') }}
),

primary_terms as (
    -- the supplier flagged primary, else the product master's supplier, else the first by code
    select product_suppliers.*
    from {{ ref('stg_master__product_suppliers') }} as product_suppliers
    left join products on product_suppliers.product_id = products.product_id
    qualify row_number() over (
        partition by product_suppliers.product_id
        order by
            product_suppliers.is_primary desc,
            (product_suppliers.supplier_id = products.supplier_id) desc,
            product_suppliers.supplier_id
    ) = 1
),

suppliers as (
    select
        supplier_id,
        ordering_cost,
        annual_holding_rate
    from {{ ref('stg_master__suppliers') }}
),

current_costs as (
    select
        product_id,
        unit_cost
    from {{ ref('stg_finance__standard_costs') }}
    where valid_from <= (select bounds.as_of_date from bounds)
    qualify row_number() over (partition by product_id order by valid_from desc) = 1
),

current_prices as (
    select
        product_id,
        list_price
    from {{ ref('stg_sales__prices') }}
    where
        location_id is null
        and valid_from <= (select bounds.as_of_date from bounds)
    qualify row_number() over (partition by product_id order by valid_from desc) = 1
),

sales_history as (
    select
        product_id,
        min(first_sale_date) as first_sale_date,
        max(last_sale_date) as last_sale_date,
        count(*) filter (where has_sales) as selling_locations
    from {{ ref('int_product_locations') }}
    group by all
)

select
    products.product_id,
    products.product_name,
    products.category,
    products.product_type,
    products.unit_of_measure,
    coalesce(primary_terms.supplier_id, products.supplier_id) as supplier_id,
    primary_terms.min_order_qty,
    primary_terms.pack_size,
    primary_terms.nominal_lead_time_days,
    -- EOQ costs: the product's own, else its primary supplier's (the policy falls back to the planning settings)
    coalesce(products.ordering_cost, suppliers.ordering_cost) as ordering_cost,
    case
        when products.ordering_cost is not null then 'product'
        when suppliers.ordering_cost is not null then 'supplier'
    end as ordering_cost_basis,
    coalesce(products.annual_holding_rate, suppliers.annual_holding_rate) as annual_holding_rate,
    case
        when products.annual_holding_rate is not null then 'product'
        when suppliers.annual_holding_rate is not null then 'supplier'
    end as holding_rate_basis,
    products.launch_date,
    products.discontinued_date,
    coalesce(products.discontinued_date > (select bounds.as_of_date from bounds), true) as is_active,
    current_costs.unit_cost as current_unit_cost,
    coalesce(current_prices.list_price, products.list_price) as current_list_price,
    sales_history.first_sale_date,
    sales_history.last_sale_date,
    coalesce(sales_history.selling_locations, 0) as selling_locations
from products
left join primary_terms on products.product_id = primary_terms.product_id
left join suppliers on coalesce(primary_terms.supplier_id, products.supplier_id) = suppliers.supplier_id
left join current_costs on products.product_id = current_costs.product_id
left join current_prices on products.product_id = current_prices.product_id
left join sales_history on products.product_id = sales_history.product_id
