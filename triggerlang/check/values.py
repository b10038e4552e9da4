"""Resolved values: what the checker turns literals into, shared with the test-block
checks (check/tests.py) and the manifest writer, one layer below both.

A resolved value is plain JSON data, except that a duration is a :class:`Dur` (a float
that knows it is one) and a regex a :class:`Regex` (a dict that knows it is one), so type
checks can tell ``5m`` from ``300`` and ``/x/`` from a map.
"""

from __future__ import annotations

from typing import Any

from ..spec import BOOL, DURATION, INT, LIST_STR, MAP, NUMBER, STR, TIME
from ..syntax import ast as A

SKIP: Any = object()
"""Returned by an argument resolver that already reported the argument: bind nothing."""


class Regex(dict):
    """A resolved regex literal ({"regex", "flags"}), distinguishable from a plain map."""


def type_of(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, Dur):  # before number: a Dur is a float
        return "duration"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "str"
    if isinstance(v, Regex):
        return "regex"
    if isinstance(v, list):
        return "list"
    return "unknown"


class Dur(float):
    """A resolved duration (seconds), distinguishable from a plain number."""


MAX_DURATION_S = 36500 * 86400.0
"""The longest duration a rule or a test may give (100 years, ``36500d``): a longer one
would take a deadline or a schedule past the dates a computer's clock can name."""
MAX_DURATION_TEXT = "36500d"


def duration_problem(seconds: float, what: str) -> tuple[str, str] | None:
    """Why a duration cannot be used, ``(message, hint)``, or None: it must be longer than
    zero and at most :data:`MAX_DURATION_S`."""
    if not seconds > 0:
        return f"{what} must be longer than zero", "write a duration like 30s, 5m or 2h"
    if seconds > MAX_DURATION_S:
        return f"{what} is longer than 100 years", f"write at most {MAX_DURATION_TEXT}"
    return None


TYPE_WORDS = {STR: "a string", INT: "an integer", NUMBER: "a number", BOOL: "a boolean",
               DURATION: "a duration", TIME: "a time", LIST_STR: "a list of strings",
               MAP: "a map", "str": "a string", "number": "a number", "bool": "a boolean",
               "duration": "a duration", "regex": "a regex", "list": "a list"}


def plain(v: Any) -> Any:
    """A resolved value as plain JSON data."""
    if isinstance(v, Dur):
        return float(v)
    if isinstance(v, Regex):
        return {"regex": v["regex"], "flags": v["flags"]}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v



def literal_value(v: Any, lets: dict[str, Any]) -> Any:
    """An AST value as plain JSON data, with no diagnostics (they were reported while
    checking): lets resolved, durations in seconds, a regex as its pattern. The one
    definition for parameter defaults and source options, in the checker and the manifest."""
    if isinstance(v, A.Ref):
        return plain(lets.get(v.name))
    if isinstance(v, A.ListLit):
        return [literal_value(x, lets) for x in v.items]
    if isinstance(v, A.Duration):
        return v.ms / 1000.0
    if isinstance(v, A.Regex):
        return v.pattern
    return getattr(v, "value", None)


def conjuncts(e: A.Expr | None) -> list[A.Expr]:
    """The conditions of a filter's top-level ``and`` (the filter itself if it is not one)."""
    if e is None:
        return []
    if isinstance(e, A.And):
        return list(e.items)
    return [e]
