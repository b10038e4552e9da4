"""The HTTP source against a real uvicorn on a free loopback port, with httpx as the client.

``ctx.submit`` is a fake that records what it is given and answers like the journal
(a delivery key already seen is a duplicate). Webhook deliveries replay the real payloads
in ``shared/fixtures/webhooks`` with the headers a real delivery carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import socket
import uuid
from pathlib import Path
from urllib.parse import urlencode
from typing import Any, AsyncIterator

import httpx
import pytest

from triggerlang.events import Event
from triggerlang.sources.base import SourceContext, Submitted
from triggerlang.sources.http import HttpSource, RouteTable, build_app, is_loopback, parse_routes, verify_request

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "webhooks"

SECRETS = {"gh": "gh-secret-value", "gl": "gl-token-value", "tok": "bearer-token-value", "k": "hmac-key-value"}

CONFIG: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 8080,
    "max_body": 10485760,
    "routes": [
        {"path": "/github", "kind": "github", "verify": {"scheme": "github", "secret": "gh"}},
        {"path": "/gitlab", "kind": "gitlab", "verify": {"scheme": "token", "header": "X-Gitlab-Token", "secret": "gl"}},
        {"path": "/ci", "kind": "ci", "verify": None},
        {"path": "/hooks/*", "kind": "http", "methods": ["POST"], "verify": {"scheme": "bearer", "secret": "tok"}},
        {"path": "/build", "kind": "http", "methods": ["GET", "POST"], "verify": {"scheme": "hmac", "secret": "k", "header": "X-Signature-256"}},
        {"path": "/open/**", "kind": "http", "verify": None},
    ],
}


# --------------------------------------------------------------------------- harness


class FakeJournal:
    """Stands in for the engine: records events, one run each, dedupes on delivery key."""

    def __init__(self, fail: bool = False) -> None:
        self.events: list[tuple[Event, str | None]] = []
        self.by_key: dict[str, Submitted] = {}
        self.fail = fail
        self.next_run = 1

    async def submit(self, event: Event, delivery_key: str | None = None) -> Submitted:
        if self.fail:
            raise RuntimeError("database is locked")
        if delivery_key is not None and delivery_key in self.by_key:
            old = self.by_key[delivery_key]
            return Submitted(old.event_id, list(old.runs), duplicate=True)
        self.events.append((event, delivery_key))
        result = Submitted(event.id, [self.next_run])
        self.next_run += 1
        if delivery_key is not None:
            self.by_key[delivery_key] = result
        return result

    def triggers(self) -> list[str]:
        return [e.trigger for e, _ in self.events]


def make_ctx(tmp_path: Path, journal: FakeJournal, **options: Any) -> SourceContext:
    return SourceContext(
        base_dir=tmp_path,
        state_dir=tmp_path / ".triggerlang",
        submit=journal.submit,
        secrets=dict(SECRETS),
        log=logging.getLogger("triggerlang.test"),
        options={"port": 0, **options},
    )


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, journal: FakeJournal, config: dict[str, Any] | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A started HttpSource on an ephemeral port and a client for it; stopped on exit."""
    source = HttpSource(config or CONFIG, make_ctx(tmp_path, journal))
    await source.start()
    try:
        assert source.port != 0
        async with httpx.AsyncClient(base_url=source.url, timeout=30.0) as client:
            yield client
    finally:
        await source.stop()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout=90))


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def github_headers(event: str, body: bytes, secret: str = SECRETS["gh"], delivery: str | None = None) -> dict[str, str]:
    """The headers GitHub sends with a delivery (README: 'Headers a real delivery carries')."""
    return {
        "User-Agent": "GitHub-Hookshot/044aadd",
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "292430182",
        "X-GitHub-Hook-Installation-Target-Type": "repository",
        "X-GitHub-Hook-Installation-Target-ID": "79929171",
        "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }


def gitlab_headers(event: str, token: str = SECRETS["gl"], event_uuid: str | None = None) -> dict[str, str]:
    return {
        "User-Agent": "GitLab/17.5.0",
        "Content-Type": "application/json",
        "X-Gitlab-Event": event,
        "X-Gitlab-Token": token,
        "X-Gitlab-Event-UUID": event_uuid or str(uuid.uuid4()),
        "X-Gitlab-Webhook-UUID": str(uuid.uuid4()),
        "X-Gitlab-Instance": "https://gitlab.com",
        "Idempotency-Key": str(uuid.uuid4()),
    }


# --------------------------------------------------------------------------- GitHub's signature vector


def _vector() -> dict[str, Any]:
    return json.loads(fixture("github-signature-vector.json"))


def _flip_bit(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def test_github_signature_vector_accepted_and_one_bit_change_rejected() -> None:
    v = _vector()
    (route,) = parse_routes(
        {"routes": [{"path": "/v", "kind": "github", "verify": {"scheme": "github", "secret": "s"}}]}, {"s": v["secret"]}
    )
    payload = v["payload"].encode(v["payload_encoding"])
    assert verify_request(route, {"x-hub-signature-256": v["x_hub_signature_256"]}, payload) is None
    # One bit flipped anywhere in the body, or in the signature's hex, is rejected.
    for bit in range(len(payload) * 8):
        assert verify_request(route, {"x-hub-signature-256": v["x_hub_signature_256"]}, _flip_bit(payload, bit))
    sig = v["signature"]
    flipped = sig[:-1] + format(int(sig[-1], 16) ^ 1, "x")
    assert verify_request(route, {"x-hub-signature-256": "sha256=" + flipped}, payload)
    assert verify_request(route, {}, payload) == "missing x-hub-signature-256 header"


def test_github_signature_vector_over_http(tmp_path: Path) -> None:
    v = _vector()
    config = {"routes": [{"path": "/vector", "kind": "http", "methods": ["POST"], "verify": {"scheme": "github", "secret": "vec"}}]}
    journal = FakeJournal()
    payload = v["payload"].encode()

    async def main() -> None:
        source = HttpSource(config, SourceContext(tmp_path, tmp_path, journal.submit, {"vec": v["secret"]}, options={"port": 0}))
        await source.start()
        try:
            async with httpx.AsyncClient(base_url=source.url, timeout=30.0) as c:
                ok = await c.post("/vector", content=payload, headers={"X-Hub-Signature-256": v["x_hub_signature_256"]})
                assert ok.status_code == 202, ok.text
                bad = await c.post("/vector", content=_flip_bit(payload, 0), headers={"X-Hub-Signature-256": v["x_hub_signature_256"]})
                assert bad.status_code == 401
                assert "error" in bad.json()
        finally:
            await source.stop()

    run(main())
    assert [e.data["text"] for e, _ in journal.events] == ["Hello, World!"]


# --------------------------------------------------------------------------- webhook replays


def test_github_push_fixture(tmp_path: Path) -> None:
    journal = FakeJournal()
    body = fixture("github/push-plain.json")
    headers = github_headers("push", body, delivery="9f2b6a50-0000-11ef-8000-000000000001")

    async def main() -> httpx.Response:
        async with serving(tmp_path, journal) as c:
            return await c.post("/github", content=body, headers=headers)

    r = run(main())
    assert r.status_code == 202, r.text
    (event, key), = journal.events
    assert r.json() == {"event_id": event.id, "runs": [1]}
    assert event.trigger == "github.push"
    assert key == "github:9f2b6a50-0000-11ef-8000-000000000001"
    assert event.data["delivery"] == "9f2b6a50-0000-11ef-8000-000000000001"
    assert event.data["payload"] == json.loads(body)
    # the signature never reaches event data (journal, runs, dashboard)
    assert event.data["headers"]["x-hub-signature-256"] == "<redacted>"
    assert event.data["headers"]["x-github-event"] == "push"


def test_github_pull_request_fixture(tmp_path: Path) -> None:
    journal = FakeJournal()
    body = fixture("github/pull_request-opened.json")

    async def main() -> httpx.Response:
        async with serving(tmp_path, journal) as c:
            return await c.post("/github", content=body, headers=github_headers("pull_request", body))

    r = run(main())
    assert r.status_code == 202, r.text
    assert journal.triggers() == ["github.pull_request"]
    event = journal.events[0][0]
    assert event.data["action"] == "opened"
    assert event.data["number"] == 2


def test_github_workflow_run_completed_also_submits_ci_completed(tmp_path: Path) -> None:
    journal = FakeJournal()
    body = fixture("github/workflow_run-completed.json")
    headers = github_headers("workflow_run", body, delivery="d-1")

    async def main() -> tuple[httpx.Response, httpx.Response]:
        async with serving(tmp_path, journal) as c:
            first = await c.post("/github", content=body, headers=headers)
            again = await c.post("/github", content=body, headers=headers)  # a redelivery
            return first, again

    first, again = run(main())
    assert first.status_code == 202, first.text
    assert journal.triggers() == ["github.workflow_run", "ci.completed"]
    (wf, k1), (ci, k2) = journal.events
    assert first.json() == {"event_id": wf.id, "runs": [1, 2]}
    assert (k1, k2) == ("github:d-1", "github:d-1/ci.completed")
    assert ci.data["status"] == "success" and ci.data["provider"] == "github"
    # the redelivery creates nothing: 200, same event, same runs
    assert again.status_code == 200
    assert again.json() == {"event_id": wf.id, "runs": [1, 2], "duplicate": True}
    assert len(journal.events) == 2


def test_github_form_encoded_delivery(tmp_path: Path) -> None:
    journal = FakeJournal()
    raw = fixture("github/push-with-new-branch.json")
    from urllib.parse import urlencode

    body = urlencode({"payload": raw.decode()}).encode()
    headers = github_headers("push", body)
    headers["Content-Type"] = "application/x-www-form-urlencoded"

    async def main() -> httpx.Response:
        async with serving(tmp_path, journal) as c:
            return await c.post("/github", content=body, headers=headers)

    r = run(main())
    assert r.status_code == 202, r.text
    assert journal.events[0][0].data["payload"] == json.loads(raw)


def test_github_ping_is_200_and_journaled(tmp_path: Path) -> None:
    journal = FakeJournal()
    body = fixture("github/ping.json")
    headers = github_headers("ping", body, delivery="ping-1")

    async def main() -> tuple[httpx.Response, httpx.Response]:
        async with serving(tmp_path, journal) as c:
            return (await c.post("/github", content=body, headers=headers), await c.post("/github", content=body, headers=headers))

    r, again = run(main())
    assert r.status_code == 200, r.text
    zen = json.loads(body)["zen"]
    assert r.json() == {"ok": True, "zen": zen, "event_id": journal.events[0][0].id, "runs": [1]}
    assert journal.triggers() == ["github.ping"]
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert len(journal.events) == 1


def test_gitlab_push_fixture_with_token(tmp_path: Path) -> None:
    journal = FakeJournal()
    body = fixture("gitlab/push.json")
    headers = gitlab_headers("Push Hook", event_uuid="gl-uuid-1")

    async def main() -> list[httpx.Response]:
        async with serving(tmp_path, journal) as c:
            return [
                await c.post("/gitlab", content=body, headers=headers),
                await c.post("/gitlab", content=body, headers={**headers, "X-Gitlab-Token": "wrong"}),
                await c.post("/gitlab", content=body, headers={k: v for k, v in headers.items() if k != "X-Gitlab-Token"}),
                await c.post("/gitlab", content=body, headers=headers),  # redelivery
            ]

    ok, wrong, missing, dup = run(main())
    assert ok.status_code == 202, ok.text
    assert (wrong.status_code, missing.status_code) == (401, 401)
    assert dup.status_code == 200 and dup.json()["duplicate"] is True
    (event, key), = journal.events
    assert event.trigger == "gitlab.push" and key == f"gitlab:{headers['Idempotency-Key']}"
    assert event.data["headers"]["x-gitlab-token"] == "<redacted>"
    assert SECRETS["gl"] not in json.dumps(event.data)


def test_gitlab_pipeline_fixture_also_submits_ci_completed(tmp_path: Path) -> None:
    journal = FakeJournal()
    body = fixture("gitlab/pipeline.json")

    async def main() -> httpx.Response:
        async with serving(tmp_path, journal) as c:
            return await c.post("/gitlab", content=body, headers=gitlab_headers("Pipeline Hook"))

    r = run(main())
    assert r.status_code == 202, r.text
    assert journal.triggers() == ["gitlab.pipeline", "ci.completed"]
    assert r.json()["runs"] == [1, 2]
    assert journal.events[1][0].data["status"] == "success"


def test_gitlab_event_name_from_object_kind_when_header_missing(tmp_path: Path) -> None:
    journal = FakeJournal()
    body = fixture("gitlab/tag_push.json")
    headers = gitlab_headers("")
    del headers["X-Gitlab-Event"]

    async def main() -> httpx.Response:
        async with serving(tmp_path, journal) as c:
            return await c.post("/gitlab", content=body, headers=headers)

    r = run(main())
    assert r.status_code == 202, r.text
    assert journal.triggers() == ["gitlab.tag_push"]


def test_generic_ci_route(tmp_path: Path) -> None:
    journal = FakeJournal()

    async def main() -> list[httpx.Response]:
        async with serving(tmp_path, journal) as c:
            return [
                await c.post("/ci", json={"pipeline": "build", "status": "failure", "branch": "main"}),
                await c.post("/ci", json={"pipeline": "build", "status": "exploded"}),
            ]

    ok, bad = run(main())
    assert ok.status_code == 202, ok.text
    assert journal.triggers() == ["ci.completed"]
    assert bad.status_code == 400 and "status" in bad.json()["error"]


# --------------------------------------------------------------------------- status codes


def test_400_malformed_bodies(tmp_path: Path) -> None:
    journal = FakeJournal()

    def signed(event: str | None, body: bytes) -> dict[str, str]:
        h = github_headers(event or "push", body)
        if event is None:
            del h["X-GitHub-Event"]
        return h

    cases = {
        "invalid json": (b"{not json", "push"),
        "not an object": (b"[1, 2, 3]", "push"),
        "NaN": (b'{"ref": NaN}', "push"),
        "provider error": (b"{}", "push"),  # a push without 'ref'
        "missing event header": (fixture("github/push-plain.json"), None),
        "deep nesting": (b"[" * 100_000 + b"]" * 100_000, "push"),
        "bad utf-8": (b'{"ref": "\xff\xfe"}', "push"),
        "huge integer": (b'{"ref": "refs/heads/main", "n": ' + b"9" * 5000 + b"}", "push"),
    }

    async def main() -> dict[str, httpx.Response]:
        async with serving(tmp_path, journal) as c:
            out = {name: await c.post("/github", content=b, headers=signed(ev, b)) for name, (b, ev) in cases.items()}
            out["gitlab invalid json"] = await c.post("/gitlab", content=b"nope", headers=gitlab_headers("Push Hook"))
            out["ci not json"] = await c.post("/ci", content=b"status=success")
            form = signed("push", b"nopayload=1")
            form["Content-Type"] = "application/x-www-form-urlencoded"
            out["form without payload"] = await c.post("/github", content=b"nopayload=1", headers=form)
            # curl -d without -H 'Content-Type: application/json': the answer says what to send
            body = json.dumps({"ref": "refs/heads/main", "after": "a" * 40}).encode()
            curl = signed("push", body) | {"Content-Type": "application/x-www-form-urlencoded"}
            out["json sent as a form"] = await c.post("/github", content=body, headers=curl)
            out["ci form"] = await c.post("/ci", content=b"pipeline=build&status=success",
                                          headers={"Content-Type": "application/x-www-form-urlencoded"})
            return out

    answers = run(main())
    for name, r in answers.items():
        assert r.status_code == 400, (name, r.status_code, r.text)
        assert isinstance(r.json()["error"], str) and r.json()["error"], name
    for name in ("json sent as a form", "ci form"):
        assert "Content-Type: application/json" in answers[name].json()["error"], answers[name].text
    assert answers["huge integer"].json()["error"] == \
        "invalid JSON body: an integer of more than 4,300 digits, too long to read"  # (not Python's words)
    assert journal.events == []


def test_400_an_event_or_delivery_header_sent_twice_with_different_values(tmp_path: Path) -> None:
    # Which event, or which delivery, is ambiguous: refused with the header's name, never
    # guessed (Starlette keeps the first value; a proxy that appends would make it the last).
    journal = FakeJournal()
    gh_body, gl_body = fixture("github/push-plain.json"), fixture("gitlab/push.json")
    ci_body = json.dumps({"pipeline": "build", "status": "success"}).encode()

    def twice(headers: dict[str, str], name: str, other: str, drop: str = "") -> list[tuple[str, str]]:
        return [(k, v) for k, v in headers.items() if k != drop] + [(name, other)]

    async def main() -> tuple[dict[str, httpx.Response], list[httpx.Response]]:
        async with serving(tmp_path, journal) as c:
            gh, gl = github_headers("push", gh_body), gitlab_headers("Push Hook")
            refused = {
                "X-GitHub-Event": await c.post("/github", content=gh_body, headers=twice(gh, "X-GitHub-Event", "issues")),
                "X-GitHub-Delivery": await c.post("/github", content=gh_body,
                                                  headers=twice(gh, "X-GitHub-Delivery", str(uuid.uuid4()))),
                "X-Gitlab-Event": await c.post("/gitlab", content=gl_body,
                                               headers=twice(gl, "X-Gitlab-Event", "Tag Push Hook")),
                "Idempotency-Key": await c.post("/gitlab", content=gl_body,
                                                headers=twice(gl, "Idempotency-Key", str(uuid.uuid4()))),
                "X-Gitlab-Event-UUID": await c.post("/gitlab", content=gl_body, headers=twice(
                    gl, "X-Gitlab-Event-UUID", str(uuid.uuid4()), drop="Idempotency-Key")),
            }
            ci = await c.post("/ci", content=ci_body, headers=[("Content-Type", "application/json"),
                                                                 ("Idempotency-Key", "b-1"), ("Idempotency-Key", "b-2")])
            refused["Idempotency-Key (ci)"] = ci
            taken = [  # the same value twice is not ambiguous; nor are two different headers
                await c.post("/github", content=gh_body,
                             headers=twice(github_headers("push", gh_body), "X-GitHub-Event", "push")),
                await c.post("/ci", content=ci_body, headers=[("Content-Type", "application/json"),
                                                              ("Idempotency-Key", "b-3"), ("idempotency-key", "b-3")]),
            ]
            return refused, taken

    refused, taken = run(main())
    for name, r in refused.items():
        assert r.status_code == 400, (name, r.status_code, r.text)
        header = name.split(" ")[0]
        assert r.json()["error"].startswith(f"the {header} header is sent 2 times with different values ("), r.text
        assert "ambiguous" in r.json()["error"]
    assert "'push', 'issues'" in refused["X-GitHub-Event"].json()["error"]
    assert [r.status_code for r in taken] == [202, 202]
    assert journal.triggers() == ["github.push", "ci.completed"]
    assert journal.events[1][1] == "ci:/ci:b-3"


def test_400_an_event_header_that_a_proxy_joined_from_two(tmp_path: Path) -> None:
    # Before: `X-GitHub-Event: push, issues` (two headers joined by a proxy) was journaled
    # as the event `github.push, issues`, which no rule can match, and answered 202.
    journal = FakeJournal()
    gh_body, gl_body = fixture("github/push-plain.json"), fixture("gitlab/push.json")

    async def main() -> tuple[dict[str, httpx.Response], list[httpx.Response]]:
        async with serving(tmp_path, journal) as c:
            refused = {value: await c.post("/github", content=gh_body, headers=github_headers(value, gh_body))
                       for value in ("push, issues", "push,issues,push", "push issues", "push\tissues")}
            refused["Push Hook, Tag Push Hook"] = await c.post(
                "/gitlab", content=gl_body, headers=gitlab_headers("Push Hook, Tag Push Hook"))
            taken = [  # one event said twice, and GitLab's spaced names, are not ambiguous
                await c.post("/github", content=gh_body, headers=github_headers("push, push", gh_body)),
                await c.post("/gitlab", content=gl_body, headers=gitlab_headers("Push Hook")),
            ]
            return refused, taken

    refused, taken = run(main())
    for value, r in refused.items():
        assert r.status_code == 400, (value, r.status_code, r.text)
    err = {value: r.json()["error"] for value, r in refused.items()}
    assert err["push, issues"] == ("the X-GitHub-Event header names 2 events ('push', 'issues'), as a proxy makes "
                                   "of two headers: ambiguous, send one event per delivery")
    assert err["push,issues,push"].startswith("the X-GitHub-Event header names 2 events ('push', 'issues')")
    assert err["push issues"] == "the X-GitHub-Event header 'push issues' is not an event name (it holds whitespace)"
    assert err["push\tissues"].startswith("the X-GitHub-Event header 'push\\tissues' is not an event name")
    assert err["Push Hook, Tag Push Hook"].startswith("the X-Gitlab-Event header names 2 events ('Push Hook', ")
    assert [r.status_code for r in taken] == [202, 202]
    assert journal.triggers() == ["github.push", "gitlab.push"]


def test_400_a_standard_webhook_header_sent_twice_with_different_values(tmp_path: Path) -> None:
    # the signature covers one id and one timestamp: a second, different one makes the
    # delivery ambiguous. Before: two webhook-timestamps (or signatures) were taken, the
    # first verified, 202, while the event's headers said "fresh, stale".
    import base64
    import http.client
    import time

    from triggerlang.providers.verify import standard_key, standard_signature

    whsec = "whsec_" + base64.b64encode(b"standard-webhooks-key").decode()
    config = {"host": "127.0.0.1", "port": 8080, "max_body": 1 << 20,
              "routes": [{"path": "/sw", "kind": "http", "methods": ["POST"], "verify": {"scheme": "standard", "secret": "sw"}}]}
    journal = FakeJournal()
    ctx = make_ctx(tmp_path, journal)
    ctx.secrets = {"sw": whsec}
    body = b'{"type": "invoice.paid"}'
    now = str(int(time.time()))
    stale = str(int(time.time()) - 3600)

    def signed(msg_id: str, stamp: str) -> str:
        return standard_signature(standard_key(whsec), msg_id, stamp, body)

    def send(port: int, ids: list[str], stamps: list[str], sigs: list[str] | None = None) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.putrequest("POST", "/sw")
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(body)))
            for name, values in (("webhook-id", ids), ("webhook-timestamp", stamps),
                                 ("webhook-signature", sigs or [signed(ids[0], stamps[0])])):
                for value in values:
                    conn.putheader(name, value)
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    cases = {
        "two ids": (["msg_1", "msg_2"], [now]),
        "fresh then stale": (["msg_4"], [now, stale]),
        "stale then fresh": (["msg_5"], [stale, now], [signed("msg_5", now)]),
        "two signatures": (["msg_6"], [now], [signed("msg_6", now), signed("msg_6", stale)]),
        "the same id twice": (["msg_3", "msg_3"], [now]),
        "the same timestamp twice": (["msg_7"], [now, now]),
    }

    async def main() -> dict[str, tuple[int, dict[str, Any]]]:
        source = HttpSource(config, ctx)
        await source.start()
        try:
            return {name: await asyncio.to_thread(send, source.port, *case) for name, case in cases.items()}
        finally:
            await source.stop()

    got = run(main())
    assert got["two ids"] == (400, {"error": "the webhook-id header is sent 2 times with different values "
                                             "('msg_1', 'msg_2'): ambiguous, send it once"})
    assert got["fresh then stale"] == (400, {"error": f"the webhook-timestamp header is sent 2 times with different "
                                                      f"values ('{now}', '{stale}'): ambiguous, send it once"})
    assert got["stale then fresh"][0] == 400, got
    assert got["two signatures"][0] == 400, got
    assert got["two signatures"][1]["error"].startswith("the webhook-signature header is sent 2 times"), got
    assert got["the same id twice"][0] == 202 and got["the same timestamp twice"][0] == 202, got
    assert [k for _, k in journal.events] == ["standard:/sw:msg_3", "standard:/sw:msg_7"]


