-- depends_on: {{ ref('fct_segment_memberships') }}
-- Every segment defined in this build (every model tagged `segment`, wherever it lives), with the
-- version of its definition (see the segment_definition_version macro) and the run's as_of.
-- Read from dbt's graph when executing; a segment with no members is still listed here. Built
-- after every segment (hence the depends_on): incremental segments compare their definition with
-- the one recorded here by the previous build.
{%- set rows = [] %}
{%- for node in segment_nodes() %}
    {%- do rows.append("('" ~ node.name ~ "', '" ~ segment_kind(node) ~ "', '"
        ~ segment_definition_version(node) ~ "')") %}
{%- endfor %}
{%- if rows %}
select segment, kind, definition_version, {{ as_of() }} as as_of
from (values {{ rows | join(', ') }}) as d(segment, kind, definition_version)
{%- else %}
select
    cast(null as {{ text_type() }}) as segment,
    cast(null as {{ text_type() }}) as kind,
    cast(null as {{ text_type() }}) as definition_version,
    {{ as_of() }} as as_of
where false
{%- endif %}
