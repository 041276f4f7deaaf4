-- One row per account, environment, task and error message over the reporting period, most
-- frequent first within each account, environment and task (error_rank 1 = the commonest);
-- top_errors split by account and environment.
-- Columns:
--   env_name: the environment; null when no list answer named it
--   error_message: the run's error message, whole
--   run_count: runs created in the period that ended with this message
--   last_seen_at: when the latest of those runs was created (UTC)
--   error_rank: 1 for the commonest message of the account, environment and task, then 2, 3...
--     (ties ordered by message)
with runs as (
    select * from analytics.runs_in_period
),

counted as (
    select
        account_id,
        env_name,
        task_identifier,
        error_message,
        count(*)::integer as run_count,
        max(created_at) as last_seen_at
    from runs
    where error_message is not null
    group by all
),

final as (
    select
        *,
        row_number() over (
            partition by account_id, env_name, task_identifier order by run_count desc, error_message
        )::integer as error_rank
    from counted
)

select * from final
