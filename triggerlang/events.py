"""The event record every source produces and every matcher consumes.

An event is ``{id, source, type, time, data}`` (CloudEvents attribute names, SPEC §4).
``data`` holds the typed catalogue fields of the event (``branch``, ``sha``...) and, for
sources that carry a raw body, ``payload``, ``headers`` and ``query``.

Field look-up by dotted path (``payload.x.y``) lives here too, because the matcher, the
dry-run explainer, argument binding and dedupe keys all need the one same definition.
"""

from __future__ import annotations

import os as _os
import time as _time
from dataclasses import dataclass, field
from typing import Any

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<missing>", "__bool__": lambda self: False})()
"""Sentinel for a field the event does not have (distinct from JSON ``null``)."""


MAX_EVENT_CHARS = 64 * 2**20
"""The longest event read by ``triggerc match`` (a whole EVENT.json, a line of a .jsonl file)
or a test's ``given ... from`` (a payload file): past it, reading stops with an error
(``/dev/zero`` would be read until memory runs out)."""


def whole_number(text: str) -> int | None:
    """``text`` (spaces around it allowed) as a whole number when it is ASCII digits only,
    else None. ``str.isdigit`` also says yes to ``¹`` or ``٣``, which ``int`` refuses or
    reads, so a header, a query parameter or a search written so is never a number here."""
    s = text.strip()
    return int(s) if s.isascii() and s.isdigit() else None


class JSONError(ValueError):
    """Text that :func:`read_json` cannot take, with the reason for the user."""


def read_json(text: str | bytes, position: bool = True) -> Any:
    """An event's or a payload file's JSON (``triggerc match``, a test's ``given ... from``):
    standard JSON only, so that what comes out as JSON is JSON again. Raises
    :class:`JSONError` (``not valid JSON (...)``, with the line and column when
    ``position``) for invalid JSON, ``NaN``/``Infinity`` (Python reads them, JSON has
    none), a number too large to be one (past a float's range, or an integer of more
    than 4,300 digits) or nesting too deep to read."""
    import json

    try:
        return json.loads(text, parse_constant=_not_json, parse_float=_finite)
    except json.JSONDecodeError as e:
        raise JSONError(f"not valid JSON ({e.msg}" + (f" at line {e.lineno} column {e.colno})" if position else ")")
                        ) from None
    except RecursionError:
        raise JSONError("JSON nested too deeply to read (Python's json stops near 1,000 levels)") from None
    except JSONError:
        raise
    except ValueError:  # an integer of more than 4,300 digits (sys.get_int_max_str_digits)
        raise JSONError("JSON with an integer too long to read (over 4,300 digits)") from None


def _not_json(name: str) -> Any:
    raise JSONError(f"not valid JSON ({name} is not a JSON value)")


def _finite(text: str) -> float:
    v = float(text)
    if v - v != 0:  # inf
        raise JSONError(f"JSON with a number too large to read ({text[:20]}{'...' * (len(text) > 20)})")
    return v


def new_event_id() -> str:
    """A fresh event id: ``evt_`` followed by 16 hex digits (64 random bits, from the
    system's CSPRNG as ``secrets.token_hex`` takes them, without importing ``secrets``,
    whose ``random``/``hashlib``/``hmac`` imports cost ``triggerc check`` 8 ms)."""
    return "evt_" + _os.urandom(8).hex()


def utc_now_iso() -> str:
    """The current time as an RFC 3339 UTC timestamp with milliseconds
    (``2026-05-01T12:00:00.123Z``)."""
    now = _time.time()
    sec = int(now)
    cached = _SECOND
    if cached[0] != sec:  # the date and time of day are formatted once a second
        cached = _SECOND[:] = [sec, _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(sec))]
    return f"{cached[1]}.{int((now - sec) * 1000):03d}Z"


_SECOND: list = [None, ""]
"""The last second :func:`utc_now_iso` formatted (a cache, not a setting)."""


