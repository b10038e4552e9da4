"""The source-kind registry: what each kind of source brings to every phase (SPEC §4, §7).

A source kind is one :class:`SourceKind` record: its catalogue entry (events, typed fields,
options), the builder of its section of the listener manifest, and the ``module:Class`` of
its :class:`~triggerlang.sources.base.Source`, imported only by the runtime (so the
checker and the compiler never load a server or watcher library). The built-in kinds are
below; a third-party package adds one through the ``triggerlang.source_kinds`` entry-point
group (``name = "package.module:KIND"``, a :class:`SourceKind`), and its events then
type-check, compile and run like a built-in's.

Webhook providers (:mod:`triggerlang.providers`) are catalogue sources too, served by the
``http`` kind: its section builder turns every provider a rule needs into a route.

The plain-old ``triggerlang.sources`` entry-point group (a Source class by manifest key)
is still read by :func:`load_source_class`, for a manifest written by hand.
"""

from __future__ import annotations

import importlib
import posixpath
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .. import defaults
from ..compile.patterns import compile_glob, literal_prefix
from ..plugins import Registry
from ..providers import BUILTIN as BUILTIN_PROVIDERS
from ..providers import Provider, get_provider
from ..providers.base import CI_SOURCE
from ..providers.base import Verification
from ..spec import ANY, BOOL, DURATION, INT, LIST_STR, MAP, SECRET, STR, TIME, SourceSpec, make_source


@dataclass(eq=False)
class SectionInput:
    """What a manifest-section builder gets: the checked rules (each with ``source``,
    ``event``, ``name``, ``route``, ``methods``, ``repos``, ``path_globs``, ``schedule``),
    the ``source`` declarations by kind, and ``option(decl, name)``, an option's literal
    value (a secret option gives the secret's *name*, never a value)."""

    rules: list[Any]
    decls: Mapping[str, list[Any]]
    option: Callable[[Any, str], Any]

    @classmethod
    def of(cls, program: Any, value: Callable[[Any], Any]) -> "SectionInput":
        """The input of a checked program (:class:`~triggerlang.check.program.Program`): its
        listening rules, its declarations by kind, and each option's value read by ``value``
        (the manifest's ``literal_value``; the checker's, quiet on what it reports elsewhere),
        but a secret's name for a secret."""
        from ..syntax import ast as A

        def option(decl: Any, name: str) -> Any:
            for o in decl.options:
                if o.name.value == name:
                    v = o.value
                    return v.name if isinstance(v, A.Ref) and v.name in program.secrets else value(v)
            return None

        decls: dict[str, list[Any]] = {}
        for s in program.sources:
            decls.setdefault(s.kind.value, []).append(s)
        return cls(program.listeners(), decls, option)

    def rules_of(self, kind: str) -> list[Any]:
        return [r for r in self.rules if r.source == kind]

    def first_decl(self, kind: str) -> Any:
        found = self.decls.get(kind)
        return found[0] if found else None

    def first_option(self, kind: str, name: str, default: Any = None) -> Any:
        decl = self.first_decl(kind)
        value = self.option(decl, name) if decl is not None else None
        return default if value is None else value


SectionBuilder = Callable[[SectionInput], "dict | None"]
"""SectionInput -> this kind's manifest section, or None when no rule needs it."""


@dataclass(frozen=True, eq=False)
class SourceKind:
    """One kind of source: catalogue entry, manifest section and Source class."""

    spec: SourceSpec
    section: SectionBuilder | None = None  # None: an internal source (no listener)
    source: str = ""  # "module:Class" of its Source, loaded by the runtime only

    @property
    def name(self) -> str:
        return self.spec.name


# --------------------------------------------------------------------------- file

_FILE_FIELDS = {"path": STR, "name": STR, "ext": STR, "change": STR, "paths": LIST_STR}


