{#- Common table expressions. -#}

{#- The keyword asking for a CTE to be computed once before the query reads it (`name as
    {{ materialized_cte() }} (...)`): DuckDB and Postgres have MATERIALIZED, Spark has no such
    hint (its optimizer decides), so there it is empty. -#}
{% macro materialized_cte() -%}
    {{- return(adapter.dispatch('materialized_cte', 'nudge')()) -}}
{%- endmacro %}
{% macro default__materialized_cte() -%}materialized{%- endmacro %}
{% macro spark__materialized_cte() -%}{%- endmacro %}
