-- depends_on: {{ ref('fct_segment_memberships') }}
-- The segment contract, for every model tagged `segment` (YAML-generated, manual or hand-written
-- SQL, wherever it lives): one row per member, user_id never null. Fails with a row per offending
-- segment and id. (A missing user_id column stops the union first: see segment_union.)
-- A segment built incrementally is checked only for the users its build wrote (the increment it
-- keeps): the rows of the other users were checked by the builds that wrote them.
{%- set checks = [] %}
{%- for node in segment_nodes() %}
    {%- set added = existing_relation(increment_relation(node_relation(node)))
        if node.config.materialized == 'incremental' else none %}
    {%- do checks.append(
        "select '" ~ node.name ~ "' as segment, cast(user_id as " ~ text_type() ~ ") as user_id, "
        ~ "case when user_id is null then 'user_id is null' else 'user_id is not unique' end "
        ~ "as problem, count(*) as rows from " ~ node.relation_name
        ~ (" where user_id is null or user_id in (select user_id from " ~ added ~ ")"
           if added is not none else "")
        ~ " group by user_id having user_id is null or count(*) > 1"
    ) %}
{%- endfor %}
{%- if checks %}
{{ checks | join('\nunion all\n') }}
{%- else %}
select
    cast(null as {{ text_type() }}) as segment,
    cast(null as {{ text_type() }}) as user_id,
    cast(null as {{ text_type() }}) as problem,
    0 as rows
where false
{%- endif %}
