"""Hostile servers on a raw socket: dripped headers, a stop in flight, and gzip bombs."""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_recoup, start_recoup, wait_until

ACCOUNT = "6f7c1a3e-0000-4000-8000-000000000001"
MB = 2**20


class RawServer:
    """A TCP server on 127.0.0.1 that hands each connection, its request read, to `answer`."""

    def __init__(self, answer: Callable[[socket.socket], None]) -> None:
        self._answer = answer
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.requests = 0
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            request = b""
            while b"\r\n\r\n" not in request:
                data = conn.recv(65536)
                if not data:
                    return
                request += data
            self.requests += 1
            self._answer(conn)

    def close(self) -> None:
        self.closed.set()
        self._listener.close()


@contextlib.contextmanager
def raw_server(answer: Callable[[socket.socket], None]) -> Iterator[RawServer]:
    server = RawServer(answer)
    try:
        yield server
    finally:
        server.close()


def _drip_headers(closed: threading.Event) -> Callable[[socket.socket], None]:
    """Sends a status line, then one byte of an endless header every 50 ms: no read ever times out."""

    def answer(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
        while not closed.is_set():
            conn.sendall(b"a")
            time.sleep(0.05)

    return answer


def _env(url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"RECOUP_API_KEY": "recoup_sk_test", "RECOUP_BASE_URL": url, "RECOUP_ACCOUNTS": ACCOUNT,
            "RECOUP_DB": str(tmp_path / "recoup.duckdb"), "RECOUP_MAX_RPM": "0", **extra}  # fmt: skip


@pytest.mark.slow
def test_a_server_dripping_its_headers_fails_the_request_at_its_deadline(tmp_path: Path) -> None:
    closed = threading.Event()
    with raw_server(_drip_headers(closed)) as server:
        env = _env(server.url, tmp_path, RECOUP_REQUEST_TIMEOUT="1", RECOUP_RETRY_ATTEMPTS="2")
        try:
            done = run_recoup(env, "sync", timeout=60)  # hung: TimeoutExpired fails the test
        finally:
            closed.set()
    assert done.returncode == 2, done.stderr
    assert "no complete answer within 1 s (connect, headers and body) (gave up after 2 tries)" in done.stdout
    assert server.requests == 2


@pytest.mark.slow
def test_sigterm_ends_a_sync_whose_request_is_stuck_in_dripped_headers(tmp_path: Path) -> None:
    closed = threading.Event()
    with raw_server(_drip_headers(closed)) as server:
        sync = start_recoup(_env(server.url, tmp_path, RECOUP_REQUEST_TIMEOUT="600"), "sync")
        try:
            wait_until(lambda: server.requests, "the request in flight")
            sync.send_signal(signal.SIGTERM)
            stdout, stderr = sync.communicate(timeout=30)  # the promise: SIGTERM ends a sync within 30 s
        finally:
            sync.kill()
            closed.set()
    assert sync.returncode == 2, stderr
    assert "interrupted: the sync is stopping" in stdout


def _gzip(data: Iterator[bytes]) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return b"".join(packer.compress(chunk) for chunk in data) + packer.flush()


def _zeros(megabytes: int) -> Iterator[bytes]:
    block = bytes(MB)
    return (block for _ in range(megabytes))


def _answer_with(body: bytes, encoding: str) -> Callable[[socket.socket], None]:
    def answer(conn: socket.socket) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: {encoding}\r\n"
        conn.sendall(f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)

    return answer


# One request in a process of its own, so that its peak memory is its own.
FETCH = """
import json, resource, sys
from pipelines.recoup.client import RecoupClient, RetryPolicy
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with RecoupClient(sys.argv[1], "recoup_sk_test", max_response_bytes=2**20,
                  retry=RetryPolicy(attempts=3, backoff=0.001, max_wait=0.01)) as client:
    try:
        client.fetch_runs(None)
        error = None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps({"error": error, "grown_mb": grown, "requests": client.requests}))
"""


def _fetch(url: str) -> dict:
    done = subprocess.run([sys.executable, "-c", FETCH, url], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=True)  # fmt: skip
    return json.loads(done.stdout)


@pytest.mark.slow
def test_gzip_inside_gzip_is_refused_at_once_and_never_inflated(tmp_path: Path) -> None:
    bomb = _gzip(iter([_gzip(_zeros(256))]))  # 256 MB of zeros in a few hundred bytes
    with raw_server(_answer_with(bomb, "gzip, gzip")) as server:
        fetched = _fetch(server.url)
    assert fetched["error"] == (
        "ApiError: account own: list: the answer's Content-Encoding 'gzip, gzip' is refused"
        " (only gzip, once, is read)"
    )
    assert fetched["requests"] == 1, "not retried: the same answer would come again"
    assert fetched["grown_mb"] < 16, fetched


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["br", "compress", "zstd"])
def test_an_unknown_content_encoding_is_refused_by_name(encoding: str) -> None:
    with raw_server(_answer_with(b"\x00" * 64, encoding)) as server:
        fetched = _fetch(server.url)
    assert fetched["error"] == (
        f"ApiError: account own: list: the answer's Content-Encoding '{encoding}' is refused"
        " (only gzip, once, is read)"
    )


@pytest.mark.slow
def test_the_size_cap_counts_the_decoded_bytes_of_a_gzip_answer(tmp_path: Path) -> None:
    pad = b"x" * MB
    bomb = _gzip(
        itertools.chain([b'{"status":"success","runs":[],"pad":"'], (pad for _ in range(256)), [b'"}'])
    )
    with raw_server(_answer_with(bomb, "gzip")) as server:
        fetched = _fetch(server.url)
    assert fetched["error"] == (
        "ApiError: account own: list: the answer is larger than 1,048,576 bytes (RECOUP_MAX_RESPONSE_BYTES)"
    )
    assert fetched["grown_mb"] < 16, fetched
    small = _gzip(iter([b'{"status":"success","runs":[]}']))
    with raw_server(_answer_with(small, "gzip")) as server:
        assert _fetch(server.url) == {"error": None, "grown_mb": pytest.approx(0, abs=16), "requests": 1}
