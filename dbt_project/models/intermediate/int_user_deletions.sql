-- Per user id (as carried by calls, before merges): everything stamped at or before deleted_at
-- is forgotten (calls, traits, identity links); calls stamped after it start a fresh profile
-- (as Customer.io does when a deleted person is identified again).
-- - A delete erases up to its own timestamp.
-- - A suppression deletes too and keeps the id out until it is unsuppressed: it erases up to
--   the first unsuppression stamped at or after it, or up to as_of while there is none, so that
--   calls for the id that reach the warehouse while it is suppressed never count.
-- - An erasure reaches the person as it was when it began, whatever later merges made of it:
--   every id joined to the erased one by merges stamped at or before then, when the erased id
--   was that person's own id (the person made by its latest merge, int_merges); an id merged
--   into someone else takes only what came with it (the ids merged into it then).
-- - An erasure addressed by email (an id holding '@') reaches the whole person who has that
--   email then; a suppression also reaches its owner when they identified with it later (the
--   address stays out), a delete does not (a later owner is someone else).
-- A table: five models filter by it, and it reads every erasure and merge call.
with recursive erasure_calls as (
    select e.type, e.event, e.user_id, e.timestamp
    from {{ ref('stg_events') }} e
    where {{ is_erasure_call('e') }}
      and e.user_id is not null
      and e.timestamp <= {{ as_of() }}
),

erasures as (
    select user_id, timestamp as erased_from, timestamp as erased_through, false as keeps_out
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
        ),
        true
    from erasure_calls s
    where s.event = '{{ suppressed_event() }}'
),

merges as (
    select
        primary_id as user_id,
        secondary_id as previous_id,
        merged_at as timestamp,
        merge_seq,
        is_email_link,
        ended_at,
        person_id
    from {{ ref('int_merges') }}
),

-- From a merge's primary to its secondary, and both ways. An email link joins from its start
-- up to and with the erasure that ended it.
down_edges as (
    select user_id, previous_id as other_id, timestamp as merged_at, ended_at from merges
),

both_edges as (
    select user_id, previous_id as other_id, timestamp as merged_at, ended_at, is_email_link
    from merges
    union all
    select previous_id, user_id, timestamp, ended_at, is_email_link from merges
),

-- The person each erased id was part of when the erasure began (a suppression addressed by
-- email: with the address's owner, whenever they took it).
{{ walk_ids(
    'erased_person', 'erasures', 'both_edges',
    carried=['erased_from', 'erased_through', 'keeps_out'],
    edge_condition="((e.merged_at <= r.erased_from
            and (e.ended_at is null or e.ended_at >= r.erased_from))
        or (r.keeps_out and e.is_email_link and r.member_id = r.user_id and r.user_id like '%@%'))"
) }},

-- What came with each erased id: the ids merged into it then, through any chain.
{{ walk_ids(
    'came_with', 'erasures', 'down_edges',
    carried=['erased_from', 'erased_through', 'keeps_out'],
    edge_condition='e.merged_at <= r.erased_from
        and (e.ended_at is null or e.ended_at >= r.erased_from)'
) }},

-- Whose own id each erased person's was then: the person made by its latest merge.
latest_merges as (
    select
        p.user_id,
        p.erased_from,
        p.erased_through,
        p.keeps_out,
        m.person_id,
        row_number() over (
            partition by p.user_id, p.erased_from, p.erased_through, p.keeps_out
            order by m.merge_seq desc
        ) as rank
    from erased_person p
    join merges m
      on m.user_id = p.member_id
     and m.timestamp <= p.erased_from
     and (m.ended_at is null or m.ended_at >= p.erased_from)
),

whole_persons as (
    select user_id, erased_from, erased_through, keeps_out
    from latest_merges
    where rank = 1 and (person_id = user_id or user_id like '%@%')
),

reached as (
    select p.member_id, p.erased_through
    from erased_person p
    join whole_persons w
      on w.user_id = p.user_id
     and w.erased_from = p.erased_from
     and w.erased_through = p.erased_through
     and w.keeps_out = p.keeps_out
    union all
    select member_id, erased_through from came_with
)

select member_id as user_id, max(erased_through) as deleted_at
from reached
group by member_id
