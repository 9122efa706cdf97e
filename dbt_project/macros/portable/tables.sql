{#- Replacing a table in a hook (the materializations do their own). -#}

{#- The statement(s) that replace `relation` by the result of the query that follows. -#}
{% macro create_or_replace_table_as(relation) -%}
    {{- adapter.dispatch('create_or_replace_table_as', 'nudge')(relation) -}}
{%- endmacro %}
{% macro default__create_or_replace_table_as(relation) -%}
    create or replace table {{ relation }} as
{%- endmacro %}
{% macro postgres__create_or_replace_table_as(relation) -%}
    drop table if exists {{ relation }};
    create table {{ relation }} as
{%- endmacro %}
{#- Spark runs one statement at a time and plain parquet tables have no REPLACE: the old table is
    dropped while the hook is rendered (at execution), the hook itself creates the new one. -#}
{% macro spark__create_or_replace_table_as(relation) -%}
    {%- if execute -%}
        {%- do run_query('drop table if exists ' ~ relation) -%}
    {%- endif -%}
    create table {{ relation }} using parquet as
{%- endmacro %}

{#- The longest table name the warehouse accepts, or none where names have no practical limit. -#}
{% macro max_relation_name_length() -%}
    {{- return(adapter.dispatch('max_relation_name_length', 'nudge')()) -}}
{%- endmacro %}
{% macro default__max_relation_name_length() -%}
    {{- return(none) -}}
{%- endmacro %}
{% macro postgres__max_relation_name_length() -%}
    {{- return(63) -}}
{%- endmacro %}