def watch_roots(globs: list[str]) -> list[str]:
    """The folders to watch for these path globs (their literal prefixes, deduplicated)."""
    roots = set()
    for g in globs or ["**"]:
        pre = literal_prefix(g)
        if pre == g:  # a literal path: watch its folder
            d = posixpath.dirname(g)
        elif pre.endswith("/"):
            d = pre.rstrip("/")
        else:
            d = posixpath.dirname(pre)
        d = posixpath.normpath(d) if d else "."
        if d.startswith("/") or d.startswith(".."):
            d = "." if not d.startswith("/") else d
        roots.add(d)
    if "." in roots:
        return ["."]
    # the roots no other root contains: sorted by path segments, a folder's subfolders come
    # right after it, so each root needs comparing with the last one kept only
    out: list[str] = []
    for r in sorted(roots, key=lambda x: x.split("/")):
        if not (out and r.startswith(out[-1] + "/")):
            out.append(r)
    return sorted(out)


def _file_section(inp: SectionInput) -> dict | None:
    rules = inp.rules_of("file")
    if not rules:
        return None
    globs: list[str] = []
    any_path = False
    for r in rules:
        if r.path_globs:
            globs.extend(r.path_globs)
        else:
            any_path = True
    section = {"root": inp.first_option("file", "root") or ".", "roots": ["."] if any_path else watch_roots(globs),
               "ignore": list(inp.first_option("file", "ignore") or []),
               "always_ignored": list(defaults.ALWAYS_IGNORED), "state_dir": defaults.STATE_DIR}
    if inp.first_option("file", "gitignore") is True:  # only when set: older manifests stay byte for byte
        section["gitignore"] = True
    if inp.first_option("file", "poll"):  # seconds between two scans, instead of inotify/FSEvents
        section["poll"] = inp.first_option("file", "poll")
    if inp.first_option("file", "meta") is False:  # a chmod alone starts nothing (only when set, as gitignore)
        section["meta"] = False
    return section


FILE = SourceKind(
    make_source(
        "file",
        {
            "created": (_FILE_FIELDS, "a file was created under a watched root"),
            "modified": (_FILE_FIELDS, "a file's content changed"),
            "deleted": (_FILE_FIELDS, "a file was deleted"),
            "changed": (_FILE_FIELDS, "any of created, modified, deleted (see `change`)"),
        },
        options={"root": STR, "ignore": LIST_STR, "gitignore": BOOL, "poll": DURATION, "meta": BOOL},
        listener="file",
        doc="file-system changes; `path` is relative to the root with `/` separators",
    ),
    _file_section,
    "triggerlang.sources.files:FileSource",
)

# --------------------------------------------------------------------------- git

_GIT_FIELDS = {
    "repo": STR,
    "ref": STR,
    "branch": STR,
    "tag": STR,
    "before": STR,
    "after": STR,
    "sha": STR,
    "forced": BOOL,
    "author": STR,
    "author_email": STR,
    "message": STR,
    "files": LIST_STR,
    "commits": INT,
}


def _git_section(inp: SectionInput) -> dict | None:
    rules = inp.rules_of("git")
    if not rules:
        return None
    repos = sorted({repo for r in rules for repo in (r.repos or ["."])})
    return {"repos": [{"repo": r, "path": r} for r in repos], "poll": inp.first_option("git", "poll") or defaults.GIT_POLL}


GIT = SourceKind(
    make_source(
        "git",
        {
            "push": (_GIT_FIELDS, "a branch moved forward or was forced"),
            "merge": (_GIT_FIELDS, "a branch's new head has two or more parents"),
            "tag": (_GIT_FIELDS, "a tag was created or moved"),
            "branch_created": (_GIT_FIELDS, "a branch was created"),
            "branch_deleted": (_GIT_FIELDS, "a branch was deleted"),
        },
        options={"poll": DURATION},
        listener="git",
        doc="ref updates of local repositories, watched without hooks",
    ),
    _git_section,
    "triggerlang.sources.git:GitSource",
)

# --------------------------------------------------------------------------- http

