"""What ended a command: its exit code by the one table (see `pipelines.cli`), and its one line."""

from __future__ import annotations

from pipelines import exit_codes
from pipelines.recoup.errors import AuthError, ConfigError, LockHeld
from pipelines.recoup.safety import mask_catalog


def exit_code_of(exc: BaseException) -> int:
    """The exit code for an exception that ended a command."""
    from pipelines.archive.restore import TargetExists

    if isinstance(exc, LockHeld):
        return exit_codes.LOCKED
    if isinstance(exc, ConfigError | AuthError | TargetExists | ValueError):
        return exit_codes.CONFIG
    if isinstance(exc, KeyboardInterrupt):
        return exit_codes.ABORTED
    return exit_codes.PARTIAL


def one_line(exc: BaseException, secrets: list[str]) -> str:
    """The first line of an error, with catalog passwords and every configured secret masked."""
    if isinstance(exc, OSError) and exc.strerror:  # e.g. a full disk: what and where
        text = f"{exc.strerror} ({exc.filename or 'while writing the working copy'})"
    else:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return mask_catalog(text)
