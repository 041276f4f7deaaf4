-- One row: the reporting period, whole UTC days, inclusive. Defaults to the last 30 days;
-- set it per session with `set variable period_start = date '2026-11-01'` (and period_end).
select
    coalesce(
        getvariable('period_start')::date,
        coalesce(getvariable('period_end')::date, (now() at time zone 'UTC')::date) - 29
    ) as period_start,
    coalesce(getvariable('period_end')::date, (now() at time zone 'UTC')::date) as period_end
