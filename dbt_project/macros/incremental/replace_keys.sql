{#- The project's `replace_keys` incremental strategy and the model configs that use it. -#}

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

{#- Incremental strategy `replace_keys`: delete every row whose `unique_key` is in the model named
    by the `changed_keys` config (a model with a column of the same name), then insert the rows
    the model's SQL computed for those keys. Unlike delete+insert, a key that no longer has any
    row (a deleted user, an unlinked anonymous id) is removed too. With `replace_computed_keys`,
    the keys of every computed row are replaced as well (for a model that merges new data into
    what it holds: it computes the whole new state of the keys the new data touches). With
    `rebuild_on_new_definition` (generated segments), a build that sees a new definition of the
    model replaces every row instead. Plain SQL: runs on DuckDB and Postgres alike (Spark's
    materialization, which cannot delete, keeps the other rows instead: macros/materializations). -#}
{% macro get_incremental_replace_keys_sql(arg_dict) -%}
    {%- set key = arg_dict['unique_key'] -%}
    {%- set replaced = replaced_keys(arg_dict['temp_relation']) -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- if replaced is none -%}
    delete from {{ arg_dict['target_relation'] }};
    {%- else -%}
    delete from {{ arg_dict['target_relation'] }}
    where {% for relation in replaced -%}
        {{ key }} in (select {{ key }} from {{ relation }})
        {%- if not loop.last %} or {% endif -%}
    {%- endfor -%};
    {%- endif %}
    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}

{#- The relations whose `unique_key` values a replace_keys build of the current model replaces
    (`staged`: the rows it computed), or none when it replaces every row. -#}
{% macro replaced_keys(staged) -%}
    {%- if config.get('rebuild_on_new_definition') and not segment_definition_unchanged() -%}
        {{- return(none) -}}
    {%- endif -%}
    {{- return([changed_keys_relation()] + ([staged] if config.get('replace_computed_keys') else [])) -}}
{%- endmacro %}

{#- The keys an incremental build of the current model replaces: the model named by its
    `changed_keys` config, or, for a segment that records its own changes, the table its
    pre-hook wrote (record_segment_changes). -#}
{% macro changed_keys_relation() -%}
    {%- set changed_keys = config.get('changed_keys') -%}
    {{- return(ref(changed_keys) if changed_keys else segment_changes_relation(this)) -}}
{%- endmacro %}
