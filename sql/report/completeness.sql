-- How complete the period's details are: failed runs whose error message is known, and the
-- finished runs the newest sync left waiting for their details.
select count(*) filter (where status_group = 'failed')::integer as failed_runs,
       count(*) filter (where status_group = 'failed' and error_message is not null)::integer as failed_with_message,
       (select coalesce(sum(details_pending), 0) from analytics.sync_log
        where synced_at = (select max(synced_at) from analytics.sync_log))::integer as details_pending
from analytics.runs_in_period
