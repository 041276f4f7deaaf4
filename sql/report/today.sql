-- Today so far: the UTC day the report runs on is not complete, so never in its period. The
-- same runs counted as the period (test and in-flight runs unless the settings leave them out).
select count(*)::integer as runs, coalesce(sum(runs.total_cost_usd), 0) as cost
from analytics.runs as runs, staging.report_period as period
where (runs.created_at at time zone 'UTC')::date = (now() at time zone 'UTC')::date
    and (period.include_test_runs or not coalesce(runs.is_test, false))
    and (period.include_in_flight_runs or not runs.is_in_flight)
