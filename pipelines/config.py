"""Settings of a sync: RECOUP_* variables first, then dlt's own names and `.dlt/` files."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt

from pipelines import defaults
from pipelines.config_values import parse_flag, parse_integer
from pipelines.recoup.errors import ConfigError
from pipelines.recoup.fetch import DETAIL_MODES
from pipelines.recoup.safety import check_base_url, check_proxy
from pipelines.recoup.transform import DEFAULT_LIMITS, Limits

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


@dataclass(frozen=True)
class Settings:
    """Every setting of one sync, read and checked by `load_settings`; its repr shows no secret."""

    api_key: str
    base_url: str
    accounts: list[str]  # empty: the key's own account
    db: Path
    max_concurrency: int
    max_rpm: int
    details: str
    keep_private: bool
    lock_wait: float
    retry_attempts: int = defaults.RETRY_ATTEMPTS
    sync_seconds: int = defaults.SYNC_SECONDS  # the time budget of one sync; 0 = none
    limits: Limits = DEFAULT_LIMITS
    request_timeout: float = defaults.REQUEST_TIMEOUT
    max_response_bytes: int = defaults.MAX_RESPONSE_BYTES
    proxy: str | None = None  # may hold the proxy's password: never shown
    lake: str | None = None  # RECOUP_LAKE: a DuckLake catalog instead of the RECOUP_DB file
    lake_data: str | None = None  # RECOUP_LAKE_DATA: the lake's data folder or s3:// prefix
    lake_password: str | None = None  # sources.recoup.lake_password in .dlt/secrets.toml; never shown

    def __repr__(self) -> str:  # never show the key, even in a traceback
        return f"Settings(base_url={self.base_url!r}, accounts={len(self.accounts)}, db={str(self.db)!r})"


def _lookup(name: str, env: Mapping[str, str], secret: bool = False) -> Any:
    value = env.get(f"RECOUP_{name.upper()}")
    if value is not None:
        return value
    provider = dlt.secrets if secret else dlt.config
    try:
        return provider.get(f"sources.recoup.{name}")
    except Exception:  # a malformed .dlt file must not leak its contents in a traceback
        raise ConfigError(f"cannot read sources.recoup.{name} from .dlt/ configuration") from None


def _integer(name: str, value: Any, default: int, minimum: int) -> int:
    try:
        return parse_integer(f"RECOUP_{name.upper()}", value, default, minimum)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _flag(name: str, value: Any, default: bool = False) -> bool:
    try:
        return parse_flag(f"RECOUP_{name.upper()}", value, default)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


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


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Reads and checks every setting; raises ConfigError with a one-line message."""
    env = os.environ if env is None else env
    api_key = str(_lookup("api_key", env, secret=True) or "").strip()
    if not api_key:
        raise ConfigError(
            "RECOUP_API_KEY is not set (or set it as sources.recoup.api_key in .dlt/secrets.toml)"
        )
    details = str(_lookup("details", env) or defaults.DETAILS).strip().lower()
    if details not in DETAIL_MODES:
        raise ConfigError(f"RECOUP_DETAILS must be one of {', '.join(DETAIL_MODES)}, got {details[:20]!r}")
    lock_wait = _integer("lock_wait", _lookup("lock_wait", env), defaults.LOCK_WAIT, 0)
    proxy = str(_lookup("proxy", env) or "").strip()

    def number(name: str, default: int, minimum: int) -> int:
        return _integer(name, _lookup(name, env), default, minimum)

    return Settings(
        api_key=api_key,
        base_url=check_base_url(str(_lookup("base_url", env) or defaults.BASE_URL).strip()),
        accounts=parse_accounts(_lookup("accounts", env)),
        db=database_path(env),
        max_concurrency=number("max_concurrency", defaults.MAX_CONCURRENCY, 1),
        max_rpm=number("max_rpm", defaults.MAX_RPM, 0),
        details=details,
        keep_private=_flag("store_payloads", _lookup("store_payloads", env), defaults.STORE_PAYLOADS),
        lock_wait=float(lock_wait),
        retry_attempts=number("retry_attempts", defaults.RETRY_ATTEMPTS, 1),
        sync_seconds=number("sync_seconds", defaults.SYNC_SECONDS, 0),
        limits=Limits(
            max_run_bytes=number("max_run_bytes", DEFAULT_LIMITS.max_run_bytes, 1),
            max_field_bytes=number("max_field_bytes", DEFAULT_LIMITS.max_field_bytes, 1),
        ),
        request_timeout=float(number("request_timeout", int(defaults.REQUEST_TIMEOUT), 1)),
        max_response_bytes=number("max_response_bytes", defaults.MAX_RESPONSE_BYTES, 1),
        proxy=check_proxy(proxy) if proxy else None,
        **lake_settings(env),
    )


def lake_settings(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """RECOUP_LAKE, RECOUP_LAKE_DATA and the catalog password, checked (see pipelines/lake/)."""
    env = os.environ if env is None else env
    lake = str(_lookup("lake", env) or "").strip() or None
    data = str(_lookup("lake_data", env) or "").strip() or None
    if lake and not data:
        raise ConfigError("RECOUP_LAKE_DATA (a folder or s3://bucket/prefix) must be set with RECOUP_LAKE")
    if lake and not lake.startswith("postgres:"):
        raise ConfigError("RECOUP_LAKE must be a PostgreSQL catalog: postgres:dbname=... host=... user=...")
    if lake and data and "'" in lake + data:
        raise ConfigError("RECOUP_LAKE and RECOUP_LAKE_DATA cannot contain a single quote")
    if data and "://" not in data:  # a local folder: absolute, so every reader finds the same files
        data = str(Path(data).expanduser().resolve()) + "/"
    password = _lookup("lake_password", env, secret=True) if lake else None
    return {"lake": lake, "lake_data": data, "lake_password": str(password) if password else None}
