{#- A trait value (JSON) as a naive UTC timestamp: ISO 8601 text (any offset) or unix seconds.
    Anything else is null. -#}
{% macro json_timestamp(value) -%}
    case json_type({{ value }})
        when 'VARCHAR' then timezone('UTC', try_cast({{ value }} ->> '$' as timestamptz))
        when 'UBIGINT' then make_timestamp(cast(cast({{ value }} as double) * 1000000 as bigint))
        when 'BIGINT' then make_timestamp(cast(cast({{ value }} as double) * 1000000 as bigint))
        when 'DOUBLE' then make_timestamp(cast(cast({{ value }} as double) * 1000000 as bigint))
    end
{%- endmacro %}