def test_provider_event_and_delivery_headers_must_say_one_thing() -> None:
    # every provider of the registry, every header that names the event or the delivery
    from starlette.datastructures import Headers

    from triggerlang.providers import get_provider, provider_names
    from triggerlang.providers.base import single_header

    checked = 0
    for name in provider_names():
        provider = get_provider(name)
        for header in provider.event_headers + provider.delivery_headers:
            raw = [(header.lower().encode(), b"one"), (b"x-other", b"z"), (header.lower().encode(), b"two")]
            read = provider.event_name if header in provider.event_headers else provider.delivery_id
            with pytest.raises(ValueError, match=f"^the {header} header is sent 2 times with different values"):
                read(Headers(raw=raw))
            if header in provider.event_headers:
                with pytest.raises(ValueError, match=f"^the {header} header names 2 events \\('one', 'two'\\)"):
                    read(Headers(raw=[(header.lower().encode(), b"one, two")]))
            assert read(Headers(raw=[(header.lower().encode(), b" one"), (header.lower().encode(), b"one ")])) == "one"
            checked += 1
    assert checked >= 12  # github 2, gitlab 3, gitea 8, bitbucket 3, ci 1
    assert single_header({"X-A": "v"}, "x-a") == "v" and single_header(None, "x-a") is None
    assert single_header(Headers(raw=[(b"x-a", b"")]), "X-A") is None


