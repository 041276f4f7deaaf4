-- The report's "Cost by environment".
select env_name, sum(run_count)::integer as run_count, sum(total_cost_usd) as total_cost_usd
from analytics.daily_runs
group by all
order by total_cost_usd desc, env_name
