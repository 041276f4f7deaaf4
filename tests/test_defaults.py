"""Each default is written once (pipelines/defaults.py); the code, the help, the docs agree with it."""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

import pytest

from pipelines import defaults
from pipelines.cli import main
from pipelines.config import database_path, load_settings
from pipelines.recoup.client import RecoupClient, RetryPolicy
from pipelines.recoup.fan_out import list_all
from pipelines.recoup.followups import fetch_followups
from pipelines.recoup.options import FetchOptions
from pipelines.recoup.transform import DEFAULT_LIMITS
from tests.conftest import ROOT

# The setting each default is for, as RECOUP_<NAME> and as a key of [sources.recoup].
SETTINGS = {
    "base_url": defaults.BASE_URL, "db": defaults.DB, "reports_dir": defaults.REPORTS_DIR,
    "demo_dir": defaults.DEMO_DIR, "max_concurrency": defaults.MAX_CONCURRENCY, "max_rpm": defaults.MAX_RPM,
    "retry_attempts": defaults.RETRY_ATTEMPTS, "sync_seconds": defaults.SYNC_SECONDS,
    "details": defaults.DETAILS, "store_payloads": defaults.STORE_PAYLOADS, "lock_wait": defaults.LOCK_WAIT, "memory_mb": defaults.MEMORY_MB,
    "request_timeout": defaults.REQUEST_TIMEOUT, "max_response_bytes": defaults.MAX_RESPONSE_BYTES,
    "max_run_bytes": defaults.MAX_RUN_BYTES, "max_field_bytes": defaults.MAX_FIELD_BYTES,
    "report_days": defaults.REPORT_DAYS, "lake_keep_days": defaults.LAKE_KEEP_DAYS,
    "lake_grace_minutes": defaults.LAKE_GRACE_MINUTES,
}  # fmt: skip


def _same(written: str, value: object) -> bool:
    if isinstance(value, bool):
        return written == str(value).lower()
    if isinstance(value, int | float):
        return float(written) == value
    return written.rstrip("/") == str(value)


def test_every_default_has_its_setting_named_here() -> None:
    public = {name.lower() for name in vars(defaults) if name.isupper()}
    assert public == set(SETTINGS)


CONFIGURATION = ROOT / "docs" / "configuration.md"


def _table_rows() -> dict[str, list[str]]:
    """The rows of docs/configuration.md's tables that name a RECOUP_* variable, by variable."""
    rows = {}
    for line in CONFIGURATION.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        found = re.fullmatch(r"`(RECOUP_[A-Z_]+)`", cells[0]) if line.startswith("|") else None
        if found:
            assert found.group(1) not in rows, f"{found.group(1)} has two rows in docs/configuration.md"
            rows[found.group(1)] = cells
    return rows


def test_the_configuration_table_shows_the_defaults() -> None:
    rows = _table_rows()
    for name, value in SETTINGS.items():
        row = rows.get(f"RECOUP_{name.upper()}")
        assert row, f"RECOUP_{name.upper()} is missing from the table of docs/configuration.md"
        written = re.match(r"`([^`]*)`", row[1])
        assert written, f"docs/configuration.md shows no default for RECOUP_{name.upper()}"
        assert _same(written.group(1), value), (
            f"docs/configuration.md shows {written.group(1)} for RECOUP_{name.upper()}, not {value}"
        )


def test_every_variable_the_code_reads_is_in_the_configuration_table() -> None:
    rows = _table_rows()
    named = set()
    for path in (ROOT / "pipelines").rglob("*.py"):
        named |= set(re.findall(r"\bRECOUP_[A-Z]+(?:_[A-Z]+)*\b(?!_)", path.read_text()))
    named |= {f"RECOUP_{name.upper()}" for name in SETTINGS}
    missing = sorted(named - set(rows))
    assert not missing, f"not in docs/configuration.md: {missing}"
    unknown = sorted(set(rows) - named)
    assert not unknown, f"docs/configuration.md describes variables the code never reads: {unknown}"


