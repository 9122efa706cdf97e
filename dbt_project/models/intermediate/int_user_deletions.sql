-- Per user id (as carried by calls, before merges): everything stamped at or before deleted_at
-- is forgotten (calls, traits, identity links); calls stamped after it start a fresh profile
-- (as Customer.io does when a deleted person is identified again).
-- - A delete erases up to its own timestamp.
-- - A suppression deletes too and keeps the id out until it is unsuppressed: it erases up to
--   the first unsuppression stamped at or after it, or up to as_of while there is none, so that
--   calls for the id that reach the warehouse while it is suppressed never count.
-- - An erasure of an id reaches the ids merged into it (through any chain) by merges stamped at
--   or before the erasure began: the person as it was then, whatever later merges made of it.
--   An id merged into someone else before its erasure takes only what came with it.
-- - An erasure addressed by email (an id holding '@') reaches the person who has that email:
--   its owner (int_merge_calls), also when the owner identified with it later, or the person
--   the owner was merged into when the erasure began.
-- A table: five models filter by it, and it reads every erasure and merge call.
with recursive erasure_calls as (
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

merges as (
    select user_id, previous_id, timestamp, is_email_link
    from {{ ref('int_merge_calls') }}
    where timestamp <= {{ as_of() }}
),

-- From a merge's primary to its secondary, and back.
down_edges as (
    select user_id, previous_id as other_id, timestamp as merged_at from merges
),

up_edges as (
    select previous_id as user_id, user_id as other_id, timestamp as merged_at, is_email_link
    from merges
),

email_erasures as (
    select user_id, erased_from, erased_through from erasures where user_id like '%@%'
),

-- An erasure addressed by email: the email's owner (whenever they took it), then the person the
-- owner was part of when the erasure began.
{{ walk_ids(
    'owners', 'email_erasures', 'up_edges',
    carried=['erased_from', 'erased_through'],
    edge_condition="(e.merged_at <= r.erased_from or (e.is_email_link and r.member_id = r.user_id))"
) }},

-- Each erased person, and every id merged into them at or before the erasure began (a delete
-- of an id that was merged into someone else erases only what came with it).
erased_persons as (
    select user_id, erased_from, erased_through from erasures
    union all
    select member_id, erased_from, erased_through from owners
),

{{ walk_ids(
    'reached', 'erased_persons', 'down_edges',
    carried=['erased_from', 'erased_through'],
    edge_condition='e.merged_at <= r.erased_from'
) }}

select member_id as user_id, max(erased_through) as deleted_at
from reached
group by member_id
