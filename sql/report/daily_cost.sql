-- The report's "Daily cost by account".
select day, account_id, sum(total_cost_usd) as total_cost_usd, sum(run_count)::integer as run_count
from analytics.daily_runs
group by all
order by day, account_id
