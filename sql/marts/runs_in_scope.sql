-- One row per run the report's scope counts, whatever its day, with the UTC day it was created:
-- every run by default; `set variable include_test_runs = false` leaves out test runs and
-- `set variable include_in_flight_runs = false` runs still queued, running or waiting. The one
-- place the scope is defined: the period views and the month and movers views read it.
-- Columns:
--   day: the UTC date the run was created on
with runs as (
    select * from analytics.runs
),

period as (
    select * from staging.report_period
),

final as (
    select
        runs.*,
        -- the UTC day in any session TimeZone, with no time zone conversion per run
        make_timestamp(epoch_us(runs.created_at))::date as day
    from runs, period
    where (period.include_test_runs or not coalesce(runs.is_test, false))
        and (period.include_in_flight_runs or not runs.is_in_flight)
)

select * from final
