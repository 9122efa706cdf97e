{#- Walking a graph with a recursive CTE (the query starts `with recursive`). -#}

{#- The CTE `name` (user_id, member_id): every id each id of `edges` (a relation of user_id,
    other_id, holding both directions) reaches through any chain, itself included. -#}
{% macro reachable_ids(name, edges) -%}
    {{- walk_ids(name, edges, edges) -}}
{%- endmacro %}

{#- The CTE `name` (user_id, member_id, *carried): every id each row of `seeds` (user_id,
    *carried) reaches through `edges` (user_id, other_id, both directions), itself included,
    with the row's `carried` columns. `edge_condition`, if given, is what an edge must meet to
    be walked: SQL on the walk so far (`r`, its carried columns) and the edge (`e`). -#}
{% macro walk_ids(name, seeds, edges, carried=[], edge_condition=none) -%}
    {{- adapter.dispatch('walk_ids', 'nudge')(name, seeds, edges, carried, edge_condition) -}}
{%- endmacro %}

{#- UNION, not UNION ALL: the recursion stops at the fixpoint. -#}
{% macro default__walk_ids(name, seeds, edges, carried, edge_condition) -%}
{{ name }} (user_id, member_id{% for c in carried %}, {{ c }}{% endfor %}) as (
    select user_id, user_id{% for c in carried %}, {{ c }}{% endfor %} from {{ seeds }}
    union
    select r.user_id, e.other_id{% for c in carried %}, r.{{ c }}{% endfor %}
    from {{ name }} r
    join {{ edges }} e on e.user_id = r.member_id
    {%- if edge_condition %} and {{ edge_condition }}{% endif %}
)
{%- endmacro %}

{#- Spark's recursive CTEs take UNION ALL only: each walk carries the ids it visited and stops
    before visiting one again, so the recursion ends (after the longest simple path: fine for
    merges, which are rare; exponential on a dense graph). -#}
{% macro spark__walk_ids(name, seeds, edges, carried, edge_condition) -%}
{{ name }}__walks (user_id, member_id{% for c in carried %}, {{ c }}{% endfor %}, visited) as (
    select user_id, user_id{% for c in carried %}, {{ c }}{% endfor %}, array(user_id)
    from {{ seeds }}
    union all
    select r.user_id, e.other_id{% for c in carried %}, r.{{ c }}{% endfor %},
        array_append(r.visited, e.other_id)
    from {{ name }}__walks r
    join {{ edges }} e on e.user_id = r.member_id
    where not array_contains(r.visited, e.other_id)
    {%- if edge_condition %} and {{ edge_condition }}{% endif %}
),

{{ name }} as (
    select distinct user_id, member_id{% for c in carried %}, {{ c }}{% endfor %}
    from {{ name }}__walks
)
{%- endmacro %}
