-- One row per attempt of a run, from the latest answer that listed attempts (API order,
-- attempt_number from 1). Runs whose answers never listed attempts have no rows here;
-- analytics.runs.attempt_count still gives their count when the API reported one.
-- Columns:
--   run_id: the run the attempt belongs to (analytics.runs)
--   attempt_id: the attempt's id in the Recoup API
--   attempt_number: its position in the API's list of attempts, from 1
--   status: the attempt's status, verbatim
--   created_at: when the attempt was created (UTC)
--   started_at: when it started executing (UTC)
--   completed_at: when it ended (UTC); null while it runs
--   error_message: the attempt's error message; null when it had none
--   answered_at: when the sync read the answer the attempt came from (UTC)
--   run_created_at: when the run was created (UTC), as analytics.runs.created_at
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
        attempts.error_message,
        attempts.answered_at,
        versions.created_at as run_created_at
    from versions
    inner join attempts
        on attempts.observation_id = case versions.attempts_from
            when 'retrieve' then versions.retrieved_id
            when 'list' then versions.listed_id
        end
)

select * from final