def test_401_bad_signatures_and_tokens(tmp_path: Path) -> None:
    journal = FakeJournal()
    body = fixture("github/push-plain.json")

    async def main() -> list[httpx.Response]:
        async with serving(tmp_path, journal) as c:
            return [
                await c.post("/github", content=body, headers=github_headers("push", body, secret="not-the-secret")),
                await c.post("/github", content=body, headers={"X-GitHub-Event": "push", "Content-Type": "application/json"}),
                await c.post("/hooks/a", json={}, headers={"Authorization": "Bearer nope"}),
                await c.post("/hooks/a", json={}, headers={"Authorization": "Basic " + SECRETS["tok"]}),
                await c.post("/hooks/a", json={}),
                await c.post("/build", content=b"x", headers={"X-Signature-256": "sha256=" + "0" * 64}),
            ]

    for r in run(main()):
        assert r.status_code == 401, r.text
        assert r.json()["error"]
    assert journal.events == []


def test_404_405_and_healthz(tmp_path: Path) -> None:
    journal = FakeJournal()

    async def main() -> dict[str, httpx.Response]:
        async with serving(tmp_path, journal) as c:
            return {
                "healthz": await c.get("/healthz"),
                "unknown": await c.post("/nope", json={}),
                "get github": await c.get("/github"),
                "put gitlab": await c.put("/gitlab", json={}),
                "post healthz": await c.post("/healthz"),
                "get events": await c.get("/events"),
                "delete build": await c.delete("/build"),
                "get hooks": await c.get("/hooks/x"),
            }

    r = run(main())
    assert r["healthz"].status_code == 200 and r["healthz"].json() == {"ok": True}
    assert r["unknown"].status_code == 404 and r["unknown"].json()["error"]
    for name in ("get github", "put gitlab", "post healthz", "get events", "delete build", "get hooks"):
        assert r[name].status_code == 405, name
        assert r[name].json()["error"], name
    assert r["get github"].headers["allow"] == "POST"
    assert r["delete build"].headers["allow"] == "GET, POST"
    assert journal.events == []


