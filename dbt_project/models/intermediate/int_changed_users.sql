-- Users whose calls, traits, identity links or deletion may differ from the last build: the
-- person of every call new to this build, every user who ever linked an anonymous id whose link
-- may have changed (that id's calls may move between them), and every id whose person a merge
-- new to this build changes (int_remerged_users). Per-user incremental models recompute exactly
-- these.
select user_id
from {{ ref('int_calls') }} e
where e.user_id is not null and {{ new_since_last_build('e') }}
union
select l.user_id
from {{ ref('int_identity_links') }} l
join {{ ref('int_changed_anonymous_ids') }} c on c.anonymous_id = l.anonymous_id
union
select user_id
from {{ ref('int_remerged_users') }}
