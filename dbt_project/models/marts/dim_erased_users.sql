-- User ids deleted or suppressed at as_of, and up to when (see int_user_deletions): what the
-- delivery ledger scrub reads to erase the personal data of messages sent to them before that.
-- A table, so that a step outside dbt can read it; small (one row per erased id).
select user_id, deleted_at as erased_through
from {{ ref('int_user_deletions') }}
