{#- Calls that change who a person is, recognised the same way by every model that reads them. -#}

{#- A merge: an alias whose context carries `nudge.merge: true` (what a Customer.io
    merge_customers call lands as). `user_id` is the primary, `previous_id` the secondary. -#}
{% macro is_merge_call(alias) -%}
    ({{ alias }}.type = 'alias'
     and {{ alias }}.user_id is not null
     and {{ alias }}.previous_id is not null
     and {{ alias }}.user_id <> {{ alias }}.previous_id
     and {{ json_path_text(alias ~ '.context', ['nudge', 'merge']) }} = 'true')
{%- endmacro %}

{#- The track events that suppress (delete and keep out) and unsuppress an id. -#}
{% macro suppressed_event() %}User Suppressed{% endmacro %}
{% macro unsuppressed_event() %}User Unsuppressed{% endmacro %}

{#- What an erasure call's id is matched by: an email address (holding '@') in any case. -#}
{% macro erased_key(user_id) -%}
    case when {{ user_id }} like '%@%' then lower({{ user_id }}) else {{ user_id }} end
{%- endmacro %}

{#- A call that erases a person, or ends an erasure: a delete, a suppression or an unsuppression. -#}
{% macro is_erasure_call(alias) -%}
    ({{ alias }}.type = 'delete'
     or ({{ alias }}.type = 'track'
         and {{ alias }}.event in ('{{ suppressed_event() }}', '{{ unsuppressed_event() }}')))
{%- endmacro %}

{#- The track events that register (or update) and remove a push device of a person. -#}
{% macro device_updated_event() %}Device Created or Updated{% endmacro %}
{% macro device_deleted_event() %}Device Deleted{% endmacro %}
