"""The HTTP client of the Recoup API: httpx for transport, tenacity for narrow, capped retries."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    stop_when_event_set,
)

from pipelines import defaults
from pipelines.recoup.errors import (
    AccessDenied,
    ApiError,
    AuthError,
    BadRunError,
    ConfigError,
    RunNotFound,
)
from pipelines.recoup.exchange import ACCEPTED_ENCODING, Retryable, deadline_transport, read_answer
from pipelines.recoup.parse import NotJson, loads
from pipelines.recoup.safety import Masker, check_base_url, check_proxy
from pipelines.recoup.settings import ACCOUNT_PATH, LIST_LIMIT, RUNS_PATH
from pipelines.recoup.transform import UnreadableRun


@dataclass
class RetryPolicy:
    """How hard to try. `backoff` is the first wait in seconds; tests set it near zero."""

    attempts: int = defaults.RETRY_ATTEMPTS
    max_seconds: float = 120.0
    backoff: float = 0.5
    max_wait: float = 30.0


class Answer(NamedTuple):
    """A 200 answer: its JSON body (None when its digest was the one already known) and digest."""

    body: dict[str, Any] | None
    digest: str


class RunsPage(NamedTuple):
    """A list answer: its runs (None when it is the page already read) and its digest."""

    runs: list[Any] | None
    digest: str


def page_digest(content: bytes) -> str:
    """Names a list answer by its bytes.

    SHA-256 runs in hardware here, at twice blake2b's speed; hashlib releases the GIL on large
    inputs.
    """
    return hashlib.sha256(content).hexdigest()[:32]


class RateLimiter:
    """Spaces requests evenly so that no minute holds more than `per_minute` of them."""

    def __init__(self, per_minute: int) -> None:
        self._interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Blocks until this request's slot comes; returns at once without a cap."""
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            time.sleep(slot - now)


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


