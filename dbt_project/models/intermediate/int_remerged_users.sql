{{ config(materialized='ephemeral') }}
-- Ids whose person may differ from the last build because of a merge new to this build (a merge
-- call or an email link, int_merge_calls; see new_since_last_build): both ids of the merge and
-- every id now joined to either. Merges only join ids, so the ids joined before this build are
-- among them; when as_of moves back and a merge no longer counts, its two ids reach every piece
-- the person was split into.
with new_merges as (
    select e.user_id, e.previous_id
    from {{ ref('int_merge_calls') }} e
    where {{ new_since_last_build('e') }}
),

ends as (
    select user_id from new_merges
    union
    select previous_id from new_merges
),

persons as (
    select coalesce(m.merged_into, x.user_id) as person_id
    from ends x
    left join {{ ref('int_merged_users') }} m on m.user_id = x.user_id
)

select user_id from ends
union
select person_id from persons
union
select m.user_id
from {{ ref('int_merged_users') }} m
join persons p on p.person_id = m.merged_into