@dataclass
class Event:
    """One event: ``source`` and ``type`` name the trigger (``git``/``push``)."""

    source: str
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_event_id)
    time: str = field(default_factory=utc_now_iso)
    # causation depth: 0 for what a source saw (a webhook, a file change, a tick); a
    # run.* event is its run's event's depth + 1 (serve --max-chain-depth stops a loop)
    depth: int = 0

    @property
    def trigger(self) -> str:
        return f"{self.source}.{self.type}"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "type": self.type, "time": self.time, "data": self.data}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "Event":
        """Build an event from ``{source, type, data[, id, time]}``; raises ValueError if malformed."""
        if not isinstance(obj, dict):
            raise ValueError("an event must be a JSON object {source, type, data}")
        src, typ = obj.get("source"), obj.get("type")
        if not isinstance(src, str) or not src:
            raise ValueError("the event has no 'source' string")
        if not isinstance(typ, str) or not typ:
            raise ValueError("the event has no 'type' string")
        data = obj.get("data", {})
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValueError("the event's 'data' must be a JSON object")
        kw: dict[str, Any] = {}
        if isinstance(obj.get("id"), str) and obj["id"]:
            kw["id"] = obj["id"]
        if isinstance(obj.get("time"), str) and obj["time"]:
            kw["time"] = obj["time"]
        for name, value in (("source", src), ("type", typ), *kw.items()):
            if not value.isascii():
                _encodable(name, value)
        if isinstance(obj.get("depth"), int) and not isinstance(obj["depth"], bool) and obj["depth"] > 0:
            kw["depth"] = obj["depth"]
        return cls(source=src, type=typ, data=data, **kw)


