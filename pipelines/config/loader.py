"""The one reader of configuration: RECOUP_* variables first, then dlt's own names and `.dlt/` files.

Nothing below the command line reads the environment: every command calls `load` once and
hands the typed settings down.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dlt

from pipelines import defaults
from pipelines.config.archive import archive_settings
from pipelines.config.s3 import s3_config
from pipelines.config.settings import (
    ApiSettings,
    Config,
    FileSettings,
    LakeSettings,
    MonitorSettings,
    ReportSettings,
    StorageSettings,
)
from pipelines.config.values import parse_flag, parse_integer
from pipelines.recoup.errors import ConfigError
from pipelines.recoup.options import DETAIL_MODES, FetchOptions
from pipelines.recoup.safety import check_base_url, check_proxy
from pipelines.recoup.transform import DEFAULT_LIMITS, Limits

MEMORY_FLOOR_MB = 64  # below this even a small load runs out
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


def _lookup(name: str, env: Mapping[str, str], secret: bool = False) -> Any:
    value = env.get(f"RECOUP_{name.upper()}")
    if value is not None:
        return value
    provider = dlt.secrets if secret else dlt.config
    try:
        return provider.get(f"sources.recoup.{name}")
    except Exception:  # a malformed .dlt file must not leak its contents in a traceback
        raise ConfigError(f"cannot read sources.recoup.{name} from .dlt/ configuration") from None


def _number(name: str, env: Mapping[str, str], default: int, minimum: int) -> int:
    return _integer(name, _lookup(name, env), default, minimum)


def _integer(name: str, value: Any, default: int, minimum: int) -> int:
    return parse_integer(f"RECOUP_{name.upper()}", value, default, minimum)


def _flag(name: str, value: Any, default: bool = False) -> bool:
    return parse_flag(f"RECOUP_{name.upper()}", value, default)


def parse_accounts(value: Any) -> list[str]:
    """Comma-separated account ids (or a list), each a UUID; duplicates dropped, order kept.

    `@path` reads the ids from a file instead (commas or new lines between them), for account
    lists longer than an environment variable may be.
    """
    if value is None:
        return []
    if isinstance(value, str) and value.strip().startswith("@"):
        path = Path(value.strip()[1:]).expanduser()
        try:
            value = path.read_text().replace("\n", ",")
        except OSError as exc:
            raise ConfigError(f"RECOUP_ACCOUNTS: cannot read {path}: {exc.strerror}") from None
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    accounts = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        if not _UUID.match(item):
            raise ConfigError(f"RECOUP_ACCOUNTS: {item[:60]!r} is not an account id (a UUID)")
        accounts.append(item.lower())
    return list(dict.fromkeys(accounts))


def database_path(env: Mapping[str, str] | None = None) -> Path:
    """The warehouse file: RECOUP_DB (or sources.recoup.db), else `data/recoup.duckdb`."""
    env = os.environ if env is None else env
    raw = _lookup("db", env) or defaults.DB
    return Path(str(raw)).expanduser()


def demo_folder(env: Mapping[str, str]) -> Path:
    """Where `recoup demo` works: RECOUP_DEMO_DIR, else `demo/` in the current folder (absolute)."""
    return Path(env.get("RECOUP_DEMO_DIR") or defaults.DEMO_DIR).expanduser().absolute()


def _api_settings(env: Mapping[str, str], accounts: tuple[str, ...]) -> ApiSettings | None:
    api_key = str(_lookup("api_key", env, secret=True) or "").strip()
    if not api_key:
        return None
    proxy = str(_lookup("proxy", env) or "").strip()
    return ApiSettings(
        api_key=api_key,
        base_url=check_base_url(str(_lookup("base_url", env) or defaults.BASE_URL).strip()),
        accounts=list(accounts),
        max_concurrency=_number("max_concurrency", env, defaults.MAX_CONCURRENCY, 1),
        max_rpm=_number("max_rpm", env, defaults.MAX_RPM, 0),
        retry_attempts=_number("retry_attempts", env, defaults.RETRY_ATTEMPTS, 1),
        request_timeout=float(_number("request_timeout", env, int(defaults.REQUEST_TIMEOUT), 1)),
        max_response_bytes=_number("max_response_bytes", env, defaults.MAX_RESPONSE_BYTES, 1),
        proxy=check_proxy(proxy) if proxy else None,
    )


def _fetch_options(env: Mapping[str, str]) -> FetchOptions:
    details = str(_lookup("details", env) or defaults.DETAILS).strip().lower()
    if details not in DETAIL_MODES:
        raise ConfigError(f"RECOUP_DETAILS must be one of {', '.join(DETAIL_MODES)}, got {details[:20]!r}")
    return FetchOptions(
        details=details,
        keep_private=_flag("store_payloads", _lookup("store_payloads", env), defaults.STORE_PAYLOADS),
        limits=Limits(
            max_run_bytes=_number("max_run_bytes", env, DEFAULT_LIMITS.max_run_bytes, 1),
            max_field_bytes=_number("max_field_bytes", env, DEFAULT_LIMITS.max_field_bytes, 1),
        ),
    )


def _storage_settings(env: Mapping[str, str]) -> StorageSettings:
    """The file at RECOUP_DB, or the lake RECOUP_LAKE names (checked; see pipelines/lake/)."""
    db = database_path(env)
    lock_wait = float(_number("lock_wait", env, defaults.LOCK_WAIT, 0))
    memory_mb = _number("memory_mb", env, defaults.MEMORY_MB, MEMORY_FLOOR_MB)
    lake = str(_lookup("lake", env) or "").strip() or None
    data = str(_lookup("lake_data", env) or "").strip() or None
    if not lake:
        return FileSettings(db, lock_wait, memory_mb)
    if not data:
        raise ConfigError("RECOUP_LAKE_DATA (a folder or s3://bucket/prefix) must be set with RECOUP_LAKE")
    if not lake.startswith("postgres:"):
        raise ConfigError("RECOUP_LAKE must be a PostgreSQL catalog: postgres:dbname=... host=... user=...")
    if "'" in lake + data:
        raise ConfigError("RECOUP_LAKE and RECOUP_LAKE_DATA cannot contain a single quote")
    if "://" not in data:  # a local folder: absolute, so every reader finds the same files
        data = str(Path(data).expanduser().resolve()) + "/"
    password = _lookup("lake_password", env, secret=True)
    return LakeSettings(
        db=db,
        catalog=lake,
        data_path=data,
        password=str(password) if password else None,
        lock_wait=lock_wait,
        memory_mb=memory_mb,
        keep_days=_number("lake_keep_days", env, defaults.LAKE_KEEP_DAYS, 0),
        grace_minutes=_number("lake_grace_minutes", env, defaults.LAKE_GRACE_MINUTES, 0),
        s3=s3_config(env),
    )


def read_account_names(path_text: str | None) -> dict[str, str]:
    """RECOUP_ACCOUNT_NAMES: a CSV file the operator keeps, `account_id,name` per line (a header is allowed).

    Raises:
        ConfigError: the file cannot be read, or a line is not an id and a name.
    """
    if not (path_text or "").strip():
        return {}
    path = Path(str(path_text).strip()).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"RECOUP_ACCOUNT_NAMES: cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    names: dict[str, str] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if (
            not row
            or not "".join(row).strip()
            or (number == 1 and [c.strip() for c in row[:2]] == ["account_id", "name"])
        ):
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise ConfigError(f"RECOUP_ACCOUNT_NAMES: {path} line {number} must be `account_id,name`")
        names[row[0].strip()] = row[1].strip()[:80]
    return names


def _report_settings(env: Mapping[str, str]) -> ReportSettings:
    """The report's settings, from the environment only (they have no dlt name)."""
    end_text = (env.get("RECOUP_REPORT_END") or "").strip()
    try:
        end = date.fromisoformat(end_text) if end_text else None
    except ValueError:
        raise ConfigError(f"RECOUP_REPORT_END must be a date (YYYY-MM-DD), got {end_text[:20]!r}") from None
    return ReportSettings(
        out_dir=Path(env.get("RECOUP_REPORTS_DIR") or defaults.REPORTS_DIR).expanduser(),
        days=parse_integer("RECOUP_REPORT_DAYS", env.get("RECOUP_REPORT_DAYS"), defaults.REPORT_DAYS, 1),
        end=end,
        include_tests=parse_flag("RECOUP_REPORT_INCLUDE_TESTS", env.get("RECOUP_REPORT_INCLUDE_TESTS"), True),
        include_in_flight=parse_flag(
            "RECOUP_REPORT_INCLUDE_IN_FLIGHT", env.get("RECOUP_REPORT_INCLUDE_IN_FLIGHT"), True
        ),
        account_names=read_account_names(env.get("RECOUP_ACCOUNT_NAMES")),
    )


