-- The test runs and runs still in flight (cost so far) of the period, read before the report
-- sets its scope (every run counts until told otherwise): what each setting counts or leaves out.
select test_run_count as test_runs, test_cost_usd as test_cost,
       in_flight_run_count as in_flight_runs, in_flight_cost_usd as in_flight_cost
from analytics.cost_breakdown
