-- Every merge at as_of (merge calls and email links: int_merge_calls), numbered in the order
-- they happened, with what stood before it: whether its secondary was part of its primary's
-- person already (within_person), and the latest merge among the primary's ids before it
-- (earlier_seq), not counting email links that had ended by then. int_merges follows these to
-- the person each merge made. A table of its own: int_merges walks it (Spark recomputes what a
-- recursion reads at each level). Small (merges are rare), rebuilt in full.
with recursive merges as (
    select
        m.user_id as primary_id,
        m.previous_id as secondary_id,
        m.timestamp as merged_at,
        m.message_id,
        m.is_email_link,
        m.ended_at,
        row_number() over (
            order by m.timestamp, m.message_id, m.user_id, m.previous_id
        ) as merge_seq
    from (
        select distinct user_id, previous_id, timestamp, message_id, is_email_link, ended_at
        from {{ ref('int_merge_calls') }}
        where timestamp <= {{ as_of() }}
    ) m
),

edges as (
    select primary_id as user_id, secondary_id as other_id, merge_seq, ended_at from merges
    union all
    select secondary_id, primary_id, merge_seq, ended_at from merges
),

primaries as (
    select primary_id as user_id, merge_seq as before_seq, merged_at as before_at from merges
),

-- The ids joined to each merge's primary by the merges before it (an email link that had ended
-- by then no longer joins).
{{ walk_ids(
    'joined_before', 'primaries', 'edges',
    carried=['before_seq', 'before_at'],
    edge_condition='e.merge_seq < r.before_seq and (e.ended_at is null or e.ended_at > r.before_at)'
) }},

-- Per merge: whether its secondary was the primary's already, and the latest merge among the
-- primary's ids before it.
steps as (
    select
        m.merge_seq,
        max(case when j.member_id = m.secondary_id then 1 else 0 end) as rejoins,
        max(earlier.merge_seq) as earlier_seq
    from merges m
    join joined_before j on j.before_seq = m.merge_seq
    left join merges earlier
      on earlier.primary_id = j.member_id
     and earlier.merge_seq < m.merge_seq
     and (earlier.ended_at is null or earlier.ended_at > m.merged_at)
    group by m.merge_seq
)

select
    m.merge_seq,
    m.primary_id,
    m.secondary_id,
    m.merged_at,
    m.message_id,
    m.is_email_link,
    m.ended_at,
    s.rejoins = 1 as within_person,
    s.earlier_seq
from merges m
join steps s on s.merge_seq = m.merge_seq
