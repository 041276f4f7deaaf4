"""One HTTP exchange within a deadline and a size cap: connect, headers and body, cut short by a stop.

httpx's timeouts count per socket operation, so a server that drips its headers a byte at a time
never trips them. The transport here runs every socket wait in short slices against the
exchange's own deadline and the client's stop event (SIGTERM sets it), so a request in flight
ends when either comes. The body is read raw and decoded here, because httpx decodes each
chunk whole: 3 KB of gzip inside gzip became gigabytes before any cap could look at them.
"""

from __future__ import annotations

import math
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpcore
import httpx

from pipelines.recoup.errors import ApiError, ErrorKind

T = TypeVar("T")
SLICE = 0.25  # seconds between two looks at the deadline and the stop event while a socket waits
TRANSPORT = ErrorKind.TRANSPORT  # the connection failed: unreachable or down
ACCEPTED_ENCODING = "gzip"  # what the client asks for, and the only encoding it decodes


class Retryable(Exception):
    """A failure worth another try: 5xx, 429, a broken transport or an unreadable body."""

    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None,
        kind: ErrorKind = ErrorKind.API,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.retry_after, self.kind = status, retry_after, kind


class _Exchange(threading.local):
    """The deadline and stop event of the request this thread is making (httpx runs in the caller's thread)."""

    deadline: float = math.inf
    stop: threading.Event | None = None


_current = _Exchange()


def _patiently(call: Callable[[float | None], T], timeout: float | None, late: type[Exception]) -> T:
    """`call(t)` with a socket timeout `t`, in slices, until it answers or gives up.

    It gives up when its own timeout passes, the exchange's deadline passes or the stop is set.
    """
    stop = _current.stop
    if stop is None:  # not inside `exchange`: httpx's own timeout alone
        return call(timeout)
    own = time.monotonic() + timeout if timeout is not None else math.inf
    while True:
        if stop.is_set():
            raise httpcore.ReadError("the sync is stopping")
        left = min(own, _current.deadline) - time.monotonic()
        if left <= 0:
            raise late("no answer in time")
        try:
            return call(min(left, SLICE))
        except (httpcore.ReadTimeout, httpcore.ConnectTimeout):
            continue  # nothing came in this slice: look at the deadline and the stop again


def _within(timeout: float | None) -> float | None:
    """`timeout`, shortened to what is left of the exchange's deadline."""
    if _current.stop is None:
        return timeout
    left = max(0.001, _current.deadline - time.monotonic())
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _patiently(lambda t: self._inner.read(max_bytes, t), timeout, httpcore.ReadTimeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _within(timeout))  # not in slices: a timed-out write may be half sent

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> _Stream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, _within(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> _Stream:  # fmt: skip
        return _Stream(self._inner.connect_tcp(host, port, _within(timeout), local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> _Stream:
        return _Stream(self._inner.connect_unix_socket(path, _within(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def deadline_transport(proxy: str | None, limits: httpx.Limits) -> httpx.HTTPTransport:
    """The HTTP transport of httpx, its sockets waiting under `exchange`'s deadline and stop."""
    transport = httpx.HTTPTransport(proxy=proxy, limits=limits, trust_env=False)
    pool = transport._pool  # httpx builds the pool; only its network backend is ours
    pool._network_backend = _Backend(pool._network_backend)
    return transport


@contextmanager
def exchange(deadline: float, stop: threading.Event) -> Iterator[None]:
    """Every socket wait of this thread's request inside the block ends by `deadline` or `stop`."""
    _current.deadline, _current.stop = deadline, stop
    try:
        yield
    finally:
        _current.deadline, _current.stop = math.inf, None


def decoder(header: str | None, what: str) -> Callable[[bytes, int], bytes]:
    """Decodes a body of `Content-Encoding: header`: `decode(raw, room)` gives at most `room` bytes.

    Raises:
        ApiError: stacked or unknown encodings (`gzip, gzip`, `br`): refused, not retried.
    """
    codings = [
        c.strip().lower() for c in (header or "").split(",") if c.strip().lower() not in ("", "identity")
    ]
    if not codings:
        return lambda raw, room: raw
    if len(codings) > 1 or codings[0] not in ("gzip", "x-gzip"):
        raise ApiError(f"{what}: the answer's Content-Encoding {header[:60]!r} is refused"  # type: ignore[index]
                       f" (only {ACCEPTED_ENCODING}, once, is read)")  # fmt: skip
    unzip = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def gunzip(raw: bytes, room: int) -> bytes:
        try:
            out = unzip.decompress(raw, room)
        except zlib.error:
            raise Retryable("the answer's gzip is broken") from None
        if unzip.unconsumed_tail:  # more would come than there is room for: over the cap
            return out + b"\0"
        return out

    return gunzip


def read_answer(
    http: httpx.Client, path: str, params: dict[str, Any], what: str,
    timeout: float, max_bytes: int, stop: threading.Event,
) -> tuple[int, httpx.Headers, bytes]:  # fmt: skip
    """One request: its status, headers and whole decoded body, within `timeout` and `max_bytes`.

    Raises:
        Retryable: no complete answer in time, a broken transport, the sync stopping.
        ApiError: the decoded answer is larger than `max_bytes`, or its encoding is refused.
    """
    deadline = time.monotonic() + timeout
    late = Retryable(
        f"no complete answer within {timeout:g} s (connect, headers and body)", kind=ErrorKind.TIMEOUT
    )
    too_large = ApiError(f"{what}: the answer is larger than {max_bytes:,} bytes (RECOUP_MAX_RESPONSE_BYTES)")
    try:
        with exchange(deadline, stop), http.stream("GET", path, params=params) as response:
            decode = decoder(response.headers.get("Content-Encoding"), what)
            chunks, size = [], 0
            for raw in response.iter_raw():
                chunk = decode(raw, max_bytes - size + 1)
                size += len(chunk)
                if size > max_bytes:
                    raise too_large
                if time.monotonic() > deadline:
                    raise late
                chunks.append(chunk)
    except httpx.TransportError as exc:
        if stop.is_set():
            raise Retryable("interrupted: the sync is stopping", kind=ErrorKind.STOPPED) from None
        raise (
            late
            if time.monotonic() > deadline
            else Retryable(f"transport error ({type(exc).__name__})", kind=TRANSPORT)
        ) from None
    return response.status_code, response.headers, b"".join(chunks)
