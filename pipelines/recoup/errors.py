"""The small exception tree of recoup-runs; no message ever carries the API key."""

from enum import Enum


class ErrorKind(Enum):
    """Why a request failed for good, for decisions that must not read a message's text."""

    TRANSPORT = "transport"  # the connection failed: the host is unreachable or down
    TIMEOUT = "timeout"  # connected, but no complete answer within the request's deadline
    STOPPED = "stopped"  # ended by the sync stopping (a signal): not the API's failure
    API = "api"  # the API answered, with an error status or an unusable body
    DENIED = "denied"  # 403: the key may not read this account
    NOT_FOUND = "not found"  # retrieve mode no longer knows the run


class RecoupError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(RecoupError):
    """The configuration or command line is unusable; nothing was written."""


class AuthError(RecoupError):
    """The API refused the key (401): no account can be synced."""


class ApiError(RecoupError):
    """A request failed for good (after retries, or a status that is never retried)."""

    kind = ErrorKind.API

    def __init__(self, message: str, status: int | None = None, kind: ErrorKind | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind or type(self).kind


class AccessDenied(ApiError):
    """The key may not read this account (403)."""

    kind = ErrorKind.DENIED


class RunNotFound(ApiError):
    """Retrieve mode does not know this run id any more."""

    kind = ErrorKind.NOT_FOUND


class BadRunError(RecoupError):
    """One run object from the API cannot be stored as it is."""


class LockHeld(RecoupError):
    """Another sync holds the warehouse lock."""


class NoWarehouse(ConfigError):
    """There is no warehouse to read or rebuild yet (run a sync first)."""


class NothingListed(ConfigError):
    """No account could be listed: the key's own account could not be looked up (exit 2)."""

    def __init__(self, message: str, kind: ErrorKind = ErrorKind.API) -> None:
        super().__init__(message)
        self.kind = kind
