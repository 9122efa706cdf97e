{#- A lean `table` materialization for DuckDB, taking precedence over dbt-duckdb's own.

    dbt-duckdb's builds into a temporary table, looks up indexes and foreign keys, renames twice
    and drops the backup: several catalog queries and statements per model, which dominate a
    build at this project's size (every scenario step and scheduled tick is a build). DuckDB's
    `create or replace table` inside the model's transaction is just as atomic. Hooks still run;
    grants, indexes and foreign keys are not supported here (nothing in nudge uses them). -#}
{% materialization table, adapter="duckdb", supported_languages=["sql"] %}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type="table") -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {% do replace_table_as(existing_relation, target_relation, compiled_code) %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({"relations": [target_relation]}) }}
{% endmaterialization %}

{#- The whole build of a lean table (and of a first or full-refresh incremental build): drop a
    view of the same name, then one `create or replace table ... as` as the "main" statement. -#}
{% macro replace_table_as(existing_relation, target_relation, sql) %}
  {% if existing_relation is not none and not existing_relation.is_table %}
    {{ adapter.drop_relation(existing_relation) }}
  {% endif %}
  {% call statement("main") -%}
    create or replace table {{ target_relation }} as (
      {{ sql }}
    )
  {%- endcall %}
{% endmacro %}
