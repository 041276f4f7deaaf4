-- One row per run created within the reporting period (staging.report_period), with the
-- UTC day it was created and its queue wait. The base of the period marts below. Every run by
-- default; `set variable include_test_runs = false` leaves out test runs and
-- `set variable include_in_flight_runs = false` runs still queued, running or waiting.
-- Columns:
--   day: the UTC date the run was created on
--   queue_wait_s: seconds from created_at to started_at; null for a run that never started
with runs as (
    select * from analytics.runs
),

period as (
    select * from staging.report_period
),

final as (
    select
        runs.*,
        (runs.created_at at time zone 'UTC')::date as day,
        epoch(runs.started_at - runs.created_at) as queue_wait_s
    from runs, period
    where (runs.created_at at time zone 'UTC')::date between period.period_start and period.period_end
        and (period.include_test_runs or not coalesce(runs.is_test, false))
        and (period.include_in_flight_runs or not runs.is_in_flight)
)

select * from final
