{#- Incremental builds recompute only what the data since the last build can have changed.

    `int_incremental_watermarks` logs, at the end of every build that got that far, the build's
    as_of and the latest `loaded_at` it staged. A call is *new to this build* when it was loaded
    since that watermark, or when its timestamp lies between the previous as_of and this one (it
    was loaded earlier but stamped in the future, and time has now reached it; or the other way
    round when as_of moved back). With no watermark yet every call is new. -#}
{% macro new_since_last_build(alias) -%}
    {%- set last = last_build_watermark() -%}
    {%- if last is none or last[1] is none -%}
        true
    {%- else -%}
        {#- Literals, not a subquery: DuckDB skips the row groups outside both ranges. -#}
        {%- set previous_as_of = "cast('" ~ last[0] ~ "' as timestamp)" -%}
        ({{ alias }}.loaded_at > cast('{{ last[1] }}' as timestamp)
         or ({{ alias }}.timestamp > least({{ previous_as_of }}, {{ as_of() }})
             and {{ alias }}.timestamp <= greatest({{ previous_as_of }}, {{ as_of() }})))
    {%- endif -%}
{%- endmacro %}

{#- The last completed build's (as_of, loaded_through) as text, or none before the first. -#}
{% macro last_build_watermark() -%}
    {%- set watermarks = adapter.get_relation(
        database=this.database, schema='intermediate', identifier='int_incremental_watermarks'
    ) if execute else none -%}
    {%- set last = run_query(
        "select cast(as_of as varchar), cast(loaded_through as varchar) from " ~ watermarks
        ~ " order by build_number desc limit 1"
    ).rows if watermarks is not none else [] -%}
    {{- return(last[0] if last else none) -}}
{%- endmacro %}

{#- The as_of of the last completed build, as a SQL timestamp; this build's before the first. -#}
{% macro previous_build_as_of() -%}
    {%- set last = last_build_watermark() -%}
    {%- if last is none -%}
        {{ as_of() }}
    {%- else -%}
        cast('{{ last[0] }}' as timestamp)
    {%- endif -%}
{%- endmacro %}

{#- Incremental strategy `replace_keys`: delete every row whose `unique_key` is in the model named
    by the `changed_keys` config (a model with a column of the same name), then insert the rows
    the model's SQL computed for those keys. Unlike delete+insert, a key that no longer has any
    row (a deleted user, an unlinked anonymous id) is removed too. With `replace_computed_keys`,
    the keys of every computed row are replaced as well (for a model that merges new data into
    what it holds: it computes the whole new state of the keys the new data touches). With
    `rebuild_on_new_definition` (generated segments), a build that sees a new definition of the
    model replaces every row instead. Plain SQL: runs on DuckDB and Postgres alike. -#}
{% macro get_incremental_replace_keys_sql(arg_dict) -%}
    {%- set key = arg_dict['unique_key'] -%}
    {%- set changed = changed_keys_relation() -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- if config.get('rebuild_on_new_definition') and not segment_definition_unchanged() -%}
    delete from {{ arg_dict['target_relation'] }};
    {%- else -%}
    delete from {{ arg_dict['target_relation'] }}
    where {{ key }} in (select {{ key }} from {{ changed }})
    {%- if config.get('replace_computed_keys') %}
       or {{ key }} in (select {{ key }} from {{ arg_dict['temp_relation'] }})
    {%- endif -%};
    {%- endif %}
    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}

{#- `relation` (dim_users or fct_events) narrowed to the users this build recomputes for the
    segment being built (changed_keys_relation) when `changed_only`: the model's definition is
    the one the previous build recorded in fct_segment_definitions (the generated segment model
    decides it once: `is_incremental() and segment_definition_unchanged()`). Otherwise the whole
    relation. -#}
{% macro changed_users_only(relation, changed_only) -%}
    {%- if changed_only -%}
        (select * from {{ relation }}
         where user_id in (select user_id from {{ changed_keys_relation() }}))
    {%- else -%}
        {{ relation }}
    {%- endif -%}
{%- endmacro %}

{#- The keys an incremental build of the current model replaces: the model named by its
    `changed_keys` config, or, for a segment that records its own changes, the table its
    pre-hook wrote (record_segment_changes). -#}
{% macro changed_keys_relation() -%}
    {%- set changed_keys = config.get('changed_keys') -%}
    {{- return(ref(changed_keys) if changed_keys else segment_changes_relation(this)) -}}
{%- endmacro %}

{#- Where a segment model that records its own changes keeps the users its last incremental
    build recomputed: a table beside it, `<segment>__nudge_changed`. -#}
{% macro segment_changes_relation(relation) -%}
    {{- return(_beside(relation, "__nudge_changed")) -}}
{%- endmacro %}

{#- The table named `<relation>` + `suffix` in the same schema: where a model keeps what a build
    of it recorded (segment_changes_relation, increment_relation, replaced_rows_relation). -#}
{% macro _beside(relation, suffix) -%}
    {{- return(relation.incorporate(
        path={"identifier": relation.identifier ~ suffix}, type="table"
    )) -}}
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

{#- Pre-hook of a segment that moves with time (nudge.segments.dbt_models). In a build that
    recomputes it per user, writes the users to recompute: the changed users, those the call
    body selects (whose data crosses one of the segment's time boundaries since the previous
    build), and those recorded by the segments it reads (`segments_read`, which record theirs
    too). A build that recomputes it for everyone drops the table instead, so that the history
    diff (membership_scope) compares all of its members. -#}
{% macro record_segment_changes(segments_read) -%}
    {%- set changes = segment_changes_relation(this) -%}
    {%- set moved = caller() | trim -%}
    {%- if is_incremental() and segment_definition_unchanged() -%}
        create or replace table {{ changes }} as
        select user_id from {{ ref('int_changed_users') }}
        {%- for name in segments_read %}
        union
        select user_id from {{ segment_changes_relation(ref(name)) }}
        {%- endfor %}
        {%- if moved %}
        union
        {{ moved }}
        {%- endif %}
    {%- else -%}
        drop table if exists {{ changes }}
    {%- endif -%}
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

{#- Pre-hook of a replace_keys model whose dependants need to know what a build changed: copies
    the rows the build is about to replace (those of the changed keys; every row when it
    rebuilds the model) into replaced_rows_relation, so that a later model can diff them with
    the new rows. Before the model's first build there is nothing to keep: the table is dropped,
    and readers take every new row as a change. -#}
{% macro keep_replaced_rows() -%}
    {%- set replaced = replaced_rows_relation(this) -%}
    {%- set existing = existing_relation(this) -%}
    {#- dbt's relation cache is what existing_relation reads later in this build. -#}
    {%- if existing is none -%}
        {%- do adapter.cache_dropped(replaced) -%}
        drop table if exists {{ replaced }}
    {%- else -%}
        {%- do adapter.cache_added(replaced) -%}
        {%- set key = config.get('unique_key') -%}
        create or replace table {{ replaced }} as
        select * from {{ existing }}
        {%- if is_incremental() %}
        where {{ key }} in (select {{ key }} from {{ changed_keys_relation() }})
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- True when the previous build recorded the current definition version of `node` (default: the
    model being built) in fct_segment_definitions (which every build rewrites after all segments
    are built), and the same holds for every segment it reads (`in_segment`): a segment whose
    upstream segment was redefined must be recomputed for everyone too. -#}
{% macro segment_definition_unchanged(node=none) -%}
    {%- if not execute -%}
        {{- return(false) -}}
    {%- endif -%}
    {%- set node = node or graph.nodes[model.unique_id] -%}
    {{- return(_segment_versions_recorded(node, recorded_definition_versions())) -}}
{%- endmacro %}

{#- Segment name -> definition version, as the previous build recorded them (empty before the
    first build). -#}
{% macro recorded_definition_versions() -%}
    {%- set definitions = adapter.get_relation(
        database=this.database, schema='marts', identifier='fct_segment_definitions'
    ) if execute else none -%}
    {%- set recorded = {} -%}
    {%- if definitions is not none -%}
        {%- for row in run_query("select segment, definition_version from " ~ definitions) -%}
            {%- do recorded.update({row[0]: row[1]}) -%}
        {%- endfor -%}
    {%- endif -%}
    {{- return(recorded) -}}
{%- endmacro %}

{% macro _segment_versions_recorded(node, recorded) -%}
    {%- for segment in [node] + segment_ancestors(node) -%}
        {%- if recorded.get(segment.name) != segment_definition_version(segment) -%}
            {{- return(false) -}}
        {%- endif -%}
    {%- endfor -%}
    {{- return(true) -}}
{%- endmacro %}

{#- Every segment model `node` reads, directly or through other segments (`in_segment`). -#}
{% macro segment_ancestors(node) -%}
    {%- set ancestors = [] -%}
    {%- for parent_id in node.depends_on.nodes -%}
        {%- set parent = graph.nodes.get(parent_id) -%}
        {%- if parent and parent.resource_type == 'model' and 'segment' in parent.tags -%}
            {%- do ancestors.append(parent) -%}
            {%- do ancestors.extend(segment_ancestors(parent)) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(ancestors) -}}
{%- endmacro %}

{#- The config of a model that the `replace_keys` strategy keeps up to date: incremental, each
    build replacing the rows of the keys in the model named `changed_keys` (the model must also
    declare `-- depends_on:` on it), or, with `changed_keys=none`, in the table its pre-hook
    records (record_segment_changes); see get_incremental_replace_keys_sql for the options. -#}
{% macro replace_keys_incremental(
    unique_key,
    changed_keys,
    rebuild_on_new_definition=false,
    replace_computed_keys=false,
    keep_increment=false
) -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='replace_keys',
        unique_key=unique_key,
        changed_keys=changed_keys,
        rebuild_on_new_definition=rebuild_on_new_definition,
        replace_computed_keys=replace_computed_keys,
        keep_increment=keep_increment,
        on_schema_change='fail',
    ) }}
{%- endmacro %}

{#- A model recomputed per user: the users in int_changed_users are replaced. -#}
{% macro per_user_incremental() -%}
    {{ replace_keys_incremental('user_id', 'int_changed_users') }}
{%- endmacro %}

{#- A generated segment recomputed per user: like per_user_incremental, and rebuilt for everyone
    when its definition is new. With `records_changes`, the users it replaces are those its
    pre-hook records, not int_changed_users. The rows a build wrote are kept until the next one
    (segment_models_contract checks only those). -#}
{% macro segment_incremental(records_changes=false) -%}
    {{ replace_keys_incremental(
        'user_id',
        none if records_changes else 'int_changed_users',
        rebuild_on_new_definition=true,
        keep_increment=true,
    ) }}
{%- endmacro %}

{#- The calls a model that adds to what it holds reads in a build (a call block: one select from
    stg_events aliased `e`, ending in its where clause): every call when it builds from scratch;
    otherwise the calls new to the build, plus every call of the users in int_rewritten_users
    (with `anonymous`, also the anonymous calls of the ids linked to them). Two scans, not one
    with an `or`: the first reads only the row groups loaded or stamped since the last build. -#}
{% macro new_or_rewritten_calls(anonymous=false) -%}
    {%- set calls = caller() | trim -%}
    {{ calls }}
    {%- if is_incremental() %}
    {%- set new = new_since_last_build('e') %}
      and {{ new }}
    union all
    {{ calls }}
      and not {{ new }}
      and (
        e.user_id in (select user_id from {{ ref('int_rewritten_users') }})
        {%- if anonymous %}
        or (e.user_id is null and e.anonymous_id in (
            select m.anonymous_id
            from {{ ref('int_identity_map') }} m
            join {{ ref('int_rewritten_users') }} u on u.user_id = m.user_id
        ))
        {%- endif %}
      )
    {%- endif %}
{%- endmacro %}
