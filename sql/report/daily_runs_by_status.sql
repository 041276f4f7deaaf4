-- The report's "Runs per day by status".
select day, status_group, sum(run_count)::integer as run_count
from analytics.daily_runs
group by all
order by day, status_group
