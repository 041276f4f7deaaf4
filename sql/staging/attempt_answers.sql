-- One row per attempt in an answer about a run (list or retrieve), in API order.
with source as (
    select * from raw.runs__attempts
    union all by name
    select * from raw.run_details__attempts
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
        error_message,
        seen_at as answered_at
    from source
)

select * from renamed
