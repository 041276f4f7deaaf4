"""The emulated Recoup world: accounts, keys, runs, a clock, faults and a request log.

Everything the HTTP server answers is derived from a `World`. Tests drive it between two
syncs (move the clock, add or change runs, grant access, inject faults) and read its log.
"""

from __future__ import annotations

import random
import string
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines.emulator.runs import ENVS, EXTRA_TAGS, MAX_TAGS, STATUS_WEIGHTS, TASKS, settle
from pipelines.emulator.statuses import TERMINAL

WINDOW = timedelta(days=7)
FAULT_KINDS = ("upstream_429", "500", "502", "503", "504", "delay", "truncated", "drop", "html", "not_json",
               "trickle", "echo_key", "status_error")  # fmt: skip


def iso(moment: datetime) -> str:
    """Formats a datetime like the API does: `2026-11-07T05:31:56.000Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Fault:
    """A failure answered to the next `count` requests that match `mode` and `account`."""

    kind: str
    count: int = 1
    mode: str | None = None  # "list", "retrieve" or None for any
    account: str | None = None
    retry_after: float | None = None
    delay: float = 0.0  # `delay`: before answering; `trickle`: between two bytes of the answer


@dataclass
class Key:
    """An API key: its own account, the other accounts it may read, admin or not."""

    account: str
    readable: set[str] = field(default_factory=set)
    admin: bool = False


class World:
    """A deterministic, mutable Recoup API backend.

    Args:
        accounts: how many accounts to create.
        runs_per_account: runs generated per account (within and just outside the window).
        seed: makes every generated value reproducible.
        now: the emulator's clock; defaults to the current time rounded to the second.
        profile: "documented" or "observed" (see the README).
    """

    def __init__(
        self,
        accounts: int = 3,
        runs_per_account: int = 30,
        seed: int = 7,
        now: datetime | None = None,
        profile: str = "documented",
        not_found_delay: float = 0.0,
    ) -> None:
        if profile not in ("documented", "observed"):
            raise ValueError(f"unknown profile {profile!r}: use 'documented' or 'observed'")
        self.profile = profile
        self.not_found_delay = not_found_delay
        self.latency = 0.0
        self.down_until = 0.0  # time.monotonic() until which every request answers 503
        self.now = now or datetime.now(UTC).replace(microsecond=0)
        self.rng = random.Random(seed)
        self.lock = threading.RLock()
        self.runs: dict[str, dict[str, Any]] = {}
        self.by_account: dict[str, list[str]] = {}
        self.keys: dict[str, Key] = {}
        self.faults: list[Fault] = []
        self.log: deque[dict[str, Any]] = deque(maxlen=100_000)
        self._json: dict[tuple[str, str], bytes] = {}
        # Raw JSON objects appended verbatim to an account's list page: malformed data on demand.
        self.extra_items: dict[str, list[Any]] = {}
        # JSON text appended as it is, for what no JSON writer produces (lone surrogates, 1e400).
        self.raw_items: dict[str, list[bytes]] = {}
        self.account_ids = [self._uuid() for _ in range(accounts)]
        for account in self.account_ids:
            self.by_account[account] = []
            for _ in range(runs_per_account):
                self.add_run(account, created_at=self._random_past())
        self.demo_key = self.add_key(self.account_ids[0], readable=self.account_ids) if accounts else ""

    # -- keys -------------------------------------------------------------------------------

    def add_key(self, account: str, readable: list[str] | tuple = (), admin: bool = False) -> str:
        """Creates a key for `account` that may also read `readable`; returns its value."""
        with self.lock:
            value = "recoup_sk_" + "".join(self.rng.choices(string.ascii_letters + string.digits, k=32))
            self.keys[value] = Key(account=account, readable=set(readable), admin=admin)
            return value

    def grant(self, key: str, account: str) -> None:
        """Lets `key` read `account` from now on."""
        with self.lock:
            self.keys[key].readable.add(account)

    def revoke(self, key: str, account: str) -> None:
        """Stops `key` from reading `account`."""
        with self.lock:
            self.keys[key].readable.discard(account)

    def may_read(self, key: str, account: str) -> bool:
        """Whether `key` may read `account`: an admin key, its own account, or one granted."""
        entry = self.keys[key]
        return entry.admin or account == entry.account or account in entry.readable

    # -- runs -------------------------------------------------------------------------------

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _run_id(self) -> str:
        return "run_" + "".join(self.rng.choices(string.ascii_lowercase + string.digits, k=25))

    def _random_past(self) -> datetime:
        # A few runs fall just outside the 7-day window so that the window filter matters.
        seconds = self.rng.uniform(60, WINDOW.total_seconds() * 1.05)
        return (self.now - timedelta(seconds=seconds)).replace(microsecond=self.rng.randrange(1000) * 1000)

    def add_account(self) -> str:
        """Creates an empty account and returns its id."""
        with self.lock:
            account = self._uuid()
            self.account_ids.append(account)
            self.by_account[account] = []
            return account

    def add_run(
        self, account: str, created_at: datetime | None = None, status: str | None = None
    ) -> dict[str, Any]:
        """Generates one realistic run for `account`; returns its internal record."""
        with self.lock:
            rng = self.rng
            created = created_at or self.now
            status = status or rng.choices(list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values()))[0]
            env_id, env_name = rng.choice(ENVS)
            run: dict[str, Any] = {
                "id": self._run_id(),
                "taskIdentifier": rng.choice(TASKS),
                "createdAt": created,
                "isTest": rng.random() < 0.08,
                "env": {"id": env_id, "name": env_name}
                | ({"user": "dev@recoup.test"} if env_name == "dev" else {}),
                "tags": self._tags(account),
                "depth": rng.choice((0, 0, 0, 1, 2)),
                "metadata": {
                    "artist": {"id": self._uuid(), "name": rng.choice(("Nova", "Lé Ø", "Ayo"))},
                    "batch": rng.randrange(1, 50),
                    "steps": [{"name": "fetch", "ok": True}, {"name": "store", "ok": rng.random() < 0.9}],
                },
                "taskKind": "STANDARD",
                "idempotencyKey": rng.choice((None, f"idem-{rng.randrange(10**6)}")),
                "version": f"2026{rng.randrange(1000, 1299)}.{rng.randrange(1, 9)}",
                "region": rng.choice((None, "us-east-1", "eu-central-1")),
                "payload": {"artistId": self._uuid(), "force": rng.random() < 0.2},
                "costInCents": 0.0,
                "baseCostInCents": 0.0,
                "durationMs": 0,
            }
            self._set_status(run, status)
            self.runs[run["id"]] = run
            self.by_account.setdefault(account, []).append(run["id"])
            return run

    def _tags(self, account: str) -> list[str]:
        extra = self.rng.sample(EXTRA_TAGS, self.rng.randrange(0, MAX_TAGS))
        return [f"account:{account}", *extra]

    def _set_status(self, run: dict[str, Any], status: str) -> None:
        """Sets status and everything that follows from it (see `runs.settle`)."""
        settle(run, status, self.rng, self.now)
        self._forget(run["id"])

    def _forget(self, run_id: str) -> None:
        for profile in ("documented", "observed"):
            self._json.pop((run_id, profile), None)

    def change_run(self, run_id: str, **fields: Any) -> dict[str, Any]:
        """Changes a run like the upstream would; `status=` recomputes times and attempts.

        Any other keyword replaces that API field verbatim (`costInCents`, `tags`, ...).
        `updatedAt` moves to the emulator's clock unless given.
        """
        with self.lock:
            run = self.runs[run_id]
            if "status" in fields:
                self._set_status(run, fields.pop("status"))
            run.update(fields)
            run["updatedAt"] = fields.get("updatedAt", self.now)
            self._forget(run_id)
            return run

    def inflate(self, run_id: str, field: str, size: int) -> dict[str, Any]:
        """Makes the run's free-form `field` (metadata, payload, output) about `size` bytes of JSON."""
        return self.change_run(run_id, **{field: {"blob": "x" * max(0, size - 11)}})

    def complete_run(self, run_id: str) -> dict[str, Any]:
        """Finishes an in-flight run successfully, now."""
        return self.change_run(run_id, status="COMPLETED")

    def move_run(self, run_id: str, account: str) -> None:
        """Re-tags a run to another account (it then lists under that account)."""
        with self.lock:
            run = self.runs[run_id]
            for ids in self.by_account.values():
                if run_id in ids:
                    ids.remove(run_id)
            self.by_account.setdefault(account, []).append(run_id)
            tags = [t for t in run["tags"] if not t.startswith("account:")]
            self.change_run(run_id, tags=[f"account:{account}", *tags])

    def advance(self, **delta: float) -> None:
        """Moves the clock forward, e.g. `advance(days=2)`."""
        with self.lock:
            self.now += timedelta(**delta)

    def in_flight(self, account: str) -> list[str]:
        """Ids of the account's runs in a non-terminal status."""
        return [rid for rid in self.by_account[account] if self.runs[rid]["status"] not in TERMINAL]

    def visible(self, account: str, limit: int) -> list[dict[str, Any]]:
        """What list mode shows: newest first, last 7 days only, at most `limit`."""
        with self.lock:
            oldest = self.now - WINDOW
            runs = [self.runs[rid] for rid in self.by_account.get(account, ())]
            runs = [r for r in runs if oldest <= r["createdAt"] <= self.now]
            runs.sort(key=lambda r: (r["createdAt"], r["id"]), reverse=True)
            return runs[:limit]

    def cached(self, run: dict[str, Any], render: Any) -> bytes:
        """The run's rendered list-item bytes, rendered again only after it changes."""
        key = (run["id"], self.profile)
        body = self._json.get(key)
        if body is None:
            body = self._json[key] = render(run)
        return body

    # -- faults and log ---------------------------------------------------------------------

    def inject(self, kind: str, count: int = 1, **match: Any) -> None:
        """Answers the next `count` matching requests with fault `kind` (see FAULT_KINDS)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        with self.lock:
            self.faults.append(Fault(kind=kind, count=count, **match))

    def take_fault(self, mode: str, account: str | None) -> Fault | None:
        """Takes one use of the first injected fault that matches this request, if any."""
        with self.lock:
            for fault in self.faults:
                if fault.mode not in (None, mode) or fault.account not in (None, account):
                    continue
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
                return fault
            return None

    def record(self, entry: dict[str, Any]) -> None:
        """Appends one entry to the request log."""
        self.log.append(entry)

    def requests(self, **match: Any) -> list[dict[str, Any]]:
        """The request log, optionally filtered by exact field values."""
        return [e for e in list(self.log) if all(e.get(k) == v for k, v in match.items())]
