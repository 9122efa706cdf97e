{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail') }}
-- depends_on: {{ ref('stg_warehouse_events') }}
-- depends_on: {{ source('raw', 'events') }}
-- raw.events deduplicated by message_id: the first landed copy wins (landing file names sort by
-- landing time; within a file, the earliest received_at). Incremental: each build stages only
-- the rows loaded since the latest one staged (the loader stamps loaded_at with the wall clock),
-- minus copies of messages already staged. With NUDGE_EVENT_SOURCE=segment_warehouse the calls
-- come from a Segment or RudderStack schema read in place (stg_warehouse_events) instead.
with candidates as (
    select *
    from {{ ref('stg_warehouse_events') if event_source() == 'segment_warehouse'
            else source('raw', 'events') }}
    {% if is_incremental() %}
    where loaded_at > (select max(loaded_at) from {{ this }})
    {% endif %}
),

-- Duplicates are rare: only their messages go through the window (over 10M wide rows the
-- window alone took longer than this whole model does now).
duplicated as (
    select message_id from candidates group by message_id having count(*) > 1
),

first_copies as (
    select * from candidates where message_id not in (select message_id from duplicated)
    union all
    {% call first_row_per(['message_id'], ['loaded_at', 'landing_file', 'received_at']) %}
    select *
    from candidates
    where message_id in (select message_id from duplicated)
    {% endcall %}
)

select
    message_id,
    type,
    user_id,
    anonymous_id,
    previous_id,
    group_id,
    event,
    name,
    timestamp,
    received_at,
    properties,
    traits,
    context,
    landing_file,
    loaded_at
from first_copies c
{% if is_incremental() %}
where not exists (select 1 from {{ this }} s where s.message_id = c.message_id)
{% endif %}
