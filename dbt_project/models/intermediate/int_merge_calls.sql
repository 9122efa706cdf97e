{{ config(materialized='ephemeral') }}
-- Every merge of one id into another person, as merge calls: `user_id` the primary, `previous_id`
-- the secondary, with the timestamp and loaded_at that date it (new_since_last_build reads them),
-- and whether it is an email link (below) rather than a merge call.
-- - Merge calls (is_merge_call): Customer.io merge_customers.
-- - Email links: an id holding '@' is an email address (what a Track API call addressed by email
--   lands as). It joins the person who has that email: the id (without '@') whose identify first
--   set the email trait to it (case ignored), dated by that identify. A person keyed by an email
--   nobody has stays a person of its own until someone identifies with it, then joins them, as
--   Customer.io does when an id is given to a person known by email. The first owner wins, so
--   one email never joins two people together.
-- - Email case links: an address is one id in any case. While nobody has it, its spellings
--   (`Ann@X.com`, `ann@x.com`) join the first one seen, dated by each one's first call; once
--   someone has it, they join that person instead.
with email_ids as (
    -- Each spelling of an address, with its first call.
    {% call first_row_per(['e.user_id'], ['e.timestamp', 'e.message_id']) %}
    select
        e.user_id as email_id, lower(e.user_id) as email, e.timestamp, e.message_id, e.loaded_at
    from {{ ref('stg_events') }} e
    where e.user_id like '%@%' and e.timestamp <= {{ as_of() }}
    {% endcall %}
),

first_spellings as (
    {% call first_row_per(['i.email'], ['i.timestamp', 'i.message_id', 'i.email_id']) %}
    select i.email, i.email_id, i.loaded_at from email_ids i
    {% endcall %}
),

owners as (
    {% call first_row_per(['o.email'], ['o.timestamp', 'o.message_id']) %}
    select o.*
    from (
        select
            lower({{ json_text('e.traits', 'email') }}) as email,
            e.user_id,
            e.timestamp,
            e.message_id,
            e.loaded_at
        from {{ ref('stg_events') }} e
        where e.type = 'identify'
          and e.user_id not like '%@%'
          and e.timestamp <= {{ as_of() }}
    ) o
    where o.email in (select email from email_ids)
    {% endcall %}
)

select e.user_id, e.previous_id, e.timestamp, e.message_id, e.loaded_at, false as is_email_link
from {{ ref('stg_events') }} e
where {{ is_merge_call('e') }}
union all
select
    o.user_id, i.email_id as previous_id, o.timestamp, o.message_id, o.loaded_at,
    true as is_email_link
from owners o
join email_ids i on i.email = o.email
union all
-- Dated by the later spelling's first call, loaded when the later of the two first calls was:
-- a late call that comes first changes every link of the address, so that each counts as new.
select
    f.email_id, i.email_id as previous_id, i.timestamp, i.message_id,
    greatest(i.loaded_at, f.loaded_at) as loaded_at,
    true as is_email_link
from email_ids i
join first_spellings f on f.email = i.email
where i.email_id <> f.email_id
  and i.email not in (select email from owners)
