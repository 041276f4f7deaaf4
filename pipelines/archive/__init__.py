"""The archive of every published sync (RECOUP_ARCHIVE) and the restore from it.

Its settings are read with the others (`pipelines/config/archive.py`, `pipelines/config/s3.py`).
One concern per module: `s3.py` S3 access with those settings; `store.py` the layout and its reads and writes; `changes.py` which rows a
point holds; `write.py` the archive step after a sync publishes; `restore.py` `recoup restore`;
`retention.py` RECOUP_ARCHIVE_KEEP_DAYS; `status.py` `recoup archive status`; `moments.py`
the times `--at` takes. The commands themselves are in `pipelines/cli/`. See docs/backup.md.
"""

from pipelines.archive.outcome import ArchiveOutcome

__all__ = ["ArchiveOutcome"]
