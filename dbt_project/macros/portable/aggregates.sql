{#- Aggregates that differ by warehouse. -#}

{#- The text values of `expr` in each group, concatenated from the greatest to the least. -#}
{% macro concat_descending(expr) -%}
    {{- adapter.dispatch('concat_descending', 'nudge')(expr) -}}
{%- endmacro %}

{% macro default__concat_descending(expr) -%}
    string_agg({{ expr }}, '' order by {{ expr }} desc)
{%- endmacro %}

{% macro spark__concat_descending(expr) -%}
    array_join(sort_array(collect_list({{ expr }}), false), '')
{%- endmacro %}
