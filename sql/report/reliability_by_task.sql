-- The report's "Reliability by task", least reliable first.
select task_identifier, run_count, finished_run_count, failed_run_count, failure_rate, retried_run_count
from analytics.reliability_by_task
order by failure_rate desc nulls last, task_identifier
