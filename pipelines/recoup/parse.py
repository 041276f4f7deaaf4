r"""Reads the API's JSON: orjson when it can, the standard library for valid JSON orjson refuses.

orjson refuses some valid documents: a lone surrogate escape (`"\ud83c"`, what JavaScript sends
for a cut emoji), a number no double holds (`1e400`), nesting deeper than 1,024. The standard
library reads them; the runs array is then read run by run, so that such a run becomes an
`UnreadableRun` (rejected by name) and the other runs of the page load. Lone surrogates become
U+FFFD.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from pipelines.recoup.transform import UnreadableRun

_SPACE = re.compile(r"[ \t\n\r]*")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Strings (brackets inside them do not count) and the punctuation that shapes a value.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}:,]', re.DOTALL)


class NotJson(ValueError):
    """The bytes are not one JSON document."""


def loads(content: bytes) -> Any:
    """Parses an answer. Raises NotJson when it is not JSON."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        pass
    try:
        return _Reader(content.decode("utf-8")).document()
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise NotJson(str(exc)[:200]) from None


class _Reader:
    """The standard library's parser, stepping through the top object and its runs array."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.odd_number = False  # a number no double holds was read since the last reset
        self.surrogates = bool(_SURROGATE_ESCAPE.search(text))
        self.decoder = json.JSONDecoder(
            parse_float=self._float, parse_int=self._int, parse_constant=self._constant
        )

    def _float(self, literal: str) -> float:
        value = float(literal)
        self.odd_number |= not math.isfinite(value)
        return value

    def _int(self, literal: str) -> int | float:
        if len(literal) <= 20:  # like orjson: 64-bit integers stay integers, larger ones are doubles
            value = int(literal)
            if -(2**63) <= value < 2**64:
                return value
        return self._float(literal)

    def _constant(self, literal: str) -> float:  # NaN, Infinity: not JSON, but sent by some servers
        self.odd_number = True
        return float(literal)

    def _space(self, at: int) -> int:
        spaces = _SPACE.match(self.text, at)
        assert spaces is not None  # the pattern matches the empty string too
        return spaces.end()

    def _value(self, at: int) -> tuple[Any, int]:
        value, end = self.decoder.raw_decode(self.text, at)
        return (_clean(value) if self.surrogates else value), end

    def document(self) -> Any:
        text, at = self.text, self._space(0)
        if not text.startswith("{", at):
            value, end = self._value(at)
        else:
            value, end = self._object(at)
        if self._space(end) != len(text):
            raise ValueError("extra data after the document")
        return value

    def _object(self, at: int) -> tuple[dict[str, Any], int]:
        text = self.text
        body: dict[str, Any] = {}
        at = self._space(at + 1)
        if text.startswith("}", at):
            return body, at + 1
        while True:
            key, at = self._value(at)
            at = self._space(at)
            if not isinstance(key, str) or not text.startswith(":", at):
                raise ValueError("expected a key and a colon")
            at = self._space(at + 1)
            if key == "runs" and text.startswith("[", at):
                body[key], at = self._runs(at)
            else:
                body[key], at = self._value(at)
            at = self._space(at)
            if text.startswith("}", at):
                return body, at + 1
            if not text.startswith(",", at):
                raise ValueError("expected a comma")
            at = self._space(at + 1)

    def _runs(self, at: int) -> tuple[list[Any], int]:
        text = self.text
        runs: list[Any] = []
        at = self._space(at + 1)
        if text.startswith("]", at):
            return runs, at + 1
        while True:
            self.odd_number = False
            try:
                run, end = self._value(at)
            except RecursionError:
                end, run_id = _skip(text, at)
                run = UnreadableRun(run_id, "nests its JSON too deeply to be read")
            else:
                if self.odd_number:
                    run = UnreadableRun(_id_of(run), "holds a number no double can carry (such as 1e400)")
            runs.append(run)
            at = self._space(end)
            if text.startswith("]", at):
                return runs, at + 1
            if not text.startswith(",", at):
                raise ValueError("expected a comma between runs")
            at = self._space(at + 1)


def _clean(value: Any) -> Any:
    """The value with every lone surrogate replaced by U+FFFD (no JSON writer accepts them)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value


def _id_of(run: Any) -> str | None:
    run_id = run.get("id") if isinstance(run, dict) else None
    return run_id if isinstance(run_id, str) else None


def _skip(text: str, at: int) -> tuple[int, str | None]:
    """The end of the array or object starting at `at`, and its `id` if it is an object."""
    depth, previous, key, run_id = 0, "", None, None
    for match in _TOKEN.finditer(text, at):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
        elif token in ("]", "}"):
            depth -= 1
            if depth == 0:
                return match.end(), run_id
        elif token.startswith('"') and depth == 1:
            if previous in ("{", ","):
                key = token
            elif previous == ":" and key == '"id"' and run_id is None:
                run_id = _clean(json.loads(token))
        previous = token
    raise ValueError("unterminated value")
