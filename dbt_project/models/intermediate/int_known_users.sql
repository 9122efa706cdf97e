{{ replace_keys_incremental('user_id', 'int_rewritten_users', replace_computed_keys=true) }}
-- depends_on: {{ ref('int_rewritten_users') }}
-- Known users at as_of: any identify, track, page, screen or alias call carrying the user id,
-- stamped at or before as_of and after the deletion of the id it carried (if any); merged ids
-- count for the person they are merged into (int_calls). Incremental: the
-- calls new to this build widen what the previous build held for their users; the users in
-- int_rewritten_users are recomputed from all their calls.
with calls as (
    {% call new_or_rewritten_calls() %}
    select e.user_id, e.timestamp
    from {{ ref('int_calls') }} e
    left join {{ ref('int_user_deletions') }} d on d.user_id = e.source_user_id
    where e.type in ('identify', 'track', 'page', 'screen', 'alias')
      and e.user_id is not null
      and e.timestamp <= {{ as_of() }}
      and (d.deleted_at is null or e.timestamp > d.deleted_at)
    {% endcall %}
),

spans as (
    select user_id, min(timestamp) as first_call_at, max(timestamp) as last_call_at
    from calls
    group by user_id
    {% if is_incremental() %}
    union all
    -- What the previous build held for the other users with new calls.
    select {{ stored_columns(["user_id", "first_call_at", "last_call_at"]) }}
    from {{ this }}
    where user_id in (select user_id from calls)
      and user_id not in (select user_id from {{ ref('int_rewritten_users') }})
    {% endif %}
)

select user_id, min(first_call_at) as first_call_at, max(last_call_at) as last_call_at
from spans
group by user_id
