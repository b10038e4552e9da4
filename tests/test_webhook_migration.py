"""A team coming from adnanh/webhook: its documented hooks, written as rules, against a
real ``triggerc serve`` (README "Coming from adnanh/webhook")."""

from __future__ import annotations

import hmac
import json
import shutil
import signal
import ssl
import subprocess
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from runtime_helpers import Server, by_rule, done, stop_ok, wait_for

from triggerlang.providers.verify import MAX_SIGNATURES, check

SECRET = "mysecret"

# webhook's "Incoming Github webhook" (payload-hmac-sha1 on X-Hub-Signature, a value rule on
# the ref, three payload values as arguments), "Slack slash command" (a form body whose
# token field is the route's check, as the url's ?token= is, answered with its response-message), "Travis CI webhook"
# (parse-parameters-as-json) and "Incoming Bitbucket webhook" (ip-whitelist ranges: this test's
# client, 127.0.0.1, is not in them); each hook of hooks.json is one rule.
RULES = """\
secret hook = env "HOOK_SECRET"
source http path="/hooks/webhook" hmac_sha1=hook header="X-Hub-Signature"
source http path="/hooks/sha512" hmac_sha512=hook header="X-Signature"
action redeploy(sha, name, email) = exec "echo" sha name email
webhook: on http.post path="/hooks/webhook" payload.ref="refs/heads/master"
    run redeploy with <payload.head_commit.id>, <payload.pusher.name>, <payload.pusher.email>
sha512: on http.post path="/hooks/sha512" run redeploy with <payload.id>, "-", "-"
source http path="/hooks/bitbucket" allow=["104.192.136.0/21", "185.166.140.0/22"] hmac=hook
bitbucket: on http.post path="/hooks/bitbucket" run redeploy with <payload.id>, "-", "-"
source http path="/hooks/travis" json_fields=["payload"] allow=["127.0.0.1"]
travis: on http.post path="/hooks/travis" payload.payload.state="passed" payload.payload.branch="master"
    run redeploy with <payload.payload.commit>, "travis", "-"
secret slack = env "SLACK_TOKEN"
source http path="/hooks/slack" token=slack query="token" reply="Executing redeploy script"
slack: on http.post path="/hooks/slack" payload.command="/redeploy"
    run redeploy with <payload.text>, <payload.user_name>, "-"
"""


def sign(algorithm: str, body: bytes, secret: str = SECRET) -> str:
    return f"{algorithm}=" + hmac.new(secret.encode(), body, algorithm).hexdigest()


def test_github_sha1_sha512_and_slack_hooks_of_adnanh_webhook(tmp_path: Path) -> None:
    (tmp_path / "rules.trg").write_text(RULES)
    s = Server(tmp_path / "rules.trg", tmp_path / "state", env={"HOOK_SECRET": SECRET, "SLACK_TOKEN": "slack-token"},
               log=tmp_path / "serve.log")
    s.start()
    try:
        push = json.dumps({"ref": "refs/heads/master", "head_commit": {"id": "1d2e3f"},
                           "pusher": {"name": "alice", "email": "alice@example.com"}}).encode()
        url = s.url + "/hooks/webhook"
        assert httpx.post(url, content=push, headers={"X-Hub-Signature": sign("sha1", push, "wrong")}).status_code == 401
        # a SHA-256 signature on a SHA-1 route is refused: the route, not the sender, picks the algorithm
        assert httpx.post(url, content=push, headers={"X-Hub-Signature": sign("sha256", push)}).status_code == 401
        r = httpx.post(url, content=push, headers={"X-Hub-Signature": sign("sha1", push),
                                                   "Content-Type": "application/json"})
        assert r.status_code == 202, r.text
        # a sender rotating its secret sends both signatures, comma-separated: one must match
        other = push.replace(b"1d2e3f", b"4a5b6c")
        both = f"{sign('sha1', other, 'old-secret')},{sign('sha1', other)}"
        assert httpx.post(url, content=other, headers={"X-Hub-Signature": both}).status_code == 202

        body = b'{"id": "x512"}'
        r = httpx.post(s.url + "/hooks/sha512", content=body, headers={"X-Signature": sign("sha512", body)})
        assert r.status_code == 202, r.text

        r = httpx.post(s.url + "/hooks/bitbucket", content=body, headers={"X-Signature-256": sign("sha256", body)})
        assert r.status_code == 403 and r.json() == {"error": "127.0.0.1 is not allowed on /hooks/bitbucket"}

        slack = b"token=slack-token&team_id=T0001&command=%2Fredeploy&text=prod+now&user_name=steve"
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        r = httpx.post(s.url + "/hooks/slack", content=slack, headers=form)  # response-message: Slack shows it
        assert (r.status_code, r.text) == (200, "Executing redeploy script")
        assert r.headers["x-triggerlang-event"].startswith("evt_")
        r = httpx.post(s.url + "/hooks/slack", content=slack.replace(b"slack-token", b"forged"), headers=form)
        assert r.status_code == 401, r.text

        travis = {"state": "passed", "branch": "master", "commit": "9e8d7c"}
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        for state in ("failed", "passed"):  # Travis posts payload=<JSON> (parse-parameters-as-json)
            data = urlencode({"payload": json.dumps({**travis, "state": state})})
            assert httpx.post(s.url + "/hooks/travis", content=data, headers=form).status_code == 202

        runs = s.wait_runs(lambda rs: done(rs, 5), "five runs")
        inputs = sorted(json.dumps(r["inputs"], sort_keys=True) for r in runs)
        assert [json.loads(i) for i in inputs] == sorted((
            {"sha": "1d2e3f", "name": "alice", "email": "alice@example.com"},
            {"sha": "4a5b6c", "name": "alice", "email": "alice@example.com"},
            {"sha": "x512", "name": "-", "email": "-"},
            {"sha": "prod now", "name": "steve", "email": "-"},
            {"sha": "9e8d7c", "name": "travis", "email": "-"},
        ), key=lambda d: json.dumps(d, sort_keys=True))
        assert {r["status"] for r in runs} == {"succeeded"} and len(by_rule(runs, "slack")) == 1
    finally:
        stop_ok(s)


