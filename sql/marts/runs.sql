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
--   version: the deployed version of the task that ran it (e.g. 20261120.3); null when the API gave none
--   batch_id: the batch the run was triggered in (batchTrigger); null for a single trigger
--   depth: how deep in a chain of triggers: 0 for a run triggered from outside, 1 for its child...
--   idempotency_key: the idempotency key it was triggered with; null without one
--   trigger_function: how it was triggered (trigger, triggerAndWait, batchTrigger...)
--   task_kind: the kind of task (STANDARD, SCHEDULED...)
--   region: the region it ran in; null when the API did not say
--   error_name: the name of the run's error (e.g. TimeoutError); null unless the API gave one
--   metadata: the run's metadata, whole, as JSON (`metadata ->> '$.key'`); one larger than
--     RECOUP_MAX_FIELD_BYTES is stored as {"_skipped": {"bytes": ..., "limit": ...}}
--   parent_run_id: the run that triggered it (relatedRuns.parent); null for a run triggered from outside
--     or when no answer named it
--   root_run_id: the first run of its chain of triggers (relatedRuns.root); null as for parent_run_id
--   delayed_until: when a delayed run becomes eligible to start (UTC); null for a run not delayed
--   expired_at: when the run expired unstarted after its ttl (UTC); null otherwise
--   ttl: how long it may wait to start before it expires, as the API gave it ('10m', or seconds)
--   env_id: the id of the environment env_name names; from list answers only
--   is_finished: true when status_group is one the run never leaves: succeeded, failed, canceled
--     or expired (staging.status_groups)
--   is_in_flight: true when status_group is queued, running or waiting; false for finished runs and
--     for an unknown status
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
        versions.total_cost_usd,
        coalesce(versions.attempts_listed, versions.reported_attempt_count)::integer as attempt_count,
        versions.error_message,
        versions.version,
        versions.batch_id,
        versions.depth,
        versions.idempotency_key,
        versions.trigger_function,
        versions.task_kind,
        versions.region,
        versions.error_name,
        versions.metadata,
        versions.parent_run_id,
        versions.root_run_id,
        versions.delayed_until,
        versions.expired_at,
        versions.ttl,
        versions.env_id,
        coalesce(groups.is_finished, false) as is_finished,
        coalesce(groups.is_in_flight, false) as is_in_flight
    from versions
    left join groups on groups.status = versions.status
)

select * from final