def test_413_over_max_body(tmp_path: Path) -> None:
    journal = FakeJournal()
    config = {**CONFIG, "max_body": 1024}

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: enforced while streaming
        for _ in range(8):
            yield b"x" * 256

    async def main() -> dict[str, httpx.Response]:
        async with serving(tmp_path, journal, config) as c:
            return {
                "content-length": await c.post("/ci", content=b"x" * 4096),
                "chunked": await c.post("/ci", content=chunks()),
                "open route": await c.post("/open/a", content=b"y" * 1025),
                "at the limit": await c.post("/open/a", content=b"z" * 1024),
                "events": await c.post("/events", content=b" " * 2048),
            }

    r = run(main())
    for name in ("content-length", "chunked", "open route", "events"):
        assert r[name].status_code == 413, (name, r[name].text)
        assert "limit" in r[name].json()["error"]
    assert r["at the limit"].status_code == 202
    assert journal.triggers() == ["http.post"]


def test_500_when_submit_fails_is_generic(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    journal = FakeJournal(fail=True)

    async def main() -> httpx.Response:
        async with serving(tmp_path, journal) as c:
            return await c.post("/ci", json={"pipeline": "p", "status": "success"})

    with caplog.at_level(logging.ERROR, logger="triggerlang"):
        r = run(main())
    assert r.status_code == 500
    assert "database is locked" not in r.text and r.json()["error"]
    assert any("could not submit" in rec.getMessage() for rec in caplog.records)


# --------------------------------------------------------------------------- generic http routes


def test_generic_http_post_event(tmp_path: Path) -> None:
    journal = FakeJournal()

    async def main() -> httpx.Response:
        async with serving(tmp_path, journal) as c:
            return await c.post(
                "/hooks/deploy?env=staging&env=prod&x=1",
                json={"ref": "main", "n": 1},
                headers={"Authorization": f"Bearer {SECRETS['tok']}", "X-Custom": "Yes"},
            )

    r = run(main())
    assert r.status_code == 202, r.text
    (event, key), = journal.events
    assert r.json() == {"event_id": event.id, "runs": [1]}
    assert (event.source, event.type, key) == ("http", "post", None)
    d = event.data
    assert d["method"] == "POST" and d["path"] == "/hooks/deploy"
    assert d["query"] == {"env": "prod", "x": "1"}
    assert d["payload"] == {"ref": "main", "n": 1}
    assert json.loads(d["text"]) == {"ref": "main", "n": 1}
    assert d["headers"]["x-custom"] == "Yes"
    assert d["headers"]["authorization"] == "<redacted>"
    assert all(k == k.lower() for k in d["headers"])
    assert d["remote"] == "127.0.0.1"


SIGNATURES = {"X-Hub-Signature-256": "sha256=" + "ab" * 32, "X-Hub-Signature": "sha1=" + "cd" * 20,
              "X-Gitea-Signature": "ef" * 32, "X-Forgejo-Signature": "ef" * 32, "X-Gogs-Signature": "ef" * 32,
              "X-Signature-256": "sha256=" + "01" * 32, "webhook-signature": "v1,c2lnbmF0dXJl"}


def test_signatures_are_redacted_on_routes_that_do_not_check_them(tmp_path: Path) -> None:
    """README: signatures are redacted before an event is journaled. A sender's signature
    is an HMAC of the body keyed with its secret (guessable offline from the pair if the
    secret is weak): it is redacted on a route without verification (GitHub has a secret
    that the rules forgot) and on one that verifies another way, not only the header the
    route checks."""
    journal = FakeJournal()
    body = json.dumps({"pipeline": "build", "status": "success"}).encode()

    async def main() -> list[httpx.Response]:
        async with serving(tmp_path, journal) as c:
            return [
                await c.post("/ci", content=body, headers=SIGNATURES),  # a provider route with no verification
                await c.post("/open/x", content=body, headers=SIGNATURES),  # a generic one
                await c.post("/hooks/a", content=body,  # verified by a bearer token
                             headers={**SIGNATURES, "Authorization": f"Bearer {SECRETS['tok']}"}),
            ]

    for r in run(main()):
        assert r.status_code == 202, r.text
    assert len(journal.events) == 3
    for event, _ in journal.events:
        headers = event.data["headers"]
        assert {k: headers[k.lower()] for k in SIGNATURES} == {k: "<redacted>" for k in SIGNATURES}, headers
        for value in SIGNATURES.values():
            assert value not in json.dumps(event.data)


CREDENTIALS = {"X-Api-Key": "key-1a2b", "Api-Key": "key-3c4d", "X-Auth-Token": "tok-5e6f",
               "X-Access-Token": "tok-7a8b", "Private-Token": "glpat-9c0d"}


def test_credential_headers_and_query_parameters_are_redacted_on_every_route(tmp_path: Path) -> None:
    """An API key or token a sender puts in a header or the URL (X-Api-Key, ?access_token=)
    on a route that does not check it was journaled as the event's headers and query, and
    shown on the dashboard. Its name stays (a rule can test that it was sent), its value
    is <redacted>, on a provider route and a generic one; other names are kept as sent."""
    journal = FakeJournal()
    body = json.dumps({"pipeline": "build", "status": "success"}).encode()
    query = "?access_token=qt-11&API_KEY=qt-22&token=qt-33&sig=qt-44&env=prod&monkey=m"

    async def main() -> list[httpx.Response]:
        async with serving(tmp_path, journal) as c:
            return [await c.post("/ci" + query, content=body, headers={**CREDENTIALS, "X-Event-Key": "k"}),
                    await c.post("/open/x" + query, content=body, headers={**CREDENTIALS, "X-Event-Key": "k"})]

    for r in run(main()):
        assert r.status_code == 202, r.text
    (ci, _), (post, _) = journal.events
    for event in (ci, post):
        headers = event.data["headers"]
        assert {k: headers[k.lower()] for k in CREDENTIALS} == {k: "<redacted>" for k in CREDENTIALS}, headers
        assert headers["x-event-key"] == "k"
    assert post.data["query"] == {"access_token": "<redacted>", "API_KEY": "<redacted>", "token": "<redacted>",
                                  "sig": "<redacted>", "env": "prod", "monkey": "m"}
    for value in [*CREDENTIALS.values(), "qt-11", "qt-22", "qt-33", "qt-44"]:
        assert value not in json.dumps([ci.data, post.data])


def test_a_query_token_sent_twice_with_different_values_is_refused(tmp_path: Path) -> None:
    """`token=S query="token"` read the last ?token=: `?token=WRONG&token=RIGHT` passed, and
    the other order did not. A credential sent twice is ambiguous (a proxy or a framework
    in front may keep the other one): 400 in both orders, as a Standard Webhooks header
    sent twice is, without the values; the same value twice says one thing and passes."""
    journal = FakeJournal()
    config = {**CONFIG, "routes": [{"path": "/q", "kind": "http", "verify": {"scheme": "query", "param": "token",
                                                                             "secret": "tok"}}]}
    right, wrong = SECRETS["tok"], "wrong-token"

    async def main() -> list[httpx.Response]:
        async with serving(tmp_path, journal, config) as c:
            return [await c.post(f"/q?token={a}&job=x&token={b}", json={})
                    for a, b in [(wrong, right), (right, wrong), (right, right)]]

    first_wrong, last_wrong, same = run(main())
    for r in (first_wrong, last_wrong):
        assert r.status_code == 400, r.text
        assert r.json() == {"error": "?token= is sent 2 times with different values: ambiguous, send it once"}
    assert same.status_code == 202, same.text
    assert [e.data["query"] for e, _ in journal.events] == [{"job": "x"}]


def test_the_credential_fields_of_a_form_body_are_redacted_and_a_query_token_is_read_from_one(tmp_path: Path) -> None:
    """Slack's slash commands and legacy senders post token=... (password, api_key...) as
    form fields, and they were journaled as sent. They are redacted as query parameters are
    (name kept, value <redacted>), in payload and in text, urlencoded or multipart; a JSON
    body's fields are not (no form). A route's query= token is read from a form field too
    (Slack's token), and from a JSON object's top-level field (Rocket.Chat's, Mattermost's),
    left out of the event (payload and text), and a second value in the URL is a 400."""
    journal = FakeJournal()
    config = {**CONFIG, "routes": [{"path": "/open/**", "kind": "http", "verify": None},
                                   {"path": "/slack", "kind": "http",
                                    "verify": {"scheme": "query", "param": "token", "secret": "tok"}}]}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    right = SECRETS["tok"]

    async def main() -> list[httpx.Response]:
        async with serving(tmp_path, journal, config) as c:
            return [
                await c.post("/open/a", content="token=fm-11&Password=fm-22&api_key=fm-33&text=deploy+now&u=steve",
                             headers=form),
                await c.post("/open/b", data={"token": "mp-44", "text": "hi"}, files={"f": ("a.txt", b"file")}),
                await c.post("/open/c", json={"token": "json-token", "text": "kept"}),
                await c.post("/slack", content=f"token={right}&command=%2Fdeploy&password=fm-55", headers=form),
                await c.post("/slack", content="token=wrong-token&command=x", headers=form),
                await c.post("/slack?token=wrong-token", content=f"token={right}", headers=form),
                await c.post("/slack", json={"user": "x"}),
                await c.post("/slack", json={"token": "wrong-token"}),
                await c.post("/slack?token=wrong-token", json={"token": right}),
                # Rocket.Chat's and Mattermost's outgoing webhooks: the token at the top of a JSON body
                await c.post("/slack", content=json.dumps({"token": right, "text": "deploy", "auth": {"token": "deeper"}}),
                             headers={"Content-Type": "application/json"}),
            ]

    *accepted, wrong, twice, json_none, json_wrong, json_twice, json_body = run(main())
    assert [r.status_code for r in [*accepted, json_body]] == [202] * 5, [r.text for r in [*accepted, json_body]]
    assert wrong.status_code == 401 and json_wrong.status_code == 401, (wrong.text, json_wrong.text)
    assert json_none.status_code == 401, json_none.text
    assert json_none.json() == {"error": "missing ?token= in the query string (or a top-level token field in the body)"}
    assert twice.status_code == 400 and "ambiguous" in twice.json()["error"], twice.text
    assert json_twice.status_code == 400 and "ambiguous" in json_twice.json()["error"], json_twice.text
    (a, _), (b, _), (c, _), (slack, _), (slack_json, _) = journal.events
    assert slack_json.data["payload"] == {"text": "deploy", "auth": {"token": "deeper"}}
    assert slack_json.data["text"] == '{"token": "<redacted>", "text": "deploy", "auth": {"token": "deeper"}}'
    assert a.data["payload"] == {"token": "<redacted>", "Password": "<redacted>", "api_key": "<redacted>",
                                 "text": "deploy now", "u": "steve"}
    assert a.data["text"] == "token=<redacted>&Password=<redacted>&api_key=<redacted>&text=deploy+now&u=steve"
    assert b.data["payload"]["token"] == "<redacted>" and b.data["payload"]["text"] == "hi"
    assert c.data["payload"] == {"token": "json-token", "text": "kept"}
    assert slack.data["payload"] == {"command": "/deploy", "password": "<redacted>"}
    assert slack.data["text"] == "token=<redacted>&command=%2Fdeploy&password=<redacted>"
    shown = json.dumps([e.data for e, _ in journal.events])
    assert not any(v in shown for v in ("fm-11", "fm-22", "fm-33", "mp-44", "fm-55", right)), shown


def test_generic_http_get_and_hmac(tmp_path: Path) -> None:
    journal = FakeJournal()
    body = b"not json \xff"
    sig = hmac.new(SECRETS["k"].encode(), body, hashlib.sha256).hexdigest()
    empty_sig = hmac.new(SECRETS["k"].encode(), b"", hashlib.sha256).hexdigest()

    async def main() -> list[httpx.Response]:
        async with serving(tmp_path, journal) as c:
            return [
                await c.get("/build?tag=v1", headers={"X-Signature-256": "sha256=" + empty_sig}),
                await c.post("/build", content=body, headers={"X-Signature-256": sig}),  # bare hex
                await c.post("/build/", content=body, headers={"X-Signature-256": "sha256=" + sig.upper()}),
            ]

    for r in run(main()):
        assert r.status_code == 202, r.text
    get, post, _ = (e for e, _ in journal.events)
    assert (get.type, get.data["method"], get.data["query"], get.data["payload"], get.data["text"]) == (
        "get", "GET", {"tag": "v1"}, None, ""
    )
    assert post.type == "post" and post.data["payload"] is None
    assert post.data["text"] == "not json \ufffd"
    assert post.data["headers"]["x-signature-256"] == "<redacted>"


def test_route_precedence_exact_then_longest_literal_prefix() -> None:
    config = {
        "routes": [
            {"path": "/a/**", "kind": "http"},
            {"path": "/a/b/*", "kind": "http"},
            {"path": "/a/b/c", "kind": "http", "methods": ["POST"]},
            {"path": "/x/**/y", "kind": "http"},
            {"path": "/f/file-?.[ch]", "kind": "http"},
        ]
    }
    table = RouteTable(parse_routes(config, {}))

    def first(path: str, method: str = "POST") -> str | None:
        return next((r.path for r in table.candidates(path) if r.allows(method)), None)

    assert first("/a/b/c") == "/a/b/c"
    assert first("/a/b/c", "GET") == "/a/b/*"  # the exact route does not take GET: next in line
    assert first("/a/b/d") == "/a/b/*"
    assert first("/a/b/d/e") == "/a/**"  # '*' stays inside a segment
    assert first("/a") is None
    assert first("/x/y") == "/x/**/y" and first("/x/1/2/y") == "/x/**/y"
    assert first("/f/file-1.c") == "/f/file-?.[ch]" and first("/f/file-1.py") is None


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, FakeJournal())
    with pytest.raises(ValueError, match="secret 'missing' has no value"):
        build_app({"routes": [{"path": "/g", "kind": "github", "verify": {"scheme": "github", "secret": "missing"}}]}, ctx)
    with pytest.raises(ValueError, match="unknown verify scheme"):
        build_app({"routes": [{"path": "/g", "kind": "http", "verify": {"scheme": "md5", "secret": "gh"}}]}, ctx)
    with pytest.raises(ValueError, match="unknown kind"):
        build_app({"routes": [{"path": "/g", "kind": "sourcehut"}]}, ctx)


