"""S3 the standard way: AWS_* variables become a DuckDB secret; objects are deleted with a signed request.

DuckDB's httpfs reads and writes `s3://` (the archive, the lake's data path). It takes its
credentials from a secret: from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and
AWS_SESSION_TOKEN, AWS_REGION) when they are set, else from a persistent secret the user made
with `CREATE PERSISTENT SECRET`. AWS_ENDPOINT_URL names an S3-compatible store; an `http://`
endpoint means no TLS. DuckDB cannot delete an object, so retention signs its own DELETE
(AWS Signature Version 4) with the same credentials.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import duckdb
import httpx

from pipelines.recoup.errors import ConfigError

# httpfs buffers one part of a multipart upload per file it writes, sized as the largest file
# allowed over the most parts (800 GB / 10,000 by default: a 76.5 MiB buffer, beyond a 128 MB
# budget). 64 GB over 10,000 parts buffers 6.4 MB, above S3's 5 MiB least part.
UPLOAD_MAX_FILE = "64GB"
HTTP_TIMEOUT_MS = 30_000  # one S3 request; httpfs retries a failed one a few times, then fails the statement
HTTP_RETRIES = 3


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


def load_httpfs(con: duckdb.DuckDBPyConnection) -> None:
    """Loads httpfs from its Python package (extensions cannot be downloaded here)."""
    try:
        con.execute("load httpfs")
    except duckdb.Error:
        from duckdb_extensions import import_extension

        import_extension("httpfs", con=con)
        con.execute("load httpfs")


def configure(con: duckdb.DuckDBPyConnection, s3: S3Config) -> None:
    """Makes `con` reach S3 with `s3`: a temporary secret from the AWS_* variables, or the persistent one.

    The secret lives in this connection's memory only; nothing of it is written anywhere.
    """
    load_httpfs(con)
    con.execute(f"set http_timeout = {HTTP_TIMEOUT_MS}")
    con.execute(f"set http_retries = {HTTP_RETRIES}")
    con.execute(f"set s3_uploader_max_filesize = '{UPLOAD_MAX_FILE}'")
    options = [f"region '{s3.region}'"]
    if s3.key_id and s3.secret:
        options += [f"key_id '{s3.key_id}'", f"secret '{s3.secret}'"]
        if s3.session_token:
            options.append(f"session_token '{s3.session_token}'")
    if s3.endpoint:  # an S3-compatible store: path-style addresses
        options += [f"endpoint '{s3.endpoint}'", "url_style 'path'", f"use_ssl {str(s3.use_ssl).lower()}"]
    if s3.key_id or s3.endpoint:
        con.execute(f"create or replace temporary secret recoup_s3 (type s3, {', '.join(options)})")


def redact(message: str, s3: S3Config) -> str:
    """`message` with every credential value replaced by `***`."""
    for value in s3.secrets():
        message = message.replace(value, "***")
    return message


def _sign(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def delete_object(client: httpx.Client, s3: S3Config, url: str) -> None:
    """Deletes one `s3://bucket/key` object with a request signed by AWS Signature Version 4.

    Raises:
        ConfigError: no AWS_* credentials (a persistent DuckDB secret cannot sign this request).
        httpx.HTTPError: the store refused or could not be reached.
    """
    if not (s3.key_id and s3.secret):
        raise ConfigError("deleting old archive objects needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if s3.endpoint:
        host, path = s3.endpoint, f"/{bucket}/{key}"
    else:
        host, path = f"{bucket}.s3.{s3.region}.amazonaws.com", f"/{key}"
    path = quote(path, safe="/-_.~")
    now = datetime.now(UTC)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    empty = hashlib.sha256(b"").hexdigest()
    headers = {"host": host, "x-amz-content-sha256": empty, "x-amz-date": stamp}
    if s3.session_token:
        headers["x-amz-security-token"] = s3.session_token
    names = ";".join(sorted(headers))
    canonical = "\n".join(
        ["DELETE", path, "", *(f"{k}:{headers[k]}" for k in sorted(headers)), "", names, empty]
    )
    scope = f"{day}/{s3.region}/s3/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signing = _sign(_sign(_sign(_sign(f"AWS4{s3.secret}".encode(), day), s3.region), "s3"), "aws4_request")
    signature = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={s3.key_id}/{scope}, SignedHeaders={names}, Signature={signature}"
    )
    scheme = "https" if s3.use_ssl else "http"
    response = client.delete(f"{scheme}://{host}{path}", headers=headers)
    if response.status_code not in (200, 204, 404):
        raise httpx.HTTPStatusError(f"DELETE {url}: HTTP {response.status_code}", request=response.request,
                                    response=response)  # fmt: skip
