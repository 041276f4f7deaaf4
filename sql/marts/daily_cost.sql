-- One row per UTC day, account, task and environment: runs created that day and their cost.
-- Test runs are included. For the cost report and for spend questions.
-- A sync rebuilds only the days and accounts of the runs it changed:
-- incremental: (created_at at time zone 'UTC')::date as day, account_id
with runs as (
    select * from analytics.runs
),

final as (
    select
        (created_at at time zone 'UTC')::date as day,
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
