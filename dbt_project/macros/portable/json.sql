{#- JSON documents (traits, properties, context) on every warehouse. DuckDB stores them as JSON,
    Postgres as jsonb (what the segment compiler's Postgres SQL reads). Each macro is dispatched
    on the adapter; DuckDB's version is the SQL the models used before they became portable. -#}

{#- The column type of a JSON document. -#}
{% macro json_type_name() -%}
    {{- return(adapter.dispatch('json_type_name', 'nudge')()) -}}
{%- endmacro %}
{% macro default__json_type_name() -%}json{%- endmacro %}
{% macro postgres__json_type_name() -%}jsonb{%- endmacro %}

{#- `value` cast to a JSON document. -#}
{% macro as_json(value) -%}
    cast({{ value }} as {{ json_type_name() }})
{%- endmacro %}

{#- The empty JSON object. -#}
{% macro empty_json_object() -%}
    {{ as_json("'{}'") }}
{%- endmacro %}

{#- The text of the top-level key `key` of the JSON object `doc` (a string without its quotes;
    null when the key is missing or holds JSON null). -#}
{% macro json_text(doc, key) -%}
    {{- adapter.dispatch('json_text', 'nudge')(doc, key) -}}
{%- endmacro %}
{% macro default__json_text(doc, key) -%}
    {{ doc }} ->> '$.{{ key }}'
{%- endmacro %}
{% macro postgres__json_text(doc, key) -%}
    {{ doc }} ->> '{{ key }}'
{%- endmacro %}

{#- A table function over the JSON object `doc`: one row per top-level key, columns `key` (text)
    and `value` (a JSON document). Use as `cross join {{ json_entries('doc') }} alias`. -#}
{% macro json_entries(doc) -%}
    {{- adapter.dispatch('json_entries', 'nudge')(doc) -}}
{%- endmacro %}
{% macro default__json_entries(doc) -%}
    json_each({{ doc }})
{%- endmacro %}
{% macro postgres__json_entries(doc) -%}
    jsonb_each({{ doc }})
{%- endmacro %}

{#- Aggregate: the JSON object of every (key, value) pair of the group. -#}
{% macro json_object_agg(key, value) -%}
    {{- adapter.dispatch('json_object_agg', 'nudge')(key, value) -}}
{%- endmacro %}
{% macro default__json_object_agg(key, value) -%}
    json_group_object({{ key }}, {{ value }})
{%- endmacro %}
{% macro postgres__json_object_agg(key, value) -%}
    jsonb_object_agg({{ key }}, {{ value }})
{%- endmacro %}

{#- True when the JSON document `value` is JSON null (null when `value` is SQL null). -#}
{% macro json_is_null(value) -%}
    {{- adapter.dispatch('json_is_null', 'nudge')(value) -}}
{%- endmacro %}
{% macro default__json_is_null(value) -%}
    json_type({{ value }}) = 'NULL'
{%- endmacro %}
{% macro postgres__json_is_null(value) -%}
    jsonb_typeof({{ value }}) = 'null'
{%- endmacro %}

{#- The text at a nested path of keys in the JSON object `doc` (null when missing). -#}
{% macro json_path_text(doc, keys) -%}
    {{- adapter.dispatch('json_path_text', 'nudge')(doc, keys) -}}
{%- endmacro %}
{% macro default__json_path_text(doc, keys) -%}
    {{ doc }} ->> '$.{{ keys | join(".") }}'
{%- endmacro %}
{% macro postgres__json_path_text(doc, keys) -%}
    {{ doc }} #>> '{ {{- keys | join(",") -}} }'
{%- endmacro %}

{#- The JSON value of the top-level key `key` of the JSON object `doc` (null when missing). -#}
{% macro json_value(doc, key) -%}
    {{- adapter.dispatch('json_value', 'nudge')(doc, key) -}}
{%- endmacro %}
{% macro default__json_value(doc, key) -%}
    {{ doc }} -> '$.{{ key }}'
{%- endmacro %}
{% macro postgres__json_value(doc, key) -%}
    {{ doc }} -> '{{ key }}'
{%- endmacro %}
