{{ config(materialized='view') }}
-- One row per device (push token) at as_of, with the person it belongs to: the person of the
-- latest "Device Created or Updated" call for that device_id (a token registered by someone
-- else moves to them, as Customer.io does), unless that person removed it with a later
-- "Device Deleted" call. A view over fct_events, so devices follow merges, identity links,
-- deletions and suppressions as events do.
with device_calls as (
    select
        user_id,
        {{ json_text('properties', 'device_id') }} as device_id,
        event,
        properties,
        timestamp,
        received_at,
        message_id
    from {{ ref('fct_events') }}
    where type = 'track'
      and event in ('{{ device_updated_event() }}', '{{ device_deleted_event() }}')
      and {{ json_text('properties', 'device_id') }} is not null
),

latest_update as (
    select
        *,
        row_number() over (
            partition by device_id
            order by timestamp desc, received_at desc, message_id desc
        ) as rank
    from device_calls
    where event = '{{ device_updated_event() }}'
)

select
    u.user_id,
    u.device_id,
    {{ json_text('u.properties', 'platform') }} as platform,
    {{ trait_timestamp("(" ~ json_value('u.properties', 'last_used') ~ ")") }} as last_used_at,
    coalesce({{ json_value('u.properties', 'attributes') }}, {{ empty_json_object() }}) as attributes,
    u.timestamp as updated_at
from latest_update u
where u.rank = 1
  and not exists (
    select 1
    from device_calls d
    where d.event = '{{ device_deleted_event() }}'
      and d.device_id = u.device_id
      and d.user_id = u.user_id
      and (d.timestamp, d.received_at, d.message_id) > (u.timestamp, u.received_at, u.message_id)
  )
