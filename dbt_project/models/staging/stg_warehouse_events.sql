{{ config(materialized='view') }}
-- The calls of a Segment or RudderStack warehouse schema, read in place, in raw.events' columns
-- (see the event_source macros): built when NUDGE_EVENT_SOURCE=segment_warehouse, an empty view
-- otherwise. stg_events reads it instead of raw.events then. A view rebuilt by every build, so
-- an event table the destination adds later is read from the next build on.
{% if execute and event_source() == 'segment_warehouse' %}
{{ segment_warehouse_calls(event_source_schema()) }}
{% else %}
select
    cast(null as {{ text_type() }}) as message_id,
    cast(null as {{ text_type() }}) as type,
    cast(null as {{ text_type() }}) as user_id,
    cast(null as {{ text_type() }}) as anonymous_id,
    cast(null as {{ text_type() }}) as previous_id,
    cast(null as {{ text_type() }}) as group_id,
    cast(null as {{ text_type() }}) as event,
    cast(null as {{ text_type() }}) as name,
    cast(null as timestamp) as timestamp,
    cast(null as timestamp) as received_at,
    {{ as_json('null') }} as properties,
    {{ as_json('null') }} as traits,
    {{ as_json('null') }} as context,
    cast(null as {{ text_type() }}) as landing_file,
    cast(null as timestamp) as loaded_at
where false
{% endif %}
