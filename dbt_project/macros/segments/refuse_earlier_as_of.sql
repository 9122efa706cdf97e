{#- History only moves forward: an incremental build at an as_of earlier than the latest instant
    recorded in `this` (or than the latest succeeded pipeline run) would record intervals out of
    order, so it is refused. `latest_sql` is a SQL expression over `this`. -#}
{% macro refuse_earlier_as_of(latest_sql) -%}
    {%- if execute and is_incremental() -%}
        {%- set check -%}
            with latest as (
                select max({{ latest_sql }}) as latest_at from {{ this }}
                union all
                select max(as_of) from {{ source('nudge', 'runs') }} where status = 'succeeded'
            )
            select cast(max(latest_at) as {{ text_type() }}), coalesce(max(latest_at) > {{ as_of() }}, false)
            from latest
        {%- endset -%}
        {%- set row = run_query(check).rows[0] -%}
        {%- if row[1] -%}
            {{ exceptions.raise_compiler_error(
                "as_of " ~ var('as_of') ~ " is earlier than the latest recorded run (" ~ row[0]
                ~ ") of " ~ this ~ ": segment history only moves forward. Run at "
                ~ row[0] ~ " or later, or replay the past in a fresh workspace."
            ) }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
