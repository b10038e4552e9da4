"""Fuzzing every HTTP route (issue 5): never a 5xx, never a run from a request that failed
verification.

Two harnesses over the one application :func:`build_app` builds:

- **In process** (many examples): a small ASGI driver calls the Starlette app with any
  method, any path, raw header bytes, a body in any number of chunks, a client that
  disconnects half way, and any peer address. It sees exactly what uvicorn would hand over.
- **Over the wire** (fewer examples): a real uvicorn on a loopback port, raw sockets and
  httpx: requests uvicorn itself must parse (garbage request lines, lying or missing
  ``Content-Length``, chunked bodies, truncated bodies, oversized bodies), and ``/events``
  from a real non-loopback address of this machine when it has one.

``ctx.submit`` is a recorder. The safety property is checked on every request: when it
was called, the request carried the credential (for a token or bearer route, the secret
itself; for a signed route, the HMAC of the very bytes sent) in the header the route
verifies, or the route is open, or it was ``/events`` from a loopback peer. Every event
handed to ``submit`` is strict JSON (no NaN/Infinity) whose headers hold no secret.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from triggerlang.events import Event
from triggerlang.sources.base import SourceContext, Submitted
from triggerlang.sources.http import HttpSource, build_app

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "webhooks"
SECRETS = {"gh": "gh-fuzz-secret-7f3a", "gl": "gl-fuzz-token-91c2", "ci": "ci-fuzz-token-55d0",
           "tok": "bearer-fuzz-token-0b8e", "k": "hmac-fuzz-key-c4d1"}
MAX_BODY = 64 * 1024
CONFIG: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 0,
    "max_body": MAX_BODY,
    "routes": [
        {"path": "/github", "kind": "github", "verify": {"scheme": "github", "secret": "gh"}},
        {"path": "/gitlab", "kind": "gitlab", "verify": {"scheme": "token", "header": "X-Gitlab-Token", "secret": "gl"}},
        {"path": "/ci", "kind": "ci", "verify": {"scheme": "token", "header": "X-CI-Token", "secret": "ci"}},
        {"path": "/hooks/*", "kind": "http", "methods": ["POST", "PUT"], "verify": {"scheme": "bearer", "secret": "tok"}},
        {"path": "/signed", "kind": "http", "verify": {"scheme": "hmac", "secret": "k", "header": "X-Signature-256"}},
        {"path": "/open/**", "kind": "http", "verify": None},
    ],
}
# route path -> (verified header, kind of credential)
GUARD = {"/github": ("x-hub-signature-256", "mac"), "/gitlab": ("x-gitlab-token", "token"),
         "/ci": ("x-ci-token", "token"), "/hooks/a": ("authorization", "token"),
         "/hooks/b-c": ("authorization", "token"), "/signed": ("x-signature-256", "mac")}
SECRET_FOR = {"/github": "gh", "/gitlab": "gl", "/ci": "ci", "/hooks/a": "tok", "/hooks/b-c": "tok", "/signed": "k"}
OPEN_PATHS = ["/open/x", "/open/a/b/c", "/open/"]
OTHER_PATHS = ["/", "/healthz", "/events", "/nosuch", "/github/", "/GITHUB", "//github", "/github/../github",
               "/hooks", "/hooks/a/b", "/open", "/%2e%2e/etc/passwd", "/dashboard", "/events/x", "/\u00e9", "/a\x00b"]
GUARDED_PATHS = list(GUARD)

logging.getLogger("triggerlang.fuzz").setLevel(logging.CRITICAL)  # 400s are expected by the thousand


def fixture(name: str, fallback: dict) -> bytes:
    p = FIXTURES / name
    return p.read_bytes() if p.is_file() else json.dumps(fallback).encode()


GOOD_BODIES = [
    fixture("github/push-plain.json", {"ref": "refs/heads/main", "after": "a" * 40, "before": "b" * 40, "commits": []}),
    fixture("github/workflow_run-completed.json", {"action": "completed", "workflow_run": {"conclusion": "success"}}),
    fixture("gitlab/pipeline.json", {"object_kind": "pipeline", "object_attributes": {"status": "success"}}),
    json.dumps({"pipeline": "build", "status": "success", "branch": "main", "sha": "abc", "url": "http://x"}).encode(),
    json.dumps({"source": "git", "type": "push", "data": {"branch": "main", "sha": "abc"}}).encode(),
    b'{"a": {"b": 3}}',
]
NASTY_BODIES = [
    b"", b" ", b"{", b"null", b"[]", b"[1,2]", b'"str"', b"0", b"NaN", b'{"a": NaN}', b'{"a": Infinity}',
    b'{"a": 1e999}', b'{"a": -1e999}', b'{"a": ' + b"9" * 5000 + b"}", b"[" * 100_000 + b"]" * 100_000,
    b'{"a": "\\ud800"}', b'{"a": "\xff\xfe"}', b"\xff\xfe\x00{", b"\xef\xbb\xbf{}", b'{"a":1,"a":2}',
    b"payload=%7B%22a%22%3A1%7D", b"payload=%ff%fe", b"payload=", b"a=1&a=2&" * 2000,
    gzip.compress(b'{"a": 1}'), b"\x00" * 300, b'{"source": "git", "type": "push", "data": []}',
    b'{"source": "", "type": "push"}', b'{"source": "git", "type": "push", "id": 5}',
    b'{"zen": "x", "hook_id": 1}', b'{"object_kind": 5}', b'{"object_kind": "pipeline", "object_attributes": []}',
    b'{"status": ["success"], "pipeline": {}}',
]

HEADER_NAMES = ["content-type", "content-encoding", "content-length", "transfer-encoding", "x-github-event",
                "x-github-delivery", "x-gitlab-event", "x-gitlab-event-uuid", "idempotency-key", "x-hub-signature",
                "x-forwarded-for", "host", "user-agent", "cookie", "x-kind", "accept", "expect"]
HEADER_VALUES = ["application/json", "application/x-www-form-urlencoded", "text/plain; charset=utf-16",
                 "multipart/form-data; boundary=x", "gzip", "br, gzip", "identity", "chunked", "push", "ping",
                 "pull_request", "workflow_run", "check_suite", "release", "Push Hook", "Pipeline Hook",
                 "Tag Push Hook", "nosuch", "", " ", "0", "-1", "99999999999999999999", "abc", "127.0.0.1",
                 "10.1.2.3, 127.0.0.1", "100-continue"]


# --------------------------------------------------------------------------- recorder and ASGI driver

class Recorder:
    """The fake ``submit``: records events; a delivery key seen before is a duplicate."""

    def __init__(self) -> None:
        self.events: list[tuple[Event, str | None]] = []
        self.keys: dict[str, Submitted] = {}
        self.lock = threading.Lock()

    async def submit(self, event: Event, delivery_key: str | None = None) -> Submitted:
        # what the journal would do with it: serialise the data as strict JSON
        json.dumps(event.data, allow_nan=False)
        for secret in SECRETS.values():
            assert secret not in json.dumps(event.data, ensure_ascii=False), "a secret reached event data"
        with self.lock:
            if delivery_key is not None and delivery_key in self.keys:
                old = self.keys[delivery_key]
                return Submitted(old.event_id, old.runs, duplicate=True)
            self.events.append((event, delivery_key))
            res = Submitted(event.id, [len(self.events)])
            if delivery_key is not None:
                self.keys[delivery_key] = res
            return res

    def count(self) -> int:
        with self.lock:
            return len(self.events)


def make_app(rec: Recorder):
    ctx = SourceContext(base_dir=Path("/tmp"), state_dir=Path("/tmp/.triggerlang"), submit=rec.submit,
                        secrets=dict(SECRETS), log=logging.getLogger("triggerlang.fuzz"), options={"port": 0})
    return build_app(CONFIG, ctx)


async def asgi_call(app, method: str, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes],
                    client: tuple[str, int] | None = ("127.0.0.1", 40000), disconnect: bool = False,
                    query: bytes = b"") -> int:
    """Drive the ASGI app once; the status it answered (500 if it raised, as uvicorn would)."""
    msgs: list[dict] = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    if disconnect:
        msgs.append({"type": "http.disconnect"})
    else:
        msgs.append({"type": "http.request", "body": b"", "more_body": False})
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path,
             "raw_path": path.encode("utf-8", "surrogatepass"), "query_string": query, "root_path": "",
             "headers": headers, "client": client, "server": ("127.0.0.1", 8080), "state": {}}
    status: list[int] = []

    async def receive() -> dict:
        return msgs.pop(0) if msgs else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    try:
        await app(scope, receive, send)
    except Exception as e:  # noqa: BLE001 - an exception escaping the app is uvicorn's 500
        raise AssertionError(f"the app raised {e!r} for {method} {path!r}") from e
    assert len(status) == 1, status
    return status[0]


def sig(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def carries_credential(path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> bool:
    """Necessary condition for passing verification, computed independently of the app."""
    hname, kind = GUARD[path]
    secret = SECRETS[SECRET_FOR[path]]
    want = sig(secret, body) if kind == "mac" else secret
    for k, v in headers:
        if k.decode("latin-1").lower() == hname:
            text = v.decode("latin-1")
            if (want in text.lower()) if kind == "mac" else (want in text):
                return True
    return False


# --------------------------------------------------------------------------- strategies

def credential_values(path: str, body: bytes) -> st.SearchStrategy[str]:
    hname, kind = GUARD[path]
    secret = SECRETS[SECRET_FOR[path]]
    mac = sig(secret, body)
    other = sig(secret, body + b" ")
    if kind == "mac":
        right = ["sha256=" + mac, "SHA256=" + mac.upper(), " sha256=" + mac + " "]
        if path == "/signed":
            right.append(mac)
        wrong = ["sha256=" + other, "sha256=" + mac[:-1], "sha256=" + mac[:-1] + ("0" if mac[-1] != "0" else "1"),
                 "sha1=" + hashlib.sha1(body).hexdigest(), "sha256=", mac + mac, "sha256=" + sig("gh", body)]
    elif hname == "authorization":
        right = ["Bearer " + secret, "bearer " + secret, "Bearer  " + secret + " "]
        wrong = ["Bearer " + secret[:-1], "Basic " + secret, "Bearer", secret, "Bearer " + secret + "x",
                 "Bearer " + SECRETS["gh"]]
    else:
        right = [secret, " " + secret]
        wrong = [secret[:-1], secret + "x", secret.upper(), "", SECRETS["tok"], "\u00e9".encode().decode("latin-1")]
    return st.sampled_from(right + wrong) | st.text(max_size=70).filter(lambda s: s.isascii())


class Req(dict):
    """A generated request; its repr keeps hypothesis' failure reports readable."""

    def __repr__(self) -> str:
        short = {k: (v[:120] + b"..." if isinstance(v, bytes) and len(v) > 120 else v)
                 for k, v in self.items() if k != "chunks"}
        short["body_len"] = len(self["body"])
        short["chunk_sizes"] = [len(c) for c in self["chunks"]]
        return f"Req({short!r})"


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["guarded", "guarded", "guarded", "open", "other"]))
    path = draw(st.sampled_from({"guarded": GUARDED_PATHS, "open": OPEN_PATHS, "other": OTHER_PATHS}[kind]))
    method = draw(st.sampled_from(["POST"] * 6 + ["GET", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE",
                                                 "PROPFIND", "post", "CONNECT", "X" * 40]))
    body = draw(st.one_of(st.sampled_from(GOOD_BODIES), st.sampled_from(NASTY_BODIES), st.binary(max_size=300),
                          st.sampled_from([MAX_BODY * b"a", (MAX_BODY + 1) * b"a", (MAX_BODY * 3) * b"{"])))
    headers: list[tuple[bytes, bytes]] = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(HEADER_NAMES))
        value = draw(st.sampled_from(HEADER_VALUES) | st.binary(max_size=30).map(lambda b: b.decode("latin-1")))
        headers.append((name.encode(), value.encode("latin-1")))
    if kind == "guarded":
        hname, _ = GUARD[path]
        for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
            headers.append((hname.encode(), draw(credential_values(path, body)).encode("latin-1", "replace")))
    if path == "/github" and draw(st.booleans()):
        headers.append((b"x-github-event", draw(st.sampled_from(["push", "workflow_run", "ping", "nosuch"])).encode()))
    if draw(st.booleans()):  # Content-Length: the truth, a lie, or garbage
        cl = draw(st.sampled_from([str(len(body)), "0", "5", str(MAX_BODY + 1), "abc", "-1", "1e3", " 12 "]))
        headers.append((b"content-length", cl.encode()))
    nchunks = draw(st.integers(1, 4))
    step = max(1, len(body) // nchunks)
    chunks = [body[i:i + step] for i in range(0, len(body), step)] or [b""]
    peer = draw(st.sampled_from([("127.0.0.1", 1), ("127.0.0.1", 1), ("::1", 2), ("::ffff:127.0.0.1", 3),
                                 ("10.1.2.3", 4), ("192.0.2.9", 5), ("::ffff:10.0.0.1", 6), ("fe80::1%eth0", 7),
                                 ("127.1.2.3", 8), ("0.0.0.0", 9), ("localhost", 10), ("", 11), None]))
    return Req({"method": method, "path": path, "headers": headers, "body": body, "chunks": chunks,
            "disconnect": draw(st.integers(0, 9)) == 0, "client": peer,
            "query": draw(st.sampled_from([b"", b"a=1", b"a=1&a=2", b"%ff=%fe", b"x" * 3000]))})


def loopback(peer: tuple[str, int] | None) -> bool:
    if not peer:
        return False
    try:
        a = ipaddress.ip_address(peer[0].split("%")[0])
    except ValueError:
        return False
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped:
        a = a.ipv4_mapped
    return a.is_loopback


FUZZ = settings(deadline=None, max_examples=int(os.environ.get("HTTP_FUZZ_EXAMPLES", "600")),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------- in process

@FUZZ
@given(requests())
def test_every_route_answers_without_5xx_and_runs_nothing_unverified(req: dict[str, Any]) -> None:
    rec = Recorder()
    app = make_app(rec)
    status = asyncio.run(asgi_call(app, req["method"], req["path"], req["headers"], req["chunks"],
                                   client=req["client"], disconnect=req["disconnect"], query=req["query"]))
    assert 200 <= status < 500, (status, req["method"], req["path"])
    submitted = rec.count()
    if submitted:
        assert status in (200, 202), status
        path = req["path"]
        if path in GUARD:
            allowed = {"/signed": None, "/hooks/a": ("POST", "PUT"), "/hooks/b-c": ("POST", "PUT")}.get(path, ("POST",))
            assert allowed is None or req["method"] in allowed, req["method"]
            assert carries_credential(path, req["headers"], req["body"]), "a run from an unverified request"
        elif path == "/events":
            assert req["method"] == "POST" and loopback(req["client"]), "emit from a non-loopback peer"
        else:
            assert path in OPEN_PATHS, path
        assert not req["disconnect"] or len(req["body"]) == 0
        assert len(req["body"]) <= MAX_BODY
    if req["path"] == "/events" and req["method"] == "POST" and not loopback(req["client"]):
        assert status == 403
    if len(req["body"]) > MAX_BODY and req["path"] in GUARD and req["method"] == "POST" and not req["disconnect"]:
        assert status == 413


@pytest.mark.parametrize("length", ["\u00b9", "\u00b2\u00b3"])
def test_a_content_length_of_non_ascii_digits_is_no_5xx(length: str) -> None:
    """str.isdigit says yes to "¹" (a header's byte 0xB9, as HTTP reads it: latin-1), and
    int() refuses it: such a Content-Length is no number (hypothesis found it, a 500 on /gitlab)."""
    rec = Recorder()
    app = make_app(rec)
    for path in GUARDED_PATHS:
        headers = [(b"content-type", b"application/json"), (b"content-length", length.encode("latin-1"))]
        assert asyncio.run(asgi_call(app, "POST", path, headers, [b"{}"])) < 500, path
    assert rec.count() == 0


def test_a_standard_webhook_timestamp_of_non_ascii_digits_is_refused() -> None:
    from triggerlang.providers.verify import check, standard_key, standard_signature

    key = standard_key("whsec_" + base64.b64encode(b"standard-webhooks-key").decode())
    body = b"{}"
    now = 1_700_000_000
    for stamp in ("\u00b9\u2077\u2070\u2070", "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660"):
        headers = {"webhook-id": "msg_1", "webhook-timestamp": stamp,
                   "webhook-signature": standard_signature(key, "msg_1", stamp, body)}
        assert check("standard", key, headers, body, now=now) == "webhook-timestamp is not a number of seconds"
    good = {"webhook-id": "msg_1", "webhook-timestamp": str(now),
            "webhook-signature": standard_signature(key, "msg_1", str(now), body)}
    assert check("standard", key, good, body, now=now) is None


def test_a_standard_webhook_id_with_a_dot_is_verified_and_its_cut_cannot_move() -> None:
    """Decision (verify.py): a webhook-id holding a '.' is verified, as the reference
    libraries do (the spec asks senders to keep dots out of user-chosen ids). What refusing
    it would guard against cannot pass here: moving the cut of id.timestamp.body (the id's
    tail as the timestamp) gives a timestamp 5 minutes off, or one that is not digits."""
    from triggerlang.providers.verify import check, standard_key, standard_signature

    key = standard_key("whsec_" + base64.b64encode(b"standard-webhooks-key").decode())
    now = 1_700_000_000
    signed = {"webhook-id": "evt.2024.7", "webhook-timestamp": str(now),
              "webhook-signature": standard_signature(key, "evt.2024.7", str(now), b"{}")}
    assert check("standard", key, signed, b"{}", now=now) is None
    moved = {**signed, "webhook-id": "evt", "webhook-timestamp": "2024"}  # the same signed bytes: "evt.2024.7.<now>.{}"
    assert check("standard", key, moved, f"7.{now}.{{}}".encode(), now=now) == \
        "webhook-timestamp is more than 5 minutes off (a replay, or a wrong clock)"
    moved = {**signed, "webhook-id": "evt.2024", "webhook-timestamp": f"7.{now}"}
    assert check("standard", key, moved, b"{}", now=now) == "webhook-timestamp is not a number of seconds"


@pytest.mark.parametrize("path", GUARDED_PATHS)
def test_a_clean_signed_request_is_accepted_and_the_verified_header_is_redacted(path: str) -> None:
    """The liveness half: the fuzz above must not pass merely because everything is refused."""
    rec = Recorder()
    app = make_app(rec)
    body = {"/github": GOOD_BODIES[0], "/gitlab": GOOD_BODIES[2], "/ci": GOOD_BODIES[3]}.get(path, GOOD_BODIES[5])
    hname, kind = GUARD[path]
    secret = SECRETS[SECRET_FOR[path]]
    value = ("sha256=" + sig(secret, body)) if kind == "mac" else ("Bearer " + secret if hname == "authorization" else secret)
    headers = [(b"content-type", b"application/json"), (hname.encode(), value.encode())]
    if path == "/github":
        headers.append((b"x-github-event", b"push"))
    if path == "/gitlab":
        headers.append((b"x-gitlab-event", b"Pipeline Hook"))
    status = asyncio.run(asgi_call(app, "POST", path, headers, [body]))
    assert status == 202
    assert rec.count() >= 1
    for event, _ in rec.events:
        assert value not in json.dumps(event.data)


@pytest.mark.parametrize("peer", ["10.1.2.3", "192.0.2.9", "::ffff:10.0.0.1", "2001:db8::1", "8.8.8.8", None])
def test_events_from_a_non_loopback_peer_is_403_and_submits_nothing(peer: str | None) -> None:
    rec = Recorder()
    app = make_app(rec)
    body = GOOD_BODIES[4]
    # what a proxy-less attacker might add: none of it makes the peer local
    headers = [(b"content-type", b"application/json"), (b"x-forwarded-for", b"127.0.0.1"),
               (b"x-real-ip", b"127.0.0.1"), (b"host", b"localhost"), (b"forwarded", b"for=127.0.0.1")]
    status = asyncio.run(asgi_call(app, "POST", "/events", headers, [body], client=(peer, 1234) if peer else None))
    assert status == 403 and rec.count() == 0
    assert asyncio.run(asgi_call(app, "POST", "/events", headers, [body], client=("127.0.0.1", 1))) == 202
    assert rec.count() == 1


def test_events_non_loopback_through_httpx_asgi_transport() -> None:
    """The same through httpx's ASGITransport as the peer 10.1.2.3 (its own ASGI plumbing)."""
    rec = Recorder()
    app = make_app(rec)
    event = {"source": "git", "type": "push", "data": {}}

    async def main() -> None:
        remote = httpx.ASGITransport(app=app, client=("10.1.2.3", 1234))
        async with httpx.AsyncClient(transport=remote, base_url="http://hooks.example") as c:
            r = await c.post("/events", json=event, headers={"X-Forwarded-For": "127.0.0.1"})
            assert r.status_code == 403 and "loopback" in r.json()["error"]
        assert rec.count() == 0
        local = httpx.ASGITransport(app=app, client=("127.0.0.1", 1234))
        async with httpx.AsyncClient(transport=local, base_url="http://127.0.0.1") as c:
            assert (await c.post("/events", json=event)).status_code == 202
        assert rec.count() == 1

    asyncio.run(main())


@pytest.mark.parametrize("path", GUARDED_PATHS)
def test_credentials_are_compared_in_constant_time(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every verification, right or wrong, ends in exactly one ``hmac.compare_digest`` of the
    secret-derived value with what was sent: no early ``==`` that would leak, by its timing,
    how many leading characters of a guess were right."""
    from triggerlang.providers import verify as schemes
    from triggerlang.sources.http import parse_routes, verify_request

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):  # type: ignore[no-untyped-def]
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(schemes.hmac, "compare_digest", spy)
    routes = {r.path: r for r in parse_routes(CONFIG, SECRETS)}
    route = routes["/hooks/*"] if path.startswith("/hooks/") else routes[path]
    body = GOOD_BODIES[5]
    hname, kind = GUARD[path]
    secret = SECRETS[SECRET_FOR[path]]
    good = sig(secret, body) if kind == "mac" else secret
    for guess in (good, good[:1] + "x" * (len(good) - 1), good[:-1] + "x", "x", "x" * 500):
        value = ("sha256=" + guess) if kind == "mac" else ("Bearer " + guess if hname == "authorization" else guess)
        calls.clear()
        verdict = verify_request(route, {hname: value}, body)
        assert (verdict is None) == (guess == good)
        assert len(calls) == 1, calls
        expected, given = calls[0]
        assert good.encode() in expected  # the secret-derived side...
        assert guess.encode() in given or guess.encode().lower() in given  # ...against what was sent


# --------------------------------------------------------------------------- over the wire

class Live:
    """A real HttpSource (uvicorn) in a thread with its own event loop."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.rec = Recorder()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        ctx = SourceContext(base_dir=Path("/tmp"), state_dir=Path("/tmp/.triggerlang"), submit=self.rec.submit,
                            secrets=dict(SECRETS), log=logging.getLogger("triggerlang.fuzz"),
                            options={"port": 0, "host": host})
        self.source = HttpSource(CONFIG, ctx)
        asyncio.run_coroutine_threadsafe(self.source.start(), self.loop).result(30)
        self.port = self.source.port
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.source.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    srv = Live()
    yield srv
    srv.close()


def raw_exchange(port: int, data: bytes, *, half_close: bool = True, host: str = "127.0.0.1",
                 source: str | None = None, timeout: float = 20.0) -> bytes:
    """Send bytes on a fresh connection; everything the server answered until it closed."""
    s = socket.create_connection((host, port), timeout=timeout, source_address=(source, 0) if source else None)
    try:
        with contextlib.suppress(OSError):
            s.sendall(data)
        if half_close:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_WR)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def statuses(answer: bytes) -> list[int]:
    return [int(line.split()[1]) for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]


def healthy(live: Live) -> None:
    assert httpx.get(live.url + "/healthz", timeout=20).status_code == 200


WIRE_REQUESTS = [
    b"GARBAGE\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # a TLS ClientHello
    b"POST /github HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"a\": 1",  # truncated, then EOF
    b"POST /github HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n0123456789",
    b"POST /github HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /github HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    b"POST /github HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    b"POST /github HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":",  # truncated chunk
    b"POST /github HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
    b"POST /github HTTP/1.1\r\nHost: x\r\nX-Bad\x00Header: 1\r\n\r\n",
    b"POST /github HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n",
    b"POST /\xff\xfe HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    b"P\x00ST /github HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /github HTTP/9.9\r\nHost: x\r\n\r\n",
    b"POST /github HTTP/1.1\r\n" + b"X-H: 1\r\n" * 3000 + b"\r\n",
    b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    b"GET /healthz HTTP/1.0\r\n\r\n",
    b"POST /signed?%zz=%ff HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
]


@pytest.mark.parametrize("data", WIRE_REQUESTS, ids=range(len(WIRE_REQUESTS)))
def test_malformed_http_on_the_wire_never_5xx_never_submits(live: Live, data: bytes) -> None:
    before = live.rec.count()
    answer = raw_exchange(live.port, data)
    assert all(s < 500 for s in statuses(answer)), answer[:300]
    assert live.rec.count() == before or b"/events" in data or b"/healthz" in data
    healthy(live)


def test_truncated_body_with_valid_signature_is_not_run(live: Live) -> None:
    """The signature is over the whole body; the connection dies after half of it."""
    body = GOOD_BODIES[0]
    mac = sig(SECRETS["gh"], body)
    head = (f"POST /github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n"
            f"X-Hub-Signature-256: sha256={mac}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    before = live.rec.count()
    answer = raw_exchange(live.port, head + body[: len(body) // 2])
    assert all(s < 500 for s in statuses(answer))
    assert live.rec.count() == before
    # and the same request, complete, is accepted: the refusal above was the truncation
    r = httpx.post(live.url + "/github", content=body, timeout=20,
                   headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + mac,
                            "Content-Type": "application/json"})
    assert r.status_code == 202 and live.rec.count() == before + 1


@pytest.mark.parametrize("member", ["id", "source", "type", "time"])
def test_an_event_with_a_lone_surrogate_in_its_names_is_400_not_500(live: Live, member: str) -> None:
    """Found by fuzzing a real serve: ``POST /events`` with ``"id": "\\ud800"`` (valid JSON
    for a lone surrogate) was a 500 with a traceback in the log, the journal's insert
    unable to encode it. The event's source, type, id and time must be encodable: 400
    naming the member; in ``data`` such a string is still accepted (it is journaled as its
    JSON escape)."""
    doc = {"source": "git", "type": "push", "data": {"branch": "a\udc80"}, "id": f"sur-{member}", "time": "2026-01-01T00:00:00Z"}
    doc[member] = "x\ud800"
    before = live.rec.count()
    r = httpx.post(live.url + "/events", content=json.dumps(doc).encode(), timeout=20,
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and f"the event's '{member}' is not valid Unicode" in r.json()["error"], r.text
    assert live.rec.count() == before
    doc[member] = {"id": "sur-id", "source": "git", "type": "push", "time": "2026-01-01T00:00:00Z"}[member]
    r = httpx.post(live.url + "/events", content=json.dumps(doc).encode(), timeout=20,
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 202 and live.rec.count() == before + 1, r.text


STALLED = [
    b"POST /github HT",  # the request line cut short
    b"POST /github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\n",  # headers never ended
    b"POST /github HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\"",  # a body cut short
    b"POST /github HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\"",  # a chunk cut short
    b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{",  # Starlette's path
]


def test_a_stalled_request_is_408_and_a_silent_connection_is_closed(live: Live,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by fuzzing (slowloris): a connection that stopped mid-request, or sent nothing
    after connecting, was held open for ever (still open after 40 s on a real serve), each
    one a file descriptor of serve. A request not all in within REQUEST_TIMEOUT of its
    first byte is answered 408 and closed, and a connection that sends nothing is closed
    after the keep-alive timeout; nothing is submitted and good requests are still
    answered. (Both limits are shortened here; the sockets are not half-closed, as a
    stalled client's are not.)"""
    from triggerlang.sources import http_lean

    monkeypatch.setattr(http_lean, "REQUEST_TIMEOUT", 0.2)
    monkeypatch.setattr(live.source._server.config, "timeout_keep_alive", 0.2)
    before = live.rec.count()
    for data in STALLED:
        t0 = time.monotonic()
        answer = raw_exchange(live.port, data, half_close=False, timeout=10)
        assert statuses(answer) == [408] and b"connection: close" in answer, (data, answer[:200])
        assert time.monotonic() - t0 < 8, data
    t0 = time.monotonic()
    assert raw_exchange(live.port, b"", half_close=False, timeout=10) == b""
    assert time.monotonic() - t0 < 8
    assert live.rec.count() == before
    healthy(live)


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_body_is_413_and_not_run(live: Live, chunked: bool) -> None:
    body = b"{" + b" " * (MAX_BODY * 4) + b"}"
    mac = sig(SECRETS["gh"], body)
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + mac}
    before = live.rec.count()
    content: Any = iter([body[i:i + 8192] for i in range(0, len(body), 8192)]) if chunked else body
    try:
        r = httpx.post(live.url + "/github", content=content, headers=headers, timeout=20)
        assert r.status_code == 413
    except (httpx.RemoteProtocolError, httpx.WriteError):
        pass  # the server answered 413 and closed while the client was still sending: also fine
    assert live.rec.count() == before
    healthy(live)


@settings(deadline=None, max_examples=int(os.environ.get("HTTP_WIRE_EXAMPLES", "80")),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(requests())
def test_random_requests_over_the_wire(live: Live, req: dict[str, Any]) -> None:
    path = req["path"]
    if "\x00" in path or not path.isascii():
        path = "/nosuch"
    method = req["method"] if req["method"].isalpha() else "POST"
    headers = [(k, v) for k, v in req["headers"]
               if k not in (b"content-length", b"transfer-encoding", b"host", b"expect", b"x-forwarded-for")
               and b"\r" not in v and b"\n" not in v and b"\x00" not in v]
    before = live.rec.count()
    with httpx.Client(base_url=live.url, timeout=20) as c:
        try:
            r = c.request(method, path, content=req["body"], headers=headers)
        except httpx.LocalProtocolError:
            return  # httpx itself refuses to send it (a header value h11 calls illegal)
        except httpx.RemoteProtocolError:
            healthy(live)
            return
    assert r.status_code < 500, (r.status_code, r.text[:200])
    if live.rec.count() > before:
        if path in GUARD:
            assert carries_credential(path, headers, req["body"])
        else:
            assert path in OPEN_PATHS or path == "/events", path


def _non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
            addr = s.getsockname()[0]
    except OSError:
        return None
    return None if ipaddress.ip_address(addr).is_loopback else addr


def test_events_from_a_real_non_loopback_peer_is_refused() -> None:
    """Bind every address, connect from this machine's own non-loopback address: 403, even
    with an ``X-Forwarded-For: 127.0.0.1`` (forwarded headers are trusted from loopback only)."""
    addr = _non_loopback_address()
    if addr is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    srv = Live(host="0.0.0.0")
    try:
        body = GOOD_BODIES[4]
        for extra in (b"", b"X-Forwarded-For: 127.0.0.1\r\n", b"Forwarded: for=127.0.0.1\r\n"):
            req = (b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra +
                   b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            answer = raw_exchange(srv.port, req, host=addr, source=addr)
            assert statuses(answer) == [403], answer[:300]
        assert srv.rec.count() == 0
        # loopback, and a loopback proxy that says it forwards for a remote client
        local = raw_exchange(srv.port, req.replace(extra, b""), host="127.0.0.1")
        assert statuses(local) == [202]
        proxied = raw_exchange(srv.port, req.replace(extra, b"X-Forwarded-For: 10.9.8.7\r\n"), host="127.0.0.1")
        assert statuses(proxied) == [403]
        assert srv.rec.count() == 1
    finally:
        srv.close()



def test_a_standard_webhook_id_sent_in_utf8_is_verified_on_its_bytes() -> None:
    """The id is part of what the sender signs (id.timestamp.body, its UTF-8 bytes): it is
    verified on the bytes as sent, not on Starlette's latin-1 text of them encoded again
    (before: a non-ASCII webhook-id never verified, 401)."""
    from starlette.datastructures import Headers

    from triggerlang.providers.verify import check, standard_key, standard_signature

    key = standard_key("whsec_" + base64.b64encode(b"standard-webhooks-key").decode())
    now = 1_700_000_000
    sig = standard_signature(key, "msg_café", str(now), b"{}")
    raw = [(b"webhook-id", "msg_café".encode()), (b"webhook-timestamp", str(now).encode()),
           (b"webhook-signature", sig.encode())]
    assert check("standard", key, Headers(raw=raw), b"{}", now=now) is None
    assert check("standard", key, Headers(raw=[(b"webhook-id", b"msg_cafe"), *raw[1:]]), b"{}", now=now) == \
        "signature does not match"


def test_header_values_are_read_as_utf8_on_the_starlette_path_too() -> None:
    """The Starlette front end (``dispatch``) hands its events the same headers as the lean
    one: UTF-8, else latin-1; on an http route and in a webhook provider's event alike,
    and a UTF-8 token is still checked on its bytes."""
    rec = Recorder()
    app = make_app(rec)
    json_body = [(b"content-type", b"application/json")]
    name = [(b"x-name", "café".encode())]
    assert asyncio.run(asgi_call(app, "POST", "/open/x", json_body + name, [b"{}"])) == 202
    assert asyncio.run(asgi_call(app, "POST", "/open/x", json_body + [(b"x-name", b"caf\xe9")], [b"{}"])) == 202
    gitlab = json_body + name + [(b"x-gitlab-event", b"Pipeline Hook"), (b"x-gitlab-token", SECRETS["gl"].encode())]
    assert asyncio.run(asgi_call(app, "POST", "/gitlab", gitlab, [GOOD_BODIES[2]])) == 202
    # (the pipeline's ci.completed, derived from the same delivery, carries them too)
    assert [(e.trigger, e.data["headers"]["x-name"]) for e, _ in rec.events] == \
        [("http.post", "café"), ("http.post", "café"), ("gitlab.pipeline", "café"), ("ci.completed", "café")]
    assert rec.events[2][0].data["headers"]["x-gitlab-token"] == "<redacted>"
