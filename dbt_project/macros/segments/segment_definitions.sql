{#- Segment models in the graph and their definition versions (fct_segment_definitions, and
    the incremental segments that must know whether their definition is new). -#}

{#- Every model tagged `segment`, wherever it lives, from the graph (available when executing). -#}
{% macro segment_nodes() -%}
    {%- set nodes = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() | sort(attribute='name') -%}
            {%- if node.resource_type == 'model' and 'segment' in node.tags -%}
                {%- do nodes.append(node) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{- return(nodes) -}}
{%- endmacro %}

{#- Every segment model `node` reads, directly or through other segments (`in_segment`). -#}
{% macro segment_ancestors(node) -%}
    {%- set ancestors = [] -%}
    {%- for parent_id in node.depends_on.nodes -%}
        {%- set parent = graph.nodes.get(parent_id) -%}
        {%- if parent and parent.resource_type == 'model' and 'segment' in parent.tags -%}
            {%- do ancestors.append(parent) -%}
            {%- do ancestors.extend(segment_ancestors(parent)) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(ancestors) -}}
{%- endmacro %}

{#- A segment's definition version: md5 of its model's SQL with comments and runs of whitespace
    removed, so editing a description or re-indenting is not a new definition. -#}
{% macro segment_definition_version(node) -%}
    {%- set without_comments = modules.re.sub('--[^\n]*', ' ', node.raw_code) -%}
    {{- return(local_md5(modules.re.sub('\\s+', ' ', without_comments).strip())) -}}
{%- endmacro %}

{#- yaml (generated from a YAML condition), manual (an uploaded list) or sql (hand-written). -#}
{% macro segment_kind(node) -%}
    {%- set meta = node.config.get('meta', {}) -%}
    {%- if meta.get('segment_kind') -%}
        {{- return(meta.get('segment_kind')) -}}
    {%- elif node.original_file_path.startswith('models/segments/generated/') -%}
        {{- return('yaml') -}}
    {%- else -%}
        {{- return('sql') -}}
    {%- endif -%}
{%- endmacro %}

{#- True when the previous build recorded the current definition version of `node` (default: the
    model being built) in fct_segment_definitions (which every build rewrites after all segments
    are built), and the same holds for every segment it reads (`in_segment`): a segment whose
    upstream segment was redefined must be recomputed for everyone too. -#}
{% macro segment_definition_unchanged(node=none) -%}
    {%- if not execute -%}
        {{- return(false) -}}
    {%- endif -%}
    {%- set node = node or graph.nodes[model.unique_id] -%}
    {{- return(_segment_versions_recorded(node, recorded_definition_versions())) -}}
{%- endmacro %}

{#- Segment name -> definition version, as the previous build recorded them (empty before the
    first build). -#}
{% macro recorded_definition_versions() -%}
    {%- set definitions = adapter.get_relation(
        database=this.database, schema='marts', identifier='fct_segment_definitions'
    ) if execute else none -%}
    {%- set recorded = {} -%}
    {%- if definitions is not none -%}
        {%- for row in run_query("select segment, definition_version from " ~ definitions) -%}
            {%- do recorded.update({row[0]: row[1]}) -%}
        {%- endfor -%}
    {%- endif -%}
    {{- return(recorded) -}}
{%- endmacro %}

{% macro _segment_versions_recorded(node, recorded) -%}
    {%- for segment in [node] + segment_ancestors(node) -%}
        {%- if recorded.get(segment.name) != segment_definition_version(segment) -%}
            {{- return(false) -}}
        {%- endif -%}
    {%- endfor -%}
    {{- return(true) -}}
{%- endmacro %}