@pytest.mark.parametrize("scheme, algorithm", [("hmac", "sha256"), ("hmac-sha1", "sha1"), ("hmac-sha512", "sha512")])
def test_hmac_schemes_take_their_prefix_bare_hex_and_several_signatures(scheme: str, algorithm: str) -> None:
    body, key = b'{"a": 1}', SECRET.encode()
    good = hmac.new(key, body, algorithm).hexdigest()
    bad = hmac.new(b"other", body, algorithm).hexdigest()
    h = "x-sig"
    assert check(scheme, key, {h: f"{algorithm}={good}"}, body, h) is None
    assert check(scheme, key, {h: good.upper()}, body, h) is None
    assert check(scheme, key, {h: f"{algorithm}={bad}, {algorithm}={good}"}, body, h) is None
    assert check(scheme, key, {h: f"{algorithm}={bad}"}, body, h) == "signature does not match"
    other = "sha1" if algorithm != "sha1" else "sha256"
    assert check(scheme, key, {h: f"{other}={hmac.new(key, body, other).hexdigest()}"}, body, h) is not None
    many = ",".join([bad] * MAX_SIGNATURES + [good])
    assert check(scheme, key, {h: many}, body, h) == f"more than {MAX_SIGNATURES} signatures in {h}"
    assert check(scheme, key, {}, body, h) == f"missing {h} header"


def _certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_serve_over_tls_as_webhook_secure_does(tmp_path: Path) -> None:
    """webhook -secure -cert -key: serve --tls-cert --tls-key answers HTTPS on the same
    routes (the fast front end included); a certificate it cannot use stops the start
    with one line, exit 1; kill -USR1 reads a renewed one."""
    cert, key = _certificate(tmp_path, "server")
    other_cert, other_key = _certificate(tmp_path, "other")
    (tmp_path / "rules.trg").write_text(RULES)
    env = {"HOOK_SECRET": SECRET, "SLACK_TOKEN": "slack-token"}
    for c, k, why in ((cert, other_key, "the key is not the certificate's"),
                      (tmp_path / "rules.trg", key, "not a PEM certificate chain"),
                      (tmp_path / "none.pem", key, "No such file or directory")):
        bad = Server(tmp_path / "rules.trg", tmp_path / "state", "--tls-cert", str(c), "--tls-key", str(k),
                     env=env, log=tmp_path / "bad.log")
        bad.start(wait=False)
        assert bad.proc.wait(60) == 1
        assert why in bad.log() and "Traceback" not in bad.log(), bad.log()
    s = Server(tmp_path / "rules.trg", tmp_path / "state", "--tls-cert", str(cert), "--tls-key", str(key),
               env=env, log=tmp_path / "serve.log")
    s.start()
    try:
        assert f"listening on https://127.0.0.1:{s.port}" in s.log()
        base = f"https://127.0.0.1:{s.port}"
        with httpx.Client(verify=ssl.create_default_context(cafile=str(cert)), timeout=30) as client:
            assert client.get(base + "/healthz").json() == {"ok": True}
            body = b'{"id": "over-tls"}'
            r = client.post(base + "/hooks/sha512", content=body, headers={"X-Signature": sign("sha512", body)})
            assert r.status_code == 202, r.text
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port gets no answer
            httpx.post(s.url + "/hooks/sha512", content=body, timeout=10)
        runs = s.wait_runs(lambda rs: done(rs, 1), "the run")
        assert runs[0]["inputs"]["sha"] == "over-tls" and runs[0]["status"] == "succeeded"

        # a renewal (certbot's deploy hook sends kill -USR1): new connections get the new
        # certificate; files it cannot use (the new certificate, the old key) change nothing
        def healthz(trusted: Path) -> int:
            with httpx.Client(verify=ssl.create_default_context(cafile=str(trusted)), timeout=30) as client:
                return client.get(base + "/healthz").status_code

        old_cert, old_key = cert.read_bytes(), key.read_bytes()
        cert.write_bytes(other_cert.read_bytes())
        s.proc.send_signal(signal.SIGUSR1)
        s.wait_log("the current certificate stays")
        cert.write_bytes(old_cert)
        assert healthz(cert) == 200
        cert.write_bytes(other_cert.read_bytes())
        key.write_bytes(other_key.read_bytes())
        s.proc.send_signal(signal.SIGUSR1)
        s.wait_log("TLS certificate read again")
        assert healthz(other_cert) == 200
        with pytest.raises(httpx.ConnectError):
            (tmp_path / "old.pem").write_bytes(old_cert)
            healthz(tmp_path / "old.pem")
        assert old_key != key.read_bytes()
    finally:
        stop_ok(s)


