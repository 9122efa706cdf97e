{{ per_user_incremental() }}
-- depends_on: {{ ref('int_changed_users') }}
-- Each identify sets the traits it carries at its timestamp; per (user, trait) the latest value
-- at or before as_of wins (ties: latest received, then message id). A trait whose latest value is
-- null is unset and has no row. Identifies from before the user's deletion do not count.
-- Incremental: only the users in int_changed_users are recomputed.
with identifies as materialized (
    -- Materialized so that the incremental filter runs before json_each expands the traits.
    select e.user_id, e.traits, e.timestamp, e.received_at, e.message_id
    from {{ ref('stg_events') }} e
    left join {{ ref('int_user_deletions') }} d on d.user_id = e.user_id
    where e.type = 'identify'
      and e.user_id is not null
      and e.traits is not null
      and e.timestamp <= {{ as_of() }}
      and (d.deleted_at is null or e.timestamp > d.deleted_at)
      {% if is_incremental() %}
      and e.user_id in (select user_id from {{ ref('int_changed_users') }})
      {% endif %}
),

assignments as (
    select
        e.user_id,
        t.key as trait,
        t.value as value,
        e.timestamp as set_at,
        e.received_at,
        e.message_id
    from identifies e
    cross join json_each(e.traits) t
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
