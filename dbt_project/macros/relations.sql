{#- Where things live: tables a model keeps beside itself between builds, and relation lookups. -#}

{#- The table named `<relation>` + `suffix` in the same schema: where a model keeps what a build
    of it recorded (segment_changes_relation, increment_relation, replaced_rows_relation). Where
    that name is longer than the warehouse allows (Postgres: 63), the model's name is cut and
    8 characters of its md5 keep the cut names of two models apart. -#}
{% macro _beside(relation, suffix) -%}
    {%- set identifier = relation.identifier ~ suffix -%}
    {%- set limit = nudge.max_relation_name_length() -%}
    {%- if limit is not none and identifier | length > limit -%}
        {%- set kept = relation.identifier[:limit - (suffix | length) - 9] -%}
        {%- set identifier = kept ~ "_" ~ local_md5(relation.identifier)[:8] ~ suffix -%}
    {%- endif -%}
    {{- return(relation.incorporate(path={"identifier": identifier}, type="table")) -}}
{%- endmacro %}

{#- Where an incremental build stages the rows it computed (macros/materializations): a table
    beside the model, `<model>__nudge_increment`, kept until the next build with the
    `keep_increment` config. -#}
{% macro increment_relation(relation) -%}
    {{- return(_beside(relation, "__nudge_increment")) -}}
{%- endmacro %}

{#- Where a replace_keys model that keeps its replaced rows (keep_replaced_rows) puts them: a
    table beside it, `<model>__nudge_replaced`. -#}
{% macro replaced_rows_relation(relation) -%}
    {{- return(_beside(relation, "__nudge_replaced")) -}}
{%- endmacro %}

{#- Where a segment model that records its own changes keeps the users its last incremental
    build recomputed: a table beside it, `<segment>__nudge_changed`. -#}
{% macro segment_changes_relation(relation) -%}
    {{- return(_beside(relation, "__nudge_changed")) -}}
{%- endmacro %}

{#- `relation` as dbt's relation cache knows it in this build, or none where it does not exist
    (and while parsing). Macros that create or drop such a table mid-build update the cache. -#}
{% macro existing_relation(relation) -%}
    {{- return(adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier
    ) if execute else none) -}}
{%- endmacro %}

{#- The relation a graph node (a model) builds. -#}
{% macro node_relation(node) -%}
    {{- return(api.Relation.create(
        database=node.database, schema=node.schema, identifier=node.alias
    )) -}}
{%- endmacro %}
