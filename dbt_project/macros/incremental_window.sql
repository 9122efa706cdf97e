{#- Incremental builds recompute only what the data since the last build can have changed.

    `int_incremental_watermarks` logs, at the end of every build that got that far, the build's
    as_of and the latest `loaded_at` it staged. A call is *new to this build* when it was loaded
    since that watermark, or when its timestamp lies between the previous as_of and this one (it
    was loaded earlier but stamped in the future, and time has now reached it; or the other way
    round when as_of moved back). With no watermark yet every call is new. -#}
{% macro new_since_last_build(alias) -%}
    {%- set watermarks = adapter.get_relation(
        database=this.database, schema='intermediate', identifier='int_incremental_watermarks'
    ) if execute else none -%}
    {%- if watermarks is none -%}
        true
    {%- else -%}
        exists (
            select 1
            from (
                select as_of, loaded_through
                from {{ watermarks }}
                order by build_number desc
                limit 1
            ) w
            where w.loaded_through is null
               or {{ alias }}.loaded_at > w.loaded_through
               or ({{ alias }}.timestamp > least(w.as_of, {{ as_of() }})
                   and {{ alias }}.timestamp <= greatest(w.as_of, {{ as_of() }}))
        )
    {%- endif -%}
{%- endmacro %}

{#- Incremental strategy `replace_keys`: delete every row whose `unique_key` is in the model named
    by the `changed_keys` config (a model with a column of the same name), then insert the rows
    the model's SQL computed for those keys. Unlike delete+insert, a key that no longer has any
    row (a deleted user, an unlinked anonymous id) is removed too. Plain SQL: runs on DuckDB and
    Postgres alike. -#}
{% macro get_incremental_replace_keys_sql(arg_dict) -%}
    {%- set key = arg_dict['unique_key'] -%}
    {%- set changed = ref(config.require('changed_keys')) -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ arg_dict['target_relation'] }}
    where {{ key }} in (select {{ key }} from {{ changed }});
    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}
