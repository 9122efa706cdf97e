-- Every merge of one id into another person, as merge calls: `user_id` the primary, `previous_id`
-- the secondary, with the timestamp and loaded_at that date it (new_since_last_build reads them),
-- whether it is an email link (below) rather than a merge call, and when an email link ended.
-- - Merge calls (is_merge_call): Customer.io merge_customers.
-- - Email links: an id holding '@' is an email address (what a Track API call addressed by email
--   lands as). It joins the person who has that email: the id (without '@') whose identify first
--   set the email trait to it (case ignored), dated by that identify. A person keyed by an email
--   nobody has stays a person of its own until someone identifies with it, then joins them, as
--   Customer.io does when an id is given to a person known by email. The first owner wins, so
--   one email never joins two people together. A delete or suppression of the owner (or of the
--   address, or of an id the owner was merged into by merge calls before it) forgets the
--   identify that made them the owner: the link ends then (ended_at; kept so that the erasure
--   still reaches the address's earlier calls), and the next earliest identify with the
--   address not erased takes it over from that moment, if there is one.
-- - Email case links: an address is one id in any case. While nobody has it, its spellings
--   (`Ann@X.com`, `ann@x.com`) join the first one seen, dated by each one's first call (or by
--   the erasure of its last owner); once someone has it, they join that person instead.
-- A table, not ephemeral: the recursive walks of int_merges read it at every step (Spark
-- recomputes what a recursion reads at each level), and int_remerged_users reads it too.
with recursive email_ids as (
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

-- Every identify that set an address some call was addressed by.
address_identifies as (
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
      and lower({{ json_text('e.traits', 'email') }}) in (select email from email_ids)
),

erasures as (
    select
        e.type,
        e.user_id,
        lower(e.user_id) as lowered,
        {{ erased_key('e.user_id') }} as erased_key,
        e.timestamp,
        e.loaded_at
    from {{ ref('stg_events') }} e
    where (e.type = 'delete'
           or (e.type = 'track' and e.event = '{{ suppressed_event() }}'))
      and e.user_id is not null
      and e.timestamp <= {{ as_of() }}
),

unsuppressions as (
    select
        {{ erased_key('e.user_id') }} as erased_key,
        e.timestamp
    from {{ ref('stg_events') }} e
    where e.type = 'track'
      and e.event = '{{ unsuppressed_event() }}'
      and e.user_id is not null
      and e.timestamp <= {{ as_of() }}
),

-- Each erasure with the last instant it erases (int_user_deletions): a delete its own; a
-- suppression (keeps_out) the first unsuppression of its id at or after it (an address in any
-- case), or as_of while there is none.
erasure_seeds as (
    select
        x.user_id,
        x.timestamp as erased_at,
        x.loaded_at as erased_loaded_at,
        case when x.type = 'delete' then x.timestamp
             else coalesce(min(u.timestamp), {{ as_of() }}) end as erased_through,
        x.type <> 'delete' as keeps_out
    from erasures x
    left join unsuppressions u
      on x.type <> 'delete'
     and u.erased_key = x.erased_key
     and u.timestamp >= x.timestamp
    group by x.user_id, x.timestamp, x.loaded_at, x.type
),

-- From a merge call's primary to its secondary.
merge_call_edges as (
    select e.user_id, e.previous_id as other_id, e.timestamp as merged_at
    from {{ ref('stg_events') }} e
    where {{ is_merge_call('e') }}
),

-- Each erased id with what came with it: the ids merged into it by merge calls before the
-- erasure, through any chain (all erased with it, int_user_deletions). Email links are not
-- walked: they are what this model makes.
{{ walk_ids(
    'erased_ids', 'erasure_seeds', 'merge_call_edges',
    carried=['erased_at', 'erased_loaded_at', 'erased_through', 'keeps_out'],
    edge_condition='e.merged_at <= r.erased_at'
) }},

-- The first erasure after each of them of its sender (or of an id it came with, above) or of
-- the address (a delete or a suppression): that erasure forgets it; a suppression of its
-- sender (or of an id it came with) in force when it was made voids it. Equi-joins, not one
-- join on an `or`.
identify_ends as (
    {% call first_row_per(['x.message_id'], ['x.ended_at']) %}
    select x.message_id, x.ended_at, x.ended_loaded_at
    from (
        select a.message_id, x.erased_at as ended_at, x.erased_loaded_at as ended_loaded_at
        from address_identifies a
        join erased_ids x on x.member_id = a.user_id and x.erased_at >= a.timestamp
        union all
        select a.message_id, x.timestamp, x.loaded_at
        from address_identifies a
        join erasures x on x.lowered = a.email and x.timestamp >= a.timestamp
        union all
        -- An identify made while its sender is suppressed (or an id it came with) is erased with
        -- them: it never counts.
        select a.message_id, a.timestamp, x.erased_loaded_at
        from address_identifies a
        join erased_ids x
          on x.member_id = a.user_id
         and x.keeps_out
         and x.erased_at <= a.timestamp
         and x.erased_through >= a.timestamp
    ) x
    {% endcall %}
),

-- A claim: a person's first identify with an address among those one erasure ends (or none
-- does), so that an app identifying on every visit makes one claim, not one per visit.
claims as (
    {% call first_row_per(['a.email', 'a.user_id', 'x.ended_at'], ['a.timestamp', 'a.message_id']) %}
    select a.email, a.user_id, a.timestamp, a.message_id, a.loaded_at, x.ended_at,
        x.ended_loaded_at
    from address_identifies a
    left join identify_ends x on x.message_id = a.message_id
    {% endcall %}
),

