"""The event catalogue (SPEC §4): sources, events, typed fields, options."""

from __future__ import annotations

import dataclasses

import pytest

from triggerlang.check import catalogue as cat
from triggerlang.check.catalogue import (
    ANY,
    BOOL,
    CATALOGUE,
    DURATION,
    INT,
    LIST_STR,
    MAP,
    SECRET,
    STR,
    TIME,
    field_names,
    field_type,
    get_event,
    get_source,
)

KNOWN_GITHUB_EVENTS = CATALOGUE["github"].known_events

ALL_TYPES = {cat.STR, cat.INT, cat.NUMBER, cat.BOOL, cat.DURATION, cat.TIME, cat.LIST_STR, cat.MAP, cat.ANY}


def test_type_names_are_the_written_spelling():
    assert (STR, INT, cat.NUMBER, BOOL, DURATION, TIME, LIST_STR, MAP, ANY) == (
        "str", "int", "number", "bool", "duration", "time", "list[str]", "map", "any",
    )


def test_sources_and_their_listeners():
    assert {name: s.listener for name, s in CATALOGUE.items()} == {
        "file": "file",
        "git": "git",
        "http": "http",
        "github": "http",
        "gitlab": "http",
        "gitea": "http",
        "bitbucket": "http",
        "ci": "http",
        "schedule": "schedule",
        "run": "",
        "correlation": "",
    }
    for name, src in CATALOGUE.items():
        assert src.name == name
        for ev_name, ev in src.events.items():
            assert (ev.source, ev.name) == (name, ev_name)
            assert ev.doc, f"{name}.{ev_name} has no doc"
            assert set(ev.fields.values()) <= ALL_TYPES


@pytest.mark.parametrize(
    "source, events",
    [
        ("file", {"created", "modified", "deleted", "changed"}),
        ("git", {"push", "merge", "tag", "branch_created", "branch_deleted"}),
        ("http", {"request", "get", "post", "put", "patch", "delete"}),
        ("gitlab", {"push", "tag_push", "merge_request", "pipeline", "job", "release", "milestone", "issue",
                    "work_item"}),
        ("gitea", {"push", "create", "delete", "pull_request", "release", "issues", "workflow_run"}),
        ("bitbucket", {"push", "pull_request", "commit_status"}),
        ("ci", {"completed"}),
        ("schedule", {"tick"}),
        ("run", {"completed", "failed"}),
    ],
)
def test_spec_events(source, events):
    assert set(CATALOGUE[source].events) == events


def test_github_catalogued_events():
    assert {"push", "pull_request", "workflow_run", "check_suite", "release", "issues", "ping"} <= set(
        CATALOGUE["github"].events
    )


# SPEC §4's table, field by field (with the types the checker needs).
SPEC_FIELDS = [
    ("file", "changed", {"path": STR, "name": STR, "ext": STR, "change": STR, "paths": LIST_STR}),
    ("git", "push", {"repo": STR, "ref": STR, "branch": STR, "tag": STR, "before": STR, "after": STR,
                     "sha": STR, "forced": BOOL, "author": STR, "author_email": STR, "message": STR,
                     "files": LIST_STR, "commits": INT}),
    ("git", "branch_deleted", {"repo": STR, "ref": STR, "branch": STR}),
    ("http", "post", {"method": STR, "path": STR, "headers": MAP, "query": MAP, "payload": ANY,
                      "text": STR, "remote": STR}),
    ("github", "push", {"delivery": STR, "action": STR, "repo": STR, "sender": STR, "payload": ANY,
                        "branch": STR, "tag": STR, "sha": STR, "before": STR, "after": STR,
                        "forced": BOOL, "author": STR, "message": STR, "files": LIST_STR,
                        "created": BOOL, "deleted": BOOL, "commits": INT}),
    ("github", "pull_request", {"number": INT, "title": STR, "base": STR, "head": STR, "merged": BOOL,
                                "draft": BOOL, "labels": LIST_STR, "state": STR, "author": STR}),
    ("github", "workflow_run", {"workflow": STR, "status": STR, "conclusion": STR, "branch": STR,
                                "sha": STR, "event": STR}),
    ("github", "check_suite", {"status": STR, "conclusion": STR, "branch": STR, "sha": STR, "app": STR}),
    ("github", "release", {"tag": STR, "name": STR, "draft": BOOL, "prerelease": BOOL}),
    ("github", "issues", {"number": INT, "title": STR, "labels": LIST_STR, "state": STR}),
    ("github", "ping", {"zen": STR, "hook_id": INT, "repo": STR}),
    ("gitlab", "push", {"branch": STR, "tag": STR, "sha": STR, "before": STR, "after": STR,
                        "author": STR, "message": STR, "files": LIST_STR, "commits": INT,
                        "delivery": STR, "repo": STR, "sender": STR, "payload": ANY}),
    ("gitlab", "tag_push", {"tag": STR, "sha": STR, "commits": INT}),
    ("gitlab", "merge_request", {"number": INT, "title": STR, "base": STR, "head": STR, "state": STR,
                                 "action": STR, "draft": BOOL, "labels": LIST_STR, "merged": BOOL}),
    ("gitlab", "pipeline", {"pipeline": STR, "status": STR, "branch": STR, "tag": STR, "sha": STR,
                            "url": STR, "source": STR}),
    ("ci", "completed", {"provider": STR, "pipeline": STR, "status": STR, "branch": STR, "tag": STR,
                         "ref": STR, "sha": STR, "url": STR}),
    ("schedule", "tick", {"time": TIME, "scheduled": TIME, "rule": STR, "catch_up": BOOL, "missed": INT}),
    ("run", "completed", {"rule": STR, "action": STR, "status": STR, "exit_code": INT,
                          "duration": DURATION, "inputs": MAP, "run_id": INT, "event_id": STR}),
    ("run", "failed", {"exit_code": INT, "inputs": MAP}),
]


