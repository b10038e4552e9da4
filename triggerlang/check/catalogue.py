"""The event catalogue (SPEC §4, §13): every source the rules may name, as data.

Every trigger a rule can name, ``SOURCE.EVENT``, has a set of typed fields. The checker
uses this table to reject unknown fields (with a "did you mean" hint), to type-check
comparisons and placeholders, and to know which options a ``source KIND ...``
declaration takes; the compiler uses ``listener`` to decide which manifest source a rule
needs. Nothing here imports a server or watcher library: ``triggerc check`` stays fast.

The entries are not written here: each comes from its registry, so a source is described
once, where it is implemented. Source kinds (file, git, http, schedule, run, and plug-ins)
come from :mod:`triggerlang.sources.kinds`; webhook providers (github, gitlab, ci, ...,
and plug-ins) from :mod:`triggerlang.providers`. The types and records are those of
:mod:`triggerlang.spec`, re-exported here.

Three kinds of field path exist:

* a typed catalogue field (``branch``, ``sha``, ``labels``);
* a path under a *raw* prefix, for sources that carry a raw body: anything under
  ``payload`` is untyped (:data:`ANY`); ``headers.NAME`` and ``query.NAME`` are strings
  (bare ``headers`` / ``query`` are maps);
* a path below a :data:`MAP` field (``inputs.sha`` on ``run.completed``), which is
  untyped.

Webhook providers are *open*: any event name the provider may send is allowed (the
checker warns about one not in its ``known_events``), and an event the catalogue does not
describe has the source's common fields. ``SOURCE.*`` has the fields common to every
event of the source.

Look-ups by name (:func:`get_source`, ``CATALOGUE[name]``) load only what they are asked
for; iterating :data:`CATALOGUE` lists every source, plug-ins included (an entry-point
scan, so the checker does it only to word an error).
"""

from __future__ import annotations

from typing import Iterator, Mapping

from ..providers import provider_names
from ..sources.kinds import BUILTIN_KINDS, get_kind, kind_names, provider_of
from ..spec import (
    ANY,
    BOOL,
    DURATION,
    INT,
    LIST_STR,
    MAP,
    NUMBER,
    SECRET,
    STR,
    TIME,
    EventSpec,
    SourceSpec,
)


def get_source(name: str) -> SourceSpec | None:
    """The source called ``name``, or None."""
    kind = get_kind(name)
    if kind is not None:
        return kind.spec
    provider = provider_of(name)
    return provider.spec if provider is not None else None


def source_names() -> list[str]:
    """Every source's name: the built-in kinds, the providers, then plug-in kinds."""
    return [*BUILTIN_KINDS, *provider_names(), *[k for k in kind_names() if k not in BUILTIN_KINDS]]


class _Catalogue(Mapping[str, SourceSpec]):
    """Every source kind by name, read through the registries (a read-only mapping)."""

    def __getitem__(self, name: str) -> SourceSpec:
        spec = get_source(name) if isinstance(name, str) else None
        if spec is None:
            raise KeyError(name)
        return spec

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and get_source(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter([n for n in source_names() if get_source(n) is not None])

    def __len__(self) -> int:
        return len(list(iter(self)))


CATALOGUE: Mapping[str, SourceSpec] = _Catalogue()
"""Every source kind by name."""


def get_event(source: str, name: str) -> EventSpec | None:
    """The trigger ``source.name``, or None if there is no such trigger.

    ``name == "*"`` gives the fields common to every event of the source. For an open
    source (a webhook provider), an event the catalogue does not describe gets the
    source's common fields.
    """
    src = get_source(source)
    if src is None:
        return None
    if name == "*":
        return EventSpec(source=source, name="*", fields=src.common, doc=f"any {source} event")
    spec = src.events.get(name)
    if spec is None and src.open_events and name:
        spec = EventSpec(source=source, name=name, fields=src.common, doc=f"{source} event {name!r}")
    return spec


def field_type(source: str, event: str, path: tuple[str, ...]) -> str | None:
    """The type of the dotted field ``path`` on ``source.event``, or None if it has none.

    Under a raw prefix: ``payload...`` is ANY; ``headers.x`` / ``query.x`` are STR and the
    bare prefix a MAP (a header or query value is a string, so nothing lies below it).
    Below a MAP or ANY catalogue field, every path is ANY.
    """
    spec = get_event(source, event)
    if spec is None or not path:
        return None
    head, rest = path[0], path[1:]
    src = get_source(source)
    if head in src.raw:
        if head == "payload":
            return ANY
        if not rest:
            return MAP
        return STR if len(rest) == 1 else None
    typ = spec.fields.get(head)
    if typ is None or not rest:
        return typ
    return ANY if typ in (MAP, ANY) else None


def field_names(source: str, event: str) -> list[str]:
    """Every top-level field name of ``source.event`` (sorted), for "did you mean" hints."""
    spec = get_event(source, event)
    if spec is None:
        return []
    names = set(spec.fields)
    names.update(get_source(source).raw)
    return sorted(names)


__all__ = [
    "STR", "INT", "NUMBER", "BOOL", "DURATION", "TIME", "LIST_STR", "MAP", "ANY", "SECRET",
    "EventSpec", "SourceSpec", "CATALOGUE", "get_source", "get_event", "field_type", "field_names",
    "source_names",
]
