"""The small exception tree of recoup-runs; no message ever carries the API key."""


class RecoupError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(RecoupError):
    """The configuration or command line is unusable; nothing was written."""


class AuthError(RecoupError):
    """The API refused the key (401): no account can be synced."""


class ApiError(RecoupError):
    """A request failed for good (after retries, or a status that is never retried)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AccessDenied(ApiError):
    """The key may not read this account (403)."""


class RunNotFound(ApiError):
    """Retrieve mode does not know this run id any more."""


class BadRunError(RecoupError):
    """One run object from the API cannot be stored as it is."""


class LockHeld(RecoupError):
    """Another sync holds the warehouse lock."""
