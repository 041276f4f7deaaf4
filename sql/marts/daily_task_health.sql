-- One row per UTC day and task over the reporting period (analytics.runs_in_period, so its test
-- and in-flight settings apply): runs, failures and duration percentiles. For how a task's
-- reliability and speed move over time.
-- Columns:
--   day: the UTC date the runs were created on
--   run_count: runs of the task created that day
--   failed_run_count: of those, runs whose status_group is failed
--   duration_p50_s: median execution time of those that started, in seconds
--   duration_p95_s: 95th percentile of execution time of those that started, in seconds
with runs as (
    select * from analytics.runs_in_period
),

final as (
    select
        day,
        task_identifier,
        count(*)::integer as run_count,
        count(*) filter (where status_group = 'failed')::integer as failed_run_count,
        quantile_cont(duration_ms, 0.5) filter (where started_at is not null) / 1000 as duration_p50_s,
        quantile_cont(duration_ms, 0.95) filter (where started_at is not null) / 1000 as duration_p95_s
    from runs
    group by all
)

select * from final
