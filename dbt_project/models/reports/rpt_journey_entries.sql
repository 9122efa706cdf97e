-- Journey entries per journey and status (active, completed, exited).
select journey, status, count(*) as entries
from {{ source('nudge', 'journey_entries') }}
group by journey, status
