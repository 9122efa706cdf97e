-- Email addresses suppressed at as_of: a suppression addressed by email (a user id holding '@')
-- with no unsuppression of the address stamped at or after it (case ignored). What the senders
-- read to never send to such an address, whoever has it now (senders.policy). A table, so that a
-- step outside dbt can read it; small (one row per suppressed address).
with calls as (
    select lower(e.user_id) as email, e.event, e.timestamp
    from {{ ref('stg_events') }} e
    where {{ is_erasure_call('e') }}
      and e.type = 'track'
      and e.user_id like '%@%'
      and e.timestamp <= {{ as_of() }}
),

latest as (
    {% call first_row_per(['c.email'], ['c.timestamp desc', "c.event = '" ~ unsuppressed_event() ~ "' desc"]) %}
    select c.email, c.event from calls c
    {% endcall %}
)

select email
from latest
where event = '{{ suppressed_event() }}'