_HTTP_FIELDS = {
    "method": STR,
    "path": STR,
    "headers": MAP,
    "query": MAP,
    "payload": ANY,
    "text": STR,
    "remote": STR,
}


def provider_of(name: str) -> Provider | None:
    """The webhook provider called ``name``, or None for a source kind (no entry-point scan
    for a built-in kind's name)."""
    if name in BUILTIN_KINDS:
        return None
    return get_provider(name)


def provider_order(name: str) -> tuple[int, str]:
    return (BUILTIN_PROVIDERS.index(name), "") if name in BUILTIN_PROVIDERS else (len(BUILTIN_PROVIDERS), name)


def active_providers(used: set[str], declared: set[str]) -> list[Provider]:
    """The providers whose route a program needs, in registry order: those a rule listens
    to; and when a rule listens to ``ci.completed``, those that always serve it and those
    that derive it when they are declared (their completions become ``ci.completed``)."""
    out = []
    for name in sorted(used | declared | ({CI_SOURCE} if CI_SOURCE in used else set()), key=provider_order):
        p = provider_of(name)
        if p is None:
            continue
        if name in used or (CI_SOURCE in used and (p.ci_route == "always" or (p.ci_events and name in declared))):
            out.append(p)
    return out


def webhook_verify(verifications: tuple[Verification, ...], decl: Any, option: Callable[[Any, str], Any]) -> dict | None:
    """The manifest ``verify`` of a route: the first of ``verifications`` whose option the
    declaration sets (``{"scheme", "secret"[, "header"]}``, or ``{"scheme": "query",
    "secret", "param"}`` for a token sent as a query parameter), or None."""
    if decl is None:
        return None
    for v in verifications:
        secret = option(decl, v.option)
        if secret and v.query_option and option(decl, "query"):
            return {"scheme": "query", "secret": secret, "param": option(decl, "query")}
        header = option(decl, "header") if secret and v.header_scheme else None
        if header and header.lower() != (v.header or "").lower():
            return {"scheme": v.header_scheme, "secret": secret, "header": header}
        if secret:
            verify = {"scheme": v.scheme, "secret": secret}
            if v.header:
                verify["header"] = (option(decl, "header") if v.custom_header else None) or v.header
            return verify
    return None


def http_decl_covers(path: str | None, route: str) -> bool:
    """Whether a ``source http path=P`` declaration protects a rule's ``route``: no path
    (every route), the same path, a glob that matches the route, or a glob with ``*``
    whose literal prefix the route's own literal prefix starts with (``/hooks/*`` covers a
    rule pinned to ``path ~ "/hooks/a*"``). The checker (TRG209) and the manifest (the
    route's ``verify``) both ask this, so a route the checker calls protected is."""
    if path is None or path == route:
        return True
    try:
        return bool(compile_glob(path).match(route)) \
            or ("*" in path and literal_prefix(route).startswith(literal_prefix(path)))
    except ValueError:  # PatternError: an invalid glob protects nothing
        return False


def decl_specificity(path: str | None, route: str) -> tuple[int, int]:
    """How closely a ``source http path=P`` covering ``route`` names it, smallest first:
    the route itself, then globs by longest literal prefix (the order the server picks a
    route in), then a declaration without a path; equal ones keep the file's order. So
    ``path="/hooks/special" token=t`` wins over ``path="/hooks/*" hmac=s`` for
    /hooks/special wherever the two are written."""
    if path == route:
        return (0, 0)
    if path is None:
        return (2, 0)
    return (1, -len(literal_prefix(path)))


