-- depends_on: {{ ref('fct_segment_definition_changes') }}
-- depends_on: {{ ref('int_user_deletions') }}
-- depends_on: {{ ref('dim_users') }}
-- depends_on: {{ ref('int_changed_users') }}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['segment', 'user_id', 'entered_at'],
    on_schema_change='append_new_columns',
    full_refresh=false,
) }}
-- Membership intervals. Each run opens an interval (entered_at = this run's as_of) for every
-- member without an open one and closes (exited_at = as_of) every open interval that ends, with
-- the reason in exit_reason:
--   segment_removed     the segment is no longer defined (no model tagged `segment` has its name);
--   user_deleted        the user was deleted after the interval opened (a profile re-created
--                       after the delete that still qualifies opens a new interval in the same run),
--                       or a delete stamped earlier arrived late and the user is gone;
--   definition_changed  the user left in the run that first saw a new definition of the segment;
--   left                the user no longer qualifies (new data, or time alone).
-- A definition change applies from the run that sees it on: members under both versions keep
-- their interval (no exit and re-entry, so no journey is triggered again), and history before
-- it is never rewritten. definition_version is the version in force when the interval opened
-- (fct_segment_definition_changes logs every version). Rows are only ever added or closed, never
-- rebuilt; re-running the same as_of changes nothing, and an earlier as_of is refused. A build
-- with --full-refresh leaves it as it is (full_refresh=false): rebuilt, it would forget every
-- past interval and open one for every member again, which journeys read as entries.
{{ refuse_earlier_as_of('greatest(entered_at, coalesce(exited_at, entered_at))') }}
-- The union is unique on (segment, user_id): segment_models_contract, run on it before this model.
with current_members as (
    select segment, user_id
    from {{ ref('fct_segment_memberships') }}
),

definitions as (
    select segment, definition_version
    from {{ ref('fct_segment_definitions') }}
)

{% if is_incremental() %}
, changed_now as (
    select segment
    from {{ ref('fct_segment_definition_changes') }}
    where change = 'changed' and changed_at = {{ as_of() }}
),

deletions as (
    select user_id, deleted_at
    from {{ ref('int_user_deletions') }}
),

{#- Only the pairs this build may have changed (see segment_scope): a segment redefined now
    (created or changed at this as_of) counts in full. -#}
{%- set redefined = run_query(
    "select segment from " ~ ref('fct_segment_definition_changes')
    ~ " where changed_at = " ~ as_of() ~ " and change in ('created', 'changed')"
).columns[0].values() if execute else [] %}
{%- set scope = segment_scope(redefined) %}
{%- set in_scope = membership_scope(scope, 'scope_users') %}
scope_users as {{ materialized_cte() }} (
    {{ scope_users(scope) }}
),

open_intervals as (
    select segment, user_id, entered_at, definition_version
    from {{ this }}
    where exited_at is null and {{ in_scope }}
),

members_in_scope as (
    select segment, user_id
    from current_members
    where {{ in_scope }}
),

-- One pass over the open intervals and the members in scope (a full outer join), not one
-- anti-join each way: for a segment rebuilt in full both sides hold all of its members.
compared as (
    select
        coalesce(o.segment, c.segment) as segment,
        coalesce(o.user_id, c.user_id) as user_id,
        o.entered_at,
        o.definition_version,
        o.segment is not null as was_open,
        c.segment is not null as is_member
    from open_intervals o
    full outer join members_in_scope c on c.segment = o.segment and c.user_id = o.user_id
),

judged as (
    select
        p.*,
        coalesce(p.was_open and x.deleted_at > p.entered_at, false) as deleted_since_entry
    from compared p
    left join deletions x on x.user_id = p.user_id
),

closing as (
    select
        j.segment,
        j.user_id,
        j.entered_at,
        j.definition_version,
        case
            when not exists (select 1 from definitions d where d.segment = j.segment)
                then 'segment_removed'
            when j.deleted_since_entry then 'user_deleted'
            -- A delete that arrived late (stamped before the interval opened): the user is gone.
            when exists (select 1 from deletions x where x.user_id = j.user_id)
                and not exists (select 1 from {{ ref('dim_users') }} u where u.user_id = j.user_id)
                then 'user_deleted'
            when j.segment in (select segment from changed_now) then 'definition_changed'
            else 'left'
        end as exit_reason
    from judged j
    where j.was_open and (not j.is_member or j.deleted_since_entry)
)

select segment, user_id, entered_at, {{ as_of() }} as exited_at, definition_version, exit_reason
from closing

union all

-- Members without an interval that stays open: new members, and profiles re-created after a
-- delete that closed their interval in this run.
select
    j.segment,
    j.user_id,
    {{ as_of() }} as entered_at,
    cast(null as timestamp) as exited_at,
    d.definition_version,
    cast(null as {{ text_type() }}) as exit_reason
from judged j
join definitions d on d.segment = j.segment
where j.is_member and (not j.was_open or j.deleted_since_entry)
{% else %}
select
    c.segment,
    c.user_id,
    {{ as_of() }} as entered_at,
    cast(null as timestamp) as exited_at,
    d.definition_version,
    cast(null as {{ text_type() }}) as exit_reason
from current_members c
join definitions d on d.segment = c.segment
{% endif %}
