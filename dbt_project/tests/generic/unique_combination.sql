{#- Fails for every combination of the given columns that occurs more than once.

    `stamped_with_as_of` (optional) names timestamp columns of which at least one holds the
    build's as_of on every row a build writes, in a model that never rewrites other rows (an
    append-and-close history). A duplicate must then include a row written by this build, so
    only the combinations found in such rows are counted: the check costs what the build wrote,
    not the whole table. -#}
{% test unique_combination(model, columns, stamped_with_as_of=none) %}
select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }} as checked
{%- if stamped_with_as_of %}
where exists (
    select 1
    from {{ model }} as written
    where ({% for column in stamped_with_as_of -%}
        written.{{ column }} = {{ as_of() }}{% if not loop.last %} or {% endif %}
    {%- endfor %})
    {%- for column in columns %}
      and written.{{ column }} = checked.{{ column }}
    {%- endfor %}
)
{%- endif %}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