-- Each claim against the claims made before it: an earlier claim never erased keeps the address;
-- one erased later holds it until then.
claims_before as (
    select
        c.email,
        c.user_id,
        c.timestamp,
        c.message_id,
        c.loaded_at,
        c.ended_at,
        c.ended_loaded_at,
        max(case when k.message_id is not null and k.ended_at is null then 1 else 0 end)
            as kept_by_earlier,
        max(k.ended_at) as free_from,
        max(k.ended_loaded_at) as freed_loaded_at
    from claims c
    left join claims k
      on k.email = c.email
     and (k.timestamp < c.timestamp or (k.timestamp = c.timestamp and k.message_id < c.message_id))
    group by c.email, c.user_id, c.timestamp, c.message_id, c.loaded_at, c.ended_at,
        c.ended_loaded_at
),

-- Who has each address, from when until when: the earliest claim not erased, from the moment
-- every earlier one is; one erased before that never has it.
owners as (
    select
        email,
        user_id,
        greatest(timestamp, coalesce(free_from, timestamp)) as owned_from,
        message_id,
        greatest(loaded_at, coalesce(freed_loaded_at, loaded_at),
                 coalesce(ended_loaded_at, loaded_at)) as loaded_at,
        ended_at
    from claims_before
    where kept_by_earlier = 0
      and (ended_at is null or greatest(timestamp, coalesce(free_from, timestamp)) < ended_at)
)

select
    e.user_id, e.previous_id, e.timestamp, e.message_id, e.loaded_at, false as is_email_link,
    cast(null as timestamp) as ended_at
from {{ ref('stg_events') }} e
where {{ is_merge_call('e') }}
union all
select
    o.user_id, i.email_id as previous_id, o.owned_from, o.message_id, o.loaded_at,
    true as is_email_link, o.ended_at
from owners o
join email_ids i on i.email = o.email
union all
-- Dated by the later spelling's first call (or, for an address whose owners were all erased,
-- the last erasure), loaded when the latest of those was: a late call that comes first changes
-- every link of the address, so that each counts as new.
select
    f.email_id, i.email_id as previous_id,
    greatest(i.timestamp, coalesce(o.ended_at, i.timestamp)),
    i.message_id,
    greatest(i.loaded_at, f.loaded_at, coalesce(o.loaded_at, i.loaded_at)) as loaded_at,
    true as is_email_link,
    cast(null as timestamp) as ended_at
from email_ids i
join first_spellings f on f.email = i.email
left join (
    select email, max(ended_at) as ended_at, max(loaded_at) as loaded_at
    from owners
    group by email
) o on o.email = i.email
where i.email_id <> f.email_id
  and i.email not in (select email from owners where ended_at is null)
