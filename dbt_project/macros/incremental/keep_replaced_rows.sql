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
        {{ create_or_replace_table_as(replaced) }}
        select * from {{ existing }}
        {%- if is_incremental() %}
        where {{ key }} in (select {{ key }} from {{ changed_keys_relation() }})
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
