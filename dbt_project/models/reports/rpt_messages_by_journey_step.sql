-- Messages per journey step, channel and delivery status (from the delivery ledger).
select journey, step, channel, status, count(*) as messages
from {{ source('nudge', 'delivery_ledger') }}
group by journey, step, channel, status
