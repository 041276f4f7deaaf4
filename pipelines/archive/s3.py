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
from datetime import UTC, datetime
from urllib.parse import quote

import duckdb
import httpx

from pipelines.config.s3 import S3Config
from pipelines.recoup.errors import ConfigError

# httpfs buffers one part of a multipart upload per file it writes, sized as the largest file
# allowed over the most parts (800 GB / 10,000 by default: a 76.5 MiB buffer, beyond a 128 MB
# budget). 64 GB over 10,000 parts buffers 6.4 MB, above S3's 5 MiB least part.
UPLOAD_MAX_FILE = "64GB"
HTTP_TIMEOUT_MS = 30_000  # one S3 request; httpfs retries a failed one a few times, then fails the statement
HTTP_RETRIES = 3


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
