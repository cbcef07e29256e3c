-- Every kept row with a field-level issue in one place: a value stockturn could not use was set to null and
-- flagged, and the rest of the row kept (so a bad price never costs the units sold). These rows are counted as
-- kept in data_quality_reconciliation (rows_kept_with_issues), never as quarantined.
with sales_lines as (
    select
        _source_file,
        _source_row,
        price_issue,
        price_issue_detail
    from {{ ref('stg_sales__sales_lines') }}
    where price_issue is not null
)

select
    'sales' as source_system,
    'sales_lines' as entity,
    _source_file as file,
    _source_row as file_row,
    'unit_price' as field_name,
    price_issue as issue,
    price_issue_detail as issue_detail,
    'value set to null, row kept' as action,
    'staging.stg_sales__sales_lines' as kept_relation
from sales_lines
