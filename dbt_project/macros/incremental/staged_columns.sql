{#- The columns of an incremental model's table (`target`), once the rows staged by this build
    (`staged`) are checked to have the same ones: a model whose columns changed since its table
    was built is refused, naming both lists and the build that fixes it. Shared by the DuckDB and
    Spark incremental materializations. -#}
{% macro checked_target_columns(target, staged) -%}
    {%- set target_columns = adapter.get_columns_in_relation(target) -%}
    {%- set built = target_columns | map(attribute="name") | list -%}
    {%- set computed = adapter.get_columns_in_relation(staged) | map(attribute="name") | list -%}
    {%- if built | sort != computed | sort -%}
      {{ exceptions.raise_compiler_error(
          "model " ~ model.name ~ " now computes the columns " ~ computed | join(", ")
          ~ ", but its table " ~ target ~ " was built with " ~ built | join(", ")
          ~ model_changed_since()
      ) }}
    {%- endif -%}
    {{ return(target_columns) }}
{%- endmacro %}
