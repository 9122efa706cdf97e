{#- Where the calls come from: nudge's landing area (raw.events, the default) or, read in place,
    the tables a Segment or RudderStack warehouse destination writes (identifies, users, tracks,
    one table per event, pages, screens, groups, aliases) in one schema of the warehouse.
    Chosen by the environment, so that one parsed project serves both:
    NUDGE_EVENT_SOURCE=landing|segment_warehouse and NUDGE_EVENT_SOURCE_SCHEMA (default
    `segment`). -#}
{% macro event_source() -%}
    {%- set source_kind = env_var('NUDGE_EVENT_SOURCE', 'landing') -%}
    {%- if source_kind not in ('landing', 'segment_warehouse') -%}
        {{ exceptions.raise_compiler_error(
            "NUDGE_EVENT_SOURCE is '" ~ source_kind ~ "': set it to landing (nudge's landing "
            ~ "area, the default) or segment_warehouse (Segment or RudderStack tables in the "
            ~ "schema NUDGE_EVENT_SOURCE_SCHEMA)"
        ) }}
    {%- endif -%}
    {{- return(source_kind) -}}
{%- endmacro %}

{% macro event_source_schema() -%}
    {{- return(env_var('NUDGE_EVENT_SOURCE_SCHEMA', 'segment')) -}}
{%- endmacro %}

{#- Columns of the warehouse tables that are the call itself, not a property or trait (`name`
    only in pages and screens: a group's or user's name is a trait). -#}
{% macro _segment_standard_columns() -%}
    {{- return([
        'id', 'anonymous_id', 'user_id', 'timestamp', 'original_timestamp', 'sent_at',
        'received_at', 'uuid_ts', 'event', 'event_text', 'name', 'previous_id', 'group_id',
        'channel', 'request_ip', 'loaded_at',
    ]) -}}
{%- endmacro %}

{#- A JSON object (as text) of `columns` of `alias`, keys sorted, null columns left out (a
    warehouse row has a null column for every property the call did not send), each key with
    `strip` removed from its start. concat_ws skips nulls in DuckDB and PostgreSQL alike. -#}
{% macro _json_of_columns(alias, columns, strip='') -%}
    {%- if columns | length == 0 -%}
        cast(null as varchar)
    {%- else -%}
    '{' || concat_ws(','
        {%- for column in columns | sort(attribute='name') %},
        case when {{ alias }}.{{ adapter.quote(column.name) }} is not null then
            '{{ tojson(column.name[strip | length:]) }}:'
            || cast(to_json({{ alias }}.{{ adapter.quote(column.name) }}) as varchar)
        end
        {%- endfor %}
    ) || '}'
    {%- endif -%}
{%- endmacro %}

{#- A warehouse timestamp as naive UTC (destinations write timestamptz or UTC timestamps). -#}
{% macro _naive_utc(alias, column) -%}
    {%- if column is none -%}
        cast(null as timestamp)
    {%- elif 'time zone' in column.dtype | lower or column.dtype | lower == 'timestamptz' -%}
        cast(({{ alias }}.{{ adapter.quote(column.name) }} at time zone 'UTC') as timestamp)
    {%- else -%}
        cast({{ alias }}.{{ adapter.quote(column.name) }} as timestamp)
    {%- endif -%}
{%- endmacro %}

{#- One select of landing-shaped rows from one warehouse table. `kind` is the call type;
    `extra` names the landing column its other columns become (properties or traits). -#}
{#- `properties_sql` and `join_sql` let tracks take their properties from the event tables. -#}
{% macro _segment_calls(
    relation, kind, extra, properties_sql=none, join_sql='', only_new_users=none
) -%}
    {%- set columns = adapter.get_columns_in_relation(relation) -%}
    {%- set by_name = {} -%}
    {%- for column in columns -%}{%- do by_name.update({column.name | lower: column}) -%}{%- endfor -%}
    {%- set standard = _segment_standard_columns() -%}
    {%- set payload = [] -%}
    {%- set context = [] -%}
    {%- for column in columns -%}
        {%- set name = column.name | lower -%}
        {%- if name.startswith('context_') -%}{%- do context.append(column) -%}
        {%- elif name not in standard or name == 'name' and kind not in ('page', 'screen') -%}
            {%- do payload.append(column) -%}
        {%- endif -%}
    {%- endfor -%}
    select
        {{ "'users:' || " if relation.identifier == 'users' }}cast(c.id as varchar) as message_id,
        '{{ kind }}' as type,
        {{ 'cast(c.id as varchar)' if relation.identifier == 'users' else
           ('cast(c.user_id as varchar)' if 'user_id' in by_name else 'cast(null as varchar)') }}
            as user_id,
        {{ 'cast(c.anonymous_id as varchar)' if 'anonymous_id' in by_name
           else 'cast(null as varchar)' }} as anonymous_id,
        {{ 'cast(c.previous_id as varchar)' if 'previous_id' in by_name else 'cast(null as varchar)' }}
            as previous_id,
        {{ 'cast(c.group_id as varchar)' if 'group_id' in by_name else 'cast(null as varchar)' }}
            as group_id,
        {% if kind == 'track' -%}
        cast(coalesce({{ 'c.event_text' if 'event_text' in by_name else 'null' }}, c.event) as varchar)
        {%- else -%}
        cast(null as varchar)
        {%- endif %} as event,
        {{ 'cast(c.name as varchar)' if 'name' in by_name and kind in ('page', 'screen')
           else 'cast(null as varchar)' }} as name,
        coalesce(
            {{ _naive_utc('c', by_name.get('timestamp')) }},
            {{ _naive_utc('c', by_name.get('original_timestamp')) }},
            {{ _naive_utc('c', by_name.get('received_at')) }}
        ) as timestamp,
        {{ _naive_utc('c', by_name.get('received_at')) }} as received_at,
        {% if extra == 'properties' -%}
        {{ as_json(properties_sql if properties_sql is not none else _json_of_columns('c', payload)) }}
        {%- else -%}
        {{ as_json('null') }}
        {%- endif %} as properties,
        {% if extra == 'traits' -%}
        {{ as_json(_json_of_columns('c', payload)) }}
        {%- else -%}
        {{ as_json('null') }}
        {%- endif %} as traits,
        {{ as_json(_json_of_columns('c', context, strip='context_')) }} as context,
        '{{ relation.schema }}.{{ relation.identifier }}' as landing_file,
        coalesce(
            {{ _naive_utc('c', by_name.get('uuid_ts')) }},
            {{ _naive_utc('c', by_name.get('received_at')) }}
        ) as loaded_at
    from {{ relation }} c
    {{ join_sql }}
    {%- if only_new_users is not none %}
    where cast(c.id as varchar) not in (
        select cast(user_id as varchar) from {{ only_new_users }} where user_id is not null
    )
    {%- endif %}
{%- endmacro %}

{#- Every call in a Segment/RudderStack warehouse schema, in the landing columns. Tables that
    are not there are skipped; a track's properties come from its event's own table. -#}
{% macro segment_warehouse_calls(schema) -%}
    {%- set found = run_query(
        "select table_name from information_schema.tables where table_schema = '"
        ~ schema ~ "' and table_catalog = current_database()"
    ).columns[0].values() | map('lower') | list -%}
    {%- if found | length == 0 -%}
        {{ exceptions.raise_compiler_error(
            "NUDGE_EVENT_SOURCE is segment_warehouse but the warehouse has no tables in schema '"
            ~ schema ~ "': set NUDGE_EVENT_SOURCE_SCHEMA to the schema your Segment or "
            ~ "RudderStack destination writes"
        ) }}
    {%- endif -%}
    {%- set selects = [] -%}
    {%- for table, kind, extra in [
        ('identifies', 'identify', 'traits'),
        ('pages', 'page', 'properties'),
        ('screens', 'screen', 'properties'),
        ('groups', 'group', 'traits'),
        ('aliases', 'alias', none),
    ] if table in found -%}
        {%- do selects.append(_segment_calls(
            api.Relation.create(database=target.database, schema=schema, identifier=table),
            kind, extra
        )) -%}
    {%- endfor -%}
    {%- if 'users' in found -%}
        {%- do selects.append(_segment_calls(
            api.Relation.create(database=target.database, schema=schema, identifier='users'),
            'identify', 'traits',
            only_new_users=(api.Relation.create(
                database=target.database, schema=schema, identifier='identifies'
            ) if 'identifies' in found else none)
        )) -%}
    {%- endif -%}
    {%- if 'tracks' in found -%}
        {%- do selects.append(_segment_tracks(schema, found)) -%}
    {%- endif -%}
    {{ selects | join('\nunion all\n') }}
{%- endmacro %}

{#- tracks, with each call's properties from its event's table (same id). An event table is any
    other table of the schema with an event_text column. -#}
{% macro _segment_tracks(schema, found) -%}
    {%- set reserved = ['identifies', 'users', 'tracks', 'pages', 'screens', 'groups', 'aliases'] -%}
    {%- set event_selects = [] -%}
    {%- for table in found if table not in reserved -%}
        {%- set relation = api.Relation.create(
            database=target.database, schema=schema, identifier=table
        ) -%}
        {%- set columns = adapter.get_columns_in_relation(relation) -%}
        {%- set names = columns | map(attribute='name') | map('lower') | list -%}
        {%- if 'event_text' in names and 'id' in names -%}
            {%- set payload = [] -%}
            {%- for column in columns -%}
                {%- set name = column.name | lower -%}
                {%- if not name.startswith('context_') and name not in _segment_standard_columns() -%}
                    {%- do payload.append(column) -%}
                {%- endif -%}
            {%- endfor -%}
            {%- do event_selects.append(
                "select cast(e.id as varchar) as id, " ~ _json_of_columns('e', payload)
                ~ " as properties from " ~ relation ~ " e"
            ) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set tracks = api.Relation.create(database=target.database, schema=schema, identifier='tracks') -%}
    {%- if event_selects -%}
    {{ _segment_calls(
        tracks, 'track', 'properties',
        properties_sql='p.properties',
        join_sql='left join (' ~ (event_selects | join(' union all ')) ~ ') p'
            ~ ' on p.id = cast(c.id as varchar)',
    ) }}
    {%- else -%}
    {{ _segment_calls(tracks, 'track', 'properties', properties_sql='cast(null as varchar)') }}
    {%- endif -%}
{%- endmacro %}
