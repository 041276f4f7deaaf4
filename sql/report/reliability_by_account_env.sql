-- The report's "Reliability by account and environment", least reliable first.
select account_id, env_name, sum(run_count)::integer as run_count,
       sum(finished_run_count)::integer as finished_run_count,
       sum(failed_run_count)::integer as failed_run_count,
       sum(failed_run_count) / nullif(sum(finished_run_count), 0) as failure_rate,
       sum(retried_run_count)::integer as retried_run_count
from analytics.reliability_by_account_env
group by all
order by failure_rate desc nulls last, account_id, env_name
