-- Suppliers from the supplier master, plus any supplier code used by products or purchase orders but missing
-- from the master (flagged), with the lead times realised in goods receipts.
with suppliers as (
    select * from {{ ref('stg_master__suppliers') }}
),

referenced as (
    select supplier_id from {{ ref('stg_master__products') }}
    where supplier_id is not null
    union
    select supplier_id from {{ ref('stg_master__product_suppliers') }}
    union
    select supplier_id from {{ ref('stg_procurement__purchase_order_lines') }}
),

all_suppliers as (
    select supplier_id from suppliers
    union
    select supplier_id from referenced
),

lead_times as (
    select
        supplier_id,
        count(*) as receipts_observed,
        avg(lead_time_days) as lead_time_mean_days,
        stddev_samp(lead_time_days) as lead_time_stddev_days,
        quantile_cont(lead_time_days, 0.5) as lead_time_p50_days,
        quantile_cont(lead_time_days, 0.9) as lead_time_p90_days,
        avg(case when days_late > 0 then 1.0 else 0.0 end) as late_receipt_share
    from {{ ref('fct_purchase_receipts') }}
    group by all
),

fill as (
    select
        supplier_id,
        count(*) as order_lines,
        sum(quantity_received) / nullif(sum(quantity_ordered), 0) as fill_rate
    from {{ ref('fct_purchase_order_lines') }}
    where status <> 'cancelled'
    group by all
)

select
    all_suppliers.supplier_id,
    coalesce(suppliers.supplier_name, all_suppliers.supplier_id) as supplier_name,
    suppliers.country,
    suppliers.nominal_lead_time_days,
    suppliers.ordering_cost,
    suppliers.annual_holding_rate,
    suppliers.supplier_id is not null as is_in_supplier_master,
    coalesce(fill.order_lines, 0) as order_lines,
    coalesce(lead_times.receipts_observed, 0) as receipts_observed,
    lead_times.lead_time_mean_days,
    lead_times.lead_time_stddev_days,
    lead_times.lead_time_p50_days,
    lead_times.lead_time_p90_days,
    lead_times.lead_time_stddev_days / nullif(lead_times.lead_time_mean_days, 0) as lead_time_cv,
    lead_times.late_receipt_share,
    fill.fill_rate
from all_suppliers
left join suppliers on all_suppliers.supplier_id = suppliers.supplier_id
left join lead_times on all_suppliers.supplier_id = lead_times.supplier_id
left join fill on all_suppliers.supplier_id = fill.supplier_id
