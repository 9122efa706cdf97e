{#- One row per (segment, member) over the given segment models: every model tagged `segment`,
    wherever it lives. The list is written out by the assembly step (nudge.core.warehouse.dbt) so that
    every ref() is seen at parse time and dbt builds fct_segment_memberships after every segment.
    When executing, the list must be exactly the graph's tagged models (a stale list would leave a
    segment out of memberships and history without a word). An empty list still gives a typed,
    empty relation.

    A view: writing millions of memberships again on every build cost more than any reader pays
    (readers filter on a segment, or, like the history diff, on the pairs a build may have
    changed, and those filters reach each segment's table). It is unique on (segment, user_id)
    because every segment model is unique on user_id: the segment_models_contract test checks
    that on this model, so a failure stops everything downstream of it. -#}
{% macro segment_union(segment_models) -%}
    {{ config(materialized='view') }}
    {%- if execute -%}
        {%- set tagged = segment_nodes() | map(attribute='name') | list -%}
        {%- if (segment_models | sort) != tagged -%}
            {{ exceptions.raise_compiler_error(
                "segment_union lists " ~ (segment_models | sort) ~ " but the models tagged "
                ~ "`segment` are " ~ tagged ~ ": re-assemble the project (nudge.core.warehouse.dbt)"
            ) }}
        {%- endif -%}
        {%- do check_segment_relations(segment_nodes()) -%}
    {%- endif -%}
    {%- for name in segment_models %}
    select '{{ name }}' as segment, cast(user_id as {{ text_type() }}) as user_id
    from {{ ref(name) }}
    where user_id is not null
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    select cast(null as {{ text_type() }}) as segment, cast(null as {{ text_type() }}) as user_id
    where false
    {%- endfor %}
{%- endmacro %}

{#- The part of the segment contract that must hold before the union can read a model (the
    singular test segment_models_contract checks the rest): a relation the engine can read, with
    a user_id column. -#}
{% macro check_segment_relations(nodes) -%}
    {%- set with_user_id = relations_with_column(nodes, 'user_id') -%}
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
            views_with_comment('segments', marker)
        ).columns[0].values() -%}
        {%- for name in existing if name not in wanted -%}
            {%- do run_query('drop view if exists segments.' ~ adapter.quote(name)) -%}
        {%- endfor -%}
        {%- if wanted -%}
            {%- do run_query('create schema if not exists segments') -%}
        {%- endif -%}
        {%- for name, relation in wanted.items() -%}
            {%- set comment = comment_on_view('segments', name, marker) -%}
            {%- do run_query(
                'create or replace view segments.' ~ adapter.quote(name) ~ ' as select * from '
                ~ relation
            ) -%}
            {%- do run_query(comment) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
