"""The archive of every published sync (RECOUP_ARCHIVE) and the restore from it.

One concern per module: `settings.py` the RECOUP_ARCHIVE* settings; `s3.py` S3 access from the
AWS_* variables; `store.py` the layout and its reads and writes; `changes.py` which rows a
point holds; `write.py` the archive step after a sync publishes; `restore.py` `recoup restore`;
`retention.py` RECOUP_ARCHIVE_KEEP_DAYS; `status.py` `recoup archive status`; `commands.py`
the two commands as the command line calls them. See docs/backup.md.
"""

from pipelines.archive.outcome import ArchiveOutcome
from pipelines.archive.settings import ArchiveSettings, archive_settings

__all__ = ["ArchiveOutcome", "ArchiveSettings", "archive_settings"]
