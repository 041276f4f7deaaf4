-- One row per tag key and value over the reporting period: runs and cost of the runs carrying
-- the tag (e.g. artist:..., campaign:..., customer:...). A run with several tags counts under
-- each, so the rows of one key add up to the cost of the runs tagged with that key only when
-- each run has one value of it; untagged runs are in no row.
-- Columns:
--   run_count: runs of the period carrying the tag
--   total_cost_usd: what those runs cost in US dollars (exact DECIMAL)
with runs as (
    select * from analytics.runs_in_period
),

tags as (
    select distinct run_id, tag_key, tag_value from analytics.run_tags
    where run_id in (select run_id from analytics.runs_in_period)
        -- the period's bound on created_at (analytics.runs_in_period), so that DuckDB skips the
        -- row groups of older runs instead of joining every tag of the history
        and run_created_at >= coalesce(getvariable('period_start')::date - 1, date '0001-01-01')
        and run_created_at < coalesce(getvariable('period_end')::date + 2, date '9999-12-31')
),

final as (
    select
        tags.tag_key,
        tags.tag_value,
        count(*)::integer as run_count,
        coalesce(sum(runs.total_cost_usd), 0)::decimal(38, 8) as total_cost_usd
    from runs
    join tags on tags.run_id = runs.run_id
    group by all
)

select * from final
