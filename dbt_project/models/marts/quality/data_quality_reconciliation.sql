-- For every landing file: rows in (as counted by the loader) = rows kept in staging + rows quarantined, by
-- reason: by staging (the __rejected relations) or already by the loader (records that could not be split
-- into columns, raw._load_rejects). Kept rows with a field-level issue (a value set to null and flagged,
-- data_quality_field_issues) are counted as kept, and also in rows_kept_with_issues. Entities the landing zone
-- did not supply appear once with is_present = false. A test fails the build when a single row is unaccounted for.
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

with landing_entities as (
    select * from {{ source('landing', 'landing_entities') }}
),

landing_files as (
    select * from {{ source('landing', 'landing_files') }}
),

outcomes as (
    select
        system as source_system,
        entity,
        file,
        'quarantined' as outcome,
        reason as reject_reason,
        count(*) as row_count
    from {{ source('landing', '_load_rejects') }}
    group by all
    {%- for system, entity in landing_tables %}
        {%- set staging_model = 'stg_' ~ system ~ '__' ~ entity %}
        union all
        select
            '{{ system }}' as source_system,
            '{{ entity }}' as entity,
            _source_file,
            'kept' as outcome,
            null as reject_reason,
            count(*) as row_count
        from {{ ref(staging_model) }}
        group by all
        union all
        select
            '{{ system }}' as source_system,
            '{{ entity }}' as entity,
            _source_file,
            'quarantined' as outcome,
            reject_reason,
            count(*) as row_count
        from {{ ref(staging_model ~ '__rejected') }}
        group by all
    {%- endfor %}
),

field_issues as (
    select * from {{ ref('data_quality_field_issues') }}
),

field_issue_rows as (
    select
        source_system,
        entity,
        file,
        count(distinct file_row) as rows_kept_with_issues
    from field_issues
    group by all
),

field_issue_lists as (
    select
        source_system,
        entity,
        file,
        string_agg(field_name || ' ' || issue || ': ' || issue_rows, '; ' order by issue_rows desc, field_name asc, issue asc)
            as field_issues
    from (
        select
            source_system,
            entity,
            file,
            field_name,
            issue,
            count(*) as issue_rows
        from field_issues
        group by all
    ) as issue_counts
    group by all
),

per_file as (
    select
        source_system,
        entity,
        file,
        sum(row_count) filter (where outcome = 'kept') as rows_kept,
        sum(row_count) filter (where outcome = 'quarantined') as rows_quarantined
    from outcomes
    group by all
),

reason_lists as (
    select
        source_system,
        entity,
        file,
        string_agg(reject_reason || ': ' || row_count, '; ' order by row_count desc, reject_reason asc)
            as quarantine_reasons
    from (
        select
            source_system,
            entity,
            file,
            reject_reason,
            sum(row_count) as row_count
        from outcomes
        where outcome = 'quarantined'
        group by all
    ) as reason_counts
    group by all
),

listed_files as (
    select
        landing_files.system as source_system,
        landing_files.entity,
        landing_files.file,
        cast(landing_files.rows as bigint) as rows_in,
        cast(coalesce(per_file.rows_kept, 0) as bigint) as rows_kept,
        cast(coalesce(per_file.rows_quarantined, 0) as bigint) as rows_quarantined,
        reason_lists.quarantine_reasons,
        cast(coalesce(field_issue_rows.rows_kept_with_issues, 0) as bigint) as rows_kept_with_issues,
        field_issue_lists.field_issues
    from landing_files
    left join per_file
        on
            landing_files.system = per_file.source_system
            and landing_files.entity = per_file.entity
            and landing_files.file = per_file.file
    left join reason_lists
        on
            landing_files.system = reason_lists.source_system
            and landing_files.entity = reason_lists.entity
            and landing_files.file = reason_lists.file
    left join field_issue_rows
        on
            landing_files.system = field_issue_rows.source_system
            and landing_files.entity = field_issue_rows.entity
            and landing_files.file = field_issue_rows.file
    left join field_issue_lists
        on
            landing_files.system = field_issue_lists.source_system
            and landing_files.entity = field_issue_lists.entity
            and landing_files.file = field_issue_lists.file
),

unlisted_files as (
    -- rows attributed to a file the loader did not list: must never happen; kept so the test catches it
    select
        per_file.source_system,
        per_file.entity,
        per_file.file,
        cast(0 as bigint) as rows_in,
        cast(coalesce(per_file.rows_kept, 0) as bigint) as rows_kept,
        cast(coalesce(per_file.rows_quarantined, 0) as bigint) as rows_quarantined,
        'not listed in raw.landing_files' as quarantine_reasons,
        cast(0 as bigint) as rows_kept_with_issues,
        cast(null as varchar) as field_issues
    from per_file
    anti join landing_files
        on
            per_file.source_system = landing_files.system
            and per_file.entity = landing_files.entity
            and per_file.file = landing_files.file
),

files as (
    select * from listed_files
    union all
    select * from unlisted_files
)

select
    landing_entities.system as source_system,
    landing_entities.entity,
    landing_entities.required as is_required,
    landing_entities.present as is_present,
    files.file,
    coalesce(files.rows_in, 0) as rows_in,
    coalesce(files.rows_kept, 0) as rows_kept,
    coalesce(files.rows_quarantined, 0) as rows_quarantined,
    coalesce(files.rows_in, 0) - coalesce(files.rows_kept, 0) - coalesce(files.rows_quarantined, 0)
        as rows_unaccounted,
    files.quarantine_reasons,
    coalesce(files.rows_kept_with_issues, 0) as rows_kept_with_issues,
    files.field_issues
from landing_entities
left join files
    on
        landing_entities.system = files.source_system
        and landing_entities.entity = files.entity
