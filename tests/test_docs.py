"""The README stays a front door, and every link and test the docs name leads somewhere real."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def _prose(path: Path) -> str:
    """A Markdown file without its code blocks, where neither links nor headings count."""
    return FENCE.sub("", path.read_text())


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file."""
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", _prose(path), re.MULTILINE):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return anchors


def test_the_readme_is_at_most_200_lines() -> None:
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= 200, f"README.md has {lines} lines; move the detail into docs/"


def test_every_relative_link_in_the_docs_resolves_to_a_file_and_its_heading() -> None:
    broken = []
    for doc in DOCS:
        for target in LINK.findall(_prose(doc)):
            if re.match(r"[a-z]+:", target):  # https:, mailto:: not checked here
                continue
            file_part, _, anchor = target.partition("#")
            linked = (doc.parent / file_part).resolve() if file_part else doc
            if not linked.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and (linked.suffix != ".md" or anchor not in _anchors(linked)):
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_link_check_catches_a_missing_file_and_a_missing_heading() -> None:
    doc = ROOT / "docs" / "operations.md"
    assert "the-budget-and-the-backlog" in _anchors(doc)
    assert "no-such-heading" not in _anchors(doc)
    assert LINK.findall("see [a](b.md#c) and ![image](d.png)") == ["b.md#c"]


def test_every_test_the_docs_name_exists_in_the_file_they_name() -> None:
    missing = []
    for doc in DOCS:
        text = doc.read_text()
        for module, name in re.findall(r"(tests/\w+\.py)::(test_\w+)", text):
            source = ROOT / module
            if not source.exists() or not re.search(rf"^def {name}\(", source.read_text(), re.MULTILINE):
                missing.append(f"{doc.relative_to(ROOT)}: {module}::{name}")
        for module in re.findall(r"(tests/\w+\.py)", text):
            if not (ROOT / module).exists():
                missing.append(f"{doc.relative_to(ROOT)}: {module}")
    assert not missing, "\n".join(missing)


def test_every_test_the_guarantees_table_names_is_qualified_by_its_file() -> None:
    table = [
        line for line in (ROOT / "docs" / "guarantees.md").read_text().splitlines() if line.startswith("| ")
    ]
    assert len(table) > 40, "the promise-to-test table is gone from docs/guarantees.md"
    bare = [name for line in table for name in re.findall(r"(?<!::)`(test_\w+)`", line)]
    assert not bare, f"name each test with its file (tests/<module>.py::<name>): {bare}"