def _http_section(inp: SectionInput) -> dict | None:
    routes: dict[str, dict] = {}
    used = {r.source for r in inp.rules}
    for p in active_providers(used, set(inp.decls)):
        for decl in inp.decls.get(p.name) or [None]:
            path = (inp.option(decl, "path") if decl is not None else None) or p.route
            routes[path] = {"path": path, "kind": p.name, "methods": ["POST"],
                            "verify": webhook_verify(p.verifications, decl, inp.option)}
    http_decls = inp.decls.get("http", [])
    for r in inp.rules_of("http"):
        if not r.route:
            continue
        verify = None
        settings: dict[str, Any] = {}
        covering = [d for d in http_decls if http_decl_covers(inp.option(d, "path"), r.route)]
        for d in sorted(covering, key=lambda d: decl_specificity(inp.option(d, "path"), r.route)):
            verify = verify or webhook_verify(HTTP_VERIFICATIONS, d, inp.option)
            for name in HTTP_ROUTE_OPTIONS:  # the most specific declaration covering the route that sets it
                if name not in settings and inp.option(d, name) is not None:
                    settings[name] = inp.option(d, name)
        entry = routes.setdefault(r.route, {"path": r.route, "kind": "http", "methods": [], "verify": verify})
        if entry["kind"] != "http":
            continue
        for name, value in settings.items():
            entry.setdefault(name, list(value) if isinstance(value, list) else value)
        if r.methods is None or entry["methods"] is None:
            entry["methods"] = None
        else:
            entry["methods"] = sorted(set(entry["methods"]) | set(r.methods))
        if entry["verify"] is None and verify is not None:
            entry["verify"] = verify
    if not routes:
        return None
    host, port = defaults.HTTP_HOST, defaults.HTTP_PORT
    for kind in inp.decls:
        for d in inp.decls[kind]:
            h, pt = inp.option(d, "host"), inp.option(d, "port")
            host = h if h else host
            port = pt if pt is not None else port
    return defaults.http_section([routes[k] for k in sorted(routes)], host, port)


HTTP_ROUTE_OPTIONS = ("allow", "reply", "json_fields")
"""Options of ``source http`` copied onto each route it covers: the client ranges let in,
the text a delivery that started a run is answered with (adnanh/webhook's
``response-message``), and the form fields that hold JSON (its ``parse-parameters-as-json``)."""

HTTP_VERIFICATIONS = (
    Verification("token", "bearer", "Authorization", query_option=True, header_scheme="token"),
    Verification("hmac", "hmac", "X-Signature-256", custom_header=True),
    Verification("hmac_sha1", "hmac-sha1", "X-Signature", custom_header=True),
    Verification("hmac_sha512", "hmac-sha512", "X-Signature", custom_header=True),
    Verification("standard", "standard"),
)
"""How ``source http path=...`` protects the routes it covers (first option set wins)."""

HTTP = SourceKind(
    make_source(
        "http",
        {
            "request": (_HTTP_FIELDS, "any HTTP request on a rule's route"),
            "get": (_HTTP_FIELDS, "a GET request"),
            "post": (_HTTP_FIELDS, "a POST request"),
            "put": (_HTTP_FIELDS, "a PUT request"),
            "patch": (_HTTP_FIELDS, "a PATCH request"),
            "delete": (_HTTP_FIELDS, "a DELETE request"),
        },
        raw=("payload", "headers", "query"),
        options={"path": STR, "token": SECRET, "hmac": SECRET, "hmac_sha1": SECRET, "hmac_sha512": SECRET,
                 "standard": SECRET, "header": STR, "query": STR, "allow": LIST_STR, "reply": STR,
                 "json_fields": LIST_STR, "host": STR,
                 "port": INT},
        listener="http",
        doc="plain HTTP requests; a rule pins its route with `path`",
    ),
    _http_section,
    "triggerlang.sources.http:HttpSource",
)

# --------------------------------------------------------------------------- schedule


def _schedule_section(inp: SectionInput) -> dict | None:
    sched = [dict(rule=r.name, **r.schedule) for r in inp.rules_of("schedule") if r.schedule]
    return {"schedules": sched} if sched else None


