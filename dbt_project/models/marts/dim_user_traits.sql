{{ config(materialized='view') }}
-- One row per known user and trait they have at as_of: the trait's JSON value and that value
-- read as a timestamp by the segment compiler's rule (null when it is none). A view over the
-- trait values without the unset ones: what reads one trait for every user (a journey's date
-- trigger) reads it here instead of parsing every user's traits document.
select user_id, trait, value, value_timestamp, set_at
from {{ ref('int_user_trait_values') }}
where not {{ json_is_null('value') }}
