"""The typed settings `load` produces: one value per audience, none of them reading anything itself."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from pipelines import defaults
from pipelines.config.archive import ArchiveSettings
from pipelines.config.s3 import S3Config
from pipelines.recoup.errors import ConfigError
from pipelines.recoup.options import FetchOptions


@dataclass(frozen=True)
class ApiSettings:
    """How to talk to the Recoup API; its repr shows no secret."""

    api_key: str = field(repr=False)
    base_url: str = defaults.BASE_URL
    accounts: list[str] = field(default_factory=list)  # empty: the key's own account
    max_concurrency: int = defaults.MAX_CONCURRENCY
    max_rpm: int = defaults.MAX_RPM
    retry_attempts: int = defaults.RETRY_ATTEMPTS
    request_timeout: float = defaults.REQUEST_TIMEOUT
    max_response_bytes: int = defaults.MAX_RESPONSE_BYTES
    proxy: str | None = field(default=None, repr=False)  # may hold the proxy's password


@dataclass(frozen=True)
class FileSettings:
    """The warehouse as one DuckDB file (RECOUP_DB)."""

    db: Path
    lock_wait: float = float(defaults.LOCK_WAIT)
    memory_mb: int = defaults.MEMORY_MB  # RECOUP_MEMORY_MB: DuckDB's cap in any step; 0 = a quarter of RAM


@dataclass(frozen=True)
class LakeSettings:
    """The warehouse as a DuckLake (RECOUP_LAKE); a sync's working files live beside RECOUP_DB."""

    db: Path
    catalog: str  # what follows `ducklake:` in ATTACH, e.g. `postgres:dbname=recoup host=...`
    data_path: str  # a folder (absolute, ending in /) or s3://bucket/prefix
    password: str | None = field(default=None, repr=False)  # sources.recoup.lake_password; never shown
    lock_wait: float = float(defaults.LOCK_WAIT)
    memory_mb: int = defaults.MEMORY_MB  # RECOUP_MEMORY_MB, as for the file
    keep_days: int = defaults.LAKE_KEEP_DAYS  # maintenance expires snapshots older than this
    grace_minutes: int = defaults.LAKE_GRACE_MINUTES  # and deletes files unused this long
    s3: S3Config = field(default_factory=S3Config)  # for an s3:// data path

    def waiting(self, seconds: float) -> LakeSettings:
        """The same lake, waiting at least `seconds` for its lock."""
        return replace(self, lock_wait=max(self.lock_wait, seconds))


StorageSettings = FileSettings | LakeSettings


@dataclass(frozen=True)
class ReportSettings:
    """What `recoup report` writes, and over which period."""

    out_dir: Path = Path(defaults.REPORTS_DIR)
    days: int = defaults.REPORT_DAYS
    end: date | None = None  # None: today (UTC)
    include_tests: bool = True  # the headline is all spend: test runs are billed compute
    include_in_flight: bool = True  # their cost so far
    account_names: dict[str, str] = field(default_factory=dict)  # RECOUP_ACCOUNT_NAMES: id to a readable name


@dataclass(frozen=True)
class MonitorSettings:
    """Where a sync reports itself besides its output: a ping URL and a metrics file (both opt-in)."""

    ping_url: str | None = None  # RECOUP_PING_URL: /start, then the URL itself or /<exit code>
    metrics_file: Path | None = None  # RECOUP_METRICS_FILE: node_exporter's textfile format


@dataclass(frozen=True)
class Config:
    """Every setting of every command, read and checked once by `load`."""

    api: ApiSettings | None  # None without RECOUP_API_KEY: only `sync` needs one
    storage: StorageSettings
    fetch: FetchOptions = field(default_factory=FetchOptions)
    sync_seconds: int = defaults.SYNC_SECONDS  # the time budget of one sync; 0 = none
    report: ReportSettings = field(default_factory=ReportSettings)
    archive: ArchiveSettings = field(default_factory=lambda: ArchiveSettings(target=None))
    accounts: tuple[str, ...] = ()  # RECOUP_ACCOUNTS, read without a key too: `status` judges only these
    monitor: MonitorSettings = field(default_factory=MonitorSettings)

    @property
    def db(self) -> Path:
        """RECOUP_DB: the warehouse file, or the folder a lake's sync works in."""
        return self.storage.db

    @property
    def lake(self) -> LakeSettings | None:
        """The lake's settings when the warehouse is a lake."""
        return self.storage if isinstance(self.storage, LakeSettings) else None

    def secrets(self) -> list[str]:
        """Every secret value the settings hold: none may appear in a message."""
        values = [self.api.api_key, self.api.proxy or ""] if self.api else []
        if self.lake:
            values += [self.lake.password or "", *self.lake.s3.secrets()]
        values.append(self.monitor.ping_url or "")  # a ping URL's path is its token
        return [v for v in (*values, *self.archive.s3.secrets()) if v]

    def require_api(self) -> ApiSettings:
        """The API settings, or a ConfigError saying how to give the key."""
        if self.api is None:
            raise ConfigError(
                "RECOUP_API_KEY is not set (or set it as sources.recoup.api_key in .dlt/secrets.toml)"
            )
        return self.api