# --------------------------------------------------------------------------- POST /events


def test_post_events_from_loopback(tmp_path: Path) -> None:
    journal = FakeJournal()

    async def main() -> list[httpx.Response]:
        async with serving(tmp_path, journal) as c:
            return [
                await c.post("/events", json={"source": "git", "type": "push", "data": {"branch": "main"}}),
                await c.post("/events", json={"source": "git", "data": {}}),
                await c.post("/events", content=b"{oops"),
                await c.post("/events", json={"source": "x", "type": "y", "id": "evt_fixed"}),
                await c.post("/events", json={"source": "x", "type": "y", "id": "evt_fixed"}),  # a retried emit
                # behind a local reverse proxy, the real client is the forwarded one
                await c.post("/events", json={"source": "x", "type": "y"}, headers={"X-Forwarded-For": "203.0.113.9"}),
            ]

    ok, no_type, bad_json, first, retry, proxied = run(main())
    assert ok.status_code == 202, ok.text
    assert ok.json() == {"event_id": journal.events[0][0].id, "runs": [1]}
    assert journal.events[0][0].trigger == "git.push" and journal.events[0][0].data == {"branch": "main"}
    assert no_type.status_code == 400 and "type" in no_type.json()["error"]
    assert bad_json.status_code == 400
    assert first.status_code == 202 and first.json()["event_id"] == "evt_fixed"
    assert retry.status_code == 200 and retry.json()["duplicate"] is True
    assert proxied.status_code == 403
    assert journal.triggers() == ["git.push", "x.y"]


