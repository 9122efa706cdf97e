{#- The (segment, user_id) pairs a build may have changed: what the membership history diff
    compares (fct_segment_membership_history). -#}

{#- Which (segment, user_id) pairs a build may have changed. `redefined` names the segments whose
    definition is new in this build. A segment recomputed per user (a segment_incremental model,
    not redefined, no redefined segment upstream) can only have changed for the users its build
    recomputed: int_changed_users, or the table a segment that moves with time recorded (one
    that is missing means it was rebuilt for everyone). Any other segment, any segment no
    longer defined, and every segment of a --full-refresh build (which rebuilds them for
    everyone, perhaps with a model an upgrade changed) may have changed for everyone. For simplicity the per-user segments share
    one user set, the union of what they recomputed (`scope_users`). Returns
    {defined, whole, per_user: segment names; changes: relations}. -#}
{% macro segment_scope(redefined) -%}
    {%- set recorded = recorded_segment_changes() -%}
    {%- set scope = {'defined': [], 'whole': [], 'per_user': [],
                     'changes': [ref('int_changed_users')]} -%}
    {%- for node in segment_nodes() -%}
        {%- do scope.defined.append(node.name) -%}
        {%- set own = node.config.get('rebuild_on_new_definition')
                      and not node.config.get('changed_keys') -%}
        {%- set own_changes = segment_changes_relation(node_relation(node)) if own else none -%}
        {%- if not flags.FULL_REFRESH and _recomputed_per_user(node, redefined)
              and (not own or (own_changes.schema ~ '.' ~ own_changes.identifier) | lower in recorded) -%}
            {%- do scope.per_user.append(node.name) -%}
            {%- if own -%}
                {%- do scope.changes.append(own_changes) -%}
            {%- endif -%}
        {%- else -%}
            {%- do scope.whole.append(node.name) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(scope) -}}
{%- endmacro %}

{#- The users the per-user segments of `scope` recomputed, as a query of `user_id`. -#}
{% macro scope_users(scope) -%}
    {%- for relation in scope.changes %}
    select user_id from {{ relation }}{% if not loop.last %} union{% endif %}
    {%- endfor %}
{%- endmacro %}

{#- `scope` (segment_scope) as a SQL predicate over unqualified `segment` and `user_id` columns;
    `users` is a relation holding the scope's users (scope_users), computed once by the caller. -#}
{% macro membership_scope(scope, users) -%}
    (segment not in ({{ _sql_names(scope.defined) }})
     or segment in ({{ _sql_names(scope.whole) }})
     or (segment in ({{ _sql_names(scope.per_user) }})
         and user_id in (select user_id from {{ users }})))
{%- endmacro %}

{#- `schema.table` (lower case) of every table whose name ends in `nudge_changed` (the
    `__nudge_changed` records among them). -#}
{% macro recorded_segment_changes() -%}
    {{- return(tables_ending_with('nudge_changed')) -}}
{%- endmacro %}

{% macro _recomputed_per_user(node, redefined) -%}
    {%- for segment in [node] + segment_ancestors(node) -%}
        {%- if segment.name in redefined or segment.config.materialized != 'incremental'
              or not segment.config.get('rebuild_on_new_definition') -%}
            {{- return(false) -}}
        {%- endif -%}
    {%- endfor -%}
    {{- return(true) -}}
{%- endmacro %}

{#- A SQL list of string literals (segment names match [a-z][a-z0-9_]*); never empty. An empty
    list is '', which no segment is called: `null` made `segment not in (null)` NULL, so with no
    segment left no interval closed. -#}
{% macro _sql_names(names) -%}
    {%- if names -%}'{{ names | join("', '") }}'{%- else -%}''{%- endif -%}
{%- endmacro %}
