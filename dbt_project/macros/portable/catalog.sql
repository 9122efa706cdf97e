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
{#- Spark's session catalog keeps no comment a query can filter on: no view is found, and
    comment_on_view refuses to make one (segment_schema_aliases). -#}
{% macro spark__views_with_comment(schema, comment) -%}
    {{- return("select cast(null as string) as view_name where false") -}}
{%- endmacro %}

{#- Marks the view `schema`.`name` with `comment` (found again by views_with_comment). -#}
{% macro comment_on_view(schema, name, comment) -%}
    {{- return(adapter.dispatch('comment_on_view', 'nudge')(schema, name, comment)) -}}
{%- endmacro %}
{% macro default__comment_on_view(schema, name, comment) -%}
    {{- return("comment on view " ~ schema ~ "." ~ adapter.quote(name) ~ " is '" ~ comment ~ "'") -}}
{%- endmacro %}
{% macro spark__comment_on_view(schema, name, comment) -%}
    {{ exceptions.raise_compiler_error(
        "segment model " ~ name ~ " lives outside the segments schema, which nudge cannot alias"
        ~ " on Spark yet: move it under models/segments/ (docs/warehouses.md, Spark)"
    ) }}
{%- endmacro %}

{#- `schema.table` (lower case) of every table in the current database whose name ends with
    `suffix`. -#}
{% macro tables_ending_with(suffix) -%}
    {{- return(adapter.dispatch('tables_ending_with', 'nudge')(suffix)) -}}
{%- endmacro %}
{% macro default__tables_ending_with(suffix) -%}
    {{- return(run_query(
        "select lower(table_schema || '.' || table_name) from information_schema.tables"
        ~ " where table_catalog = current_database() and table_name like '%" ~ suffix ~ "'"
    ).columns[0].values()) -}}
{%- endmacro %}
{#- Spark has no information_schema: SHOW TABLES in every schema. -#}
{% macro spark__tables_ending_with(suffix) -%}
    {%- set found = [] -%}
    {%- for schema in run_query('show schemas').columns[0].values() -%}
        {%- for row in run_query('show tables in `' ~ schema ~ "` like '*" ~ suffix ~ "'") -%}
            {%- if not row[2] -%}
                {%- do found.append((schema ~ '.' ~ row[1]) | lower) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{- return(found) -}}
{%- endmacro %}

{#- `schema.name` (lower case) of each of the relations of `nodes` (graph nodes) that has a
    column named `column`. -#}
{% macro relations_with_column(nodes, column) -%}
    {{- return(adapter.dispatch('relations_with_column', 'nudge')(nodes, column)) -}}
{%- endmacro %}
{#- One catalog query for every node. -#}
{% macro default__relations_with_column(nodes, column) -%}
    {{- return(run_query(
        "select lower(table_schema || '.' || table_name) from information_schema.columns"
        ~ " where table_catalog = current_database() and lower(column_name) = '" ~ column ~ "'"
    ).columns[0].values()) -}}
{%- endmacro %}
{#- Spark has no information_schema: one DESCRIBE per node. -#}
{% macro spark__relations_with_column(nodes, column) -%}
    {%- set found = [] -%}
    {%- for node in nodes -%}
        {%- set relation = adapter.get_relation(
            database=node.database, schema=node.schema, identifier=node.alias
        ) -%}
        {%- if relation is not none and column in (
            adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list
        ) -%}
            {%- do found.append((node.schema ~ '.' ~ node.alias) | lower) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(found) -}}
{%- endmacro %}
