-- What the report leaves out unless told otherwise: test runs and runs still in flight (cost so far).
select count(*) filter (where is_test)::integer as test_runs,
       coalesce(sum(total_cost_usd) filter (where is_test), 0) as test_cost,
       count(*) filter (where is_in_flight)::integer as in_flight_runs,
       coalesce(sum(total_cost_usd) filter (where is_in_flight), 0) as in_flight_cost
from analytics.runs_in_period
