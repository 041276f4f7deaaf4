-- One row per tag of a run, from the latest answer about the run. A tag splits at its first
-- ':' into tag_key and tag_value (the rest, verbatim; 'key:' gives ''); no ':' gives
-- tag_key = tag and tag_value null.
-- Columns:
--   run_id: the tagged run (analytics.runs)
--   tag: the tag, verbatim
--   tag_key: the tag up to its first ':' (the whole tag when it has none)
--   tag_value: the tag after its first ':', verbatim ('' for 'key:'); null when the tag has no ':'
--   answered_at: when the sync read the answer the tag came from (UTC)
--   run_created_at: when the run was created (UTC), as analytics.runs.created_at
with versions as (
    select * from intermediate.run_versions
),

tags as (
    select * from staging.tag_answers
),

final as (
    select
        versions.run_id,
        tags.tag,
        case when strpos(tags.tag, ':') > 0 then left(tags.tag, strpos(tags.tag, ':') - 1) else tags.tag end as tag_key,
        case when strpos(tags.tag, ':') > 0 then substr(tags.tag, strpos(tags.tag, ':') + 1) end as tag_value,
        tags.answered_at,
        versions.created_at as run_created_at
    from versions
    inner join tags
        on tags.observation_id = if(versions.retrieved_is_latest, versions.retrieved_id, versions.listed_id)
)

select * from final
