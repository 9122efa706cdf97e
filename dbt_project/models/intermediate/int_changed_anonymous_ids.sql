-- Anonymous ids whose identity link may differ from the last build: ids on calls new to this
-- build (a new anonymous call, a new identify or alias linking it) and every id linked by a user
-- deleted in a call new to this build (the delete forgets those links). Drives the incremental
-- int_identity_map.
with new_calls as (
    select type, user_id, anonymous_id, previous_id
    from {{ ref('stg_events') }} e
    where {{ new_since_last_build('e') }}
)

select anonymous_id from new_calls where anonymous_id is not null
union
select previous_id from new_calls where type = 'alias' and previous_id is not null
union
select l.anonymous_id
from {{ ref('int_identity_links') }} l
join new_calls d on d.type = 'delete' and d.user_id = l.user_id
