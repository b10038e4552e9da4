"""End to end under ``triggerc serve`` (SPEC §9, §13): the Gitea/Forgejo/Gogs and Bitbucket
providers and Standard Webhooks on http routes, with real signed deliveries over HTTP to a
real server process: a delivery runs its rule (202), a redelivery is a duplicate (200, no
second run), a bad or missing signature is 401 and runs nothing, and (Standard Webhooks) a
message whose timestamp is more than 5 minutes off is refused as a replay.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

from runtime_helpers import Server
from runtime_helpers import post_bytes as post

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "webhooks"
PAYLOADS = Path(__file__).resolve().parent / "payloads"
SECRET = "s3cret-for-tests"
WHSEC = "whsec_" + base64.b64encode(b"standard-webhooks-test-key!").decode()


def hexmac(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def rules(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "rules.trg"
    f.write_text(text)
    return f


def succeeded(srv: Server, rule: str) -> int:
    return sum(1 for r in srv.runs() if r["rule"] == rule and r["status"] == "succeeded")


GITEA_RULES = '''secret forge = env "FORGE_SECRET"
source gitea secret=forge
action note(x) = exec "echo" x
pushed: on gitea.push branch="master" run note with <sha>
'''

# (event header, delivery header, signature header, signature value)
FORGES = {
    "gitea": ("X-Gitea-Event", "X-Gitea-Delivery", "X-Gitea-Signature", lambda b: hexmac(b)),
    "forgejo": ("X-Forgejo-Event", "X-Forgejo-Delivery", "X-Forgejo-Signature", lambda b: hexmac(b)),
    "gogs": ("X-Gogs-Event", "X-Gogs-Delivery", "X-Gogs-Signature", lambda b: hexmac(b)),
    "github-compatible": ("X-GitHub-Event", "X-GitHub-Delivery", "X-Hub-Signature-256", lambda b: "sha256=" + hexmac(b)),
}


def test_gitea_forgejo_gogs_deliveries(tmp_path: Path) -> None:
    body = (FIXTURES / "gitea" / "push.json").read_bytes()
    srv = Server(rules(tmp_path, GITEA_RULES), tmp_path / "state", env={"FORGE_SECRET": SECRET}).start()
    try:
        for n, (forge, (event_h, delivery_h, sig_h, sign)) in enumerate(FORGES.items(), 1):
            headers = {event_h: "push", delivery_h: f"{forge}-1", sig_h: sign(body)}
            status, answer = post(f"{srv.url}/gitea", body, headers)
            assert status == 202 and answer["runs"], (forge, status, answer)
            srv.wait_runs(lambda runs, n=n: succeeded(srv, "pushed") == n, f"{forge}: run {n}")
            again = post(f"{srv.url}/gitea", body, headers)  # a redelivery (same delivery id)
            assert again[0] == 200 and again[1]["duplicate"] is True and again[1]["runs"] == answer["runs"], forge
            bad = post(f"{srv.url}/gitea", body, {**headers, delivery_h: f"{forge}-2", sig_h: sign(body + b" ")})
            assert bad[0] == 401, forge
        assert post(f"{srv.url}/gitea", body, {"X-Gitea-Event": "push"})[0] == 401  # unsigned
        runs = srv.runs()
        assert len(runs) == len(FORGES)  # one per good delivery: no run for a duplicate or a 401
        assert {r["inputs"]["x"] for r in runs} == {"67b56589a45103f891bdee7c0546e5d40bc02001"}
        events = srv.events()
        assert "s3cret" not in json.dumps(events)
    finally:
        assert srv.stop() == 0


BITBUCKET_RULES = '''secret bb = env "BB_SECRET"
source bitbucket secret=bb
action note(x) = exec "echo" x
on_main: on bitbucket.push branch="main" run note with <sha>
forced: on bitbucket.push forced=true run note with <branch>
green: on ci.completed provider="bitbucket" status="success" run note with <sha>
'''


def test_bitbucket_deliveries(tmp_path: Path) -> None:
    push = (PAYLOADS / "bitbucket" / "repo-push-multi.json").read_bytes()
    status_body = (PAYLOADS / "bitbucket" / "commit-status-updated.json").read_bytes()
    srv = Server(rules(tmp_path, BITBUCKET_RULES), tmp_path / "state", env={"BB_SECRET": SECRET}).start()
    try:
        headers = {"X-Event-Key": "repo:push", "X-Request-UUID": "u-1", "X-Hub-Signature": "sha256=" + hexmac(push)}
        status, answer = post(f"{srv.url}/bitbucket", push, headers)
        assert status == 202 and len(answer["runs"]) == 2, answer  # main (on_main) and release (forced)
        srv.wait_runs(lambda runs: succeeded(srv, "on_main") == 1 and succeeded(srv, "forced") == 1, "two runs")
        again = post(f"{srv.url}/bitbucket", push, headers)
        assert again[0] == 200 and again[1]["duplicate"] is True and sorted(again[1]["runs"]) == sorted(answer["runs"])
        assert len(srv.events()) == 3  # one bitbucket.push per changed ref, journaled once
        bad = post(f"{srv.url}/bitbucket", push, {**headers, "X-Request-UUID": "u-2", "X-Hub-Signature": "sha256=" + "0" * 64})
        assert bad[0] == 401
        dc = {"X-Event-Key": "repo:commit_status_updated", "X-Request-Id": "dc-9",
              "X-Hub-Signature": "sha256=" + hexmac(status_body)}
        status, answer = post(f"{srv.url}/bitbucket", status_body, dc)
        assert status == 202 and len(answer["runs"]) == 1
        srv.wait_runs(lambda runs: succeeded(srv, "green") == 1, "the ci.completed run")
        assert post(f"{srv.url}/bitbucket", status_body, dc)[0] == 200
        assert len(srv.runs()) == 3
    finally:
        assert srv.stop() == 0


GITLAB_RULES = '''secret gl = env "GL_TOKEN"
source gitlab token=gl
action note(x) = exec "echo" x
pushed: on gitlab.push branch="master" run note with <sha>
'''


def test_gitlab_resend_is_a_duplicate(tmp_path: Path) -> None:
    """GitLab's "Resend request" (and a retry) keeps ``Idempotency-Key`` but sends a new
    ``X-Gitlab-Event-UUID`` (GitLab's docs, Delivery headers: the key "remains consistent
    across webhook retries"; the event UUID is per request, and shared by recursive
    webhooks): the key is the delivery id, so a resend runs nothing again, while two
    deliveries that share an event UUID but not a key are two events."""
    body = (FIXTURES / "gitlab" / "push.json").read_bytes()
    srv = Server(rules(tmp_path, GITLAB_RULES), tmp_path / "state", env={"GL_TOKEN": SECRET}).start()
    try:
        url = f"{srv.url}/gitlab"
        headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET, "X-Gitlab-Event-UUID": "ev-1",
                   "X-Gitlab-Webhook-UUID": "hook-1", "Idempotency-Key": "key-1", "User-Agent": "GitLab/17.5.0"}
        status, answer = post(url, body, headers)
        assert status == 202 and len(answer["runs"]) == 1, answer
        resend = post(url, body, {**headers, "X-Gitlab-Event-UUID": "ev-2"})
        assert resend[0] == 200 and resend[1]["duplicate"] is True and resend[1]["runs"] == answer["runs"], resend
        recursive = post(url, body, {**headers, "Idempotency-Key": "key-2"})  # same event UUID, another delivery
        assert recursive[0] == 202 and recursive[1]["runs"] != answer["runs"], recursive
        old = {k: v for k, v in headers.items() if k != "Idempotency-Key"} | {"X-Gitlab-Event-UUID": "ev-3"}
        assert post(url, body, old)[0] == 202  # a GitLab before 17.4: the event UUID is the delivery id
        assert post(url, body, old)[0] == 200
        srv.wait_runs(lambda runs: succeeded(srv, "pushed") == 3, "three runs")
        assert len(srv.runs()) == 3
        assert [e["delivery_key"] for e in srv.events()] == ["gitlab:key-1", "gitlab:key-2", "gitlab:ev-3"]
        assert [e["data"]["delivery"] for e in srv.events()] == ["key-1", "key-2", "ev-3"]
    finally:
        assert srv.stop() == 0


CI_ROUTES_RULES = '''secret ci = env "CI_TOKEN"
source ci path="/ci/build" token=ci
source ci path="/ci/deploy" token=ci
action note(x) = exec "echo" x
done: on ci.completed run note with <pipeline>
'''


def test_ci_idempotency_keys_are_per_route(tmp_path: Path) -> None:
    """A CI job's ``Idempotency-Key`` is its own (``build-42``): a resend to the same route is
    a duplicate, the same key from another sender on another route is another delivery."""
    srv = Server(rules(tmp_path, CI_ROUTES_RULES), tmp_path / "state", env={"CI_TOKEN": SECRET}).start()
    try:
        headers = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json",
                   "Idempotency-Key": "build-42"}
        for path in ("build", "deploy"):
            body = json.dumps({"pipeline": path, "status": "success"}).encode()
            status, answer = post(f"{srv.url}/ci/{path}", body, headers)
            assert status == 202 and len(answer["runs"]) == 1, answer
        again = post(f"{srv.url}/ci/build", json.dumps({"pipeline": "build", "status": "success"}).encode(), headers)
        assert again[0] == 200 and again[1]["duplicate"] is True, again
        srv.wait_runs(lambda runs: succeeded(srv, "done") == 2, "two runs")
        assert sorted(e["delivery_key"] for e in srv.events()) == ["ci:/ci/build:build-42", "ci:/ci/deploy:build-42"]
    finally:
        assert srv.stop() == 0


STANDARD_RULES = '''secret sw = env "SW_SECRET"
source http path="/hooks/*" standard=sw
action note(x) = exec "echo" x
paid: on http.post path="/hooks/billing" payload.type="invoice.paid" run note with <payload.id>
'''


def standard_headers(msg_id: str, body: bytes, at: float | None = None, key: bytes | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    key = key if key is not None else base64.b64decode(WHSEC[len("whsec_"):])
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": msg_id, "webhook-timestamp": stamp,
            "webhook-signature": "v1,bm90IHRoaXMgb25l v1," + base64.b64encode(mac).decode()}


def test_standard_webhooks(tmp_path: Path) -> None:
    body = json.dumps({"type": "invoice.paid", "id": "inv_42"}).encode()
    srv = Server(rules(tmp_path, STANDARD_RULES), tmp_path / "state", env={"SW_SECRET": WHSEC}).start()
    try:
        url = f"{srv.url}/hooks/billing"
        headers = standard_headers("msg_1", body)
        status, answer = post(url, body, headers)
        assert status == 202 and len(answer["runs"]) == 1
        srv.wait_runs(lambda runs: succeeded(srv, "paid") == 1, "the run")
        again = post(url, body, headers)  # a retry of the same message: webhook-id is the delivery key
        assert again[0] == 200 and again[1]["duplicate"] is True
        # a new id with a fresh timestamp is a new message
        assert post(url, body, standard_headers("msg_2", body))[0] == 202
        # replay window: 6 minutes old, or 6 minutes ahead, is refused even when signed
        old = post(url, body, standard_headers("msg_3", body, at=time.time() - 360))
        assert old[0] == 401 and "5 minutes" in old[1]["error"]
        assert post(url, body, standard_headers("msg_4", body, at=time.time() + 360))[0] == 401
        assert post(url, body, standard_headers("msg_5", body, at=time.time() - 240))[0] == 202  # inside it
        # a tampered body, another key, a missing header
        assert post(url, body + b" ", headers | {"webhook-id": "msg_6"})[0] == 401
        assert post(url, body, standard_headers("msg_7", body, key=b"another key"))[0] == 401
        assert post(url, body, {k: v for k, v in standard_headers("msg_8", body).items() if k != "webhook-id"})[0] == 401
        srv.wait_runs(lambda runs: succeeded(srv, "paid") == 3, "three runs")
        assert len(srv.runs()) == 3
    finally:
        assert srv.stop() == 0


def test_standard_secret_must_be_whsec_base64(tmp_path: Path) -> None:
    srv = Server(rules(tmp_path, STANDARD_RULES), tmp_path / "state", env={"SW_SECRET": "whsec_not base64!"})
    srv.start(wait=False)
    try:
        srv.proc.wait(30)
        assert srv.proc.returncode != 0
        assert "Standard Webhooks secret" in srv.log() and "not base64!" not in srv.log()
    finally:
        srv.ensure_dead()


def test_github_form_encoded_delivery_runs_and_a_signed_body_that_is_not_json_is_400(tmp_path: Path) -> None:
    """GitHub's webhook settings offer content type ``application/x-www-form-urlencoded``
    (the JSON in a ``payload=`` field, the signature over the form body); the README says it
    works: a form delivery of the real push fixture runs its rule as the JSON one does. A
    correctly signed body that is neither (GitHub's own signature test vector, "Hello,
    World!", sent as JSON or as a form; a form whose payload is not JSON) is a 400 that says
    why, not a 500: nothing journaled, no run, the refusal in the delivery history."""
    import sqlite3
    from urllib.parse import urlencode

    vector = json.loads((FIXTURES / "github-signature-vector.json").read_text())
    secret = vector["secret"]
    srv = Server(rules(tmp_path, '''secret gh = env "GH_VECTOR_SECRET"
source github secret=gh
action note(x) = exec "echo" x
pushed: on github.push branch="master" run note with <sha>
'''), tmp_path / "state", env={"GH_VECTOR_SECRET": secret}).start()

    def signed(body: bytes, ctype: str, delivery: str) -> tuple[int, dict]:
        sig = "sha256=" + hexmac(body, secret)
        return post(srv.url + "/github", body, {"Content-Type": ctype, "X-GitHub-Event": "push",
                                               "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sig})

    form = "application/x-www-form-urlencoded"
    try:
        raw = (FIXTURES / "github" / "push-plain.json").read_bytes()
        status, answer = signed(urlencode({"payload": raw.decode()}).encode(), form, "form-1")
        assert status == 202 and answer["runs"] == [1], (status, answer)
        hello = vector["payload"].encode()
        assert "sha256=" + hexmac(hello, secret) == vector["x_hub_signature_256"]   # (the vector's signature)
        refused = {
            "json": signed(hello, "application/json", "bad-1"),
            "form": signed(hello, form, "bad-2"),
            "form payload": signed(urlencode({"payload": "Hello, World!"}).encode(), form, "bad-3"),
        }
        srv.wait_runs(lambda rs: len(rs) == 1 and rs[0]["status"] == "succeeded", "the form delivery's run")
    finally:
        assert srv.stop() == 0
    assert {k: s for k, (s, _) in refused.items()} == {"json": 400, "form": 400, "form payload": 400}, refused
    assert refused["json"][1]["error"].startswith("invalid JSON body"), refused
    assert "no 'payload' field" in refused["form"][1]["error"], refused
    assert refused["form payload"][1]["error"].startswith("invalid JSON body"), refused
    assert srv.runs()[0]["inputs"] == {"x": json.loads(raw)["after"]}
    assert [e["type"] for e in srv.events()] == ["push"]
    with sqlite3.connect(tmp_path / "state" / "journal.sqlite3") as db:
        rows = db.execute("SELECT delivery_id, status, verify FROM deliveries ORDER BY id").fetchall()
    assert rows == [("form-1", 202, "ok"), ("bad-1", 400, "ok"), ("bad-2", 400, "ok"), ("bad-3", 400, "ok")], rows
    assert "Traceback" not in srv.log()
