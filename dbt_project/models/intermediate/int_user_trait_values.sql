-- Each identify sets the traits it carries at its timestamp; per (user, trait) the latest value
-- at or before as_of wins (ties: latest received, then message id). A trait whose latest value is
-- null is unset and has no row. Identifies from before the user's deletion do not count.
with assignments as (
    select
        e.user_id,
        t.key as trait,
        t.value as value,
        e.timestamp as set_at,
        e.received_at,
        e.message_id
    from {{ ref('stg_events') }} e
    cross join json_each(e.traits) t
    left join {{ ref('int_user_deletions') }} d on d.user_id = e.user_id
    where e.type = 'identify'
      and e.user_id is not null
      and e.traits is not null
      and e.timestamp <= {{ as_of() }}
      and (d.deleted_at is null or e.timestamp > d.deleted_at)
),

latest as (
    select *
    from assignments
    qualify row_number() over (
        partition by user_id, trait
        order by set_at desc, received_at desc, message_id desc
    ) = 1
)

select user_id, trait, cast(value as json) as value, set_at
from latest
where json_type(value) <> 'NULL'
