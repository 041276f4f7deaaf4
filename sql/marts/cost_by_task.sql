-- One row per account and task over the reporting period: runs, outcomes and cost in USD,
-- with the cost of each successful run. For "what do we spend, where, and is it worth it".
-- Columns:
--   run_count: runs created in the period
--   succeeded_run_count: of those, runs that succeeded
--   failed_run_count: of those, runs whose status_group is failed
--   total_cost_usd: their total cost in US dollars (exact DECIMAL), in-flight runs' cost so far included
--   cost_per_successful_run_usd: total_cost_usd / succeeded_run_count (failed runs' cost included),
--     rounded to 8 decimals;
--     null without a successful run
with runs as (
    select * from analytics.runs_in_period
),

final as (
    select
        account_id,
        task_identifier,
        count(*)::integer as run_count,
        count(*) filter (where status_group = 'succeeded')::integer as succeeded_run_count,
        count(*) filter (where status_group = 'failed')::integer as failed_run_count,
        sum(total_cost_usd) as total_cost_usd,
        (sum(total_cost_usd) / nullif(count(*) filter (where status_group = 'succeeded'), 0))::decimal(38, 8)
            as cost_per_successful_run_usd
    from runs
    group by all
)

select * from final
