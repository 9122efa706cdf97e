{{ config(materialized='ephemeral') }}
-- Ids whose person may differ from the last build: both ids of a merge new to this build (a
-- merge call or an email link, int_merge_calls; see new_since_last_build), every id whose
-- person this build changed with the person it had and the one it has (a late identify that
-- sets an email first moves the address to another owner, who takes its calls from the
-- former one), and every id now joined to any of them. Merges only join ids, so the ids joined
-- before this build are among them; when as_of moves back and a merge no longer counts, its two
-- ids reach every piece the person was split into.
{%- set replaced = replaced_rows_relation(ref('int_merged_users')) %}
with new_merges as (
    select e.user_id, e.previous_id
    from {{ ref('int_merge_calls') }} e
    where {{ new_since_last_build('e') }}
),

{% if existing_relation(replaced) is not none %}
-- The last build's int_merged_users against this one's.
moved as (
    select
        coalesce(b.user_id, a.user_id) as user_id,
        b.merged_into as person_before,
        a.merged_into as person_after
    from {{ replaced }} b
    full outer join {{ ref('int_merged_users') }} a on a.user_id = b.user_id
    where b.merged_into is distinct from a.merged_into
),
{% else %}
-- The first build of int_merged_users: the new merges are every merge.
moved as (
    select
        cast(null as {{ text_type() }}) as user_id,
        cast(null as {{ text_type() }}) as person_before,
        cast(null as {{ text_type() }}) as person_after
    where false
),
{% endif %}

ends as (
    select user_id from new_merges
    union
    select previous_id from new_merges
    union
    select user_id from moved
    union
    select person_before from moved where person_before is not null
    union
    select person_after from moved where person_after is not null
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