def test_post_events_refuses_an_event_its_closed_source_does_not_have(tmp_path: Path) -> None:
    """POST /events journaled git.pushh (202), which no rule can name, while `emit
    git.pushh` is a usage error: the same message as emit's, 400, nothing journaled. A
    provider's event (open set) and a source not in the catalogue are still accepted."""
    journal = FakeJournal()

    async def main() -> list[httpx.Response]:
        async with serving(tmp_path, journal) as c:
            return [await c.post("/events", json={"source": s, "type": t, "data": {}})
                    for s, t in [("git", "pushh"), ("git", "*"), ("github", "pushh"), ("gti", "push")]]

    typo, star, provider, unknown = run(main())
    assert typo.status_code == 400, typo.text
    assert typo.json()["error"] == "invalid event: git.pushh: git has no event 'pushh' (did you mean 'push'?)"
    assert star.status_code == 400 and "a trigger for any git event, not an event's type" in star.json()["error"]
    assert (provider.status_code, unknown.status_code) == (202, 202)
    assert journal.triggers() == ["github.pushh", "gti.push"]


def test_post_events_refused_from_a_remote_peer(tmp_path: Path) -> None:
    journal = FakeJournal()
    app = build_app(CONFIG, make_ctx(tmp_path, journal))

    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.post("/events", json={"source": "git", "type": "push"})

    r = run(main())
    assert r.status_code == 403 and r.json()["error"]
    assert journal.events == []


