{{ per_user_incremental() }}
-- depends_on: {{ ref('int_changed_users') }}
-- Known users at as_of: any identify, track, page, screen or alias call carrying the user id,
-- stamped at or before as_of and after the user's latest deletion (if any). Incremental: only
-- the users in int_changed_users are recomputed.
select
    e.user_id,
    min(e.timestamp) as first_call_at,
    max(e.timestamp) as last_call_at
from {{ ref('stg_events') }} e
left join {{ ref('int_user_deletions') }} d on d.user_id = e.user_id
where e.type in ('identify', 'track', 'page', 'screen', 'alias')
  and e.user_id is not null
  and e.timestamp <= {{ as_of() }}
  and (d.deleted_at is null or e.timestamp > d.deleted_at)
  {% if is_incremental() %}
  and e.user_id in (select user_id from {{ ref('int_changed_users') }})
  {% endif %}
group by e.user_id
