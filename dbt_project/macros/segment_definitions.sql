{#- Helpers for segment definition versions and membership history (fct_segment_definitions,
    fct_segment_definition_changes, fct_segment_membership_history). -#}

{#- Every model tagged `segment`, wherever it lives, from the graph (available when executing). -#}
{% macro segment_nodes() -%}
    {%- set nodes = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() | sort(attribute='name') -%}
            {%- if node.resource_type == 'model' and 'segment' in node.tags -%}
                {%- do nodes.append(node) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{- return(nodes) -}}
{%- endmacro %}

{#- A segment's definition version: md5 of its model's SQL with comments and runs of whitespace
    removed, so editing a description or re-indenting is not a new definition. -#}
{% macro segment_definition_version(node) -%}
    {%- set without_comments = modules.re.sub('--[^\n]*', ' ', node.raw_code) -%}
    {{- return(local_md5(modules.re.sub('\\s+', ' ', without_comments).strip())) -}}
{%- endmacro %}

{#- yaml (generated from a YAML condition), manual (an uploaded list) or sql (hand-written). -#}
{% macro segment_kind(node) -%}
    {%- set meta = node.config.get('meta', {}) -%}
    {%- if meta.get('segment_kind') -%}
        {{- return(meta.get('segment_kind')) -}}
    {%- elif node.original_file_path.startswith('models/segments/generated/') -%}
        {{- return('yaml') -}}
    {%- else -%}
        {{- return('sql') -}}
    {%- endif -%}
{%- endmacro %}

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
            select cast(max(latest_at) as varchar), coalesce(max(latest_at) > {{ as_of() }}, false)
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
