-- One row per task over the reporting period: run duration and queue wait (started_at -
-- created_at) percentiles, in seconds. Runs that never started count for neither.
-- Columns:
--   run_count: runs created in the period, started or not
--   total_duration_h: the execution time of all its runs that started, in hours: what the compute
--     cost is billed on
--   duration_p50_s: median execution time of the runs that started, in seconds
--   duration_p95_s: 95th percentile of execution time of the runs that started, in seconds
--   queue_wait_p50_s: median wait from created_at to started_at, in seconds
--   queue_wait_p95_s: 95th percentile of the wait from created_at to started_at, in seconds
with runs as (
    select * from analytics.runs_in_period
),

final as (
    select
        task_identifier,
        count(*)::integer as run_count,
        (coalesce(sum(duration_ms) filter (where started_at is not null), 0) / 3600000)::double as total_duration_h,
        quantile_cont(duration_ms, 0.5) filter (where started_at is not null) / 1000 as duration_p50_s,
        quantile_cont(duration_ms, 0.95) filter (where started_at is not null) / 1000 as duration_p95_s,
        quantile_cont(queue_wait_s, 0.5) as queue_wait_p50_s,
        quantile_cont(queue_wait_s, 0.95) as queue_wait_p95_s
    from runs
    group by all
)

select * from final