def load(env: Mapping[str, str] | None = None) -> Config:
    """Reads and checks every setting of every command, once.

    RECOUP_* variables come first, then dlt's own names and the `.dlt/` files.

    Raises:
        ConfigError: a setting is unusable; the message names it, in one line.
    """
    env = os.environ if env is None else env
    accounts = tuple(parse_accounts(_lookup("accounts", env)))
    return Config(
        api=_api_settings(env, accounts),
        storage=_storage_settings(env),
        fetch=_fetch_options(env),
        sync_seconds=_number("sync_seconds", env, defaults.SYNC_SECONDS, 0),
        report=_report_settings(env),
        archive=archive_settings(env),
        accounts=accounts,
        monitor=_monitor_settings(env),
    )


def _monitor_settings(env: Mapping[str, str]) -> MonitorSettings:
    ping = str(_lookup("ping_url", env, secret=True) or "").strip()
    if ping:
        parts = urlsplit(ping)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"RECOUP_PING_URL must be an http(s) URL, got one with scheme {parts.scheme[:10]!r}"
            )
    metrics = str(_lookup("metrics_file", env) or "").strip()
    path = Path(metrics).expanduser() if metrics else None
    if path is not None and not path.parent.is_dir():
        raise ConfigError(f"RECOUP_METRICS_FILE: the folder {path.parent} does not exist")
    return MonitorSettings(ping_url=ping.rstrip("/") or None, metrics_file=path)


def load_settings(env: Mapping[str, str] | None = None) -> Config:
    """The settings of a sync: `load`, and a ConfigError when there is no API key."""
    config = load(env)
    config.require_api()
    return config
