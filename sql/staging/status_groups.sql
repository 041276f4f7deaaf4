-- One row per known status of either API vocabulary (legacy list mode, current retrieve
-- mode) with its group. Any status missing here is grouped as 'unknown' downstream.
select * from (
    values
        ('PENDING_VERSION', 'queued'),
        ('WAITING_FOR_DEPLOY', 'queued'),
        ('QUEUED', 'queued'),
        ('DELAYED', 'queued'),
        ('DEQUEUED', 'running'),
        ('EXECUTING', 'running'),
        ('REATTEMPTING', 'running'),
        ('WAITING', 'waiting'),
        ('FROZEN', 'waiting'),
        ('COMPLETED', 'succeeded'),
        ('FAILED', 'failed'),
        ('CRASHED', 'failed'),
        ('SYSTEM_FAILURE', 'failed'),
        ('INTERRUPTED', 'failed'),
        ('TIMED_OUT', 'failed'),
        ('CANCELED', 'canceled'),
        ('EXPIRED', 'expired')
) as groups (status, status_group)
