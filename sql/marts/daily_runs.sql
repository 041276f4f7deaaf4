-- One row per UTC day, account, environment, task and status group over the reporting period
-- (analytics.runs_in_period, so its test and in-flight settings apply): runs created and their
-- cost. For runs and cost over time, by status, account or environment.
-- Columns:
--   day: the UTC date the runs were created on
--   env_name: the environment; null when no list answer named it
--   status_group: the runs' status group (queued, running, waiting, succeeded, failed, canceled,
--     expired, unknown)
--   run_count: runs created that day in that group
--   total_cost_usd: their total cost in US dollars (exact DECIMAL), in-flight runs' cost so far included
with runs as (
    select * from analytics.runs_in_period
),

final as (
    select
        day,
        account_id,
        env_name,
        task_identifier,
        status_group,
        count(*)::integer as run_count,
        sum(total_cost_usd) as total_cost_usd
    from runs
    group by all
)

select * from final
