-- materialized: view
-- One row per attempt of a run, from the latest answer that listed attempts (API order,
-- attempt_number from 1). Runs whose answers never listed attempts have no rows here;
-- analytics.runs.attempt_count still gives their count when the API reported one.
with versions as (
    select * from intermediate.run_versions
),

attempts as (
    select * from staging.attempt_answers
),

final as (
    select
        versions.run_id,
        attempts.attempt_id,
        attempts.attempt_number,
        attempts.status,
        attempts.created_at,
        attempts.started_at,
        attempts.completed_at,
        attempts.error_message
    from versions
    inner join attempts
        on attempts.observation_id = case versions.attempts_from
            when 'retrieve' then versions.retrieved_id
            when 'list' then versions.listed_id
        end
)

select * from final
