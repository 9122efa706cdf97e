{{ config(materialized='view') }}
-- One row per person and device (push token) they have at as_of: the latest "Device Created or
-- Updated" track call per device, unless a "Device Deleted" call for it came later. A view over
-- fct_events, so devices follow merges, identity links, deletions and suppressions as events do.
with device_calls as (
    select
        user_id,
        properties ->> '$.device_id' as device_id,
        event,
        properties,
        timestamp,
        received_at,
        message_id
    from {{ ref('fct_events') }}
    where type = 'track'
      and event in ('{{ device_updated_event() }}', '{{ device_deleted_event() }}')
      and properties ->> '$.device_id' is not null
),

latest as (
    select
        *,
        row_number() over (
            partition by user_id, device_id
            order by timestamp desc, received_at desc, message_id desc
        ) as rank
    from device_calls
)

select
    user_id,
    device_id,
    properties ->> '$.platform' as platform,
    {{ trait_timestamp("(properties -> '$.last_used')") }} as last_used_at,
    coalesce(properties -> '$.attributes', cast('{}' as json)) as attributes,
    timestamp as updated_at
from latest
where rank = 1 and event = '{{ device_updated_event() }}'
