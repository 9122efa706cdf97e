{#- Pre-hook of a replace_keys model whose dependants need to know what a build changed: copies
    the rows the build is about to replace (those of the changed keys; every row when it
    rebuilds the model) into replaced_rows_relation, so that a later model can diff them with
    the new rows; `key` is the column that names a row (the model's unique key). Before the
    model's first build there is nothing to keep: the table is dropped,
    and readers take every new row as a change.

    The kept rows are the ones the last completed build left (int_incremental_watermarks): each
    is marked with the build it stands before (`nudge_before_build`, the last completed build's
    number plus one). When a build stops after this model and before it completes (a failure, a
    kill), its dependants never read what it replaced; the next build then keeps those rows and
    adds only the keys they lack, so it still sees every change since the last completed build. -#}
{% macro keep_replaced_rows(key) -%}
    {%- set replaced = replaced_rows_relation(this) -%}
    {%- set existing = existing_relation(this) -%}
    {#- dbt's relation cache is what existing_relation reads later in this build. -#}
    {%- if existing is none -%}
        {%- do adapter.cache_dropped(replaced) -%}
        drop table if exists {{ replaced }}
    {%- else -%}
        {%- set last = last_build_watermark() -%}
        {%- set pending = (last[2] if last else 0) + 1 -%}
        {%- set replaced_rows -%}
        select e.*, {{ pending }} as nudge_before_build
        from {{ existing }} e
        {%- if is_incremental() %}
        where e.{{ key }} in (select {{ key }} from {{ changed_keys_relation() }})
        {%- endif -%}
        {%- endset -%}
        {%- if _kept_before_build(replaced) == pending -%}
        insert into {{ replaced }}
        {{ replaced_rows }}
        {{ 'and' if is_incremental() else 'where' }} e.{{ key }} not in (select {{ key }} from {{ replaced }})
        {%- else -%}
        {%- do adapter.cache_added(replaced) -%}
        {{ create_or_replace_table_as(replaced) }}
        {{ replaced_rows }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- The build the rows kept in `replaced` stand before, or none (no such table, or one kept
    before builds were marked). -#}
{% macro _kept_before_build(replaced) -%}
    {%- set kept = existing_relation(replaced) -%}
    {%- if kept is none
          or 'nudge_before_build' not in adapter.get_columns_in_relation(kept)
                                           | map(attribute='name') | map('lower') | list -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set rows = run_query("select max(nudge_before_build) from " ~ kept).rows -%}
    {{- return(rows[0][0] if rows and rows[0][0] is not none else none) -}}
{%- endmacro %}
