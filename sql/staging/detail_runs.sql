-- One row per run: what retrieve mode (?runId=) last answered for it, renamed and cast.
-- Used to reconcile list and retrieve observations into analytics.runs.
with source as (
    select * from raw.run_details
),

renamed as (
    select
        id as run_id,
        observation_id,
        'detail' as observed_by,
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
        cost_in_cents::double as cost_cents,
        base_cost_in_cents::double as base_cost_cents,
        attempt_count::integer as reported_attempt_count,
        coalesce(has_attempts, false) as has_attempts,
        attempts_listed::integer as attempts_listed,
        coalesce(has_error, false) as has_error,
        error_message,
        seen_at
    from source
)

select * from renamed
