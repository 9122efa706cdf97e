{#- The `incremental` materialization on Spark, taking precedence over dbt-spark's own.

    nudge's tables on Spark are plain parquet tables in the session catalog (no Delta or Iceberg
    jars are needed), which cannot DELETE and cannot be overwritten by a statement that reads
    them. dbt-spark's own materialization offers append and insert_overwrite of partitions
    there, not the strategies nudge's models use (replace_keys, delete+insert). So this one
    works like the lean DuckDB materialization, with deletes rewritten as keeping the other rows:
    the build's rows are staged in a table beside the model (increment_relation), the rows that
    stay are written with them into a second table (`<model>__nudge_rebuilt`), and that table
    overwrites the model. A first build (or --full-refresh) is one `create table ... as`. A model
    whose columns changed since its table was built is refused as on DuckDB. -#}
{% materialization incremental, adapter="spark", supported_languages=["sql"] %}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type="table") -%}
  {%- set full_build = existing_relation is none or not existing_relation.is_table
                       or should_full_refresh() -%}

  {{ run_hooks(pre_hooks) }}

  {%- set keep_increment = config.get("keep_increment") -%}
  {%- set staged = increment_relation(this) -%}
  {% if full_build %}
    {% if existing_relation is not none %}
      {{ adapter.drop_relation(existing_relation) }}
    {% endif %}
    {% call statement("main") -%}
      create table {{ target_relation }} using parquet as
      {{ compiled_code }}
    {%- endcall %}
    {% if keep_increment %}
      {% do run_query("drop table if exists " ~ staged) %}
      {% do adapter.cache_dropped(staged) %}
    {% endif %}
  {% else %}
    {% do run_query("drop table if exists " ~ staged) %}
    {% call statement("stage") -%}
      create table {{ staged }} using parquet as
      {{ compiled_code }}
    {%- endcall %}
    {%- set target_columns = checked_target_columns(target_relation, staged) -%}
    {%- set columns = target_columns | map(attribute="name") | join(", ") -%}
    {%- set strategy = config.get("incremental_strategy") or "append" -%}
    {% if strategy == "append" %}
      {% call statement("main") -%}
        insert into {{ target_relation }}
        select {{ columns }} from {{ staged }}
      {%- endcall %}
    {% else %}
      {%- set kept = spark_kept_rows(strategy, target_relation, staged, columns) -%}
      {%- set rebuilt = _beside(this, "__nudge_rebuilt") -%}
      {% do run_query("drop table if exists " ~ rebuilt) %}
      {% call statement("rebuild") -%}
        create table {{ rebuilt }} using parquet as
        {{ kept }}
        union all
        select {{ columns }} from {{ staged }}
      {%- endcall %}
      {% call statement("main") -%}
        insert overwrite table {{ target_relation }}
        select {{ columns }} from {{ rebuilt }}
      {%- endcall %}
      {% do run_query("drop table " ~ rebuilt) %}
    {% endif %}
    {% if keep_increment %}
      {% do adapter.cache_added(staged) %}
    {% else %}
      {% do run_query("drop table " ~ staged) %}
    {% endif %}
  {% endif %}

  {{ run_hooks(post_hooks) }}

  {{ return({"relations": [target_relation]}) }}
{% endmaterialization %}

{#- The rows of `target` an incremental build keeps (a select of `columns`): those whose key the
    strategy does not replace. replace_keys replaces the keys of replaced_keys (every row when
    that is none); delete+insert the rows whose unique_key columns all equal a staged row's.
    Anti joins, so a row with a null key stays, as a DELETE ... WHERE key IN (...) leaves it. -#}
{% macro spark_kept_rows(strategy, target, staged, columns) -%}
    {%- set key = config.get("unique_key") -%}
    {%- set keys = key if key is not string else [key] -%}
    select {% for column in columns.split(", ") -%}
        t.{{ column }}{{ ", " if not loop.last }}
    {%- endfor %}
    from {{ target }} t
    {%- if strategy == "replace_keys" -%}
        {%- set replaced = replaced_keys(staged) -%}
        {%- if replaced is none %}
    where false
        {%- else -%}
            {%- for relation in replaced %}
    left anti join (select {{ key }} from {{ relation }}) r{{ loop.index }}
        on t.{{ key }} = r{{ loop.index }}.{{ key }}
            {%- endfor -%}
        {%- endif -%}
    {%- elif strategy == "delete+insert" %}
    left anti join {{ staged }} s
        on {% for column in keys -%}
        t.{{ column }} = s.{{ column }}{{ " and " if not loop.last }}
        {%- endfor -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            "model " ~ model.name ~ " uses the incremental strategy " ~ strategy ~ ", which nudge"
            ~ " does not run on Spark: use append, delete+insert or replace_keys"
        ) }}
    {%- endif -%}
{%- endmacro %}
