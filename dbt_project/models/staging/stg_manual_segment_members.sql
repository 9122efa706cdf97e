-- Each manual segment's members at as_of: the ids of its latest upload at or before as_of (an
-- upload with no ids empties the segment). Uploads are never overwritten, so time travel works.
with latest_upload as (
    {% call first_row_per(['segment'], ['uploaded_at desc', 'landing_file desc']) %}
    select segment, landing_file, uploaded_at
    from {{ source('manual_segments', 'manual_segment_uploads') }}
    where uploaded_at <= {{ as_of() }}
    {% endcall %}
)

select distinct l.segment, m.user_id, l.uploaded_at
from latest_upload l
join {{ source('manual_segments', 'manual_segment_members') }} m
    on m.landing_file = l.landing_file
