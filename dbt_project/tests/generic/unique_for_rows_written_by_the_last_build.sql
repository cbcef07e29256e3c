-- sqlfluff:indentation:template_blocks_indent:False
{#- Fails for every combination of the columns that a row written by the latest build (the rows with the latest
    _built_at, see macros/incremental_models.sql build_stamp) shares with any other row of the table (nulls compare
    equal). The rows of earlier builds were tested when they were written, and a full build stamps every row, so
    this is the table's uniqueness at the cost of a lookup of tonight's keys, not a grouping of the whole history
    (issue 11: "test the new partition"). #}
{% test unique_for_rows_written_by_the_last_build(model, combination_of_columns) %}
{%- set stored_columns, matches = [], [] -%}
{%- for column in combination_of_columns -%}
    {%- do stored_columns.append('stored.' ~ column) -%}
    {%- do matches.append('stored.' ~ column ~ ' is not distinct from written.' ~ column) -%}
{%- endfor %}
with written as (
    select distinct {{ combination_of_columns | join(', ') }}
    from {{ model }}
    where _built_at = (select max(latest._built_at) from {{ model }} as latest)
)

select
    {{ stored_columns | join(', ') }},
    count(*) as occurrences
from {{ model }} as stored
inner join written on {{ matches | join(' and ') }}
group by all
having count(*) > 1
{% endtest %}
