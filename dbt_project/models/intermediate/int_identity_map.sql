-- Anonymous ids linked to a user: an identify carrying both ids, or an alias
-- (previous_id -> user_id). The earliest link at or before as_of wins; links made before the
-- user was deleted are forgotten with the user.
with links as (
    select anonymous_id, user_id, timestamp as linked_at, message_id
    from {{ ref('stg_events') }}
    where type = 'identify' and anonymous_id is not null and user_id is not null
    union all
    select previous_id as anonymous_id, user_id, timestamp as linked_at, message_id
    from {{ ref('stg_events') }}
    where type = 'alias' and previous_id is not null and user_id is not null
)

select l.anonymous_id, l.user_id, l.linked_at
from links l
left join {{ ref('int_user_deletions') }} d on d.user_id = l.user_id
where l.linked_at <= {{ as_of() }}
  and l.anonymous_id <> l.user_id
  and (d.deleted_at is null or l.linked_at > d.deleted_at)
qualify row_number() over (
    partition by l.anonymous_id
    order by l.linked_at, l.message_id
) = 1
