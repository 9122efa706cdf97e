{{ per_user_incremental() }}
-- depends_on: {{ ref('int_changed_users') }}
-- depends_on: {{ ref('int_rewritten_users') }}
-- One row per known, non-deleted user at as_of. `traits` is the JSON object of every current
-- trait (what segment conditions read); the typed columns are conveniences for senders and
-- analysts (`created_at`: the trait read as a timestamp by the segment compiler's rule).
-- Incremental: only the users in int_changed_users are recomputed. Their first and last event come from the events fct_events
-- added in this build, widened by what the previous build held (a user's span only grows unless
-- their past calls moved: the users in int_rewritten_users, whose events the build re-added in
-- full), so that the build does not scan every event.
{#- Only when incremental: a unit test's long name plus the suffix exceeds Postgres's 63 characters. #}
{%- set new_events = increment_relation(ref('fct_events')) if is_incremental() else none %}
{%- set merge_new_events = is_incremental() and existing_relation(new_events) is not none %}
with traits as (
    select
        user_id,
        {{ json_object_agg('trait', 'value') }} as traits,
        max(value_timestamp) filter (where trait = 'created_at') as created_at
    from {{ ref('int_user_trait_values') }}
    where not {{ json_is_null('value') }}  -- unset
    {% if is_incremental() %}
      and user_id in (select user_id from {{ ref('int_changed_users') }})
    {% endif %}
    group by user_id
),

seen as (
    select user_id, min(timestamp) as first_event_at, max(timestamp) as last_event_at
    from {{ new_events if merge_new_events else ref('fct_events') }}
    {% if is_incremental() %}
    where user_id in (select user_id from {{ ref('int_changed_users') }})
    {% endif %}
    group by user_id
),

{% if merge_new_events %}
previous as (
    select {{ stored_columns(["user_id", "first_seen_at", "last_seen_at"]) }}
    from {{ this }}
    where user_id in (select user_id from {{ ref('int_changed_users') }})
      and user_id not in (select user_id from {{ ref('int_rewritten_users') }})
),
{% endif %}

users as (
    select
        k.user_id,
        coalesce(t.traits, {{ empty_json_object() }}) as traits,
        t.created_at,
        least(
            k.first_call_at, s.first_event_at{% if merge_new_events %}, p.first_seen_at{% endif %}
        ) as first_seen_at,
        greatest(
            k.last_call_at, s.last_event_at{% if merge_new_events %}, p.last_seen_at{% endif %}
        ) as last_seen_at
    from {{ ref('int_known_users') }} k
    left join traits t on t.user_id = k.user_id
    left join seen s on s.user_id = k.user_id
    {% if merge_new_events %}
    left join previous p on p.user_id = k.user_id
    {% endif %}
    {% if is_incremental() %}
    where k.user_id in (select user_id from {{ ref('int_changed_users') }})
    {% endif %}
)

select
    user_id,
    traits,
    {{ json_text('traits', 'email') }} as email,
    {{ json_text('traits', 'first_name') }} as first_name,
    {{ json_text('traits', 'plan') }} as plan,
    {{ json_text('traits', 'timezone') }} as timezone,
    {{ json_text('traits', 'country') }} as country,
    created_at,
    {{ json_text('traits', 'phone') }} as phone,
    {{ trait_is_yes(json_value('traits', 'unsubscribed')) }} as unsubscribed,
    first_seen_at,
    last_seen_at
from users
