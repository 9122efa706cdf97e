{#- Schemas are used exactly as named (staging, intermediate, marts, segments, reports), not
    prefixed with the target schema: analysts and the journey engine read them by these names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
