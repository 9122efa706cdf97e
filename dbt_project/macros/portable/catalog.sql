{#- Questions about the warehouse's catalog. -#}

{#- A query of one column: the names of the views in `schema` of the current database whose
    comment is `comment`. -#}
{% macro views_with_comment(schema, comment) -%}
    {{- return(adapter.dispatch('views_with_comment', 'nudge')(schema, comment)) -}}
{%- endmacro %}
{% macro duckdb__views_with_comment(schema, comment) -%}
    {{- return(
        "select view_name from duckdb_views() where database_name = current_database()"
        ~ " and schema_name = '" ~ schema ~ "' and comment = '" ~ comment ~ "'"
    ) -}}
{%- endmacro %}
{% macro postgres__views_with_comment(schema, comment) -%}
    {{- return(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        ~ " where c.relkind = 'v' and n.nspname = '" ~ schema ~ "'"
        ~ " and obj_description(c.oid, 'pg_class') = '" ~ comment ~ "'"
    ) -}}
{%- endmacro %}
