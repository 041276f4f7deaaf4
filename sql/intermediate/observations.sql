-- One row per observation of a run: the last list answer and the last retrieve answer,
-- with how many attempts each carried. Feeds the choice of the latest value per field.
with listed as (
    select * from staging.list_runs
),

retrieved as (
    select * from staging.detail_runs
),

attempts as (
    select observation_id, count(*)::integer as attempts_carried
    from (
        select observation_id from staging.list_attempts
        union all
        select observation_id from staging.detail_attempts
    )
    group by observation_id
),

observations as (
    select * from listed
    union all by name
    select * from retrieved
),

final as (
    select
        observations.*,
        case when has_attempts then coalesce(attempts.attempts_carried, 0) end as attempts_carried
    from observations
    left join attempts using (observation_id)
)

select * from final
