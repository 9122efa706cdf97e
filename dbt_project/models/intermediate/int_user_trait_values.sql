{{ replace_keys_incremental('user_id', 'int_rewritten_users', replace_computed_keys=true) }}
-- depends_on: {{ ref('int_rewritten_users') }}
-- Each identify sets the traits it carries at its timestamp; per (user, trait) the latest
-- assignment at or before as_of wins (ties: latest received, then message id). For a person made
-- of merged ids, an id's traits count only where the ids before it have none (the person's own
-- id first, then by int_merged_users.precedence: merge after merge, the primary's side before
-- the secondary's); such persons are always recomputed in full. Identifies from
-- before the user's deletion do not count. A trait whose latest assignment is null is unset: its
-- row keeps the JSON null (readers skip it), so that a later build can tell whether an older
-- identify arriving late sets it or not. Incremental: the identifies new to this build are merged
-- into what the previous build held for their users, and the users in int_rewritten_users are
-- recomputed from all their identifies.
with identifies as {{ materialized_cte() }} (
    -- Materialized so that the incremental filter runs before json_each expands the traits.
    {% call new_or_rewritten_calls() %}
    select
        e.user_id, e.traits, e.timestamp, e.received_at, e.message_id,
        coalesce(m.precedence, '') as precedence
    from {{ ref('int_calls') }} e
    left join {{ ref('int_user_deletions') }} d on d.user_id = e.source_user_id
    left join {{ ref('int_merged_users') }} m on m.user_id = e.source_user_id
    where e.type = 'identify'
      and e.user_id is not null
      and e.traits is not null
      and e.timestamp <= {{ as_of() }}
      and (d.deleted_at is null or e.timestamp > d.deleted_at)
    {% endcall %}
),

assignments as (
    select
        e.user_id,
        t.key as trait,
        t.value as value,
        e.timestamp as set_at,
        e.received_at,
        e.message_id,
        cast(null as timestamp) as stored_timestamp,
        false as stored,
        e.precedence
    from identifies e
    cross join {{ json_entries('e.traits') }} t
    {% if is_incremental() %}
    union all
    -- The latest assignments the previous build found, for the other users with new identifies.
    select
        {{ stored_columns(["user_id", "trait", "value", "set_at", "received_at", "message_id",
                           "value_timestamp"]) }},
        true,
        ''
    from {{ this }}
    where user_id in (select user_id from identifies)
      and user_id not in (select user_id from {{ ref('int_rewritten_users') }})
    {% endif %}
),

latest as (
    {% call first_row_per(['user_id', 'trait'], ['precedence', 'set_at desc', 'received_at desc', 'message_id desc']) %}
    select
        user_id, trait, {{ as_json('value') }} as value, set_at, received_at, message_id,
        stored_timestamp, stored
    from assignments
    {% endcall %}
)

-- value_timestamp: the value read as a timestamp the way segment conditions read it, so that an
-- incremental build finds whose time-relative conditions flip without parsing every user's value.
-- Parsed once per assignment: a stored row keeps its parse.
select
    user_id, trait, value, set_at, received_at, message_id,
    case when stored then stored_timestamp else {{ trait_timestamp('value') }} end
        as value_timestamp
from latest
