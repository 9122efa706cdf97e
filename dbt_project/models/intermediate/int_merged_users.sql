-- Ids merged into another person at as_of (merge calls and email links: int_merge_calls). Merges join
-- ids into one person: every id connected to another by merges stamped at or before as_of, in
-- either direction and through any chain, becomes the same person, known by the primary of the
-- latest of those merges (so merging A into B, then B into A, leaves A). One row per id that is
-- not that person's own id. Small (merges and email-addressed people are rare), so rebuilt in
-- full; standard SQL only (the recursion in macros/portable/graphs.sql).
with recursive merges as (
    select
        e.user_id as primary_id,
        e.previous_id as secondary_id,
        e.timestamp as merged_at,
        e.message_id
    from {{ ref('int_merge_calls') }} e
    where e.timestamp <= {{ as_of() }}
),

edges as (
    select primary_id as user_id, secondary_id as other_id from merges
    union all
    select secondary_id, primary_id from merges
),

-- Every id each id is joined to (itself included).
{{ reachable_ids('reach', 'edges') }},

ranked as (
    select
        r.user_id,
        m.primary_id,
        row_number() over (
            partition by r.user_id order by m.merged_at desc, m.message_id desc
        ) as rank
    from reach r
    join merges m on m.primary_id = r.member_id
)

select r.user_id, r.primary_id as merged_into
from ranked r
where r.rank = 1
  and r.user_id <> r.primary_id
