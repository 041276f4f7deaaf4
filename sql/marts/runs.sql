-- materialized: view
-- One row per run id: the run's latest known state. The base of every question about runs.
-- Money: cost_cents and base_cost_cents as the API gives them (cents, with fractions);
-- total_cost_usd = (cost_cents + base_cost_cents) / 100.
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
        (coalesce(versions.cost_cents, 0) + coalesce(versions.base_cost_cents, 0)) / 100 as total_cost_usd,
        coalesce(versions.attempts_listed, versions.reported_attempt_count)::integer as attempt_count,
        versions.error_message
    from versions
    left join groups on groups.status = versions.status
)

select * from final
