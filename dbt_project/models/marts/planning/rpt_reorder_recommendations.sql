-- One row per planned product x location: what stockturn recommends, what the classical policy would hold,
-- what the change is worth, the order proposed now (with the planner's decision) and the most valuable
-- exception. The planner's worklist, largest money first.
with policy as (
    select * from {{ source('ml', 'inventory_policy') }}
),

proposals as (
    select * from {{ source('ml', 'purchase_proposals') }}
),

top_exceptions as (
    select
        product_id,
        location_id,
        exception_type as top_exception_type,
        reason as top_exception_reason,
        money_at_stake as top_exception_money_at_stake,
        count(*) over (partition by product_id, location_id) as exception_count
    from {{ source('ml', 'exceptions') }}
    qualify row_number() over (partition by product_id, location_id order by money_at_stake desc nulls last) = 1
),

products as (
    select
        product_id,
        product_name,
        category
    from {{ ref('dim_product') }}
),

locations as (
    select
        location_id,
        location_name,
        location_type
    from {{ ref('dim_location') }}
)

select
    policy.run_id,
    policy.as_of_date,
    policy.product_id,
    products.product_name,
    products.category,
    policy.location_id,
    locations.location_name,
    locations.location_type,
    policy.supplier_id,
    policy.source_location_id,
    policy.abc_class,
    policy.xyz_class,
    policy.service_metric,
    policy.service_target,
    policy.unit_cost,
    policy.daily_demand_forecast,
    policy.lead_time_days,
    policy.review_period_days,
    policy.on_hand_units,
    policy.inventory_position_units,
    policy.classical_safety_stock,
    policy.safety_stock as recommended_safety_stock,
    policy.classical_reorder_point,
    policy.reorder_point as recommended_reorder_point,
    policy.classical_order_quantity,
    policy.order_quantity as recommended_order_quantity,
    policy.classical_order_up_to_level,
    policy.order_up_to_level as recommended_order_up_to_level,
    policy.classical_expected_avg_inventory_value,
    policy.expected_avg_inventory_value as recommended_expected_avg_inventory_value,
    policy.delta_expected_avg_inventory_value as inventory_value_change,
    case
        when policy.delta_expected_avg_inventory_value < 0 then 'frees inventory'
        when policy.delta_expected_avg_inventory_value > 0 then 'adds inventory'
        else 'no change'
    end as inventory_value_effect,
    policy.classical_expected_fill_rate,
    policy.expected_fill_rate as recommended_expected_fill_rate,
    policy.classical_expected_turnover,
    policy.expected_turnover as recommended_expected_turnover,
    policy.delta_expected_turnover as turnover_change,
    policy.overridden_fields,
    policy.override_reasons,
    policy.needs_order,
    proposals.proposal_id,
    proposals.proposal_type,
    proposals.quantity as proposed_quantity,
    proposals.value as proposed_value,
    proposals.expected_arrival_date,
    proposals.status as proposal_status,
    proposals.status_author as proposal_status_author,
    proposals.reason as proposal_reason,
    top_exceptions.top_exception_type,
    top_exceptions.top_exception_reason,
    top_exceptions.top_exception_money_at_stake,
    coalesce(top_exceptions.exception_count, 0) as exception_count
from policy
left join products on policy.product_id = products.product_id
left join locations on policy.location_id = locations.location_id
left join proposals
    on
        policy.product_id = proposals.product_id
        and policy.location_id = proposals.location_id
left join top_exceptions
    on
        policy.product_id = top_exceptions.product_id
        and policy.location_id = top_exceptions.location_id
