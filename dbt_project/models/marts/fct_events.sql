{{ replace_keys_incremental('user_id', 'int_rewritten_users', keep_increment=true) }}
-- depends_on: {{ ref('int_rewritten_users') }}
-- Every deduplicated track/page/screen call of a known user with timestamp <= as_of. Calls made
-- anonymously count for the user their anonymous id is linked to (int_identity_map), including
-- calls from before the link; an anonymous id nothing has linked is not a user. Calls of an id
-- merged into another person count for that person (int_calls); deletions and suppressions
-- apply to the id a call carried. Incremental:
-- the calls new to this build are added, and the users in int_rewritten_users (whose past
-- calls a link, a delete or as_of moving back may change) are recomputed from all their calls.
-- What a build added stays in fct_events__nudge_increment until the next one (dim_users reads it).
with calls as (
    {% call new_or_rewritten_calls(anonymous=true) %}
    select
        message_id, user_id, source_user_id, anonymous_id, type, event, name, timestamp,
        properties, context, received_at
    from {{ ref('int_calls') }} e
    where type in ('track', 'page', 'screen')
      and timestamp <= {{ as_of() }}
    {% endcall %}
),

resolved as (
    select c.*, coalesce(c.user_id, m.user_id) as resolved_user_id
    from calls c
    left join {{ ref('int_identity_map') }} m
        on c.user_id is null and m.anonymous_id = c.anonymous_id
)

select
    r.message_id,
    r.resolved_user_id as user_id,
    r.type,
    r.event,
    r.name,
    r.timestamp,
    coalesce(r.properties, {{ empty_json_object() }}) as properties,
    r.context,
    r.received_at
from resolved r
-- Semi- and anti-joins, not joins: the wide call rows are never a join's build side (a plain
-- join ran out of DuckDB's memory limit at 10M calls).
where r.resolved_user_id in (select user_id from {{ ref('int_known_users') }})
  and not exists (
    select 1
    from {{ ref('int_user_deletions') }} d
    where d.user_id = coalesce(r.source_user_id, r.resolved_user_id)
      and r.timestamp <= d.deleted_at
  )
