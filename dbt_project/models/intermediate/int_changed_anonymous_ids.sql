-- Anonymous ids whose identity link may differ from the last build: ids on calls new to this
-- build (a new anonymous call, a new identify or alias linking it), every id linked by a user
-- erased in a call new to this build (a delete or suppression forgets those links, an
-- unsuppression ends that), and every id linked by an id whose person a new merge changes.
-- Drives the incremental int_identity_map.
with new_calls as (
    select type, event, user_id, anonymous_id, previous_id, traits
    from {{ ref('stg_events') }} e
    where {{ new_since_last_build('e') }}
)

select anonymous_id from new_calls where anonymous_id is not null
union
select previous_id from new_calls where type = 'alias' and previous_id is not null
union
select {{ json_text('traits', 'anonymous_id') }}
from new_calls
where type = 'identify' and {{ json_text('traits', 'anonymous_id') }} is not null
union
select l.anonymous_id
from {{ ref('int_identity_links') }} l
join new_calls d on {{ is_erasure_call('d') }} and d.user_id in (l.source_user_id, l.user_id)
union
select l.anonymous_id
from {{ ref('int_identity_links') }} l
join {{ ref('int_remerged_users') }} r on r.user_id = l.source_user_id
