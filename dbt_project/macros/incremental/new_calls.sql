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

{#- The last completed build's (as_of, loaded_through) as text and its build_number, or none
    before the first. -#}
{% macro last_build_watermark() -%}
    {%- set watermarks = adapter.get_relation(
        database=this.database, schema='intermediate', identifier='int_incremental_watermarks'
    ) if execute else none -%}
    {%- set last = run_query(
        "select cast(as_of as " ~ text_type() ~ "), cast(loaded_through as " ~ text_type() ~ "),"
        ~ " build_number from " ~ watermarks ~ " order by build_number desc limit 1"
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
