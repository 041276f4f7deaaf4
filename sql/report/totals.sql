-- The report's headline figures over the period the session variables name.
select count(*)::integer as runs, coalesce(sum(total_cost_usd), 0) as cost,
       count(*) filter (where status_group = 'failed')::integer as failed,
       count(*) filter (where is_finished)::integer as finished,
       quantile_cont(duration_ms, 0.95) filter (where started_at is not null) / 1000 as p95_s
from analytics.runs_in_period
