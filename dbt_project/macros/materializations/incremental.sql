{#- A lean `incremental` materialization for DuckDB, taking precedence over dbt-duckdb's own.

    Most of nudge's models are incremental and every run builds them all, so per-model overhead
    counts several times per run. dbt-duckdb's version looks up intermediate and backup
    relations, widens column types, compares schemas and persists docs: a handful of catalog
    queries per model. This one does what nudge's models need: a first build (or a view, or
    --full-refresh) is one `create or replace table ... as`; an incremental build stages the
    model's rows in a scratch table and applies the configured strategy (append, delete+insert,
    or the project's replace_keys) with the adapter's own strategy macros, in the model's
    transaction. A model whose columns changed since its table was built is refused, naming
    both column lists and the --full-refresh build that fixes it. -#}
{% materialization incremental, adapter="duckdb", supported_languages=["sql"] %}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type="table") -%}
  {%- set full_build = existing_relation is none or not existing_relation.is_table
                       or should_full_refresh() -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {#- With `keep_increment`, the staged rows stay until the next build (increment_relation):
      what a model downstream merges instead of reading the whole table. -#}
  {%- set keep_increment = config.get("keep_increment") -%}
  {%- set staged = increment_relation(this) -%}
  {% if full_build %}
    {% do replace_table_as(existing_relation, target_relation, compiled_code) %}
    {% if keep_increment %}
      {% call statement("drop_increment") -%}
        drop table if exists {{ staged }}
      {%- endcall %}
      {% do adapter.cache_dropped(staged) %}
    {% endif %}
  {% else %}
    {#- A table in the model's schema, not a TEMP one: DuckDB keeps temp tables in memory, and a
        build that changes most users (a backfill) stages millions of rows. -#}
    {% call statement("stage") -%}
      create or replace table {{ staged }} as (
        {{ compiled_code }}
      )
    {%- endcall %}
    {%- set target_columns = checked_target_columns(target_relation, staged) -%}
    {%- set strategy = config.get("incremental_strategy") or "append" -%}
    {%- set strategy_sql = adapter.get_incremental_strategy_macro(context, strategy) -%}
    {%- set build_sql = strategy_sql({
        "target_relation": target_relation,
        "temp_relation": staged,
        "unique_key": config.get("unique_key"),
        "dest_columns": target_columns,
        "incremental_predicates": config.get("incremental_predicates"),
    }) -%}
    {% call statement("main") -%}
      {{ build_sql }}
      {%- if not keep_increment %};
      drop table {{ staged }}
      {%- endif %}
    {%- endcall %}
    {% if keep_increment %}
      {% do adapter.cache_added(staged) %}
    {% endif %}
  {% endif %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({"relations": [target_relation]}) }}
{% endmaterialization %}
