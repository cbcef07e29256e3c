{#- Fails when the model's row count (optionally filtered) differs from another relation's. -#}
{% test row_count_equals_model(model, compare_model, where_clause='true', compare_where_clause='true') %}
with counts as (
    select
        (select count(*) from {{ model }} where {{ where_clause }}) as model_rows,
        (select count(*) from {{ compare_model }} where {{ compare_where_clause }}) as compare_rows
)
select *
from counts
where model_rows <> compare_rows
{% endtest %}
