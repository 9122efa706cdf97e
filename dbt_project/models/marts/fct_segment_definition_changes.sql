{{ config(materialized='incremental', incremental_strategy='append', full_refresh=false) }}
-- The log of segment definitions: one row each time a run first sees a segment (`created`), a
-- new version of its definition (`changed`), or its disappearance (`removed`). changed_at is that
-- run's as_of. A segment's version at any instant is its latest row at or before that instant.
-- A log: a build with --full-refresh leaves it as it is (full_refresh=false).
{{ refuse_earlier_as_of('changed_at') }}
with current_definitions as (
    select segment, kind, definition_version
    from {{ ref('fct_segment_definitions') }}
)

{% if is_incremental() %}
, latest as (
    {% call first_row_per(['segment'], ['changed_at desc']) %}
    select segment, change, definition_version
    from {{ this }}
    {% endcall %}
)

select
    c.segment,
    case when l.segment is null or l.change = 'removed' then 'created' else 'changed' end as change,
    c.definition_version,
    case when l.change <> 'removed' then l.definition_version end as previous_version,
    c.kind,
    {{ as_of() }} as changed_at
from current_definitions c
left join latest l on l.segment = c.segment
where l.segment is null or l.change = 'removed' or l.definition_version <> c.definition_version

union all

select
    l.segment,
    'removed' as change,
    cast(null as {{ text_type() }}) as definition_version,
    l.definition_version as previous_version,
    cast(null as {{ text_type() }}) as kind,
    {{ as_of() }} as changed_at
from latest l
where l.change <> 'removed'
  and not exists (select 1 from current_definitions c where c.segment = l.segment)
{% else %}
select
    segment,
    'created' as change,
    definition_version,
    cast(null as {{ text_type() }}) as previous_version,
    kind,
    {{ as_of() }} as changed_at
from current_definitions
{% endif %}
