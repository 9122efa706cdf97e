{{ config(materialized="ephemeral") }}
-- Ephemeral (inlined where used): a cheap filter, and one less step on every build's critical path.
-- Per user id (as carried by calls, before merges): everything stamped at or before deleted_at
-- is forgotten (calls, traits, identity links); calls stamped after it start a fresh profile
-- (as Customer.io does when a deleted person is identified again).
-- - A delete erases up to its own timestamp.
-- - A suppression deletes too and keeps the id out until it is unsuppressed: it erases up to
--   the first unsuppression stamped at or after it, or up to as_of while there is none, so that
--   calls for the id that reach the warehouse while it is suppressed never count.
-- - An erasure of a person reaches the ids merged into it at or before the erasure began.
-- - An erasure addressed by email (an id holding '@') reaches the person who has that email
--   (int_merged_users: the email joins them), and so every id of that person.
with erasure_calls as (
    select e.type, e.event, e.user_id, e.timestamp
    from {{ ref('stg_events') }} e
    where {{ is_erasure_call('e') }}
      and e.user_id is not null
      and e.timestamp <= {{ as_of() }}
),

erasures as (
    select user_id, timestamp as erased_from, timestamp as erased_through
    from erasure_calls
    where type = 'delete'
    union all
    select
        s.user_id,
        s.timestamp,
        coalesce(
            (
                select min(u.timestamp)
                from erasure_calls u
                -- An email address is one id in any case (as the collector's list has it).
                where (u.user_id = s.user_id
                       or (s.user_id like '%@%' and lower(u.user_id) = lower(s.user_id)))
                  and u.event = '{{ unsuppressed_event() }}'
                  and u.timestamp >= s.timestamp
            ),
            {{ as_of() }}
        )
    from erasure_calls s
    where s.event = '{{ suppressed_event() }}'
),

persons as (
    select user_id, erased_from, erased_through from erasures
    union all
    select m.merged_into, e.erased_from, e.erased_through
    from erasures e
    join {{ ref('int_merged_users') }} m on m.user_id = e.user_id
    where e.user_id like '%@%'
),

reached as (
    select user_id, erased_through from persons
    union all
    select m.user_id, e.erased_through
    from {{ ref('int_merged_users') }} m
    join persons e on e.user_id = m.merged_into and e.erased_from >= m.merged_at
)

select user_id, max(erased_through) as deleted_at
from reached
group by user_id
