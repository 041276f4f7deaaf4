-- One row per task and error message over the reporting period, most frequent first within
-- each task (error_rank 1 = the commonest). For triage of failing tasks.
-- Columns:
--   error_message: the run's error message, whole
--   run_count: runs created in the period that ended with this message
--   last_seen_at: when the latest of those runs was created (UTC)
--   error_rank: 1 for the task's commonest message, then 2, 3... (ties ordered by message)
with runs as (
    select * from analytics.runs_in_period
),

counted as (
    select
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
        row_number() over (partition by task_identifier order by run_count desc, error_message)::integer
            as error_rank
    from counted
)

select * from final
