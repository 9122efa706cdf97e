{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['segment', 'user_id', 'entered_at'],
) }}
-- Membership intervals. Each run opens an interval (entered_at = this run's as_of) for every
-- member without an open one and closes (exited_at = as_of) every open interval whose user is no
-- longer a member. Rows are only ever added or closed, never rebuilt: the history is the record
-- of what each run saw. Re-running the same as_of changes nothing.
with current_members as (
    select distinct segment, user_id
    from {{ ref('fct_segment_memberships') }}
)

{% if is_incremental() %}
, open_intervals as (
    select segment, user_id, entered_at
    from {{ this }}
    where exited_at is null
)

select o.segment, o.user_id, o.entered_at, {{ as_of() }} as exited_at
from open_intervals o
where not exists (
    select 1 from current_members c where c.segment = o.segment and c.user_id = o.user_id
)

union all

select c.segment, c.user_id, {{ as_of() }} as entered_at, cast(null as timestamp) as exited_at
from current_members c
where not exists (
    select 1 from open_intervals o where o.segment = c.segment and o.user_id = c.user_id
)
{% else %}
select segment, user_id, {{ as_of() }} as entered_at, cast(null as timestamp) as exited_at
from current_members
{% endif %}
