-- analytics.daily_cost: its runs and cost add up, per account, to those of analytics.runs.
-- on update: account_id
with daily as (
    select account_id, sum(run_count) as runs, sum(total_cost_usd) as cost
    from analytics.daily_cost
    group by account_id
),
direct as (
    select account_id, count(*) as runs, sum(total_cost_usd) as cost
    from analytics.runs
    group by account_id
)
select account_id, daily.runs as daily_runs, direct.runs, daily.cost as daily_cost, direct.cost
from daily
full outer join direct using (account_id)
where daily.runs is distinct from direct.runs or daily.cost is distinct from direct.cost
