-- Every merge at as_of (merge calls and email links: int_merge_calls), in order, with the person
-- it made (person_id). Merges are read one after another, as they happened:
-- - a merge joins the secondary's person into the primary's person, who keeps their name: after
--   A <- B, a merge B <- C joins C into A (B is A's now), not into B;
-- - a merge between two ids of one person already makes the primary that person's name: after
--   A <- B, a merge B <- A leaves B.
-- So a merge's person is its primary, unless the primary was part of someone else then and the
-- secondary was not: then it is the person the primary was part of, which is the person made by
-- the latest merge among the primary's ids before it. An email link that ended (its owner was
-- erased) joins nothing after its end. The merges in order, and what stood before each, are
-- int_merge_steps. Small (merges are rare), rebuilt in full.
with recursive merges as (
    select
        merge_seq, primary_id, secondary_id, merged_at, message_id, is_email_link, ended_at,
        within_person, earlier_seq
    from {{ ref('int_merge_steps') }}
),

-- A merge that takes its person from an earlier one, and every merge as where walks start.
takes_person_from as (
    select merge_seq as user_id, earlier_seq as other_id
    from merges
    where not within_person and earlier_seq is not null
),

merge_seeds as (
    select merge_seq as user_id from merges
),

-- At as_of, an email link that has ended gives no person: the merges after it that took their
-- person from it have their own primary's instead.
takes_current_person_from as (
    select t.user_id, t.other_id
    from takes_person_from t
    join merges m on m.merge_seq = t.other_id
    where m.ended_at is null
),

{{ walk_ids('followed', 'merge_seeds', 'takes_person_from') }},

{{ walk_ids('followed_now', 'merge_seeds', 'takes_current_person_from') }},

current_persons as (
    select f.user_id as merge_seq, origin.primary_id as current_person_id
    from followed_now f
    join merges origin on origin.merge_seq = f.member_id
    where f.member_id not in (select user_id from takes_current_person_from)
)

select
    m.merge_seq,
    m.primary_id,
    m.secondary_id,
    m.merged_at,
    m.message_id,
    m.is_email_link,
    m.ended_at,
    m.within_person,
    origin.primary_id as person_id,
    c.current_person_id
from merges m
join current_persons c on c.merge_seq = m.merge_seq
join followed f on f.user_id = m.merge_seq
join merges origin on origin.merge_seq = f.member_id
where f.member_id not in (select user_id from takes_person_from)
