-- A hand-written SQL segment: users who logged in at least 5 times in the 7 days up to as_of.
-- Any model in models/segments/ is a segment: it returns one row per member user_id.
select user_id
from {{ ref('fct_events') }}
where type = 'track'
  and event = 'logged_in'
  and timestamp > {{ as_of() }} - interval '7 days'
group by user_id
having count(*) >= 5