class RecoupClient:
    """Talks to one Recoup API base URL with one key.

    Args:
        base_url: e.g. `https://recoup-api.vercel.app`; plain http only to loopback.
        api_key: sent as `x-api-key`; never logged, masked out of every error.
        transport: an httpx transport, for tests or custom networking.
        max_concurrency: requests in flight at once, across all threads.
        max_rpm: requests per minute across the whole client; 0 means no cap.
        retry: the retry policy.
        timeout: seconds one request may take in all (connect and every read); a request that
            takes longer is a failed attempt, retried like any timeout.
        max_response_bytes: the largest answer read; a larger one fails its request.
        proxy: an https proxy for https base URLs. Proxies named in the environment
            (HTTP_PROXY, ALL_PROXY, ...) are never used: the key goes where the settings say.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        transport: httpx.BaseTransport | None = None,
        max_concurrency: int = defaults.MAX_CONCURRENCY,
        max_rpm: int = defaults.MAX_RPM,
        retry: RetryPolicy | None = None,
        timeout: float = defaults.REQUEST_TIMEOUT,
        max_response_bytes: int = defaults.MAX_RESPONSE_BYTES,
        proxy: str | None = None,
    ) -> None:
        self.base_url = check_base_url(base_url)
        if not api_key or not api_key.strip():
            raise ConfigError("RECOUP_API_KEY is empty")
        https = urlsplit(self.base_url).scheme == "https"
        proxy = check_proxy(proxy) if proxy and https else None  # never for plain http (loopback)
        self.retry = retry or RetryPolicy()
        self.timeout, self.max_response_bytes = timeout, max_response_bytes
        self._mask = Masker(api_key.strip())
        self._slots = threading.BoundedSemaphore(max(1, max_concurrency))
        self._limiter = RateLimiter(max_rpm)
        self._stats_lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.stop = threading.Event()  # once set, no failed request is tried again (the sync is ending)
        limits = httpx.Limits(
            max_connections=max(1, max_concurrency), max_keepalive_connections=max(1, max_concurrency)
        )
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={
                "x-api-key": api_key.strip(),
                "User-Agent": "recoup-runs/0.1",
                "Accept-Encoding": ACCEPTED_ENCODING,
            },
            # The default transport's sockets wait under the whole request's deadline (exchange.py).
            transport=transport or deadline_transport(proxy, limits),
            trust_env=False,
            # Per read and per connect; `timeout` bounds the whole request in `read_answer`.
            timeout=httpx.Timeout(min(timeout, 30.0), connect=min(timeout, 10.0)),
            follow_redirects=False,
        )

    def close(self) -> None:
        """Closes the connections of the underlying HTTP client."""
        self._http.close()

    def __enter__(self) -> RecoupClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public calls ----------------------------------------------------------------------

    def fetch_own_account(self) -> str:
        """The account id of the key itself (`GET /api/accounts/id`)."""
        body, _ = self._get(ACCOUNT_PATH, {}, "own account")
        assert body is not None  # None only for a known digest
        account = body.get("accountId")
        if not isinstance(account, str) or not account:
            raise ApiError("own account: the answer has no accountId")
        return account

    def fetch_runs(self, account: str | None, known_digest: str | None = None) -> RunsPage:
        """The newest runs of `account` (None: the key's own), at most LIST_LIMIT.

        An answer whose bytes have `known_digest` is the page already read: it is not parsed,
        and `runs` is None.
        """
        params: dict[str, Any] = {"limit": LIST_LIMIT}
        if account is not None:
            params["account_id"] = account  # httpx URL-encodes it
        body, digest = self._get(RUNS_PATH, params, f"account {account or 'own'}: list", known_digest)
        return RunsPage(None if body is None else body["runs"], digest)

    def fetch_run(self, run_id: str) -> dict[str, Any]:
        """One run by id (retrieve mode).

        Raises:
            RunNotFound: the API no longer knows it.
            BadRunError: its JSON could be read but not held (see `parse`).
        """
        body, _ = self._get(RUNS_PATH, {"runId": run_id}, f"run {run_id[:64]}: retrieve")
        assert body is not None  # None only for a known digest
        run = body["runs"][0] if body["runs"] else None
        if isinstance(run, UnreadableRun):
            raise BadRunError(f"run {run_id[:64]}: {run.reason}")
        if not isinstance(run, dict):
            raise RunNotFound(f"run {run_id[:64]}: retrieve: empty answer", 200)
        return run

    # -- plumbing --------------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, Retryable) and error.retry_after is not None:
            return min(error.retry_after, self.retry.max_wait)
        ceiling = min(self.retry.max_wait, self.retry.backoff * 2 ** (state.attempt_number - 1))
        return random.uniform(ceiling / 2, ceiling)  # jitter keeps many clients apart

    def _count_retry(self, state: RetryCallState) -> None:
        with self._stats_lock:
            self.retries += 1

    def _get(self, path: str, params: dict[str, Any], what: str, known_digest: str | None = None) -> Answer:
        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, Retryable)),
            stop=stop_after_attempt(self.retry.attempts)
            | stop_after_delay(self.retry.max_seconds)
            | stop_when_event_set(self.stop),
            wait=self._wait,
            before_sleep=self._count_retry,
            reraise=True,
        )
        try:
            return retrying(self._get_once, path, params, what, known_digest)
        except Retryable as exc:
            tries = retrying.statistics.get("attempt_number", 1)
            raise ApiError(f"{what}: {exc} (gave up after {tries} tries)", exc.status, exc.kind) from None

    def _get_once(
        self, path: str, params: dict[str, Any], what: str, known_digest: str | None = None
    ) -> Answer:
        self._limiter.wait()
        with self._stats_lock:
            self.requests += 1
        with self._slots:
            status, headers, content = read_answer(
                self._http, path, params, what, self.timeout, self.max_response_bytes, self.stop
            )
        digest = page_digest(content) if status == 200 else ""
        if known_digest and digest == known_digest:
            return Answer(None, digest)  # the same bytes as a page already read in full
        try:
            body = loads(content)
        except NotJson:
            body = None
        message = (body.get("error") or body.get("message")) if isinstance(body, dict) else None
        # The API may echo the key in an error; nothing below may carry it further.
        message = self._mask(str(message)[:300]) if message is not None else None
        if status == 401:
            raise AuthError(f"{what}: the API key was refused (401 {message or 'Unauthorized'})")
        if status == 403:
            raise AccessDenied(f"{what}: access denied (403)", status)
        if status == 404 or (status == 500 and message == "Not found" and "runId" in params):
            raise RunNotFound(f"{what}: not found ({status})", status)
        if status == 429 or status >= 500:
            raise Retryable(
                f"HTTP {status}" + (f" {message}" if message else ""), status, _retry_after(headers)
            )
        if status != 200:
            raise ApiError(f"{what}: HTTP {status}" + (f" {message}" if message else ""), status)
        if not isinstance(body, dict):
            raise Retryable("the answer is not JSON", status)
        if body.get("status") == "error":  # an upstream failure answered with 200
            raise Retryable("HTTP 200 with status error" + (f" {message}" if message else ""), status)
        if "runs" in body and not isinstance(body["runs"], list):
            raise Retryable("the answer's runs is not a list", status)
        if path == RUNS_PATH and "runs" not in body:
            raise Retryable("the answer has no runs", status)
        return Answer(body, digest)
