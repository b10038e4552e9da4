"""A third-party plug-in, as a package outside triggerlang would write it (tests only).

It adds one webhook provider (``demo``) and one source kind (``beacon``) through the
entry-point groups ``triggerlang.providers`` and ``triggerlang.source_kinds`` (see
``../triggerlang_demo-0.1.dist-info/entry_points.txt``). Nothing in triggerlang names
either: tests/test_registry.py puts this folder on PYTHONPATH and checks that their events
type-check, compile, match and run like a built-in's.
"""

from __future__ import annotations

from triggerlang.providers.base import Provider, Verification, as_int, as_str, header, need_body, webhook_event
from triggerlang.sources.kinds import SectionInput, SourceKind
from triggerlang.spec import INT, STR, make_source


def _normalise(event_name, body, headers=None):
    body = need_body(body, "demo")
    return [webhook_event("demo", event_name or "ping", body, headers,
                          {"delivery": header(headers, "X-Demo-Delivery"), "repo": as_str(body.get("repo"))},
                          {"count": as_int(body.get("count")), "who": as_str(body.get("who"))})]


PROVIDER = Provider(
    name="demo",
    title="Demo",
    route="/demo",
    doc="a provider from a plug-in package",
    events={"ping": ({"count": INT, "who": STR}, "the demo service says hello")},
    normaliser=_normalise,
    verifications=(Verification("secret", "hmac", "X-Demo-Signature"),),
    event_headers=("X-Demo-Event",),
    delivery_headers=("X-Demo-Delivery",),
    known_events=frozenset({"ping"}),
)


def _section(inp: SectionInput):
    rules = inp.rules_of("beacon")
    if not rules:
        return None
    return {"level": inp.first_option("beacon", "level", 1), "rules": sorted(r.name for r in rules)}


KIND = SourceKind(
    make_source("beacon", {"signal": ({"level": INT, "name": STR}, "the beacon fired once at start")},
                options={"level": INT}, listener="beacon", doc="a source kind from a plug-in package"),
    _section,
    "triggerlang_demo.source:BeaconSource",
)
