{#- Segments recomputed per user: which users a build recomputes. -#}

{#- Pre-hook of a segment that moves with time (nudge.core.segments.dbt_models). In a build that
    recomputes it per user, writes the users to recompute: the changed users, those the call
    body selects (whose data crosses one of the segment's time boundaries since the previous
    build), and those recorded by the segments it reads (`segments_read`, which record theirs
    too). A build that recomputes it for everyone drops the table instead, so that the history
    diff (membership_scope) compares all of its members. -#}
{% macro record_segment_changes(segments_read) -%}
    {%- set changes = segment_changes_relation(this) -%}
    {%- set moved = caller() | trim -%}
    {%- if is_incremental() and segment_definition_unchanged() -%}
        {{ create_or_replace_table_as(changes) }}
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
