{#- The columns an incremental model reads back from its own table, as a select list, checked
    first: a table built before the model gained one of them is refused naming the model, the
    missing columns and the --full-refresh build that fixes it. Without the check DuckDB stops on
    a binder error that names the column but not the fix (the materialization's own column check
    comes after the model's select). -#}
{% macro stored_columns(columns) %}
  {%- if execute and is_incremental() -%}
    {%- set built = adapter.get_columns_in_relation(this) | map(attribute="name")
                    | map("lower") | list -%}
    {%- set missing = columns | reject("in", built) | list -%}
    {%- if missing -%}
      {{ exceptions.raise_compiler_error(
          "model " ~ model.name ~ " reads the columns " ~ missing | join(", ")
          ~ " from its table " ~ this ~ ", which was built without them" ~ model_changed_since()
      ) }}
    {%- endif -%}
  {%- endif -%}
  {{ columns | join(", ") }}
{%- endmacro %}
