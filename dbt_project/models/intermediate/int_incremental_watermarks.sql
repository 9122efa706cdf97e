{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          full_refresh=false) }}
-- depends_on: {{ ref('int_identity_map') }}
-- depends_on: {{ ref('int_known_users') }}
-- depends_on: {{ ref('int_user_trait_values') }}
-- depends_on: {{ ref('fct_events') }}
-- depends_on: {{ ref('dim_users') }}
-- depends_on: {{ ref('fct_segment_membership_history') }}
-- One row per build that brought every incremental model and the membership history up to date:
-- its as_of and the latest loaded_at it staged. It runs after those models (and their tests), so
-- a build that fails half-way leaves the previous watermark and the next build recomputes from
-- there. See the new_since_last_build macro. Kept by a --full-refresh build, so that build
-- numbers go on: keep_replaced_rows marks rows with the number of the build they stand before.
select
    {% if is_incremental() %}
    (select coalesce(max(build_number), 0) + 1 from {{ this }})
    {% else %}
    1
    {% endif %} as build_number,
    {{ as_of() }} as as_of,
    (select max(loaded_at) from {{ ref('stg_events') }}) as loaded_through
