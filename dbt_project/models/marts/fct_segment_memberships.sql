-- Current members of every segment model. The assembly step (nudge.warehouse.dbt) rewrites this
-- file in the workspace's dbt project with every model found under models/segments/.
{{ segment_union(['power_users']) }}
