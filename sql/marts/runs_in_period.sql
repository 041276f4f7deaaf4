-- One row per run created within the reporting period (staging.report_period), with its UTC
-- day and its queue wait. The base of the period marts below. The runs the scope counts
-- (analytics.runs_in_scope): every run by default; `set variable include_test_runs = false`
-- leaves out test runs and `set variable include_in_flight_runs = false` runs still in flight.
-- Columns:
--   queue_wait_s: seconds from created_at to started_at; null for a run that never started
with runs as (
    select * from analytics.runs_in_scope
),

period as (
    select * from staging.report_period
),

final as (
    select
        runs.*,
        epoch(runs.started_at - runs.created_at) as queue_wait_s
    from runs, period
    where runs.day between period.period_start and period.period_end
        -- The same runs bounded on created_at itself, by constants (a day of margin for any
        -- TimeZone), so that DuckDB skips the row groups of older runs instead of reading the
        -- whole history; without the session variables there is no bound, only the day filter.
        and runs.created_at >= coalesce(getvariable('period_start')::date - 1, date '0001-01-01')
        and runs.created_at < coalesce(getvariable('period_end')::date + 2, date '9999-12-31')
)

select * from final
