"""The checker's results: what the compiler and the manifest writer get (SPEC §6, §7).

One layer below the checker and the modules that check parts of a file for it
(check/tests.py, check/correlation.py), so each of them can build and read these without
importing the checker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..events import HTTP_METHODS  # (also its name here, as before)
from ..syntax import ast as A


@dataclass
class CheckedRule:
    """A rule with everything resolved: what the compiler writes to the manifest."""

    name: str
    ast: A.Rule
    source: str                   # catalogue source ("git", "schedule", ...)
    event: str                    # event name, or "*"
    types: list[str] | None       # event types it matches (None: any type of the source)
    filter: dict | None           # serialised predicate tree
    action: str
    args: dict[str, dict]         # param -> {"field": "a.b"} | {"value": v}
    policies: dict[str, Any]
    schedule: dict | None = None  # {"every": s} | {"cron": "...", "tz": "..."}, and "catch_up": True if set
    route: str | None = None      # http: the pinned path (literal or glob)
    methods: list[str] | None = None
    repos: list[str] = field(default_factory=list)
    path_globs: list[str] = field(default_factory=list)
    correlation: dict | None = None   # a correlation rule (§11): its trigger as the manifest writes it
    members: list["CheckedRule"] = field(default_factory=list)  # ... and its members, as listeners
    member: str | None = None     # a member (one of those listeners): its name in a diagnostic


@dataclass
class Program:
    """The checked module: the compiler's only input."""

    file: str
    lets: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, A.Secret] = field(default_factory=dict)
    actions: dict[str, A.ActionDecl] = field(default_factory=dict)
    sources: list[A.SourceDecl] = field(default_factory=list)
    rules: list[CheckedRule] = field(default_factory=list)
    tests: list = field(default_factory=list)  # CheckedTest (check/tests.py), one per test block
    rule_asts: dict[str, A.Rule] = field(default_factory=dict)
    included: tuple[A.IncludedFile, ...] = ()  # the files its includes read (A.Module)
    include_globs: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def listeners(self) -> list[CheckedRule]:
        """What listens to events: every ordinary rule with a source, and every member of a
        correlation rule (§11: a correlation's sources are the union of its members')."""
        out: list[CheckedRule] = []
        for r in self.rules:
            if r.correlation is not None:
                out.extend(m for m in r.members if m.source)
            elif r.source:
                out.append(r)
        return out
