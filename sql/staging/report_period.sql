-- One row: the reporting period, whole UTC days, inclusive, and which runs it counts. Defaults
-- to the last 30 days and every run; set it per session with
-- `set variable period_start = date '2026-11-01'` (and period_end), and leave out test runs or
-- runs still in flight with `set variable include_test_runs = false` (include_in_flight_runs).
select
    coalesce(
        getvariable('period_start')::date,
        coalesce(getvariable('period_end')::date, (now() at time zone 'UTC')::date) - 29
    ) as period_start,
    coalesce(getvariable('period_end')::date, (now() at time zone 'UTC')::date) as period_end,
    coalesce(getvariable('include_test_runs')::boolean, true) as include_test_runs,
    coalesce(getvariable('include_in_flight_runs')::boolean, true) as include_in_flight_runs
