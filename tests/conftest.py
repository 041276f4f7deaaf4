"""Shared fixtures: a seeded emulator World served over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from pipelines.emulator import EmulatorServer, World

NOW = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def world() -> World:
    return World(accounts=3, runs_per_account=40, seed=11, now=NOW)


@pytest.fixture
def emulator(world: World) -> Iterator[EmulatorServer]:
    with EmulatorServer(world) as server:
        yield server


@pytest.fixture
def http(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, timeout=10) as client:
        yield client