@pytest.mark.parametrize("source, event, fields", SPEC_FIELDS, ids=lambda v: v if isinstance(v, str) else "")
def test_spec_fields(source, event, fields):
    spec = get_event(source, event)
    assert spec is not None
    for name, typ in fields.items():
        assert spec.fields.get(name) == typ, f"{source}.{event}.{name}"
        assert field_type(source, event, (name,)) == typ


def test_gitlab_push_has_no_forced_flag():
    # GitLab's push payload carries no "forced": offering the field would always be missing.
    assert field_type("gitlab", "push", ("forced",)) is None
    assert field_type("github", "push", ("forced",)) == BOOL


def test_get_source():
    assert get_source("git") is CATALOGUE["git"]
    assert get_source("nope") is None


def test_get_event_known_and_unknown():
    assert get_event("git", "push").trigger == "git.push"
    assert get_event("git", "pushh") is None
    assert get_event("nope", "push") is None
    assert get_event("file", "") is None


@pytest.mark.parametrize("source", ["github", "gitlab"])
def test_open_sources_accept_unknown_events_with_the_common_fields(source):
    src = CATALOGUE[source]
    assert src.open_events
    spec = get_event(source, "deployment_status")
    assert spec is not None and spec.name == "deployment_status"
    assert dict(spec.fields) == dict(src.common)
    assert set(spec.fields) == {"delivery", "action", "repo", "sender", "payload", "headers"}
    assert field_type(source, "deployment_status", ("branch",)) is None
    assert field_type(source, "deployment_status", ("payload", "deployment", "environment")) == ANY


def test_closed_sources_reject_unknown_events():
    for name, src in CATALOGUE.items():
        if not src.route:  # the webhook providers are open: any event name they may send
            assert not src.open_events
            assert get_event(name, "bogus") is None


def test_star_gives_the_fields_every_event_has():
    assert dict(get_event("file", "*").fields) == dict(get_event("file", "changed").fields)
    assert dict(get_event("git", "*").fields) == dict(get_event("git", "push").fields)
    assert set(get_event("github", "*").fields) == {"delivery", "action", "repo", "sender", "payload", "headers"}
    gitlab_star = get_event("gitlab", "*")
    assert "sha" not in gitlab_star.fields  # shared by the four catalogued events, but not by every event
    assert get_event("run", "*").fields["exit_code"] == INT
    assert get_event("nope", "*") is None
    # every catalogued event of a source has the common fields with the same types
    for src in CATALOGUE.values():
        for ev in src.events.values():
            for name, typ in src.common.items():
                assert ev.fields[name] == typ


