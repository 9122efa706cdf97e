{#- The end of every refusal of a table built by an older version of its model (the incremental
    materialization's column check, stored_columns): what happened and the one build that fixes
    it. -#}
{% macro model_changed_since() -%}
  : the model changed since. Rebuild it and what reads it once, from scratch: dbt build --full-refresh --select {{ model.name }}+
{%- endmacro %}
