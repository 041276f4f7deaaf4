"""A real HTTP server on loopback that answers like the Recoup API, backed by a World."""

from __future__ import annotations

import math
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import orjson

from pipelines.emulator.render import to_list_item, to_retrieved
from pipelines.emulator.world import World

_HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>502: BAD_GATEWAY</title></head>"
    b"<body><h1>An error occurred with this application.</h1></body></html>"
)
_PLATFORM_TEXT = {502: b"Bad Gateway", 503: b"Service Unavailable", 504: b"Gateway Timeout"}


class _Reply(Exception):
    """Raised inside the handler to answer at once with a JSON error."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body = status, body


def _parse_limit(raw: list[str] | None) -> int:
    """Mirrors the server's zod schema: coerce to number, integer, 1..100, default 20."""
    if raw is None:
        return 20
    text = raw[-1].strip()
    try:
        value = float(text) if text else 0.0  # JavaScript's Number("") is 0
    except ValueError:
        value = math.nan
    if math.isnan(value):
        raise _Reply(400, {"status": "error", "error": "Invalid input: expected number, received NaN"})
    if not value.is_integer():
        raise _Reply(400, {"status": "error", "error": "Invalid input: expected int, received number"})
    if value > 100:
        raise _Reply(400, {"status": "error", "error": "Too big: expected number to be <=100"})
    if value < 1:
        raise _Reply(400, {"status": "error", "error": "Too small: expected number to be >=1"})
    return int(value)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every answer, which no real server does.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args: Any) -> None:  # the World keeps its own log
        pass

    # -- plumbing ---------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:  # fmt: skip
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not self.trickle:
            self.wfile.write(body)
            return
        try:
            for byte in range(len(body)):
                self.wfile.write(body[byte : byte + 1])
                self.wfile.flush()
                time.sleep(self.trickle)
        except OSError:  # the client gave up
            self.close_connection = True

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, orjson.dumps(body))

    def _auth_kind(self) -> str:
        has_key = self.headers.get("x-api-key") is not None
        has_bearer = self.headers.get("Authorization") is not None
        return {(True, False): "x-api-key", (False, True): "bearer"}.get((has_key, has_bearer),
                                                                         "both" if has_key else "none")  # fmt: skip

    def _key(self, kind: str) -> str:
        world = self.server.world
        if kind in ("both", "none"):
            raise _Reply(401, {"status": "error",
                               "error": "Exactly one of x-api-key or Authorization must be provided"})  # fmt: skip
        value = self.headers["x-api-key"] if kind == "x-api-key" else self.headers["Authorization"]
        if kind == "bearer":
            value = value[7:] if value.startswith("Bearer ") else ""
        if value not in world.keys:
            raise _Reply(401, {"status": "error", "message": "Unauthorized"})
        return value

    # -- routes -----------------------------------------------------------------------------

    def do_GET(self) -> None:
        world = self.server.world
        self.trickle = 0.0  # seconds between two bytes of the answer
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        body: Any  # a JSON value, or bytes sent as they are
        entry: dict[str, Any] = {"method": "GET", "path": url.path,
                                 "query": {k: v[-1] for k, v in query.items()},
                                 "auth": self._auth_kind()}  # fmt: skip
        try:
            if world.latency:
                time.sleep(world.latency)
            if time.monotonic() < world.down_until:
                raise _Reply(503, {"status": "error", "error": "Service Unavailable"})
            if url.path == "/api/accounts/id":
                key = self._key(entry["auth"])
                status, body = 200, {"status": "success", "accountId": world.keys[key].account}
            elif url.path == "/api/tasks/runs":
                status, body = self._runs(world, query, entry)
            else:
                status, body = 404, {"status": "error", "error": "Not found"}
        except _Reply as reply:
            status, body = reply.status, reply.body
        except _Dropped:
            self.close_connection = True
            entry["status"] = "dropped"
            world.record(entry)
            return
        entry.setdefault("status", status)
        world.record(entry)
        if isinstance(body, bytes):
            self._send(status, body)
        elif body is not None:
            self._json(status, body)

    def do_POST(self) -> None:
        """The admin endpoints of `pipelines/emulator/live.py`."""
        from pipelines.emulator.live import admin

        url = urlsplit(self.path)
        self.trickle = 0.0
        self._json(*admin(self.server.world, url.path, parse_qs(url.query)))

    def _runs(self, world: World, query: dict[str, list[str]], entry: dict[str, Any]) -> tuple[int, Any]:
        key = self._key(entry["auth"])
        limit = _parse_limit(query.get("limit"))
        run_id = (query.get("runId") or [""])[-1].strip()
        mode = "retrieve" if run_id else "list"
        account = (query.get("account_id") or [""])[-1] or world.keys[key].account
        entry["mode"] = mode
        if mode == "list":
            entry["account"] = account
        fault = world.take_fault(mode, account if mode == "list" else None)
        if fault is not None and self._apply(fault, entry, key):
            return entry["status"], None
        if mode == "retrieve":
            return self._retrieve(world, run_id)
        if not world.may_read(key, account):
            return 403, {"status": "error", "error": "Access denied to specified account_id"}
        return 200, self._list_body(world, account, limit)

    def _list_body(self, world: World, account: str, limit: int) -> bytes:
        with world.lock:
            parts = [world.cached(run, lambda r: orjson.dumps(to_list_item(r, world.profile)))
                     for run in world.visible(account, limit)]  # fmt: skip
            parts += [orjson.dumps(item) for item in world.extra_items.get(account, ())]
            parts += world.raw_items.get(account, [])
        return b'{"status":"success","runs":[' + b",".join(parts) + b"]}"

    def _retrieve(self, world: World, run_id: str) -> tuple[int, Any]:
        with world.lock:
            run = world.runs.get(run_id)
            item = to_retrieved(run, world.profile) if run else None
        if item is not None:
            return 200, {"status": "success", "runs": [item]}
        if world.profile == "documented":
            return 404, {"status": "error", "error": "Task run not found"}
        time.sleep(world.not_found_delay)
        return 500, {"status": "error", "error": "Not found"}

    def _apply(self, fault: Any, entry: dict[str, Any], key: str) -> bool:
        """Answers with the fault; returns False when the request should go on normally."""
        entry["fault"] = fault.kind
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        if fault.kind == "delay":
            time.sleep(fault.delay)
            return False
        if fault.kind == "trickle":
            self.trickle = fault.delay
            return False
        if fault.kind == "drop":
            raise _Dropped
        if fault.kind == "upstream_429":
            self._send(
                500, orjson.dumps({"status": "error", "error": "Trigger.dev API error: 429"}), headers=headers
            )
        elif fault.kind == "500":
            self._send(
                500, orjson.dumps({"status": "error", "error": "Internal server error"}), headers=headers
            )
        elif fault.kind in ("502", "503", "504"):
            code = int(fault.kind)
            self._send(code, _PLATFORM_TEXT[code], "text/plain", headers)
        elif fault.kind == "html":
            self._send(502, _HTML_PAGE, "text/html")
        elif fault.kind == "not_json":
            self._send(200, _HTML_PAGE, "text/html")
        elif fault.kind == "echo_key":  # an upstream error that quotes the request it failed
            error = f"Trigger.dev API error: invalid token {key} (x-api-key={quote(key, safe='')})"
            self._send(500, orjson.dumps({"status": "error", "error": error}))
        elif fault.kind == "status_error":  # a failure answered with 200, runs and all
            self._send(
                200, orjson.dumps({"status": "error", "error": "Trigger.dev API error: 429", "runs": []})
            )
        elif fault.kind == "truncated":
            body = b'{"status":"success","runs":[{"id":"run_cut","status":"COMPL'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) * 3))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True
        entry["status"] = fault.kind
        return True


class _Dropped(Exception):
    """The connection is closed with no answer at all."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], world: World) -> None:
        self.world = world
        super().__init__(address, _Handler)


class EmulatorServer:
    """Serves a World over HTTP on 127.0.0.1; port 0 picks a free one.

    Use as a context manager, or call `start()` and `stop()`.
    """

    def __init__(self, world: World, host: str = "127.0.0.1", port: int = 0) -> None:
        self.world = world
        self._httpd = _Server((host, port), world)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        """The base URL to give a client, e.g. `http://127.0.0.1:40123`."""
        host, port = self._httpd.server_address[:2]
        assert isinstance(host, str)  # an AF_INET socket's name (the stubs allow bytes too)
        return f"http://{host}:{port}"

    def start(self) -> EmulatorServer:
        """Starts serving in a background thread; returns the server itself."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving and closes the listening socket."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