@pytest.mark.parametrize(
    "source, event, path, expected",
    [
        ("git", "push", ("branch",), STR),
        ("git", "push", ("files",), LIST_STR),
        ("git", "push", ("forced",), BOOL),
        ("git", "push", ("commits",), INT),
        ("git", "push", ("brnch",), None),
        ("git", "push", ("branch", "x"), None),  # a string has no sub-fields
        ("git", "push", ("payload",), None),  # git carries no raw body
        ("git", "push", (), None),
        ("http", "post", ("payload",), ANY),
        ("http", "post", ("payload", "a", "b", "0"), ANY),
        ("http", "post", ("headers",), MAP),
        ("http", "post", ("headers", "x-signature"), STR),
        ("http", "post", ("headers", "x", "y"), None),
        ("http", "post", ("query",), MAP),
        ("http", "post", ("query", "page"), STR),
        ("http", "post", ("method",), STR),
        ("github", "push", ("payload", "on"), ANY),
        ("github", "push", ("headers", "x-github-event"), STR),
        ("github", "push", ("query", "x"), None),  # webhooks carry no query map
        ("github", "pull_request", ("labels",), LIST_STR),
        ("github", "*", ("payload", "repository", "full_name"), ANY),
        ("ci", "completed", ("payload", "build"), ANY),
        ("run", "completed", ("inputs",), MAP),
        ("run", "completed", ("inputs", "sha"), ANY),
        ("run", "failed", ("inputs", "a", "b"), ANY),
        ("run", "completed", ("duration",), DURATION),
        ("schedule", "tick", ("time",), TIME),
        ("schedule", "tick", ("payload",), None),
        ("nope", "push", ("branch",), None),
        ("git", "nope", ("branch",), None),
    ],
)
def test_field_type(source, event, path, expected):
    assert field_type(source, event, path) == expected


def test_raw_prefixes():
    assert CATALOGUE["http"].raw == frozenset({"payload", "headers", "query"})
    assert CATALOGUE["github"].raw == frozenset({"payload", "headers"})
    assert CATALOGUE["gitlab"].raw == frozenset({"payload", "headers"})
    for name in ("file", "git", "schedule", "run"):
        assert CATALOGUE[name].raw == frozenset()


def test_field_names_for_hints():
    names = field_names("git", "push")
    assert names == sorted(names)
    assert "branch" in names and "author_email" in names
    assert {"payload", "headers"} <= set(field_names("github", "push"))
    assert "query" in field_names("http", "get")
    assert field_names("github", "star") == sorted(["action", "delivery", "headers", "payload", "repo", "sender"])
    assert field_names("git", "nope") == []
    assert field_names("nope", "push") == []


@pytest.mark.parametrize(
    "source, options",
    [
        ("file", {"root": STR, "ignore": LIST_STR}),
        ("http", {"path": STR, "token": SECRET, "hmac": SECRET, "header": STR, "host": STR, "port": INT}),
        ("github", {"path": STR, "secret": SECRET}),
        ("gitlab", {"path": STR, "token": SECRET}),
        ("ci", {"path": STR, "token": SECRET, "hmac": SECRET}),
    ],
)
def test_source_options(source, options):
    got = CATALOGUE[source].options
    for name, typ in options.items():
        assert got[name] == typ
    assert SECRET == "secret"


def test_option_types_are_known():
    for src in CATALOGUE.values():
        assert set(src.options.values()) <= {STR, INT, LIST_STR, SECRET, BOOL, DURATION}
    assert dict(CATALOGUE["run"].options) == {}


def test_known_github_events():
    documented = {
        "push", "pull_request", "pull_request_review", "workflow_run", "workflow_job", "check_suite",
        "check_run", "release", "ping", "issues", "issue_comment", "create", "delete", "deployment",
        "deployment_status", "fork", "star", "watch", "status", "repository", "member", "label",
        "milestone", "package", "registry_package", "page_build", "public", "merge_group",
        "workflow_dispatch", "repository_dispatch",
    }
    assert documented <= KNOWN_GITHUB_EVENTS
    assert len(KNOWN_GITHUB_EVENTS) >= 60
    assert set(CATALOGUE["github"].events) <= KNOWN_GITHUB_EVENTS
    assert all(name == name.lower() and " " not in name for name in KNOWN_GITHUB_EVENTS)


def test_known_gitlab_events_cover_the_catalogue():
    assert set(CATALOGUE["gitlab"].events) <= CATALOGUE["gitlab"].known_events


def test_specs_are_immutable_and_hashable():
    spec = get_event("git", "push")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.fields["branch"] = INT  # type: ignore[index]
    with pytest.raises(TypeError):
        CATALOGUE["git"].events["x"] = spec  # type: ignore[index]
    assert hash(spec) == hash(get_event("git", "push"))
    assert hash(CATALOGUE["github"])
    assert spec == get_event("git", "push")
