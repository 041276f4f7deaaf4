-- One row over the reporting period: where the money went. Compute (cost_cents) and base
-- (base_cost_cents) cost, and the parts of the total spent on failed runs, on runs that needed
-- more than one attempt, on test runs and on runs still in flight (their cost so far). The
-- parts overlap (a failed test run is in both); compute_cost_usd + base_cost_usd = total_cost_usd.
-- Columns:
--   run_count: runs created in the period
--   total_cost_usd: every run's cost in US dollars (exact DECIMAL)
--   compute_cost_usd: the compute part (cost_cents / 100)
--   base_cost_usd: the per-run base part (base_cost_cents / 100)
--   failed_run_count: runs whose status_group is failed
--   failed_cost_usd: what the failed runs cost: spend that produced no result
--   retried_run_count: runs with more than one attempt
--   retried_cost_usd: what the runs with more than one attempt cost, all their attempts
--   test_run_count: test runs (is_test)
--   test_cost_usd: what test runs cost
--   in_flight_run_count: runs still queued, running or waiting
--   in_flight_cost_usd: what runs still in flight have cost so far
with runs as (
    select * from analytics.runs_in_period
),

final as (
    select
        count(*)::integer as run_count,
        coalesce(sum(total_cost_usd), 0)::decimal(38, 8) as total_cost_usd,
        (coalesce(sum(cost_cents), 0) / 100)::decimal(38, 8) as compute_cost_usd,
        (coalesce(sum(base_cost_cents), 0) / 100)::decimal(38, 8) as base_cost_usd,
        count(*) filter (where status_group = 'failed')::integer as failed_run_count,
        coalesce(sum(total_cost_usd) filter (where status_group = 'failed'), 0)::decimal(38, 8) as failed_cost_usd,
        count(*) filter (where attempt_count > 1)::integer as retried_run_count,
        coalesce(sum(total_cost_usd) filter (where attempt_count > 1), 0)::decimal(38, 8) as retried_cost_usd,
        count(*) filter (where is_test)::integer as test_run_count,
        coalesce(sum(total_cost_usd) filter (where is_test), 0)::decimal(38, 8) as test_cost_usd,
        count(*) filter (where is_in_flight)::integer as in_flight_run_count,
        coalesce(sum(total_cost_usd) filter (where is_in_flight), 0)::decimal(38, 8) as in_flight_cost_usd
    from runs
)

select * from final
