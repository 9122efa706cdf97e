-- depends_on: {{ ref('int_changed_anonymous_ids') }}
-- Users whose past calls this build may move, hide or bring back, so that their events and
-- traits must be recomputed from all their calls (fct_events, int_user_trait_values). Every other
-- user's only change is the calls new to this build, which those models add to what they hold.
-- A user's past calls change only when an anonymous id's link moves to or from them (a new link,
-- an earlier late link, a delete that forgets links), when a delete or suppression new to this
-- build forgets them (or an unsuppression brings calls back), when a merge changes their person,
-- or when as_of moves back (calls leave; every changed user is recomputed then, as after a build
-- that did not complete: with no watermark every call counts as new).
{%- set replaced_links = replaced_rows_relation(ref('int_identity_map')) %}
{%- set links_were_kept = existing_relation(replaced_links) is not none %}
with relinked as (
    {% if links_were_kept %}
    -- The links this build replaced, against the ones it wrote in their place.
    select p.user_id
    from {{ replaced_links }} p
    left join {{ ref('int_identity_map') }} m on m.anonymous_id = p.anonymous_id
    where m.user_id is distinct from p.user_id
    union
    select m.user_id
    from {{ ref('int_identity_map') }} m
    join {{ ref('int_changed_anonymous_ids') }} c on c.anonymous_id = m.anonymous_id
    left join {{ replaced_links }} p on p.anonymous_id = m.anonymous_id
    where p.user_id is distinct from m.user_id
    {% else %}
    -- The identity map's first build: every link is new.
    select user_id from {{ ref('int_identity_map') }}
    {% endif %}
)

select user_id from relinked
union
-- Deletes, suppressions and unsuppressions new to this build, for the id and its person.
select e.user_id
from {{ ref('int_calls') }} e
where {{ is_erasure_call('e') }} and e.user_id is not null and {{ new_since_last_build('e') }}
union
-- Ids whose person a new merge changes, and every changed person made of merged ids: their
-- traits are chosen across ids (the person's own first), which adding new calls cannot do.
select user_id from {{ ref('int_remerged_users') }}
union
select user_id
from {{ ref('int_changed_users') }}
where user_id in (select merged_into from {{ ref('int_merged_users') }})
union
select user_id
from {{ ref('int_changed_users') }}
{%- set last = last_build_watermark() %}
{%- if last is not none and last[1] is not none %}
where {{ as_of() }} < cast('{{ last[0] }}' as timestamp)
{%- endif %}
