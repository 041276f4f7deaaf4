"""The emulator answers every row of the Recoup API contract over real HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from pipelines.emulator import EmulatorServer, World, live
from pipelines.emulator.statuses import CURRENT_STATUSES, LEGACY_STATUSES
from pipelines.emulator.world import FAULT_KINDS, WINDOW

RUNS = "/api/tasks/runs"


def _key(world: World) -> dict[str, str]:
    return {"x-api-key": world.demo_key}


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- authentication ---------------------------------------------------------------------------


def test_both_auth_headers_are_rejected(http: httpx.Client, world: World) -> None:
    headers = {"x-api-key": world.demo_key, "Authorization": f"Bearer {world.demo_key}"}
    reply = http.get(RUNS, headers=headers)
    assert reply.status_code == 401
    assert reply.json() == {
        "status": "error",
        "error": "Exactly one of x-api-key or Authorization must be provided",
    }


def test_no_auth_header_is_rejected(http: httpx.Client) -> None:
    reply = http.get(RUNS)
    assert reply.status_code == 401
    assert reply.json()["error"].startswith("Exactly one of")


def test_unknown_key_answers_message_not_error(http: httpx.Client) -> None:
    reply = http.get(RUNS, headers={"x-api-key": "recoup_sk_nope"})
    assert (reply.status_code, reply.json()) == (401, {"status": "error", "message": "Unauthorized"})


def test_bearer_key_works_like_x_api_key(http: httpx.Client, world: World) -> None:
    bearer = http.get(RUNS, headers={"Authorization": f"Bearer {world.demo_key}"})
    plain = http.get(RUNS, headers=_key(world))
    assert bearer.status_code == 200
    assert bearer.json() == plain.json()


def test_auth_is_checked_before_the_query(http: httpx.Client) -> None:
    reply = http.get(RUNS, params={"limit": "500"}, headers={"x-api-key": "recoup_sk_bad"})
    assert reply.status_code == 401


def test_foreign_account_is_forbidden_until_granted(http: httpx.Client, world: World) -> None:
    own = world.account_ids[1]
    key = world.add_key(own)
    foreign = world.account_ids[2]
    denied = http.get(RUNS, params={"account_id": foreign}, headers={"x-api-key": key})
    assert denied.status_code == 403
    assert denied.json() == {"status": "error", "error": "Access denied to specified account_id"}
    world.grant(key, foreign)
    assert http.get(RUNS, params={"account_id": foreign}, headers={"x-api-key": key}).status_code == 200
    world.revoke(key, foreign)
    assert http.get(RUNS, params={"account_id": foreign}, headers={"x-api-key": key}).status_code == 403


def test_admin_key_reads_any_account(http: httpx.Client, world: World) -> None:
    key = world.add_key(world.account_ids[0], admin=True)
    reply = http.get(RUNS, params={"account_id": "not-even-a-uuid"}, headers={"x-api-key": key})
    assert reply.status_code == 200 and reply.json()["runs"] == []


def test_own_account_endpoint(http: httpx.Client, world: World) -> None:
    key = world.add_key(world.account_ids[2])
    reply = http.get("/api/accounts/id", headers={"x-api-key": key})
    assert reply.json() == {"status": "success", "accountId": world.account_ids[2]}


# -- limit --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("101", "Too big: expected number to be <=100"),
        ("0", "Too small: expected number to be >=1"),
        ("-3", "Too small: expected number to be >=1"),
        ("", "Too small: expected number to be >=1"),
        ("2.5", "Invalid input: expected int, received number"),
        ("ten", "Invalid input: expected number, received NaN"),
    ],
)
def test_bad_limits_are_400_never_clamped(http: httpx.Client, world: World, limit: str, message: str) -> None:
    reply = http.get(RUNS, params={"limit": limit}, headers=_key(world))
    assert (reply.status_code, reply.json()) == (400, {"status": "error", "error": message})


def test_limit_is_parsed_in_retrieve_mode_too(http: httpx.Client, world: World) -> None:
    run_id = next(iter(world.runs))
    reply = http.get(RUNS, params={"runId": run_id, "limit": "1000"}, headers=_key(world))
    assert reply.status_code == 400


def test_default_limit_is_20_and_max_100(world: World) -> None:
    big = World(accounts=1, runs_per_account=150, seed=3, now=world.now)
    with EmulatorServer(big) as server, httpx.Client(base_url=server.url) as http:
        assert len(http.get(RUNS, headers=_key(big)).json()["runs"]) == 20
        assert len(http.get(RUNS, params={"limit": 100}, headers=_key(big)).json()["runs"]) == 100
        assert len(http.get(RUNS, params={"limit": 7}, headers=_key(big)).json()["runs"]) == 7


# -- list mode ----------------------------------------------------------------------------------


def test_list_is_newest_first_in_the_window_and_scoped_to_the_account(
    http: httpx.Client, world: World
) -> None:
    account = world.account_ids[0]
    runs = http.get(RUNS, params={"limit": 100}, headers=_key(world)).json()["runs"]
    keys = [(_when(r["createdAt"]), r["id"]) for r in runs]
    assert keys == sorted(keys, reverse=True)
    assert all(f"account:{account}" in r["tags"] for r in runs)
    assert all(world.now - WINDOW <= when <= world.now for when, _ in keys)
    expected = [r["id"] for r in world.visible(account, 100)]
    assert [r["id"] for r in runs] == expected
    older = [rid for rid in world.by_account[account] if world.runs[rid]["createdAt"] < world.now - WINDOW]
    assert older, "the seed should place some runs outside the window"
    assert not set(older) & {r["id"] for r in runs}


def test_ties_on_created_at_order_by_id_desc(http: httpx.Client, world: World) -> None:
    account = world.account_ids[0]
    moment = world.now - timedelta(minutes=1)
    ids = [world.add_run(account, created_at=moment)["id"] for _ in range(3)]
    runs = http.get(RUNS, params={"limit": 3}, headers=_key(world)).json()["runs"]
    assert [r["id"] for r in runs] == sorted(ids, reverse=True)


def test_moving_the_clock_hides_old_runs(http: httpx.Client, world: World) -> None:
    before = http.get(RUNS, params={"limit": 100}, headers=_key(world)).json()["runs"]
    world.advance(days=8)
    assert http.get(RUNS, params={"limit": 100}, headers=_key(world)).json()["runs"] == []
    fresh = world.add_run(world.account_ids[0])
    after = http.get(RUNS, params={"limit": 100}, headers=_key(world)).json()["runs"]
    assert [r["id"] for r in after] == [fresh["id"]]
    assert before


def test_documented_list_items_carry_every_field(http: httpx.Client, world: World) -> None:
    item = http.get(RUNS, params={"limit": 1}, headers=_key(world)).json()["runs"][0]
    for name in ("attempts", "error", "payload", "output", "schedule", "relatedRuns", "startedAt",
                 "finishedAt", "delayedUntil", "ttl", "expiredAt", "region", "idempotencyKey"):  # fmt: skip
        assert name in item
    assert item["status"] in LEGACY_STATUSES
    for attempt in item["attempts"]:
        assert {"id", "status", "createdAt", "startedAt", "completedAt", "error"} <= set(attempt)


def test_observed_list_items_omit_optional_and_detail_fields(world: World) -> None:
    world.profile = "observed"
    with EmulatorServer(world) as server, httpx.Client(base_url=server.url) as http:
        runs = http.get(RUNS, params={"limit": 100}, headers=_key(world)).json()["runs"]
    for item in runs:
        assert not {"attempts", "error", "payload", "output", "schedule", "relatedRuns"} & set(item)
        assert None not in item.values(), "absent, not null"
        assert item["status"] in LEGACY_STATUSES
        assert {"id", "env", "tags", "costInCents", "baseCostInCents", "metadata", "isTest"} <= set(item)
    assert any("startedAt" not in item for item in runs), "queued runs have no startedAt"


def test_legacy_status_in_list_and_current_in_retrieve(http: httpx.Client, world: World) -> None:
    run = world.add_run(world.account_ids[0], status="FROZEN")
    listed = http.get(RUNS, params={"limit": 1}, headers=_key(world)).json()["runs"][0]
    retrieved = http.get(RUNS, params={"runId": run["id"]}, headers=_key(world)).json()["runs"][0]
    assert (listed["id"], listed["status"]) == (run["id"], "FROZEN")
    assert retrieved["status"] == "WAITING"
    for legacy, current in {"REATTEMPTING": "EXECUTING", "INTERRUPTED": "FAILED",
                            "WAITING_FOR_DEPLOY": "PENDING_VERSION"}.items():  # fmt: skip
        world.change_run(run["id"], status=legacy)
        got = http.get(RUNS, params={"runId": run["id"]}, headers=_key(world)).json()["runs"][0]
        assert got["status"] == current and got["status"] in CURRENT_STATUSES


# -- retrieve mode ------------------------------------------------------------------------------


@pytest.mark.slow
def test_retrieve_reads_any_run_regardless_of_account(http: httpx.Client, world: World) -> None:
    key = world.add_key(world.account_ids[1])  # no access to account 2
    run_id = world.by_account[world.account_ids[2]][0]
    reply = http.get(RUNS, params={"runId": run_id, "account_id": world.account_ids[2]},
                     headers={"x-api-key": key})  # fmt: skip
    assert reply.status_code == 200
    item = reply.json()["runs"][0]
    assert item["id"] == run_id
    assert "env" not in item
    assert {"payload", "error", "attemptCount", "relatedRuns", "schedule"} <= set(item)


def test_blank_run_id_means_list_mode(http: httpx.Client, world: World) -> None:
    reply = http.get(RUNS, params={"runId": "  ", "limit": 2}, headers=_key(world))
    assert len(reply.json()["runs"]) == 2


def test_unknown_run_id_observed_is_500_not_found(world: World) -> None:
    world.profile = "observed"
    with EmulatorServer(world) as server, httpx.Client(base_url=server.url) as http:
        reply = http.get(RUNS, params={"runId": "run_missing"}, headers=_key(world))
        item = http.get(RUNS, params={"runId": world.by_account[world.account_ids[0]][0]},
                        headers=_key(world)).json()["runs"][0]  # fmt: skip
    assert (reply.status_code, reply.json()) == (500, {"status": "error", "error": "Not found"})
    assert "attempts" not in item and "attemptCount" in item


def test_unknown_run_id_documented_is_404(http: httpx.Client, world: World) -> None:
    reply = http.get(RUNS, params={"runId": "run_missing"}, headers=_key(world))
    assert (reply.status_code, reply.json()) == (404, {"status": "error", "error": "Task run not found"})


# -- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "body"),
    [
        ("upstream_429", 500, '{"status":"error","error":"Trigger.dev API error: 429"}'),
        ("500", 500, '{"status":"error","error":"Internal server error"}'),
        ("502", 502, "Bad Gateway"),
        ("503", 503, "Service Unavailable"),
        ("504", 504, "Gateway Timeout"),
        ("html", 502, "<!DOCTYPE html>"),
        ("not_json", 200, "<!DOCTYPE html>"),
    ],
)
def test_answer_faults_hit_the_next_request_only(
    http: httpx.Client, world: World, kind: str, status: int, body: str
) -> None:
    world.inject(kind)
    faulty = http.get(RUNS, headers=_key(world))
    assert faulty.status_code == status
    assert faulty.text.startswith(body)
    assert http.get(RUNS, headers=_key(world)).status_code == 200


def test_retry_after_header_is_sent_when_asked(http: httpx.Client, world: World) -> None:
    world.inject("503", retry_after=2)
    assert http.get(RUNS, headers=_key(world)).headers["Retry-After"] == "2"
    world.inject("502")
    assert "Retry-After" not in http.get(RUNS, headers=_key(world)).headers


def test_truncated_body_and_dropped_connection_break_the_transport(http: httpx.Client, world: World) -> None:
    world.inject("truncated")
    with pytest.raises(httpx.RemoteProtocolError):
        http.get(RUNS, headers=_key(world))
    world.inject("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        http.get(RUNS, headers=_key(world))
    assert http.get(RUNS, headers=_key(world)).status_code == 200


def test_faults_match_by_mode_and_account_and_count(http: httpx.Client, world: World) -> None:
    other = world.account_ids[1]
    world.inject("500", count=2, mode="list", account=other)
    assert http.get(RUNS, headers=_key(world)).status_code == 200
    run_id = world.by_account[other][0]
    assert http.get(RUNS, params={"runId": run_id}, headers=_key(world)).status_code == 200
    assert http.get(RUNS, params={"account_id": other}, headers=_key(world)).status_code == 500
    assert http.get(RUNS, params={"account_id": other}, headers=_key(world)).status_code == 500
    assert http.get(RUNS, params={"account_id": other}, headers=_key(world)).status_code == 200


def test_delay_fault_slows_then_answers(http: httpx.Client, world: World) -> None:
    world.inject("delay", delay=0.3)
    started = datetime.now()
    assert http.get(RUNS, headers=_key(world)).status_code == 200
    assert datetime.now() - started >= timedelta(seconds=0.3)


def test_every_fault_kind_is_known() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        World(accounts=0).inject("gremlins")
    assert len(FAULT_KINDS) == 13


# -- world and log -------------------------------------------------------------------------------


def test_generator_is_deterministic(world: World) -> None:
    again = World(accounts=3, runs_per_account=40, seed=11, now=world.now)
    assert again.account_ids == world.account_ids
    assert again.runs == world.runs
    other = World(accounts=3, runs_per_account=40, seed=12, now=world.now)
    assert other.account_ids != world.account_ids


def test_generator_is_realistic() -> None:
    world = World(accounts=20, runs_per_account=100, seed=5)
    runs = list(world.runs.values())
    statuses = {r["status"] for r in runs}
    assert {
        "COMPLETED",
        "FAILED",
        "CRASHED",
        "EXECUTING",
        "QUEUED",
        "CANCELED",
        "DELAYED",
        "TIMED_OUT",
    } <= statuses
    completed = sum(r["status"] == "COMPLETED" for r in runs) / len(runs)
    assert 0.55 < completed < 0.85
    assert all(1 <= len(r["tags"]) <= 10 and r["tags"][0].startswith("account:") for r in runs)
    all_tags = {t for r in runs for t in r["tags"]}
    assert any(":" not in t for t in all_tags) and any(not t.isascii() for t in all_tags)
    assert any(r["costInCents"] % 1 for r in runs)
    assert {len(r["attempts"]) for r in runs} == {0, 1, 2, 3}
    assert any(r["isTest"] for r in runs) and not all(r["isTest"] for r in runs)
    assert {r["env"]["name"] for r in runs} == {"prod", "staging", "dev"}


def test_changes_between_syncs_are_visible(http: httpx.Client, world: World) -> None:
    account = world.account_ids[0]
    run = world.add_run(account, status="EXECUTING")
    world.advance(minutes=5)
    world.change_run(run["id"], costInCents=12.345, tags=[f"account:{account}", "new:tag"])
    world.complete_run(run["id"])
    item = http.get(RUNS, params={"limit": 1}, headers=_key(world)).json()["runs"][0]
    assert item["status"] == "COMPLETED"
    assert item["tags"] == [f"account:{account}", "new:tag"]
    assert item["updatedAt"] == world.now.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_request_log_never_holds_the_key(http: httpx.Client, world: World) -> None:
    http.get(RUNS, params={"limit": 5}, headers=_key(world))
    http.get(RUNS, headers={"Authorization": f"Bearer {world.demo_key}"})
    http.get(RUNS, params={"limit": 5}, headers={"x-api-key": "recoup_sk_guess"})
    log = world.requests()
    assert [e["auth"] for e in log] == ["x-api-key", "bearer", "x-api-key"]
    assert log[0]["query"] == {"limit": "5"}
    assert [e["status"] for e in log] == [200, 200, 401]
    assert world.demo_key not in repr(log) and "recoup_sk_guess" not in repr(log)


def test_a_live_world_moves_and_the_admin_endpoints_revoke_and_take_the_api_down() -> None:
    world = World(accounts=2, runs_per_account=5, seed=3)
    account = world.account_ids[1]  # the demo key's own account cannot be revoked
    before = {r["id"] for r in world.visible(account, 100)}
    world.rng.seed(11)
    for _ in range(6):
        live.step(world)
    assert {r["id"] for r in world.visible(account, 100)} - before, "new runs appeared"
    with EmulatorServer(world) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        headers = {"x-api-key": world.demo_key}
        assert http.post("/admin/revoke", params={"account": account}).status_code == 200
        assert http.get("/api/tasks/runs", params={"account_id": account}, headers=headers).status_code == 403
        assert http.post("/admin/grant", params={"account": account}).status_code == 200
        assert http.get("/api/tasks/runs", params={"account_id": account}, headers=headers).status_code == 200
        assert http.post("/admin/down", params={"seconds": "30"}).status_code == 200
        assert http.get("/api/tasks/runs", headers=headers).status_code == 503
        assert http.post("/admin/up").status_code == 200
        assert http.get("/api/tasks/runs", headers=headers).status_code == 200
        assert http.post("/admin/runs", params={"account": account, "count": "3"}).status_code == 200
        listed = http.get("/api/tasks/runs", params={"account_id": account}, headers=headers).json()["runs"]
        assert len(listed) == len(world.visible(account, 100))
        assert http.post("/admin/revoke", params={"account": "nobody"}).status_code == 404
