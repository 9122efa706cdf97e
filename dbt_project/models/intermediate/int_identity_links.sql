{{ config(materialized='ephemeral') }}
-- Every link between an anonymous id and a user ever made: an identify carrying both ids (or a
-- Customer.io `anonymous_id` trait), or an alias (previous_id -> user_id), whatever its
-- timestamp. `user_id` is the person after merges, `source_user_id` the id the call carried. The
-- identity map picks one per anonymous id at as_of; the incremental models use all of them to
-- find who a change can affect.
select anonymous_id, user_id, source_user_id, timestamp as linked_at, message_id
from {{ ref('int_calls') }}
where type = 'identify' and anonymous_id is not null and user_id is not null
union all
select
    {{ json_text('traits', 'anonymous_id') }} as anonymous_id,
    user_id,
    source_user_id,
    timestamp as linked_at,
    message_id
from {{ ref('int_calls') }}
where type = 'identify'
  and anonymous_id is null
  and user_id is not null
  and {{ json_text('traits', 'anonymous_id') }} is not null
union all
select previous_id as anonymous_id, user_id, source_user_id, timestamp as linked_at, message_id
from {{ ref('int_calls') }}
where type = 'alias' and previous_id is not null and user_id is not null