def test_is_loopback() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]))
    assert not any(map(is_loopback, ["10.0.0.1", "203.0.113.9", "::2", "localhost", "", None]))


# --------------------------------------------------------------------------- serving


def test_port_in_use_is_a_clear_oserror(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]

    async def main() -> None:
        source = HttpSource(CONFIG, make_ctx(tmp_path, FakeJournal(), port=port))
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            await source.start()
        await source.stop()  # harmless when not started

    try:
        run(main())
    finally:
        holder.close()


def test_defaults_and_cli_overrides(tmp_path: Path) -> None:
    journal = FakeJournal()
    src = HttpSource({"routes": []}, SourceContext(tmp_path, tmp_path, journal.submit))
    assert (src.host, src.port) == ("127.0.0.1", 8080)
    src = HttpSource(CONFIG, make_ctx(tmp_path, journal, host="::1", port=9999))
    assert (src.host, src.port) == ("::1", 9999)
    assert "/github" in src.describe()


def test_restart_on_the_same_port_and_no_secrets_in_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    journal = FakeJournal()
    body = fixture("github/push-plain.json")
    headers = github_headers("push", body)

    async def main() -> None:
        first = HttpSource(CONFIG, make_ctx(tmp_path, journal))
        await first.start()
        port = first.port
        async with httpx.AsyncClient(base_url=first.url, timeout=30.0) as c:
            assert (await c.post("/github", content=body, headers=headers)).status_code == 202
            assert (await c.post("/hooks/z?token=q", json={}, headers={"Authorization": "Bearer x"})).status_code == 401
        await first.stop()
        second = HttpSource(CONFIG, make_ctx(tmp_path, journal, port=port))  # the port is free again
        await second.start()
        try:
            assert second.port == port
            async with httpx.AsyncClient(base_url=second.url, timeout=30.0) as c:
                assert (await c.get("/healthz")).status_code == 200
        finally:
            await second.stop()

    with caplog.at_level(logging.DEBUG, logger="triggerlang"):
        run(main())
    text = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "POST /github -> 202" in text  # one debug line per request
    for secret in SECRETS.values():
        assert secret not in text
    assert headers["X-Hub-Signature-256"][7:] not in text
    assert "token=q" not in text


def test_route_globs_are_the_rule_globs() -> None:
    """One glob translator (compile/patterns.py): a class, negated or not, stays inside a
    segment, and an unclosed '[' is an error, not a literal."""
    table = RouteTable(parse_routes({"routes": [{"path": "/h/[!a]x", "kind": "http"},
                                                {"path": "/lit/\\[x", "kind": "http"}]}, {}))
    assert [r.path for r in table.candidates("/h/bx")] == ["/h/[!a]x"]
    assert table.candidates("/h//x") == [] and table.candidates("/h/ax") == []
    assert [r.path for r in table.candidates("/lit/[x")] == ["/lit/\\[x"]
    with pytest.raises(ValueError, match=r"unclosed '\['"):
        parse_routes({"routes": [{"path": "/h/[ab", "kind": "http"}]}, {})


