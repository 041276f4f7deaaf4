-- analytics.runs: every status_group is one of the groups staging.status_groups defines, or unknown.
-- on update: run_id
select run_id, status, status_group
from analytics.runs
where status_group is null
    or status_group not in (select status_group from staging.status_groups union select 'unknown')
