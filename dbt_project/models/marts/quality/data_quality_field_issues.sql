-- Every kept row with a field-level issue in one place: a value stockturn could not use was set to null and
-- flagged, and the rest of the row kept (so a bad price never costs the units sold, an unknown replenishing
-- location never costs a store). These rows are counted as
-- kept in data_quality_reconciliation (rows_kept_with_issues), never as quarantined.
with sales_lines as (
    select
        _source_file,
        _source_row,
        price_issue,
        price_issue_detail
    from {{ ref('stg_sales__sales_lines') }}
    where price_issue is not null
),

purchase_order_lines as (
    select
        _source_file,
        _source_row,
        unit_cost_issue,
        unit_cost_issue_detail
    from {{ ref('stg_procurement__purchase_order_lines') }}
    where unit_cost_issue is not null
),

locations as (
    select
        _source_file,
        _source_row,
        replenished_from_issue,
        replenished_from_issue_detail
    from {{ ref('stg_master__locations') }}
    where replenished_from_issue is not null
)

-- `file` and `action` are keywords, and the published column names of this mart
select
    'sales' as source_system,
    'sales_lines' as entity,
    _source_file as file,  -- noqa: RF04
    _source_row as file_row,
    'unit_price' as field_name,
    price_issue as issue,
    price_issue_detail as issue_detail,
    'value set to null, row kept' as action,  -- noqa: RF04
    'staging.stg_sales__sales_lines' as kept_relation
from sales_lines

union all

select
    'procurement' as source_system,
    'purchase_order_lines' as entity,
    _source_file,
    _source_row,
    'unit_cost' as field_name,
    unit_cost_issue,
    unit_cost_issue_detail,
    'value set to null, row kept' as action,  -- noqa: RF04
    'staging.stg_procurement__purchase_order_lines' as kept_relation
from purchase_order_lines

union all

select
    'master' as source_system,
    'locations' as entity,
    _source_file,
    _source_row,
    'replenished_from' as field_name,
    replenished_from_issue,
    replenished_from_issue_detail,
    'value set to null, row kept' as action,  -- noqa: RF04
    'staging.stg_master__locations' as kept_relation
from locations
