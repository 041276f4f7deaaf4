"""S3 connection settings from the standard AWS_* variables, for the archive and the lake alike."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from pipelines.recoup.errors import ConfigError


@dataclass(frozen=True)
class S3Config:
    """S3 connection settings from the environment; its repr shows no secret."""

    key_id: str | None = None
    secret: str | None = None
    session_token: str | None = None
    region: str = "us-east-1"
    endpoint: str | None = None  # host[:port] of an S3-compatible store
    use_ssl: bool = True

    def secrets(self) -> list[str]:
        """The values that must never appear in a message, a file or a table."""
        return [v for v in (self.key_id, self.secret, self.session_token) if v]

    def __repr__(self) -> str:
        return f"S3Config(region={self.region!r}, endpoint={self.endpoint!r}, key={'set' if self.key_id else 'unset'})"


def s3_config(env: Mapping[str, str]) -> S3Config:
    """The S3 settings of the standard AWS_* variables in `env`.

    Raises:
        ConfigError: a key without its secret (or the other way round), or an endpoint that is no URL.
    """
    key_id = (env.get("AWS_ACCESS_KEY_ID") or "").strip() or None
    secret = (env.get("AWS_SECRET_ACCESS_KEY") or "").strip() or None
    if bool(key_id) != bool(secret):
        raise ConfigError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together")
    for value in (key_id, secret, env.get("AWS_SESSION_TOKEN")):
        if value and "'" in value:
            raise ConfigError("the AWS_* credentials cannot contain a single quote")
    region = (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip() or "us-east-1"
    endpoint_url = (env.get("AWS_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL_S3") or "").strip()
    endpoint, use_ssl = None, True
    if endpoint_url:
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or "'" in endpoint_url:
            raise ConfigError(
                f"AWS_ENDPOINT_URL must be http://host[:port] or https://..., got {endpoint_url[:80]!r}"
            )
        endpoint, use_ssl = parts.netloc.rpartition("@")[2], parts.scheme == "https"
    token = (env.get("AWS_SESSION_TOKEN") or "").strip() or None
    return S3Config(key_id, secret, token, region, endpoint, use_ssl)
