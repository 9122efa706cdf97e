{#- One row per (segment, member) over the given segment models. The list is written out by the
    assembly step (nudge.warehouse.dbt) so that every ref() is seen at parse time and dbt builds
    fct_segment_memberships after every segment. An empty list still gives a typed, empty table. -#}
{% macro segment_union(segment_models) -%}
    {%- for name in segment_models %}
    select distinct '{{ name }}' as segment, cast(user_id as varchar) as user_id
    from {{ ref(name) }}
    where user_id is not null
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    select cast(null as varchar) as segment, cast(null as varchar) as user_id
    where false
    {%- endfor %}
{%- endmacro %}
