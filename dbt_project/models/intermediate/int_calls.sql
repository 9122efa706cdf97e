{{ config(materialized='ephemeral') }}
-- stg_events as the per-user models read it: `user_id` is the person the call belongs to at
-- as_of (an id merged into another person gives the calls to that person, int_merged_users) and
-- `source_user_id` the id the call carried, which deletions and suppressions are kept by.
-- Ephemeral: a left join with a small table, inlined where used so that the incremental filters
-- on stg_events still reach its scan.
select
    e.message_id,
    e.type,
    coalesce(m.merged_into, e.user_id) as user_id,
    e.user_id as source_user_id,
    e.anonymous_id,
    e.previous_id,
    e.group_id,
    e.event,
    e.name,
    e.timestamp,
    e.received_at,
    e.properties,
    e.traits,
    e.context,
    e.landing_file,
    e.loaded_at
from {{ ref('stg_events') }} e
left join {{ ref('int_merged_users') }} m on m.user_id = e.user_id
