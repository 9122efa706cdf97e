{#- The planner's statistics of a table a build has just written (a post-hook of every model).
    Postgres plans joins from them, and a table no ANALYZE has read counts as nearly empty: a
    journey's anti-join over 6,000 entries and the 100,000-row dim_users became a nested loop of
    seq scans (40 s) on a server without autovacuum, and autovacuum would not reach a table in
    the seconds between the node that builds it and the nodes that read it. DuckDB keeps its
    statistics as it writes. -#}
{% macro refresh_statistics(relation, materialized) -%}
    {{- adapter.dispatch('refresh_statistics', 'nudge')(relation, materialized) -}}
{%- endmacro %}
{% macro default__refresh_statistics(relation, materialized) -%}
{%- endmacro %}
{% macro postgres__refresh_statistics(relation, materialized) -%}
    {%- if materialized in ('table', 'incremental') -%}
        analyze {{ relation }}
    {%- endif -%}
{%- endmacro %}
