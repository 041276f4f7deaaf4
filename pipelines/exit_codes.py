"""The exit codes of every `recoup` command; cron and alerting rely on them."""

OK = 0  # done: every account listed and loaded, or the command did its work
PARTIAL = 1  # at least one account (or the models, or the archive) failed; the rest is published
CONFIG = 2  # bad configuration, bad key, or nothing could be listed: nothing written
LOCKED = 75  # another sync or maintenance holds the lock (EX_TEMPFAIL): nothing written
ABORTED = 130  # a second interrupt: the last published warehouse stands
