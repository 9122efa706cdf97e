{{ replace_keys_incremental('anonymous_id', 'int_changed_anonymous_ids') }}
{{ config(
    pre_hook="{{ keep_replaced_rows('anonymous_id') }}",
    post_hook="{{ mark_new_keys('anonymous_id') }}",
) }}
-- depends_on: {{ ref('int_changed_anonymous_ids') }}
-- Anonymous ids linked to a user: an identify carrying both ids, or an alias
-- (previous_id -> user_id). The earliest link at or before as_of wins; links made before the
-- user was deleted are forgotten with the user. Links name the person after merges (int_calls).
-- Incremental: only the anonymous ids in int_changed_anonymous_ids are recomputed; the rows they replace are kept for
-- int_rewritten_users, which needs the links that changed (keep_replaced_rows).
{% call first_row_per(['l.anonymous_id'], ['l.linked_at', 'l.message_id']) %}
select l.anonymous_id, l.user_id, l.linked_at
from {{ ref('int_identity_links') }} l
left join {{ ref('int_user_deletions') }} d on d.user_id = l.source_user_id
where l.linked_at <= {{ as_of() }}
  and l.anonymous_id <> l.user_id
  and (d.deleted_at is null or l.linked_at > d.deleted_at)
  {% if is_incremental() %}
  and l.anonymous_id in (select anonymous_id from {{ ref('int_changed_anonymous_ids') }})
  {% endif %}
{% endcall %}
