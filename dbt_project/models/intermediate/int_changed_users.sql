-- Users whose calls, traits, identity links or deletion may differ from the last build: the
-- user id of every call new to this build, and every user who ever linked an anonymous id whose
-- link may have changed (that id's calls may move between them). Per-user incremental models
-- recompute exactly these users.
select user_id
from {{ ref('stg_events') }} e
where e.user_id is not null and {{ new_since_last_build('e') }}
union
select l.user_id
from {{ ref('int_identity_links') }} l
join {{ ref('int_changed_anonymous_ids') }} c on c.anonymous_id = l.anonymous_id
