{#- Walking a graph with a recursive CTE (the query starts `with recursive`). -#}

{#- The CTE `name` (user_id, member_id): every id each id of `edges` (a relation of user_id,
    other_id, holding both directions) reaches through any chain, itself included. -#}
{% macro reachable_ids(name, edges) -%}
    {{- adapter.dispatch('reachable_ids', 'nudge')(name, edges) -}}
{%- endmacro %}

{#- UNION, not UNION ALL: the recursion stops at the fixpoint. -#}
{% macro default__reachable_ids(name, edges) -%}
{{ name }} (user_id, member_id) as (
    select user_id, user_id from {{ edges }}
    union
    select r.user_id, e.other_id
    from {{ name }} r
    join {{ edges }} e on e.user_id = r.member_id
)
{%- endmacro %}

{#- Spark's recursive CTEs take UNION ALL only: each walk carries the ids it visited and stops
    before visiting one again, so the recursion ends (after the longest simple path: fine for
    merges, which are rare; exponential on a dense graph). -#}
{% macro spark__reachable_ids(name, edges) -%}
{{ name }}__walks (user_id, member_id, visited) as (
    select user_id, user_id, array(user_id) from {{ edges }}
    union all
    select r.user_id, e.other_id, array_append(r.visited, e.other_id)
    from {{ name }}__walks r
    join {{ edges }} e on e.user_id = r.member_id
    where not array_contains(r.visited, e.other_id)
),

{{ name }} as (
    select distinct user_id, member_id from {{ name }}__walks
)
{%- endmacro %}
