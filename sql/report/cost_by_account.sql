-- The report's "Cost by account": analytics.cost_by_task (one row per account and task) summed by account_id.
select account_id, sum(run_count)::integer as run_count,
       sum(succeeded_run_count)::integer as succeeded_run_count, sum(total_cost_usd) as total_cost_usd,
       (sum(total_cost_usd) / nullif(sum(succeeded_run_count), 0))::decimal(38, 8) as cost_per_successful_run_usd
from analytics.cost_by_task
group by all
order by total_cost_usd desc, account_id
