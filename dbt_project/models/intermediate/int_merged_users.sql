{{ config(
    pre_hook="{{ keep_replaced_rows('user_id') }}",
    post_hook="{{ mark_new_keys('user_id') }}",
) }}
-- Ids merged into another person at as_of (merge calls and email links, int_merges). Merges join
-- ids into one person: every id connected to another by merges stamped at or before as_of, in
-- either direction and through any chain (not through an email link that has ended), becomes
-- the same person, the one made by the latest of those merges (int_merges: after A <- B, a
-- merge B <- C joins C into A; a merge B <- A then makes it B). One row per id that is not that
-- person's own id, with its precedence among the person's ids for traits. Small (merges and
-- email-addressed people are rare), so rebuilt in full; the rows it replaces are kept for
-- int_remerged_users (keep_replaced_rows, mark_new_keys). Standard SQL only (the recursion in
-- macros/portable/graphs.sql).
with recursive merges as (
    select
        primary_id, secondary_id, merged_at, merge_seq, ended_at, within_person, current_person_id
    from {{ ref('int_merges') }}
),

edges as (
    select primary_id as user_id, secondary_id as other_id, merge_seq, ended_at from merges
    union all
    select secondary_id, primary_id, merge_seq, ended_at from merges
),

-- The merges that still join at as_of (not an email link that ended).
holding_edges as (
    select user_id, other_id from edges where ended_at is null
),

-- Every id each id is joined to (itself included).
{{ reachable_ids('reach', 'holding_edges') }},

ranked as (
    select
        r.user_id,
        m.current_person_id as person_id,
        row_number() over (partition by r.user_id order by m.merge_seq desc) as rank
    from reach r
    join merges m on m.primary_id = r.member_id and m.ended_at is null
),

-- Precedence, as Customer.io's merge keeps traits: the primary's person keeps theirs and takes
-- the secondary's only where it has none, merge after merge. So each merge puts ids behind:
-- the ids the secondary was joined to then, or, for a merge within one person, every id of it
-- but the primary. Ids compare by the merges that put them behind, latest first: the later such
-- merge that put one behind and not the other decides. A key of those merges' numbers (fixed
-- width, latest first) orders them as text; the person's own id is never behind.
demoting_seeds as (
    select
        case when within_person then primary_id else secondary_id end as user_id,
        merge_seq as before_seq,
        merged_at as before_at,
        primary_id,
        within_person
    from merges
    where ended_at is null
),

{{ walk_ids(
    'demoted', 'demoting_seeds', 'edges',
    carried=['before_seq', 'before_at', 'primary_id', 'within_person'],
    edge_condition='e.merge_seq < r.before_seq and (e.ended_at is null or e.ended_at > r.before_at)'
) }},

-- An id's key: the numbers of the merges that put it behind, latest first, twelve digits each.
precedence as (
    select
        member_id as user_id,
        {{ concat_descending("lpad(cast(before_seq as " ~ text_type() ~ "), 12, '0')") }}
            as precedence
    from demoted
    where not (within_person and member_id = primary_id)
    group by member_id
)

-- An id put behind only by email links that have ended has no key: it comes with the person's own.
select r.user_id, r.person_id as merged_into, coalesce(p.precedence, '') as precedence
from ranked r
left join precedence p on p.user_id = r.user_id
where r.rank = 1
  and r.user_id <> r.person_id
