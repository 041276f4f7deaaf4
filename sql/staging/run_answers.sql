-- One row per answer about a run: the last list answer (raw.runs) and the last retrieve
-- answer (raw.run_details), renamed and cast; observed_by says which mode gave it.
-- Used to reconcile the two into analytics.runs.
with source as (
    select *, 'list' as observed_by from raw.runs
    union all by name
    select *, 'retrieve' as observed_by from raw.run_details
),

renamed as (
    select
        id as run_id,
        observation_id,
        observed_by,
        account_id,
        status,
        task_identifier,
        is_test,
        env_name,
        created_at,
        updated_at,
        started_at,
        finished_at,
        duration_ms,
        cost_in_cents::decimal(20, 6) as cost_cents,  -- a millionth of a cent; up to the sync's 1e12 cap
        base_cost_in_cents::decimal(20, 6) as base_cost_cents,
        attempt_count::integer as reported_attempt_count,
        env_id,
        version,
        batch_id,
        depth::integer as depth,
        idempotency_key,
        trigger_function,
        task_kind,
        region,
        metadata,
        -- relatedRuns: {"root": run, "parent": run, "children": [...]}, a run as an object or an id
        coalesce(related_runs ->> '$.parent.id', related_runs ->> '$.parent') as parent_run_id,
        coalesce(related_runs ->> '$.root.id', related_runs ->> '$.root') as root_run_id,
        delayed_until,
        expired_at,
        ttl ->> '$' as ttl,  -- '10m', or a number of seconds, as the API gave it
        coalesce(has_attempts, false) as has_attempts,
        attempts_listed::integer as attempts_listed,
        coalesce(has_error, false) as has_error,
        error_message,
        error_name,
        seen_at
    from source
)

select * from renamed
