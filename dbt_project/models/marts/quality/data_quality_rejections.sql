-- Every quarantined row of every landing file in one place: where it came from, why it was set aside, and
-- what to fix. The rows themselves, as landed, are in staging.<model>__rejected.
{%- set landing_tables = [
    ('master', 'products'),
    ('master', 'locations'),
    ('master', 'suppliers'),
    ('master', 'product_suppliers'),
    ('sales', 'sales_lines'),
    ('sales', 'promotions'),
    ('sales', 'prices'),
    ('procurement', 'purchase_order_lines'),
    ('procurement', 'receipts'),
    ('logistics', 'transfers'),
    ('finance', 'standard_costs'),
    ('finance', 'cogs_ledger'),
    ('inventory', 'stock_snapshots'),
    ('inventory', 'cycle_counts'),
    ('calendar', 'events'),
    ('external', 'signals'),
] %}

-- `file` is a keyword, and a published column name of this mart (RF04 is silenced where it is an alias)
select
    system as source_system,
    entity,
    file,
    source_row as file_row,
    reason as reject_reason,
    error_message as reject_detail,
    'raw._load_rejects' as quarantine_relation
from {{ source('landing', '_load_rejects') }}
union all
{% for system, entity in landing_tables %}
    select
        '{{ system }}' as source_system,
        '{{ entity }}' as entity,
        _source_file as file,  -- noqa: RF04
        _source_row as file_row,
        reject_reason,
        reject_detail,
        'staging.stg_{{ system }}__{{ entity }}__rejected' as quarantine_relation
    from {{ ref('stg_' ~ system ~ '__' ~ entity ~ '__rejected') }}
    {{ "union all" if not loop.last }}
{% endfor %}