SCHEDULE = SourceKind(
    make_source(
        "schedule",
        # catch_up and missed: true and N on the tick a `catch up` schedule makes up at serve's
        # start, false and 0 on every other
        {"tick": ({"time": TIME, "scheduled": TIME, "rule": STR, "catch_up": BOOL, "missed": INT},
                  "an `every` or `cron` schedule fired")},
        listener="schedule",
        doc="time-based triggers",
    ),
    _schedule_section,
    "triggerlang.sources.schedule:ScheduleSource",
)

# --------------------------------------------------------------------------- run

_RUN_FIELDS = {
    "rule": STR,
    "action": STR,
    "status": STR,
    "exit_code": INT,
    "duration": DURATION,
    "inputs": MAP,
    "run_id": INT,
    "event_id": STR,
}

RUN = SourceKind(
    make_source(
        "run",
        {
            "completed": (_RUN_FIELDS, "a run of another rule finished, whatever its status"),
            "failed": (_RUN_FIELDS, "a run of another rule failed or timed out"),
        },
        doc="runs of rules, to chain one rule to another (internal: no listener)",
    ),
)

# --------------------------------------------------------------------------- correlation

_CORRELATION_FIELDS = {
    "rule": STR,
    "group": STR,
    "keys": LIST_STR,        # the JSON text of each key value
    "members": LIST_STR,     # the aliases that had an event
    "missing": LIST_STR,     # the aliases that had none
    "opened_at": TIME,
    "closed_at": TIME,
    "unobserved": DURATION,  # the part of the window `serve` was not running
    "late": DURATION,        # how long after its deadline the group was processed
}

CORRELATION = SourceKind(
    make_source(
        "correlation",
        {
            "fired": (_CORRELATION_FIELDS, "a correlation rule's group completed (or an absence window fired)"),
            "expired": (_CORRELATION_FIELDS, "a correlation rule's group reached its deadline without firing"),
        },
        doc="correlation groups (SPEC §11), to chain rules on them (internal: no listener)",
    ),
)

# --------------------------------------------------------------------------- the registry

BUILTIN_KINDS: dict[str, SourceKind] = {k.name: k for k in (FILE, GIT, HTTP, SCHEDULE, RUN, CORRELATION)}
"""The built-in source kinds by name (catalogue order: webhook providers come after http)."""

ENTRY_POINT_GROUP = "triggerlang.source_kinds"
LEGACY_ENTRY_POINT_GROUP = "triggerlang.sources"

REGISTRY: Registry[SourceKind] = Registry(ENTRY_POINT_GROUP, SourceKind, BUILTIN_KINDS, BUILTIN_KINDS.get,
                                          not_here=BUILTIN_PROVIDERS)
register_kind = REGISTRY.register
"""Add (or replace) a source kind at run time; for tests and embedding programs."""


def get_kind(name: str) -> SourceKind | None:
    """The source kind called ``name`` (built-ins, then registered, then entry points)."""
    return REGISTRY.get(name)


def kind_names() -> list[str]:
    """Every source kind's name: the built-ins, then the others by name."""
    return REGISTRY.names()


def build_sections(inp: SectionInput) -> dict[str, dict]:
    """Every manifest section the rules need, keyed by listener."""
    sections: dict[str, dict] = {}
    names = list(BUILTIN_KINDS) + sorted({r.source for r in inp.rules} - set(BUILTIN_KINDS))
    for name in names:
        kind = get_kind(name)
        if kind is None or kind.section is None:
            continue
        section = kind.section(inp)
        if section is not None:
            sections[kind.spec.listener or name] = section
    return sections


def load_source_class(kind: str) -> type:
    """The Source class for a manifest key: built-in and registered kinds, then the
    ``triggerlang.source_kinds`` and ``triggerlang.sources`` entry points."""
    found = get_kind(kind)
    if found is not None and found.source:
        mod, cls = found.source.split(":")
        return getattr(importlib.import_module(mod), cls)
    from importlib.metadata import entry_points

    for ep in entry_points(group=LEGACY_ENTRY_POINT_GROUP):
        if ep.name == kind:
            return ep.load()
    raise KeyError(kind)
