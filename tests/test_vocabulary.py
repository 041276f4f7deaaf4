"""One status vocabulary: the Python mapping, and the SQL view generated from it."""

from __future__ import annotations

import re

import duckdb
import pytest

from pipelines import status_groups
from pipelines.models import SQL_DIR
from pipelines.recoup.settings import GROUP_OF_STATUS, IN_FLIGHT_GROUPS, STATUS_GROUPS, TERMINAL_GROUPS
from pipelines.recoup.transform import is_terminal, status_group


def test_the_committed_status_groups_view_is_the_one_the_python_vocabulary_writes() -> None:
    assert status_groups.PATH == SQL_DIR / "staging" / "status_groups.sql"
    assert status_groups.PATH.read_text() == status_groups.to_sql(), "run `python -m pipelines.status_groups`"
    assert status_groups.main(["--check"]) == 0


def test_a_change_to_the_python_vocabulary_alone_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(STATUS_GROUPS, "queued", (*STATUS_GROUPS["queued"], "PENDING_APPROVAL"))
    assert status_groups.main(["--check"]) == 1
    assert "('PENDING_APPROVAL', 'queued', false, true)" in status_groups.to_sql()


def test_the_view_groups_every_status_as_the_sync_does() -> None:
    with duckdb.connect() as con:
        rows = con.execute(status_groups.PATH.read_text()).fetchall()
    assert {status for status, *_ in rows} == set(GROUP_OF_STATUS)
    for status, group, finished, in_flight in rows:
        assert (group, finished, in_flight) == (
            status_group(status),
            is_terminal(status),
            group in IN_FLIGHT_GROUPS,
        )


def test_every_known_group_is_either_finished_or_in_flight() -> None:
    assert TERMINAL_GROUPS.isdisjoint(IN_FLIGHT_GROUPS)
    assert set(STATUS_GROUPS) == TERMINAL_GROUPS | IN_FLIGHT_GROUPS
    assert status_group("SOMETHING_NEW") == "unknown" and not is_terminal("SOMETHING_NEW")


def test_no_other_model_spells_a_status_and_every_group_a_model_names_exists() -> None:
    groups = set(STATUS_GROUPS) | {"unknown"}
    named = 0
    for path in sorted(SQL_DIR.rglob("*.sql")):
        if path == status_groups.PATH:
            continue
        code = re.sub(r"--[^\n]*", "", path.read_text())
        spelled = set(re.findall(r"'([A-Z_]+)'", code)) & set(GROUP_OF_STATUS)
        assert not spelled, (
            f"{path.name} spells statuses {spelled}: use status_group, is_finished or is_in_flight"
        )
        for compared in re.findall(r"status_group\s*(?:=|<>|!=|(?:not\s+)?in)\s*(\([^)]*\)|'[^']*')", code):
            literals = re.findall(r"'([^']*)'", compared)
            named += len(literals)
            assert set(literals) <= groups, f"{path.name} names groups {set(literals) - groups}"
    assert named > 0, "the check found the group comparisons of the marts"
