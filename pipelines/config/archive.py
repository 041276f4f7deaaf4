"""The archive's settings, read from an environment mapping the caller passes in.

RECOUP_ARCHIVE names the archive (a folder or `s3://bucket/prefix`); the other RECOUP_ARCHIVE_*
variables tune snapshots and retention; the standard AWS_* variables configure S3 (see `s3.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.config.s3 import S3Config, s3_config
from pipelines.config.values import parse_integer
from pipelines.recoup.errors import ConfigError

SNAPSHOT_HOURS = 24  # a full snapshot at least this often
SNAPSHOT_MB = 256  # or once the change sets since the last one add up to this much


@dataclass(frozen=True)
class ArchiveSettings:
    """Where the archive lives and when it takes a snapshot or forgets old syncs; its repr shows no secret.

    Attributes:
        target: a local folder (absolute) or `s3://bucket/prefix`, without a trailing slash; None: no archive.
        keep_days: forget syncs older than this, except what the newest snapshot before them needs;
            None keeps everything.
        snapshot_hours: the age of the newest snapshot that makes the next archive a snapshot.
        snapshot_bytes: the bytes of change sets since the newest snapshot that make the next one a snapshot.
        s3: the S3 connection settings, for an `s3://` target (and the lake's `s3://` data path).
    """

    target: str | None
    keep_days: int | None = None
    snapshot_hours: int = SNAPSHOT_HOURS
    snapshot_bytes: int = SNAPSHOT_MB * 2**20
    s3: S3Config = field(default_factory=S3Config)

    @property
    def on_s3(self) -> bool:
        """Whether the archive is in S3 (or an S3-compatible store)."""
        return bool(self.target and self.target.startswith("s3://"))

    def __repr__(self) -> str:
        return f"ArchiveSettings(target={self.target!r}, keep_days={self.keep_days!r})"


def _number(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    return parse_integer(name, env.get(name), default, minimum)


def check_target(raw: str) -> str:
    """A folder (made absolute) or `s3://bucket[/prefix]`, without a trailing slash.

    Raises:
        ConfigError: another URL scheme, an S3 URL without a bucket, or a quote DuckDB could not take.
    """
    value = raw.strip()
    if "'" in value:
        raise ConfigError("RECOUP_ARCHIVE cannot contain a single quote")
    if value.startswith("s3://"):
        bucket = value.removeprefix("s3://").split("/", 1)[0]
        if not bucket:
            raise ConfigError(f"RECOUP_ARCHIVE must name a bucket: s3://bucket/prefix, got {value[:80]!r}")
        return value.rstrip("/")
    if "://" in value:
        raise ConfigError(f"RECOUP_ARCHIVE must be a folder or s3://bucket/prefix, got {value[:80]!r}")
    return str(Path(value).expanduser().resolve())


def archive_settings(env: Mapping[str, str]) -> ArchiveSettings:
    """Reads and checks the archive's settings from `env`.

    Raises:
        ConfigError: a one-line message naming the variable at fault.
    """
    raw = (env.get("RECOUP_ARCHIVE") or "").strip()
    target = check_target(raw) if raw else None
    if target and (env.get("RECOUP_LAKE") or "").strip():
        raise ConfigError(
            "RECOUP_ARCHIVE archives the RECOUP_DB file; a lake (RECOUP_LAKE) is not archived: unset one of them"
        )
    keep = (env.get("RECOUP_ARCHIVE_KEEP_DAYS") or "").strip()
    return ArchiveSettings(
        target=target,
        keep_days=_number(env, "RECOUP_ARCHIVE_KEEP_DAYS", 0, 1) if keep else None,
        snapshot_hours=_number(env, "RECOUP_ARCHIVE_SNAPSHOT_HOURS", SNAPSHOT_HOURS, 1),
        snapshot_bytes=_number(env, "RECOUP_ARCHIVE_SNAPSHOT_MB", SNAPSHOT_MB, 1) * 2**20,
        s3=s3_config(env),
    )