def test_sigusr1_reloads_the_rules_as_webhook_does_also_with_no_reload(tmp_path: Path) -> None:
    """webhook reloads its hooks on ``kill -USR1`` (systemd units say ExecReload=kill -USR1);
    to serve it was a signal with no handler, which ended the process with no stop at all.
    It now looks at the rules file at once, with --no-reload too (the only way it reloads
    then), and says so when the file has not changed."""
    rules = tmp_path / "rules.trg"
    rules.write_text(RULES)
    s = Server(rules, tmp_path / "state", "--no-reload", env={"HOOK_SECRET": SECRET, "SLACK_TOKEN": "slack-token"},
               log=tmp_path / "serve.log")
    s.start()
    try:
        s.proc.send_signal(signal.SIGUSR1)
        s.wait_log("has not changed: nothing to reload")
        body = b'{"id": "1"}'
        headers = {"X-Signature-256": sign("sha256", body)}
        assert httpx.post(s.url + "/hooks/added", content=body, headers=headers).status_code == 404
        rules.write_text(RULES + 'added: on http.post path="/hooks/added" run redeploy with "a", "b", "c"\n')
        time.sleep(1.5)  # what the polling reload would have waited: --no-reload does not poll
        assert "reloaded" not in s.log()
        s.proc.send_signal(signal.SIGUSR1)
        s.wait_log("reloaded ")
        source = 'source http path="/hooks/added" hmac=hook\n'
        rules.write_text(RULES + source + 'added: on http.post path="/hooks/added" run redeploy with "a", "b", "c"\n')
        s.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: s.log().count("reloaded ") == 2, "the second reload", on_fail=s.tail)
        r = httpx.post(s.url + "/hooks/added", content=body, headers=headers)
        assert r.status_code == 202 and len(r.json()["runs"]) == 1, r.text
        assert s.proc.poll() is None
    finally:
        stop_ok(s)


def test_a_token_in_the_query_string_is_checked_and_never_journaled(tmp_path: Path) -> None:
    # webhook's "?token=42" and Jenkins' Generic Webhook Trigger (.../invoke?token=...): senders
    # that can only be given a URL; the parameter is the secret, checked in constant time
    # (scheme "query" of providers.verify) and left out of the event
    token = "s3cr3t-t0ken-for-the-url"
    (tmp_path / "rules.trg").write_text(
        'secret jt = env "JOB_TOKEN"\n'
        'source http path="/generic-webhook-trigger/invoke" token=jt query="token"\n'
        'action build(job, query) = exec "echo" job query\n'
        'jenkins: on http.request path="/generic-webhook-trigger/invoke" run build with <query.job>, <query>\n')
    s = Server(tmp_path / "rules.trg", tmp_path / "state", env={"JOB_TOKEN": token}, log=tmp_path / "serve.log")
    s.start()
    try:
        url = s.url + "/generic-webhook-trigger/invoke"
        r = httpx.post(url, params={"job": "release"})
        assert r.status_code == 401
        assert r.json() == {"error": "missing ?token= in the query string (or a top-level token field in the body)"}
        r = httpx.post(url, params={"job": "release", "token": token + "x"})
        assert r.status_code == 401 and r.json() == {"error": "token does not match"}
        # the Authorization header is not this route's way: a bearer token alone is refused
        r = httpx.post(url, params={"job": "release"}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401
        r = httpx.post(url, params={"token": token, "job": "release"}, json={"ref": "main"})
        assert r.status_code == 202, r.text
        r = httpx.get(url + f"?job=nightly&token={token.replace('-', '%2D')}")  # percent-encoded: the same
        assert r.status_code == 202, r.text
        runs = s.wait_runs(lambda rs: done(rs, 2), "two runs")
        assert sorted(r["inputs"]["job"] for r in runs) == ["nightly", "release"]
        assert all(r["inputs"]["query"] == {"job": r["inputs"]["job"]} for r in runs)
    finally:
        stop_ok(s)
    # nowhere in the journal, the log or the manifest
    for f in [*(tmp_path / "state").rglob("*"), tmp_path / "serve.log"]:
        if f.is_file():
            assert token.encode() not in f.read_bytes(), f
