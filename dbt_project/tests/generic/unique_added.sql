{#- Fails for every value of `column_name` that occurs more than once, counting only the values
    of the rows the model's last incremental build added (its kept increment, see
    increment_relation): a duplicate that appears in a build includes a row that build added, and
    rows from earlier builds were checked by those builds. So the check costs what the build
    wrote, not the whole table. After a full build (no increment kept) the whole column is
    checked. -#}
{% test unique_added(model, column_name) %}
{%- set added = increment_relation(model) -%}
{%- set added_kept = existing_relation(added) is not none -%}
select {{ column_name }}, count(*) as occurrences
from {{ model }}
{%- if added_kept %}
where {{ column_name }} in (select {{ column_name }} from {{ added }})
{%- endif %}
group by {{ column_name }}
having count(*) > 1
{% endtest %}
