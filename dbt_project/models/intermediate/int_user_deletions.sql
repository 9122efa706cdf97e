{{ config(materialized="ephemeral") }}
-- Ephemeral (inlined where used): a cheap filter, and one less step on every build's critical path.
-- A `delete` call forgets a user as of its timestamp: their calls, traits and identity links
-- stamped at or before the latest delete (at or before as_of) no longer count. Calls stamped
-- after it start a fresh profile (Customer.io behaves the same; suppression, which also blocks
-- the id from coming back, is not modelled here).
select user_id, max(timestamp) as deleted_at
from {{ ref('stg_events') }}
where type = 'delete'
  and user_id is not null
  and timestamp <= {{ as_of() }}
group by user_id
