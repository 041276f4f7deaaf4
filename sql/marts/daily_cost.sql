-- materialized: table
-- One row per UTC day, account, task and environment: runs created that day and their cost.
-- Test runs are included. For the cost report and for spend questions.
-- Columns:
--   day: the UTC date the runs were created on, whatever the reader's TimeZone setting
--   env_name: the environment; null when no list answer named it
--   run_count: runs created that day, test runs included
--   failed_run_count: of those, runs whose status_group is failed
--   total_cost_usd: their total cost in US dollars, (cost_cents + base_cost_cents) / 100 summed
--     exactly (DECIMAL)
--
-- A sync rebuilds only the days and accounts of the runs it changed:
-- incremental: make_timestamp(epoch_us(created_at))::date as day, account_id from analytics.runs
with runs as (
    select * from analytics.runs
),

final as (
    select
        make_timestamp(epoch_us(created_at))::date as day,
        account_id,
        task_identifier,
        env_name,
        count(*)::integer as run_count,
        count(*) filter (where status_group = 'failed')::integer as failed_run_count,
        sum(total_cost_usd) as total_cost_usd
    from runs
    group by all
)

select * from final
