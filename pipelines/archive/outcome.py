"""What one archive step did, for the sync's summary and exit code (imports nothing heavy)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ArchiveOutcome:
    """The result of archiving after a publish.

    Attributes:
        kind: `snapshot`, `changes`, or `none` when the archive already held every sync.
        error: why the archive could not be written (the published warehouse stands); None when it was.
    """

    target: str
    kind: str = "none"
    prefix: str = ""
    syncs: int = 0
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    deleted: int = 0  # points retention removed
    error: str | None = None

    def line(self) -> str:
        """One line for the sync's summary."""
        if self.error:
            return (f"archive: FAILED: {self.error}; the warehouse is published and the next sync "
                    f"archives what this one missed")  # fmt: skip
        if self.kind == "none":
            return f"archive: {self.target} already holds every sync"
        gone = f", {self.deleted} old point(s) removed" if self.deleted else ""
        return (f"archive: {self.kind} of {self.syncs} sync(s), {self.rows} rows, {self.bytes / 1024:,.1f} KB "
                f"in {self.seconds:.1f} s to {self.target}/{self.prefix}{gone}")  # fmt: skip
