{#- Keeping one row per group: QUALIFY (DuckDB, Snowflake, BigQuery, Databricks, Spark), which
    Postgres does not have. -#}

{#- Wraps one select (the call block: `select ... from ... [where ...]`, no group by or order by)
    so that it keeps, per distinct `partition_by` (a list of expressions), the first row by
    `order_by` (a list of expressions, each optionally followed by asc/desc). Nulls sort last
    in either direction, as DuckDB sorts them by default. Postgres's version is DISTINCT ON, in
    parentheses so that it can stand as one branch of a union. -#}
{% macro first_row_per(partition_by, order_by) -%}
    {{- adapter.dispatch('first_row_per', 'nudge')(caller() | trim, partition_by, order_by) -}}
{%- endmacro %}

{% macro default__first_row_per(query, partition_by, order_by) -%}
    {{ query }}
    qualify row_number() over (
        partition by {{ partition_by | join(', ') }}
        order by {{ order_by | join(', ') }}
    ) = 1
{%- endmacro %}

{% macro postgres__first_row_per(query, partition_by, order_by) -%}
    {%- if not modules.re.match('(?is)^select\\s', query) -%}
        {{ exceptions.raise_compiler_error(
            "first_row_per wraps one select statement, got: " ~ query[:60]
        ) }}
    {%- endif -%}
    {%- set ordered = [] -%}
    {%- for term in partition_by + order_by -%}
        {%- do ordered.append(term ~ ('' if 'nulls' in term | lower else ' nulls last')) -%}
    {%- endfor -%}
    (select distinct on ({{ partition_by | join(', ') }}) {{ query[6:] | trim }}
    order by {{ ordered | join(', ') }})
{%- endmacro %}

{#- Spark sorts nulls first in ascending order: each term says nulls last, as DuckDB sorts. -#}
{% macro spark__first_row_per(query, partition_by, order_by) -%}
    {%- set ordered = [] -%}
    {%- for term in order_by -%}
        {%- do ordered.append(term ~ ('' if 'nulls' in term | lower else ' nulls last')) -%}
    {%- endfor -%}
    {{ default__first_row_per(query, partition_by, ordered) }}
{%- endmacro %}
