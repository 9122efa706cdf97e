{#- Pre-hook of a replace_keys model whose dependants need to know what a build changed: copies
    the rows the build is about to replace (those of the changed keys; every row when it
    rebuilds the model) into replaced_rows_relation, so that a later model can diff them with
    the new rows; `key` is the column that names a row (the model's unique key). Before the
    model's first build there is nothing to keep: the table is dropped, and readers take every
    new row as a change.

    The kept rows are the ones the last completed build left (int_incremental_watermarks): each
    is marked with its key (`nudge_key`) and the build it stands before (`nudge_before_build`,
    the last completed build's number plus one); the post-hook mark_new_keys adds a row holding
    only those two for each key the build added. When a build stops after this model and before
    it completes (a failure, a kill), its dependants never read what it replaced; the next build
    then keeps those rows and adds only the keys they lack, so it still sees every change since
    the last completed build, a key that did not exist then included. -#}
{% macro keep_replaced_rows(key) -%}
    {%- set replaced = replaced_rows_relation(this) -%}
    {%- set existing = existing_relation(this) -%}
    {#- dbt's relation cache is what existing_relation reads later in this build. -#}
    {%- if existing is none -%}
        {%- do adapter.cache_dropped(replaced) -%}
        drop table if exists {{ replaced }}
    {%- else -%}
        {%- set pending = _pending_build() -%}
        {%- set replaced_rows -%}
        select e.*, e.{{ key }} as nudge_key, {{ pending }} as nudge_before_build
        from {{ existing }} e
        {%- if is_incremental() %}
        where e.{{ key }} in (select {{ key }} from {{ changed_keys_relation() }})
        {%- endif -%}
        {%- endset -%}
        {%- if _kept_before_build(replaced, existing) == pending -%}
        insert into {{ replaced }}
        {{ replaced_rows }}
        {{ 'and' if is_incremental() else 'where' }} not exists (
            select 1 from {{ replaced }} r where r.nudge_key = e.{{ key }})
        {%- else -%}
        {%- do adapter.cache_added(replaced) -%}
        {{ create_or_replace_table_as(replaced) }}
        {{ replaced_rows }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- Post-hook beside keep_replaced_rows: a row naming each key the build added (every key of
    the model not kept; in an incremental build, of the keys it changed), and one naming no key,
    so that the build number is kept even when nothing else is. -#}
{% macro mark_new_keys(key) -%}
    {%- set replaced = replaced_rows_relation(this) -%}
    {%- if _kept(replaced, this) is not none -%}
        {%- set pending = _pending_build() -%}
        insert into {{ replaced }} (nudge_key, nudge_before_build)
        select m.{{ key }}, {{ pending }}
        from {{ this }} m
        where not exists (select 1 from {{ replaced }} r where r.nudge_key = m.{{ key }})
        {%- if is_incremental() %}
          and m.{{ key }} in (select {{ key }} from {{ changed_keys_relation() }})
        {%- endif %}
        union all
        select null, {{ pending }}
    {%- endif -%}
{%- endmacro %}

{#- `replaced` when it holds rows kept by keep_replaced_rows for `model` as it is (its columns
    and the two marks), else none: absent, kept before builds were marked, or from a model whose
    columns have changed since. -#}
{% macro _kept(replaced, model) -%}
    {%- set kept = existing_relation(replaced) -%}
    {%- if kept is none -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set kept_columns = adapter.get_columns_in_relation(kept) | map(attribute='name')
                           | map('lower') | list -%}
    {%- set model_columns = adapter.get_columns_in_relation(model) | map(attribute='name')
                            | map('lower') | list -%}
    {{- return(kept if kept_columns == model_columns + ['nudge_key', 'nudge_before_build']
               else none) -}}
{%- endmacro %}

{#- The build the rows kept in `replaced` stand before (see _kept), or none. -#}
{% macro _kept_before_build(replaced, model) -%}
    {%- set kept = _kept(replaced, model) -%}
    {%- if kept is none -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set rows = run_query("select max(nudge_before_build) from " ~ kept).rows -%}
    {{- return(rows[0][0] if rows and rows[0][0] is not none else none) -}}
{%- endmacro %}

{#- The number the build under way gets if it completes: the last completed build's plus one. -#}
{% macro _pending_build() -%}
    {%- set last = last_build_watermark() -%}
    {{- return((last[2] if last else 0) + 1) -}}
{%- endmacro %}
