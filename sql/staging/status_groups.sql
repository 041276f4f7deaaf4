-- One row per known status of either API vocabulary (legacy list mode, current retrieve
-- mode) with its group, and whether that group is finished (the run will not change any
-- more) or in flight. Any status missing here is grouped as 'unknown' downstream: neither.
-- Generated from STATUS_GROUPS in pipelines/recoup/settings.py by
-- `python -m pipelines.status_groups`; edit the Python, not this file.
select * from (
    values
        ('PENDING_VERSION', 'queued', false, true),
        ('WAITING_FOR_DEPLOY', 'queued', false, true),
        ('QUEUED', 'queued', false, true),
        ('DELAYED', 'queued', false, true),
        ('DEQUEUED', 'running', false, true),
        ('EXECUTING', 'running', false, true),
        ('REATTEMPTING', 'running', false, true),
        ('WAITING', 'waiting', false, true),
        ('FROZEN', 'waiting', false, true),
        ('COMPLETED', 'succeeded', true, false),
        ('FAILED', 'failed', true, false),
        ('CRASHED', 'failed', true, false),
        ('SYSTEM_FAILURE', 'failed', true, false),
        ('INTERRUPTED', 'failed', true, false),
        ('TIMED_OUT', 'failed', true, false),
        ('CANCELED', 'canceled', true, false),
        ('EXPIRED', 'expired', true, false)
) as groups (status, status_group, is_finished, is_in_flight)
