-- The report's "Top errors": each task's three most frequent error messages.
select task_identifier, error_message, run_count
from analytics.top_errors
where error_rank <= 3
order by run_count desc, task_identifier, error_message
