"""The webhook routes' delivery history (issue 14: the sources page's "recent deliveries",
like GitHub's) and the delivery metrics: both front ends record every answer of a route,
the refused ones too, never a body or a secret; the recorder batches, prunes, and never
fails a request when the store does.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime_helpers import wait_for
from store_harness import Backend, StoreServer
from test_source_http import CONFIG, FIXTURES, SECRETS, FakeJournal, github_headers, make_ctx
from triggerlang.runtime.deliveries import DeliveryRecorder
from triggerlang.runtime.journal import Journal
from triggerlang.sources.http import build_app

needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared webhook fixtures not present")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@needs_fixtures
def test_the_starlette_front_end_records_every_answer_of_a_route(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = []
    ctx = make_ctx(tmp_path, FakeJournal())
    ctx.record_delivery = rows.append
    app = build_app(CONFIG, ctx)
    push = (FIXTURES / "github" / "push-plain.json").read_bytes()

    async def main() -> list[int]:
        transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            codes = []
            good = github_headers("push", push, delivery="d-1")
            codes.append((await c.post("/github", content=push, headers=good)).status_code)
            codes.append((await c.post("/github", content=push, headers=good)).status_code)  # redelivery
            bad = github_headers("push", push, secret="not-the-secret", delivery="d-2")
            codes.append((await c.post("/github", content=push, headers=bad)).status_code)
            codes.append((await c.post("/github", content=b"{nope", headers=github_headers("push", b"{nope"))).status_code)
            codes.append((await c.post("/open/x", json={"a": 1})).status_code)
            codes.append((await c.post("/nowhere", json={})).status_code)  # no route: not a delivery
            codes.append((await c.post("/open/x", content=b"x", headers={"Content-Length": str(20 * 2**20)})).status_code)
            return codes

    assert run(main()) == [202, 200, 401, 400, 202, 404, 413]
    assert [(r["route"], r["status"], r["verify"]) for r in rows] == [
        ("/github", 202, "ok"), ("/github", 200, "ok"), ("/github", 401, "failed"), ("/github", 400, "ok"),
        ("/open/**", 202, "none"), ("/open/**", 413, "skipped")]  # the route, not the path
    first, dup, refused, bad_json, open_, big = rows
    assert first["delivery_id"] == "d-1" and first["trigger"] == "github.push" and first["event_id"]
    assert first["remote"] == "198.51.100.7" and first["method"] == "POST" and first["reason"] is None
    assert dup["duplicate"] is True and dup["event_id"] == first["event_id"] and not first["duplicate"]
    assert refused["delivery_id"] == "d-2" and "signature" in refused["reason"] and refused["event_id"] is None
    assert "JSON" in bad_json["reason"] and open_["delivery_id"] is None and "limit" in big["reason"]
    assert all(0 <= r["latency"] < 30 and r["at"] > 1.7e9 for r in rows)
    text = repr(rows)
    assert SECRETS["gh"] not in text and "sha256=" not in text and "commits" not in text  # no secret, no body


def test_the_recorder_batches_prunes_per_route_and_survives_a_failing_store(tmp_path: Path, caplog) -> None:
    journal = Journal(tmp_path / "state")
    try:
        async def main() -> None:
            rec = DeliveryRecorder(journal, keep=3, interval=0.05)
            for i in range(5):
                rec({"at": 1.8e9 + i, "route": "/a", "method": "POST", "status": 202, "verify": "ok",
                     "delivery_id": f"a{i}"})
            rec({"at": 1.8e9, "route": "/b", "method": "POST", "status": 401, "verify": "failed", "reason": "no"})
            written: list[int] = []
            real = journal.record_deliveries
            journal.record_deliveries = lambda rows, keep: (written.append(len(rows)), real(rows, keep))  # type: ignore[method-assign]
            assert journal.list_deliveries() == []  # buffered, not yet written
            await asyncio.sleep(0.2)
            assert [d["delivery_id"] for d in journal.list_deliveries(route="/a")] == ["a4", "a3", "a2"]
            assert [d["status"] for d in journal.list_deliveries(route="/b")] == [401]
            assert written == [4]  # a busy route's older rows were never written: 3 of /a, 1 of /b
            await rec.close()

        run(main())
    finally:
        journal.close()

    class Broken:
        def record_deliveries(self, rows: list, keep: int) -> None:
            raise RuntimeError("disk I/O error")

    async def broken() -> None:
        rec = DeliveryRecorder(Broken(), in_thread=True, interval=0.01)
        rec({"at": 1.8e9, "route": "/a", "method": "POST", "status": 202, "verify": "ok"})
        await rec.close(wait=0.05)  # no exception: the history is best-effort

    with caplog.at_level(logging.WARNING, logger="triggerlang"):
        run(broken())
    assert "could not record 1 webhook deliveries in the history before stopping: disk I/O error" in caplog.text


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite")
    return Backend("postgresql", request.getfixturevalue("pg_url"))


@needs_fixtures
def test_a_running_serve_shows_its_deliveries_and_counts_them(tmp_path: Path, backend: Backend) -> None:
    """The fast (httptools) front end of a real ``serve``, on either store: the sources
    page's API lists the deliveries newest first, /metrics counts them, and the history
    outlives a restart."""
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "rules.trg").write_text(
        'secret gh = env "GH_SECRET"\n'
        'source github path="/hooks/github" secret=gh\n'
        'action ok = exec "true"\n'
        'r: on github.push run ok\n')
    server = StoreServer(backend, folder / "rules.trg", tmp_path / "state", "--dashboard", workers=1,
                         env={"GH_SECRET": SECRETS["gh"]})
    push = (FIXTURES / "github" / "push-plain.json").read_bytes()
    server.start()
    try:
        url = server.url + "/hooks/github"
        assert httpx.post(url, content=push, headers=github_headers("push", push, delivery="d-ok")).status_code == 202
        bad = github_headers("push", push, secret="wrong", delivery="d-bad")
        assert httpx.post(url, content=push, headers=bad).status_code == 401

        def deliveries() -> list[dict[str, Any]]:
            routes = httpx.get(server.url + "/api/sources").json()["routes"]
            return next(r for r in routes if r["path"] == "/hooks/github")["deliveries"]

        wait_for(lambda: len(deliveries()) == 2, "two deliveries in the history")
        # the address serve listens on (--port 0 here), not the rules' default 8080
        assert httpx.get(server.url + "/api/sources").json()["http"] == {
            "host": "127.0.0.1", "port": server.port, "max_body": 10 * 2**20}
        newest, oldest = deliveries()
        assert (newest["status"], newest["verify"], newest["delivery_id"]) == (401, "failed", "d-bad")
        assert (oldest["status"], oldest["verify"], oldest["delivery_id"], oldest["trigger"]) == \
            (202, "ok", "d-ok", "github.push")
        assert oldest["remote"] == "127.0.0.1" and oldest["at"].endswith("Z") and oldest["latency"] >= 0
        html = httpx.get(server.url + "/dashboard/sources").text
        assert "d-ok" in html and "d-bad" in html
        metrics = httpx.get(server.url + "/metrics").text
        assert re.search(r'triggerlang_deliveries_total\{route="/hooks/github",status="202"\} 1\.0', metrics)
        assert re.search(r'triggerlang_deliveries_rejected_total\{reason="signature",route="/hooks/github"\} 1\.0',
                         metrics), metrics
    finally:
        assert server.stop() == 0, server.tail()
    server.start()
    try:
        routes = httpx.get(server.url + "/api/sources").json()["routes"]
        assert [d["delivery_id"] for d in routes[0]["deliveries"]] == ["d-bad", "d-ok"]
    finally:
        assert server.stop() == 0, server.tail()