def _encodable(name: str, value: str) -> None:
    """ValueError unless ``value`` (an event's source, type, id or time) can be written as
    UTF-8: JSON's ``"\\ud800"`` escape is valid JSON for a lone surrogate, which no text
    column or log line can hold (the journal's insert raised, and ``POST /events`` was a 500
    with a traceback in the log). In ``data`` a lone surrogate is kept: it is written as
    its JSON escape."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"the event's '{name}' is not valid Unicode: it holds a lone surrogate "
                         f"(\\u{ord(value[e.start]):04x})") from None


FILE_CHANGES = ("created", "modified", "deleted")

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
"""The ``http.METHOD`` events (``http.request`` is any of them)."""


def type_note(event: Event) -> str:
    """``--explain``'s note when a rule's trigger does not take the event's type. An event
    typed ``file.changed`` (as a rule's trigger reads) gets the three types an event has:
    ``file.changed`` is a trigger for any of them, never an event's own type."""
    if event.source == "file" and event.type == "changed":
        return ("file.changed is a trigger, not an event's type: a file event is file.created, "
                "file.modified or file.deleted")
    return f"the event is {event.source}.{event.type}"


_NAMED_BY_TYPE = {"file": ("a", "change", FILE_CHANGES, lambda v: v, lambda t: t),
                  "http": ("an", "method", HTTP_METHODS, str.lower, str.upper)}
"""The field a source's event type names, as its sources write it: a file event's ``change``
(``file.created`` has ``change="created"``), an http event's ``method`` (``http.post`` has
``method="POST"``): (article, field, the types, a value's type, the type's value)."""


def name_conflict(event: Event) -> tuple[str, str, str | None] | None:
    """``(what is wrong, the field, the type its value names or None)`` for an event whose
    field contradicts its type (``emit file.modified change=created``, ``emit http.post
    method=GET``, ``method=post`` too: a real http event's method is upper case), else None.
    Refused, not overridden nor ignored: the type and the field would disagree in the
    journal, and rules on the field and on the type would see two events (a rule test's
    ``given`` refuses the same, TRG603)."""
    named = _NAMED_BY_TYPE.get(event.source)
    if named is None or event.type not in named[2]:
        return None
    article, name, types, type_of, value_of = named
    own = value_of(event.type)
    value = event.data.get(name, own)
    if value == own:
        return None
    import json

    other = type_of(value) if isinstance(value, str) else None
    return (f'{article} {event.source}.{event.type} event has {name}="{own}", not {json.dumps(value)}', name,
            other if other in types and other != event.type else None)


def complete_file_data(data: dict[str, Any], change: str | None, paths: bool = True) -> dict[str, Any]:
    """Fill in the fields of a ``file.*`` event's data that follow from its ``path`` (the one
    definition): ``name`` (the last segment), ``ext`` (after the last dot, ``""`` for
    ``Makefile`` or ``.bashrc``), ``paths`` (``[path]``, unless ``paths`` is False; a
    debounce window gathers more) and ``change`` (``change``, when it is one of
    :data:`FILE_CHANGES`). Fields already there
    are kept: the file source sets them all, ``triggerc emit file.modified path=app.py`` or
    a rule test's ``given`` only ``path``, and must match the same rules."""
    path = data.get("path")
    if isinstance(path, str):
        name = path.rsplit("/", 1)[-1]
        stem, dot, ext = name.rpartition(".")
        data.setdefault("name", name)
        data.setdefault("ext", ext if dot and stem else "")
        if paths:
            data.setdefault("paths", [path])
    if change in FILE_CHANGES:
        data.setdefault("change", change)
    return data


def complete_data(source: str, typ: str, data: dict[str, Any]) -> dict[str, Any]:
    """Fill in what an event's name says of its data, as its source would have written it
    (fields already there are kept; one that contradicts the name is refused before, by
    :func:`name_conflict`): a ``file.*`` event's fields that follow from its ``path``
    (:func:`complete_file_data`), an ``http.post`` event's ``method`` (``"POST"``), so
    that ``triggerc emit file.modified path=app.py`` and ``triggerc emit http.post
    path=/x`` match the rules the watcher's and the HTTP source's events match."""
    if source == "file":
        complete_file_data(data, typ)
    elif source == "http" and typ in HTTP_METHODS:
        data.setdefault("method", typ.upper())
    return data


def get_path(data: Any, path: tuple[str, ...] | list[str]) -> Any:
    """The value at a dotted path in ``data``, or MISSING.

    Maps are entered by key; lists by a decimal index (``payload.commits.0.id``).
    ``headers`` keys are stored lower-case by the sources, so look-ups are exact.

    A ``*`` segment stands for every element of a list, or every value of a map, there:
    the rest of the path is read in each, and the result is the list of what was found,
    in order, missing values left out and lists spliced in (``payload.commits.*.modified``
    is every modified path of every commit, one list), so a condition on it holds if it
    holds for any of them, as on any list field. A ``*`` that finds nothing (an empty
    list, no element with the rest of the path) is a missing field: ``has`` does not
    hold, and a label nobody set is not ``=`` but is ``!=``, as on any missing field.
    """
    cur = data
    for i, part in enumerate(path):
        if part == "*":
            return _every(cur, path[i + 1:])
        if isinstance(cur, dict):
            if part in cur:
                cur = cur[part]
            else:
                return MISSING
        elif isinstance(cur, list) and part.isascii() and part.isdigit():
            i = int(part)
            if i < len(cur):
                cur = cur[i]
            else:
                return MISSING
        else:
            return MISSING
    return cur


def _every(cur: Any, rest: tuple[str, ...] | list[str]) -> Any:
    """``get_path``'s ``*``: ``rest`` read in every element of ``cur``, as one flat list."""
    if isinstance(cur, dict):
        items = list(cur.values())
    elif isinstance(cur, list):
        items = cur
    else:
        return MISSING
    found: list = []
    for item in items:
        v = get_path(item, rest) if rest else item
        if v is MISSING or v is None:
            continue
        if isinstance(v, list):
            found.extend(x for x in v if x is not None)
        else:
            found.append(v)
    return found if found else MISSING


def tick_data(rule: str, scheduled: str, time: str, catch_up: bool = False, missed: int = 0) -> dict[str, Any]:
    """A ``schedule.tick``'s data, as serve's schedules and the rule tests' clock
    (:mod:`triggerlang.correlation.sim`) both make it; here, not in the schedule
    source, so the rule tests need not import asyncio."""
    return {"rule": rule, "scheduled": scheduled, "time": time, "catch_up": catch_up, "missed": missed}
