-- The report's "Speed by task", slowest first.
select task_identifier, run_count, total_duration_h, duration_p50_s, duration_p95_s, queue_wait_p50_s, queue_wait_p95_s
from analytics.speed_by_task
order by duration_p95_s desc nulls last, task_identifier
