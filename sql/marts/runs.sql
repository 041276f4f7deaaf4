-- materialized: view
-- One row per run id: the run's latest known state. The base of every question about runs.
-- Money is DECIMAL, so sums are exact: cost_cents and base_cost_cents as the API gives them
-- (cents, DECIMAL(20,6)); total_cost_usd = (cost_cents + base_cost_cents) / 100, DECIMAL(20,8).
-- Columns:
--   run_id: the run's id in the Recoup API (run_...); unique
--   account_id: the id of the Recoup account that owns the runs
--   status: the run's status, verbatim from the latest API answer that carried it
--   status_group: the status grouped over both API vocabularies: queued, running, waiting,
--     succeeded, failed, canceled, expired, or unknown for a status this warehouse does not know
--   is_test: true for a test run (the API's isTest)
--   env_name: the environment the run ran in (e.g. prod, staging); from list answers only
--   task_identifier: the task that ran
--   created_at: when the run was triggered (UTC)
--   updated_at: when the API last changed the run (UTC)
--   started_at: when its first attempt started executing (UTC); null while queued
--   finished_at: when it reached a final status (UTC); null while in flight
--   duration_ms: the run's duration in milliseconds, as the API reports it (durationMs)
--   cost_cents: compute cost in US cents as the API gives it, DECIMAL to a millionth of a cent
--   base_cost_cents: the run's base cost in US cents as the API gives it, DECIMAL to a millionth of a cent
--   total_cost_usd: (cost_cents + base_cost_cents) / 100 in US dollars, exact (DECIMAL), a missing part
--     counted as 0; a run still
--     in flight carries its cost so far
--   attempt_count: how many attempts ran: the length of the attempts list, else the API's attemptCount, else null
--   error_message: the run's error message, whole; null unless the API gave one
with versions as (
    select * from intermediate.run_versions
),

groups as (
    select * from staging.status_groups
),

final as (
    select
        versions.run_id,
        versions.account_id,
        versions.status,
        coalesce(groups.status_group, 'unknown') as status_group,
        versions.is_test,
        versions.env_name,
        versions.task_identifier,
        versions.created_at,
        versions.updated_at,
        versions.started_at,
        versions.finished_at,
        versions.duration_ms,
        versions.cost_cents,
        versions.base_cost_cents,
        -- times 0.01, not / 100: DuckDB divides decimals as doubles
        ((coalesce(versions.cost_cents, 0) + coalesce(versions.base_cost_cents, 0)) * 0.01)::decimal(20, 8)
            as total_cost_usd,
        coalesce(versions.attempts_listed, versions.reported_attempt_count)::integer as attempt_count,
        versions.error_message
    from versions
    left join groups on groups.status = versions.status
)

select * from final
