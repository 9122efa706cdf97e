{#- One row per (segment, member) over the given segment models: every model tagged `segment`,
    wherever it lives. The list is written out by the assembly step (nudge.warehouse.dbt) so that
    every ref() is seen at parse time and dbt builds fct_segment_memberships after every segment.
    When executing, the list must be exactly the graph's tagged models (a stale list would leave a
    segment out of memberships and history without a word). An empty list still gives a typed,
    empty table. -#}
{% macro segment_union(segment_models) -%}
    {%- if execute -%}
        {%- set tagged = segment_nodes() | map(attribute='name') | list -%}
        {%- if (segment_models | sort) != tagged -%}
            {{ exceptions.raise_compiler_error(
                "segment_union lists " ~ (segment_models | sort) ~ " but the models tagged "
                ~ "`segment` are " ~ tagged ~ ": re-assemble the project (nudge.warehouse.dbt)"
            ) }}
        {%- endif -%}
        {%- do check_segment_relations(segment_nodes()) -%}
    {%- endif -%}
    {%- for name in segment_models %}
    select distinct '{{ name }}' as segment, cast(user_id as varchar) as user_id
    from {{ ref(name) }}
    where user_id is not null
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    select cast(null as varchar) as segment, cast(null as varchar) as user_id
    where false
    {%- endfor %}
{%- endmacro %}

{#- The part of the segment contract that must hold before the union can read a model (the
    singular test segment_models_contract checks the rest): a relation the engine can read, with
    a user_id column. One catalog query for every segment. -#}
{% macro check_segment_relations(nodes) -%}
    {%- set with_user_id = run_query(
        "select lower(table_schema || '.' || table_name) from information_schema.columns"
        ~ " where table_catalog = current_database() and lower(column_name) = 'user_id'"
    ).columns[0].values() -%}
    {%- for node in nodes -%}
        {%- if node.config.materialized == 'ephemeral' -%}
            {{ exceptions.raise_compiler_error(
                "segment model " ~ node.name ~ " (" ~ node.original_file_path ~ ") is ephemeral:"
                ~ " a segment must be a table or a view, the journey engine reads it"
            ) }}
        {%- elif (node.schema ~ '.' ~ node.alias) | lower not in with_user_id -%}
            {{ exceptions.raise_compiler_error(
                "segment model " ~ node.name ~ " (" ~ node.original_file_path ~ ") has no user_id"
                ~ " column: a segment returns one row per member user_id"
            ) }}
        {%- endif -%}
    {%- endfor -%}
{%- endmacro %}

{#- The journey engine and explain read a segment as `segments.<name>`. A segment model that
    lives elsewhere (e.g. `marts.vip_customers`, tagged `segment`) gets a view of that name in
    the `segments` schema; views made here carry a comment, so one whose model is gone or no
    longer tagged is dropped. Run as a post-hook of fct_segment_memberships, after every segment
    model is built. -#}
{% macro segment_schema_aliases() -%}
    {%- if execute -%}
        {%- set marker = 'nudge: alias of a segment model outside the segments schema' -%}
        {%- set wanted = {} -%}
        {%- for node in segment_nodes() -%}
            {%- if node.relation_name and (node.schema != 'segments' or node.alias != node.name) -%}
                {%- do wanted.update({node.name: node.relation_name}) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- set existing = run_query(
            "select view_name from duckdb_views() where database_name = current_database()"
            ~ " and schema_name = 'segments' and comment = '" ~ marker ~ "'"
        ).columns[0].values() -%}
        {%- for name in existing if name not in wanted -%}
            {%- do run_query('drop view if exists segments."' ~ name ~ '"') -%}
        {%- endfor -%}
        {%- if wanted -%}
            {%- do run_query('create schema if not exists segments') -%}
        {%- endif -%}
        {%- for name, relation in wanted.items() -%}
            {%- do run_query(
                'create or replace view segments."' ~ name ~ '" as select * from ' ~ relation
            ) -%}
            {%- do run_query("comment on view segments.\"" ~ name ~ "\" is '" ~ marker ~ "'") -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- Which (segment, user_id) pairs a build may have changed, as a SQL predicate over unqualified
    `segment` and `user_id` columns. `redefined` names the segments whose definition is new in
    this build. A segment recomputed per user (a per_user_incremental model, not redefined, no
    redefined segment upstream) can only have changed for the users in int_changed_users; any
    other segment, and any segment no longer defined, may have changed for everyone. The history
    diff looks only at these pairs. (The union itself stays a table: replacing the pairs of the
    segments rebuilt in full, millions of rows, cost more than writing the union again.) -#}
{% macro membership_scope(redefined) -%}
    {%- set whole = [] -%}
    {%- set per_user = [] -%}
    {%- for node in segment_nodes() -%}
        {%- if _recomputed_per_user(node, redefined) -%}
            {%- do per_user.append(node.name) -%}
        {%- else -%}
            {%- do whole.append(node.name) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set defined = segment_nodes() | map(attribute='name') | list -%}
    (segment not in ({{ _sql_names(defined) }})
     or segment in ({{ _sql_names(whole) }})
     or (segment in ({{ _sql_names(per_user) }})
         and user_id in (select user_id from {{ ref('int_changed_users') }})))
{%- endmacro %}

{% macro _recomputed_per_user(node, redefined) -%}
    {%- for segment in [node] + segment_ancestors(node) -%}
        {%- if segment.name in redefined or segment.config.materialized != 'incremental'
              or not segment.config.get('rebuild_on_new_definition') -%}
            {{- return(false) -}}
        {%- endif -%}
    {%- endfor -%}
    {{- return(true) -}}
{%- endmacro %}

{#- A SQL list of string literals (segment names match [a-z][a-z0-9_]*); never empty. -#}
{% macro _sql_names(names) -%}
    {%- if names -%}'{{ names | join("', '") }}'{%- else -%}null{%- endif -%}
{%- endmacro %}
