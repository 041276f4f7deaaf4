-- One row per attempt of a run as list mode (GET /api/tasks/runs) last answered it (API order).
with source as (
    select * from raw.runs__attempts
),

renamed as (
    select
        observation_id,
        attempt_id,
        attempt_number::integer as attempt_number,
        status,
        created_at,
        started_at,
        completed_at,
        error_message
    from source
)

select * from renamed
