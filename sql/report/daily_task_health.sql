-- The report's "Failures and p95 duration per task per day".
select day, task_identifier, run_count, failed_run_count, duration_p95_s
from analytics.daily_task_health
order by day, task_identifier
