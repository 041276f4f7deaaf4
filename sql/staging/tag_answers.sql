-- One row per tag in an answer about a run (list or retrieve; observation ids never collide).
with source as (
    select * from raw.runs__tags
    union all by name
    select * from raw.run_details__tags
),

renamed as (
    select
        observation_id,
        tag_index::integer as tag_index,
        value as tag,
        seen_at as answered_at
    from source
)

select * from renamed