def test_the_configuration_table_names_the_dlt_key_of_each_setting() -> None:
    for variable, row in _table_rows().items():
        key = variable.removeprefix("RECOUP_").lower()
        dlt_name = row[2]
        if dlt_name == "—":  # read from the environment only
            assert not re.search(rf"_lookup\(\s*\"{key}\"", _config_sources()), variable
        else:
            assert dlt_name == f"`{key}`", f"{variable}: the dlt name is {key}, not {dlt_name}"
            assert re.search(rf"\"{key}\"", _config_sources()), f"{variable}: no dlt lookup of {key}"


def _config_sources() -> str:
    return "".join((ROOT / "pipelines" / "config" / name).read_text() for name in ("loader.py", "archive.py"))


def test_the_dlt_config_file_shows_the_defaults_without_setting_them() -> None:
    text = (ROOT / ".dlt" / "config.toml").read_text()
    assert tomllib.loads(text)["sources"].get("recoup", {}) == {}, "a value here would hide a changed default"
    shown = 0
    for name, written in re.findall(r"^# (\w+) = (.+?)\s*$", text, re.MULTILINE):
        if name in SETTINGS:
            assert tomllib.loads(f"v = {written}")["v"] == SETTINGS[name], name
            shown += 1
    assert shown >= 6


def test_the_code_falls_back_to_the_defaults() -> None:
    config = load_settings({"RECOUP_API_KEY": "key"})
    api = config.require_api()
    for name in ("base_url", "max_concurrency", "max_rpm", "retry_attempts", "request_timeout",
                 "max_response_bytes"):  # fmt: skip
        assert getattr(api, name) == SETTINGS[name], name
    assert config.sync_seconds == SETTINGS["sync_seconds"] and config.fetch.details == SETTINGS["details"]
    assert config.db == database_path({}) == Path(defaults.DB)
    assert (
        config.storage.lock_wait == defaults.LOCK_WAIT
        and config.fetch.keep_private is defaults.STORE_PAYLOADS
    )
    assert config.fetch.limits == DEFAULT_LIMITS
    assert config.fetch.limits.max_run_bytes == defaults.MAX_RUN_BYTES
    assert config.fetch.limits.max_field_bytes == defaults.MAX_FIELD_BYTES
    assert config.report.days == defaults.REPORT_DAYS and config.report.out_dir == Path(defaults.REPORTS_DIR)
    client = inspect.signature(RecoupClient).parameters
    assert client["max_concurrency"].default == defaults.MAX_CONCURRENCY
    assert client["max_rpm"].default == defaults.MAX_RPM
    assert client["timeout"].default == defaults.REQUEST_TIMEOUT
    assert client["max_response_bytes"].default == defaults.MAX_RESPONSE_BYTES
    assert RetryPolicy().attempts == defaults.RETRY_ATTEMPTS
    assert FetchOptions().details == defaults.DETAILS
    for function in (list_all, fetch_followups):
        assert inspect.signature(function).parameters["concurrency"].default == defaults.MAX_CONCURRENCY


def test_the_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sync", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for name in ("db", "max_concurrency", "max_rpm", "retry_attempts", "sync_seconds", "details"):
        assert f"RECOUP_{name.upper()} (default {SETTINGS[name]}" in shown, name


def test_each_step_gets_its_need_within_recoup_memory_mb() -> None:
    from pipelines.recoup.errors import ConfigError
    from pipelines.warehouse import step_limits

    assert step_limits("models")["memory_limit"] == "128MB"
    assert step_limits("load", large_bytes=10 * 2**20)["memory_limit"] == "178MB"
    assert step_limits("lake models")["memory_limit"] == "1024MB"
    assert step_limits("rebuild", runs=2_000_000)["memory_limit"] == "640MB"  # 128 + 256 per million runs
    assert step_limits("rebuild", 300, runs=2_000_000)["memory_limit"] == "300MB"
    capped = load_settings({"RECOUP_API_KEY": "key", "RECOUP_MEMORY_MB": "300"}).storage.memory_mb
    assert step_limits("lake models", capped)["memory_limit"] == "300MB"
    assert step_limits("models", capped)["memory_limit"] == "128MB"
    with pytest.raises(ConfigError, match=r"^RECOUP_MEMORY_MB must be at least 64, got 8$"):
        load_settings({"RECOUP_API_KEY": "key", "RECOUP_MEMORY_MB": "8"})
