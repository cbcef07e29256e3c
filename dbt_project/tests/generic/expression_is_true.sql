{#- Fails for every row where the SQL expression is not true (a model-level test). -#}
{% test expression_is_true(model, expression) %}
{{ config(severity='warn', store_failures=true) }}
select *
from {{ model }}
where not coalesce({{ expression }}, false)
{% endtest %}