def test_a_stop_closes_stalled_and_idle_connections_at_once_and_lets_an_answer_in_flight_finish(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # uvicorn kept a connection whose request was half sent until its graceful-shutdown
    # time ran out, then logged an ERROR ("Cancel 0 running task(s)"); the grace is made
    # long here, so a connection that is not closed at once fails the deadline below.
    import triggerlang.sources.http as http_module

    monkeypatch.setattr(http_module, "GRACEFUL_SHUTDOWN", 60.0)
    uvicorn_errors: list[str] = []

    class Errors(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR:
                uvicorn_errors.append(record.getMessage())

    class HeldJournal(FakeJournal):
        """Commits only when the test says so: an answer in flight while the stop begins."""

        def __init__(self) -> None:
            super().__init__()
            self.entered, self.release = asyncio.Event(), asyncio.Event()

        async def submit(self, event: Event, delivery_key: str | None = None) -> Submitted:
            self.entered.set()
            await self.release.wait()
            return await super().submit(event, delivery_key)

    body = fixture("github/push-plain.json")
    delivery = "".join(f"{k}: {v}\r\n" for k, v in github_headers("push", body).items())
    complete = f"POST /github HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{delivery}\r\n".encode() + body
    stalled = {
        "idle": b"",
        "half the headers": b"POST /github HTTP/1.1\r\nHost: x\r\nX-GitHub-Ev",
        "half the body (webhook)": complete[: len(complete) - len(body) // 2],
        "half the body (/events)": b'POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"source": ',
    }
    log = logging.getLogger("uvicorn.error")
    handler = Errors()
    log.addHandler(handler)

    async def main() -> tuple[bytes, list[Any]]:
        journal = HeldJournal()
        source = HttpSource(CONFIG, make_ctx(tmp_path, journal))
        await source.start()
        clients = {}
        for name, data in stalled.items():
            reader, writer = await asyncio.open_connection("127.0.0.1", source.port)
            writer.write(data)
            await writer.drain()
            clients[name] = (reader, writer)
        reader, writer = await asyncio.open_connection("127.0.0.1", source.port)
        writer.write(complete)
        await asyncio.wait_for(journal.entered.wait(), 15)   # in flight: waiting for its commit
        stop = asyncio.create_task(source.stop())
        for name, (r, w) in clients.items():                  # closed at once, with no answer
            assert await asyncio.wait_for(r.read(), 15) == b"", name
            w.close()
        assert not stop.done() and journal.events == []       # the answer in flight is waited for
        journal.release.set()
        answer = await asyncio.wait_for(reader.read(), 15)    # then the connection closes
        writer.close()
        await asyncio.wait_for(stop, 15)
        return answer, journal.events

    try:
        answer, journaled = run(main())
    finally:
        log.removeHandler(handler)
    head, _, content = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 202") and b"connection: close" in head.lower(), answer
    assert json.loads(content)["runs"] == [1] and [e.trigger for e, _ in journaled] == ["github.push"]
    assert uvicorn_errors == []


def test_form_and_multipart_bodies_are_read_into_payload(tmp_path: Path) -> None:
    """adnanh/webhook reads a form body (Slack's slash commands) and a multipart one (Plex)
    into its payload; so does a generic route: ``payload.command``, ``payload.text``. A JSON
    body sent as a form (``curl -d``) is still JSON; a file part is described, not copied."""
    journal = FakeJournal()
    multipart = (
        b'--XyZ\r\nContent-Disposition: form-data; name="payload"\r\n\r\n{"event":"media.play"}\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="meta"\r\nContent-Type: application/json\r\n\r\n'
        b'{"n":1}\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="thumb"; filename="t.jpg"\r\n'
        b'Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff\x00\r\n--XyZ--\r\n'
    )
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    async def main() -> list[httpx.Response]:
        async with serving(tmp_path, journal) as c:
            return [
                await c.post("/open/slack", content=b"token=xyz&command=%2Fdeploy&text=prod+now+%C3%A9&x=1&x=2&e=",
                             headers=form),
                await c.post("/open/plex", content=multipart,
                             headers={"Content-Type": "multipart/form-data; boundary=XyZ"}),
                await c.post("/open/json", content=b'{"a": "b=c"}', headers=form),
                await c.post("/open/other", content=b"a=b", headers={"Content-Type": "text/plain"}),
                await c.post("/open/bad", content=multipart,
                             headers={"Content-Type": "multipart/form-data; boundary=nope"}),
            ]

    for r in run(main()):
        assert r.status_code == 202, r.text
    slack, plex, as_json, other, bad = (e.data["payload"] for e, _ in journal.events)
    assert slack == {"token": "<redacted>", "command": "/deploy", "text": "prod now é", "x": "2", "e": ""}
    assert plex == {"payload": '{"event":"media.play"}', "meta": {"n": 1},
                    "thumb": {"filename": "t.jpg", "content_type": "image/jpeg", "size": 4}}
    assert as_json == {"a": "b=c"}
    assert other is None and bad is None
    assert journal.events[0][0].data["text"].startswith("token=<redacted>&command=%2Fdeploy&")  # (a credential)


def test_allow_refuses_clients_outside_the_ranges_before_the_body(tmp_path: Path) -> None:
    """``allow`` (adnanh/webhook's ip-whitelist): a client outside the ranges gets 403 and
    nothing is journaled; one inside (or behind a loopback proxy that forwards for an
    address inside) goes on to the usual checks."""
    journal = FakeJournal()
    config = {**CONFIG, "routes": [
        {"path": "/in", "kind": "http", "verify": None, "allow": ["10.0.0.0/8", "127.0.0.1"]},
        {"path": "/out", "kind": "http", "verify": None, "allow": ["192.168.0.1/24", "::2"]},
    ]}

    async def main() -> list[httpx.Response]:
        async with serving(tmp_path, journal, config) as c:
            return [
                await c.post("/in", json={"n": 1}),
                await c.post("/out", json={"n": 2}),
                await c.post("/out", json={"n": 3}, headers={"X-Forwarded-For": "192.168.0.77"}),
                await c.post("/in", json={"n": 4}, headers={"X-Forwarded-For": "203.0.113.9"}),
            ]

    statuses = [r.status_code for r in run(main())]
    assert statuses == [202, 403, 202, 403]
    assert [e.data["payload"]["n"] for e, _ in journal.events] == [1, 3]
    for bad in (["10.0.0.0/33"], "10.0.0.0/8", [7]):
        with pytest.raises(ValueError, match="allow"):
            parse_routes({"routes": [{"path": "/x", "kind": "http", "allow": bad}]}, {})


def test_reply_text_answers_a_delivery_that_started_a_run_on_both_front_ends(tmp_path: Path) -> None:
    """``reply=`` (adnanh/webhook's response-message; Slack shows the answer to whoever
    typed the slash command): 200 text/plain once journaled, the event id in a header; a
    delivery that started no run, or was refused, keeps its usual answer."""
    config = {**CONFIG, "routes": [
        {"path": "/slack", "kind": "http", "verify": None, "reply": "Deploying… ✓"},
        {"path": "/slack-locked", "kind": "http", "verify": {"scheme": "bearer", "secret": "tok"}, "reply": "no"},
    ]}

    class Picky(FakeJournal):  # one run for a payload that asks for one, none otherwise
        async def submit(self, event: Event, delivery_key: str | None = None) -> Submitted:
            sub = await super().submit(event, delivery_key)
            return sub if event.data["payload"].get("go") == "1" else Submitted(sub.event_id, [])

    async def ask(c: httpx.AsyncClient) -> list[httpx.Response]:
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        return [await c.post("/slack", content=b"go=1", headers=form),
                await c.post("/slack", content=b"go=0", headers=form),
                await c.post("/slack-locked", content=b"go=1", headers=form)]

    async def lean() -> list[httpx.Response]:
        async with serving(tmp_path, journal_lean, config) as c:
            return await ask(c)

    async def starlette() -> list[httpx.Response]:
        app = build_app(config, make_ctx(tmp_path, journal_asgi))
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await ask(c)

    journal_lean, journal_asgi = Picky(), Picky()
    for journal, (ran, idle, locked) in ((journal_lean, run(lean())), (journal_asgi, run(starlette()))):
        assert (ran.status_code, ran.text) == (200, "Deploying… ✓")
        assert ran.headers["content-type"] == "text/plain; charset=utf-8"
        assert ran.headers["x-triggerlang-event"] == journal.events[0][0].id
        assert idle.status_code == 202 and idle.json()["runs"] == []
        assert locked.status_code == 401 and "error" in locked.json()


def test_json_fields_read_a_json_document_sent_in_a_form_field(tmp_path: Path) -> None:
    """adnanh/webhook's parse-parameters-as-json: Travis CI posts ``payload=<JSON>``, Plex a
    multipart ``payload`` part without a JSON type. A route's ``json_fields`` names them;
    a value that is not JSON, and a field not named, stay strings."""
    journal = FakeJournal()
    config = {**CONFIG, "routes": [{"path": "/travis", "kind": "http", "verify": None,
                                    "json_fields": ["payload", "broken"]}]}
    travis = urlencode({"payload": json.dumps({"state": "passed", "branch": "master"}), "broken": "{nope",
                        "other": '{"a": 1}'}).encode()
    plex = (b'--B\r\nContent-Disposition: form-data; name="payload"\r\n\r\n{"event": "media.play"}\r\n'
            b'--B\r\nContent-Disposition: form-data; name="thumb"; filename="t.jpg"\r\n'
            b'Content-Type: image/jpeg\r\n\r\n\xff\xd8\r\n--B--\r\n')

    async def main() -> list[httpx.Response]:
        async with serving(tmp_path, journal, config) as c:
            return [await c.post("/travis", content=travis,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"}),
                    await c.post("/travis", content=plex, headers={"Content-Type": "multipart/form-data; boundary=B"})]

    assert [r.status_code for r in run(main())] == [202, 202]
    (t, _), (p, _) = journal.events
    assert t.data["payload"] == {"payload": {"state": "passed", "branch": "master"}, "broken": "{nope",
                                 "other": '{"a": 1}'}
    assert p.data["payload"]["payload"] == {"event": "media.play"}
    with pytest.raises(ValueError, match="json_fields"):
        parse_routes({"routes": [{"path": "/x", "kind": "http", "json_fields": "payload"}]}, {})


def test_a_client_that_stops_sending_mid_request_is_closed_at_once(tmp_path: Path) -> None:
    """Half a body (or an `Expect: 100-continue` with none), then the client's EOF: the
    request can never be complete, so the connection closes at once with nothing
    journaled; it was kept half-open, answerless, for as long as the client held it."""
    body = fixture("github/push-plain.json")
    delivery = "".join(f"{k}: {v}\r\n" for k, v in github_headers("push", body).items())
    complete = f"POST /github HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{delivery}\r\n".encode() + body
    halves = {
        "half the body (webhook)": complete[: len(complete) - len(body) // 2],
        "half a chunked body": b'POST /github HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":',
        "100-continue, no body (/events)": b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                           b"Expect: 100-continue\r\n\r\n",
    }

    async def main() -> list[Any]:
        journal = FakeJournal()
        source = HttpSource(CONFIG, make_ctx(tmp_path, journal))
        await source.start()
        try:
            for name, data in halves.items():
                reader, writer = await asyncio.open_connection("127.0.0.1", source.port)
                writer.write(data)
                writer.write_eof()
                answer = await asyncio.wait_for(reader.read(), 10)  # held open before: the deadline fails
                assert all(not line.startswith(b"HTTP/1.1 2") for line in answer.split(b"\r\n")), (name, answer)
                writer.close()
            # and a whole request, half-closed after it, still gets its answer
            reader, writer = await asyncio.open_connection("127.0.0.1", source.port)
            writer.write(complete)
            writer.write_eof()
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            assert answer.startswith(b"HTTP/1.1 202"), answer
        finally:
            await source.stop()
        return journal.events

    assert len(run(main())) == 1
