{#- JSON documents (traits, properties, context) on every warehouse. DuckDB stores them as JSON,
    Postgres as jsonb, Spark 4 as VARIANT (what the segment compiler's SQL for each reads: the
    `databricks` dialect on Spark). Each macro is dispatched on the adapter; DuckDB's version is
    the SQL the models used before they became portable. On Spark every read goes through
    try_variant_get, which gives null for a missing key as DuckDB's operators do. -#}

{#- The column type of a JSON document. -#}
{% macro json_type_name() -%}
    {{- return(adapter.dispatch('json_type_name', 'nudge')()) -}}
{%- endmacro %}
{% macro default__json_type_name() -%}json{%- endmacro %}
{% macro postgres__json_type_name() -%}jsonb{%- endmacro %}
{% macro spark__json_type_name() -%}variant{%- endmacro %}

{#- `value` (SQL null or a JSON document) cast to the JSON document type. -#}
{% macro as_json(value) -%}
    cast({{ value }} as {{ json_type_name() }})
{%- endmacro %}

{#- The empty JSON object. -#}
{% macro empty_json_object() -%}
    {{- adapter.dispatch('empty_json_object', 'nudge')() -}}
{%- endmacro %}
{% macro default__empty_json_object() -%}
    {{ as_json("'{}'") }}
{%- endmacro %}
{#- A text cast to VARIANT is a JSON string: the object is parsed. -#}
{% macro spark__empty_json_object() -%}
    parse_json('{}')
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
{% macro spark__json_text(doc, key) -%}
    try_variant_get({{ doc }}, '$.{{ key }}', 'string')
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
{#- variant_explode's columns are pos, key and value: no rows for SQL null or a non-object. -#}
{% macro spark__json_entries(doc) -%}
    lateral variant_explode({{ doc }})
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
{% macro spark__json_object_agg(key, value) -%}
    to_variant_object(map_from_entries(collect_list(struct({{ key }}, {{ value }}))))
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
{% macro spark__json_is_null(value) -%}
    case when {{ value }} is not null then is_variant_null({{ value }}) end
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
{% macro spark__json_path_text(doc, keys) -%}
    try_variant_get({{ doc }}, '$.{{ keys | join(".") }}', 'string')
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
{% macro spark__json_value(doc, key) -%}
    try_variant_get({{ doc }}, '$.{{ key }}', 'variant')
{%- endmacro %}
