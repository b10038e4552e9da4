"""Typed event specs: the vocabulary every catalogue entry is written in (SPEC §4, §13).

This is the bottom layer under the catalogue (:mod:`triggerlang.check.catalogue`), the
provider modules (:mod:`triggerlang.providers`) and the source kinds
(:mod:`triggerlang.sources.kinds`): each of them declares its events here, as data, and
imports nothing above it, so the import graph stays acyclic and ``triggerc check`` loads
no server or watcher library.

Types are plain strings (:data:`STR`, :data:`LIST_STR`, ...), so they print as they are
written in messages and serialise as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterable, Mapping

STR = "str"
INT = "int"
NUMBER = "number"
BOOL = "bool"
DURATION = "duration"
TIME = "time"
LIST_STR = "list[str]"
MAP = "map"
ANY = "any"
SECRET = "secret"
"""Option type only: the value names a ``secret`` declaration."""

EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class EventSpec:
    """One trigger ``source.name`` and its typed fields (name -> type string)."""

    source: str
    name: str
    fields: Mapping[str, str] = field(hash=False)
    doc: str = ""

    @property
    def trigger(self) -> str:
        return f"{self.source}.{self.name}"


@dataclass(frozen=True)
class SourceSpec:
    """One source kind: its events, options and the manifest listener that serves it.

    ``open_events``: an event name not in ``events`` is allowed (webhook providers), and
    ``known_events`` are the names the checker does not warn about (TRG207).
    ``raw``: untyped field prefixes this source's events carry (``payload``, ``headers``,
    ``query``). ``options``: option name -> type for ``source KIND opt=value``.
    ``listener``: the key under the manifest's ``sources`` (``""`` for internal sources).
    ``common``: the fields every event of the source has (what ``SOURCE.*`` and an
    unknown event of an open source get). ``route``: a webhook provider's default route
    (``""`` for a source that is not one). ``field_hints``: a field the source does not
    have, and why (``files`` on Bitbucket): the hint of TRG203 for it.
    """

    name: str
    events: Mapping[str, EventSpec] = field(hash=False)
    open_events: bool = False
    raw: frozenset[str] = frozenset()
    options: Mapping[str, str] = field(default_factory=lambda: EMPTY, hash=False)
    listener: str = ""
    doc: str = ""
    common: Mapping[str, str] = field(default_factory=lambda: EMPTY, hash=False)
    known_events: frozenset[str] = frozenset()
    route: str = ""
    field_hints: Mapping[str, str] = field(default_factory=lambda: EMPTY, hash=False)


def freeze(fields: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(fields))


def _intersection(field_sets: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The fields (with the same type) present in every one of ``field_sets``."""
    sets = list(field_sets)
    if not sets:
        return {}
    first, rest = sets[0], sets[1:]
    return {k: t for k, t in first.items() if all(s.get(k) == t for s in rest)}


def make_source(
    name: str,
    events: Mapping[str, tuple[Mapping[str, str], str]],
    *,
    common: Mapping[str, str] | None = None,
    open_events: bool = False,
    raw: Iterable[str] = (),
    options: Mapping[str, str] | None = None,
    listener: str = "",
    doc: str = "",
    known_events: Iterable[str] = (),
    route: str = "",
    field_hints: Mapping[str, str] | None = None,
) -> SourceSpec:
    """Build a SourceSpec; every event gets ``common`` first, then its own fields.

    Without an explicit ``common``, the common fields are those all events share. The
    described events are always among ``known_events``.
    """
    specs: dict[str, EventSpec] = {}
    for ev, (own, ev_doc) in events.items():
        merged = {**(common or {}), **own}
        specs[ev] = EventSpec(source=name, name=ev, fields=freeze(merged), doc=ev_doc)
    shared = dict(common) if common is not None else _intersection(s.fields for s in specs.values())
    return SourceSpec(
        name=name,
        events=MappingProxyType(specs),
        open_events=open_events,
        raw=frozenset(raw),
        options=freeze(options or {}),
        listener=listener,
        doc=doc,
        common=freeze(shared),
        known_events=frozenset(known_events) | frozenset(specs),
        route=route,
        field_hints=freeze(field_hints or {}),
    )
