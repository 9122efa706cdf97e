{#- Casts that give null instead of failing the query on a value that does not convert. -#}

{#- `text` read as a boolean the way DuckDB's TRY_CAST reads it: true, t, yes, y, 1 and false,
    f, no, n, 0 (any case, no surrounding spaces); anything else is null. -#}
{% macro try_cast_boolean(text) -%}
    {{- adapter.dispatch('try_cast_boolean', 'nudge')(text) -}}
{%- endmacro %}
{% macro duckdb__try_cast_boolean(text) -%}
    try_cast({{ text }} as boolean)
{%- endmacro %}
{% macro default__try_cast_boolean(text) -%}
    case
        when lower({{ text }}) in ('true', 't', 'yes', 'y', '1') then true
        when lower({{ text }}) in ('false', 'f', 'no', 'n', '0') then false
    end
{%- endmacro %}

{#- The type of text columns: varchar, which Spark only knows with a length (its text is string). -#}
{% macro text_type() -%}
    {{- return(adapter.dispatch('text_type', 'nudge')()) -}}
{%- endmacro %}
{% macro default__text_type() -%}varchar{%- endmacro %}
{% macro spark__text_type() -%}string{%- endmacro %}
