-- raw.events deduplicated by message_id: the first landed copy wins (landing file names sort by
-- landing time; within a file, the earliest received_at).
select
    message_id,
    type,
    user_id,
    anonymous_id,
    previous_id,
    group_id,
    event,
    name,
    timestamp,
    received_at,
    properties,
    traits,
    context,
    landing_file
from {{ source('raw', 'events') }}
qualify row_number() over (
    partition by message_id
    order by loaded_at, landing_file, received_at
) = 1
