{#- The end of every refusal of a table built by an older version of its model (the incremental
    materialization's column check, stored_columns): what happened and the one build that fixes
    it, or, for a log no build rebuilds (full_refresh=false), what to change by hand. -#}
{% macro model_changed_since() -%}
  {%- if config.get('full_refresh') == false -%}
  : the model changed since. It is a log that a --full-refresh build keeps (rebuilt, it would forget its past): give its table the new columns (alter table ... add column ...), then run again
  {%- else -%}
  : the model changed since. Rebuild the models once, from scratch, with `nudge run --full-refresh` (with dbt's own CLI: dbt build --full-refresh --select {{ model.name }}+)
  {%- endif -%}
{%- endmacro %}
