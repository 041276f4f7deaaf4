"""What keeps the key where it belongs: URLs checked before it is sent, and masked out of error texts."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, quote, quote_plus, urlsplit

import httpx

from pipelines.recoup.errors import ConfigError

_USERINFO = re.compile(r"//[^/?#]*@")


def is_loopback(host: str) -> bool:
    """True for localhost and any 127.0.0.0/8 or ::1 address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _shown(url: str) -> str:
    """A URL fit for a message: user names and passwords left out."""
    return repr(_USERINFO.sub("//***@", url)[:80])


def _split(url: str, name: str) -> tuple[SplitResult, str | None]:
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # the port raises when it is not a number
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        raise ConfigError(f"{name} is not a valid URL: {_shown(url)}") from None
    return parts, host


def check_base_url(url: str) -> str:
    """The API's base URL without a trailing slash, once it is safe to send the key to.

    Raises:
        ConfigError: not an http(s) URL, a user name or password in it (the key goes in a
            header), or plain http beyond loopback.
    """
    parts, host = _split(url, "RECOUP_BASE_URL")
    if "@" in parts.netloc:
        raise ConfigError("RECOUP_BASE_URL must not hold a user name or password (user:password@)")
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"RECOUP_BASE_URL must be an http(s) URL, got {_shown(url)}")
    if parts.scheme == "http" and not is_loopback(host):
        raise ConfigError(f"refusing to send the API key over plain http to {host}; use https")
    return url.rstrip("/")


def check_proxy(url: str) -> str:
    """An https proxy URL (it may hold the proxy's own user and password, never shown)."""
    parts, host = _split(url, "RECOUP_PROXY")
    if parts.scheme != "https" or not host:
        raise ConfigError(f"RECOUP_PROXY must be an https:// URL, got {_shown(url)}")
    return url


class Masker:
    """Replaces a secret, as it is and URL-encoded, by `***` in any text."""

    def __init__(self, secret: str) -> None:
        forms = (secret, quote(secret, safe=""), quote(secret), quote_plus(secret))
        self._forms = sorted({form for form in forms if form}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """`text` with every form of the secret replaced by `***`."""
        for form in self._forms:
            text = text.replace(form, "***")
        return text


# Every form libpq takes a password in: `password=x`, `password = x`, `password='a b'` (quotes and
# backslash escapes), `?password=x` in a URI, and `postgres[ql]://user:x@host`.
_QUOTED_PASSWORD = re.compile(r"(password\s*=\s*)'(?:[^'\\]|\\.)*'?", re.IGNORECASE)
_PLAIN_PASSWORD = re.compile(r"(password\s*=\s*)(?!\*\*\*)[^\s'\"&#]+", re.IGNORECASE)
_URI_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/?#@\s\"']*):[^@/\s\"']*@", re.IGNORECASE)


def mask_catalog(text: str) -> str:
    """`text` with every PostgreSQL password in it (a catalog string, or an error echoing one) as `***`."""
    text = _QUOTED_PASSWORD.sub(r"\1***", text)
    text = _PLAIN_PASSWORD.sub(r"\1***", text)
    return _URI_PASSWORD.sub(r"\1:***@", text)
