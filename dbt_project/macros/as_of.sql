{#- The run's instant, passed as --vars '{"as_of": "2026-01-01T00:00:03"}' (naive UTC).
    At parse time no var is needed: the SQL is only rendered for dependencies then. -#}
{% macro as_of() -%}
    {%- if execute and var('as_of', none) is none -%}
        {{ exceptions.raise_compiler_error(
            "var 'as_of' is required: pass --vars '{\"as_of\": \"<ISO 8601 UTC>\"}'"
        ) }}
    {%- endif -%}
    cast('{{ var("as_of", "1970-01-01T00:00:00") }}' as timestamp)
{%- endmacro %}
