-- The report's "Most expensive runs": the 100 costliest runs of the period with their ids.
select cost_rank, run_id, account_id, task_identifier, status_group, created_at at time zone 'UTC' as created_at,
       total_cost_usd, duration_s
from analytics.top_runs
where cost_rank <= 100
order by cost_rank
