"""Masking secret values in free text (triggerlang/masking.py): a short secret is masked
where it stands alone, never inside the words of an unrelated message, and never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime_helpers import cli
from triggerlang.masking import Masker
from triggerlang.runtime.store import scrub

REFUSED = ('connection to server at "127.0.0.1", port 1 failed: Connection refused '
           'Is the server running on that host and accepting TCP/IP connections?')


@pytest.mark.parametrize("text, masked", [
    ("password=a", "password=***"),
    ("'a' is not the password", "'***' is not the password"),
    ("a", "***"),
    ("at a cafe: a-b, (a)", "at *** cafe: ***-b, (***)"),
    ("data failed at atlas", "data failed at atlas"),
    ("a_b a1 1a", "a_b a1 1a"),      # inside a word (\w): letters, digits, underscore
    ("é a ä", "é *** ä"),
])
def test_a_one_letter_secret_is_masked_only_where_it_stands_alone(text: str, masked: str) -> None:
    assert Masker({"a": "***"}).mask(text) == masked


def test_masking_rules() -> None:
    m = Masker({"postgres": "***", "p@ss": "***", "!x": "[x]", "ab": "[ab]", "abcd": "[abcd]", "": "never"})
    assert m.mask("postgresql://postgres:postgres@h") == "postgresql://***:***@h"
    assert m.mask("bad p@ss.") == "bad ***."
    # a value that starts (or ends) with punctuation has its boundary there already
    assert m.mask("a!x !xy") == "a[x] !xy"
    assert m.mask("abcd ab abc") == "[abcd] [ab] abc"   # the longer value whole; abc is another word
    assert Masker({}).mask("text") == "text" and not Masker({"": "x"}) and Masker({"a": "x"})


def test_store_errors_keep_their_words_with_a_one_letter_password() -> None:
    url = "postgresql://alice:a@127.0.0.1:1/db"
    assert scrub(REFUSED, url) == REFUSED
    assert scrub('invalid password "a" for user "alice"', url) == 'invalid password "***" for user "alice"'
    # the percent-encoded and the decoded form, and a query parameter, at any length
    assert scrub("x%40 x@ b", "postgresql://u:x%40@h/db?sslpassword=b") == "*** *** ***"


def test_a_store_url_with_a_short_password_gives_a_readable_error(tmp_path: Path) -> None:
    # before: "connection f***iled: connection to server ***t ... th***t host ***nd ***ccepting"
    for password, said in (("a", 'connection to server at "127.0.0.1", port 1 failed: Connection refused'),
                           ("postgres", 'connection to server at "127.0.0.1", port 1 failed: Connection refused'),
                           # a word of the message, where it stands alone: masked, never printed
                           ("at", 'connection to server *** "127.0.0.1", port 1 failed: Connection refused')):
        r = cli("runs", "--store", f"postgresql://postgres:{password}@127.0.0.1:1/db?connect_timeout=2", timeout=60)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert f"store postgresql://postgres:***@127.0.0.1:1/db?connect_timeout=2: " in r.stderr, r.stderr
        assert said in r.stderr and "accepting TCP/IP connections" in r.stderr, (password, r.stderr)
        assert f":{password}@" not in r.stderr


def test_the_mcp_results_mask_a_short_secret_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # it skipped values under 4 characters, so a 3-letter token printed by an action came back
    from triggerlang.editor.mcp_server import _Redactor

    (tmp_path / "r.trg").write_text('secret k = env "TRG_TEST_SHORT"\nsecret f = file "key.txt"\n')
    (tmp_path / "key.txt").write_text("Q\n")
    monkeypatch.setenv("TRG_TEST_SHORT", "ab1")
    redactor = _Redactor()
    redactor.learn_folder(tmp_path)
    result = {"log": "token ab1\nlabel ab12 fab1 Q-tip QA", "ab1": ["ab1"], "n": 3}
    assert redactor.scrub(result) == {"log": "token [secret k]\nlabel ab12 fab1 [secret f]-tip QA",
                                      "[secret k]": ["[secret k]"], "n": 3}
    # and the secrets serve names in its state folder, as triggerc logs reads them
    from triggerlang.runtime.logview import write_secret_names

    (tmp_path / "state").mkdir()
    write_secret_names(tmp_path / "state", {"base_dir": str(tmp_path), "secrets": {"deploy": {"env": "TRG_TEST_DEPLOY"}}})
    monkeypatch.setenv("TRG_TEST_DEPLOY", "d-42")
    redactor.learn_state(tmp_path / "state")
    assert redactor.scrub("token d-42 ab1") == "token [secret deploy] [secret k]"


# --------------------------------------------------------------------------- run logs (runtime/logview.py)

TOKEN = "s3cr3t-Value"
RUN_LOG = (b"\x01# run 1 rule r action a attempt 1: exec ./a.sh\n"
           b"token=" + TOKEN.encode() + b" done\n"
           b"\x02\xff\xfe not UTF-8 then \x1b[1m" + TOKEN.encode() + b"\x1b[0m\n"   # bold: still masked
           b"a word: " + TOKEN.encode() + b"x stays\n"
           b"ends with " + TOKEN.encode())


def test_log_bytes_are_masked_as_bytes_and_an_escape_before_a_value_is_a_boundary() -> None:
    m = Masker({TOKEN: "[secret tok]", "a": "[secret a]"})
    assert m.mask_bytes(RUN_LOG)[0] == (
        b"\x01# run 1 rule r action [secret a] attempt 1: exec ./[secret a].sh\n"
        b"token=[secret tok] done\n"
        b"\x02\xff\xfe not UTF-8 then \x1b[1m[secret tok]\x1b[0m\n"
        b"[secret a] word: s3cr3t-Valuex stays\n"
        b"ends with [secret tok]")
    # text and bytes agree where the text is ASCII without escapes
    text = "a tok!x a-b atokb ab\ncd tok!xa"
    m = Masker({"tok!x": "[1]", "a": "[2]", "ab\ncd": "[3]", "b": "[4]"})
    assert m.mask_bytes(text.encode())[0] == m.mask(text).encode()


def _paged(m: Masker, text: bytes, splits: tuple[int, ...], lines: bool) -> bytes:
    """``text`` read in pieces as a follower does, the log having grown to each split."""
    out, offset = [], 0
    for size in (*splits, len(text)):
        more = size < len(text)
        base = max(0, offset - m.context)
        data = text[base:size]
        end = max(offset - base, data.rfind(b"\n", offset - base) + 1) if lines and more else len(data)
        masked, cut = m.mask_bytes(data, offset - base, end, more=more, lines=lines)
        out.append(masked)
        offset = base + cut
    return b"".join(out)


def test_a_log_read_in_pieces_is_masked_as_the_whole_log_whatever_the_splits() -> None:
    # values that overlap, hold one another, span lines, end in punctuation or in a letter
    m = Masker({"tok!x": "[1]", "a": "[2]", "ab\ncd": "[3]", "xab": "[4]", "token": "[5]"})
    for m, text in ((m, b"a tok!x atoken token\nab\ncd tok!xa xab\n\x1b[1mtoken"), (m, b"xab\ncd ab\ncd!tok!x a\na"),
                    # a read resumes where the last one stopped (a fresh look from before it
                    # would see the middle !! of !!!! as a value: the last ! twice)
                    (Masker({"!!": "[6]", "ab": "[7]"}), b"!!!!b a !!!b")):
        whole = m.mask_bytes(text)[0]
        for i in range(len(text) + 1):
            for j in range(i, len(text) + 1, 3):
                for lines in (False, True):
                    assert _paged(m, text, (i, j), lines) == whole, (text, i, j, lines)


def test_follow_and_paging_mask_a_value_split_at_every_position(tmp_path: Path) -> None:
    """A run's log file grows with a split at each byte: ``triggerc logs -f`` (LogFollower)
    and the API's paging by offset (read_view) never show the value, and the offsets they
    hand on are the file's: nothing skipped, nothing repeated."""
    from triggerlang.events import Event
    from triggerlang.runtime.journal import Journal, PlannedRun
    from triggerlang.runtime.logview import LogFollower, read_view
    from triggerlang.runtime.store import log_lines, strip_log_markers

    j = Journal(tmp_path / "state")
    rid = j.record_event(Event("http", "post", {}), [PlannedRun("r", "a", {})]).run_ids[0]
    path = j.run_log_path(rid)
    m = Masker({TOKEN: "[secret tok]"})
    whole = m.mask_bytes(RUN_LOG)[0]
    for i in range(len(RUN_LOG) + 1):
        path.write_bytes(RUN_LOG[:i])
        follower = LogFollower(j, rid, m)
        first = b"".join(follower.read(final=False))
        page = read_view(j, rid, m, 0, more=True, lines=True, line_start=True)
        path.write_bytes(RUN_LOG)
        rest = b"".join(follower.read(final=True))
        assert first + rest == strip_log_markers(whole), i
        last = read_view(j, rid, m, page.end, more=False, lines=True, line_start=True)
        assert (page.start, last.start, last.end) == (0, page.end, len(RUN_LOG)), i
        assert log_lines(page.data + last.data) == log_lines(whole), i
        # (once as printed: inside the word "s3cr3t-Valuex", which is not the value)
        assert (first + rest).count(TOKEN.encode()) == (page.data + last.data).count(TOKEN.encode()) == 1, i
    j.close()


DROPPED = """
secret old = env "TRG_TEST_OLD_TOKEN"
secret keep = env "TRG_TEST_KEEP_TOKEN"
action a = shell "echo old=$TRG_TEST_OLD_TOKEN keep=$TRG_TEST_KEEP_TOKEN"
r: on every 1h run a
"""


def test_a_secret_a_reload_dropped_is_still_masked_in_the_runs_that_may_have_printed_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: secret-names.json named the current rules' secrets only, so after a reload
    that dropped one, triggerc logs (and triggerc dashboard) showed its value as printed in
    the logs of the runs made before. The names of earlier rules' secrets are kept while the
    journal holds a run from before they were dropped (their references, never a value)."""
    import asyncio
    import json
    import time

    from cli_helpers import invoke
    from triggerlang.events import Event
    from triggerlang.runtime.journal import Journal, PlannedRun
    from triggerlang.runtime.logview import LogMasks, write_secret_names
    from triggerlang.runtime.serve import Runtime, ServeOptions

    monkeypatch.setenv("TRG_TEST_OLD_TOKEN", "old-s3cret")
    monkeypatch.setenv("TRG_TEST_KEEP_TOKEN", "keep-s3cret")
    state = tmp_path / "state"
    with Journal(state) as j:   # a run of the first rules, which printed both values
        (rid,) = j.record_event(Event("schedule", "tick", {}), [PlannedRun("r", "a", {})]).run_ids
        j.mark_running(rid)
        j.run_log_path(rid).parent.mkdir(parents=True, exist_ok=True)
        j.run_log_path(rid).write_bytes(b"\x01# run 1 rule r action a attempt 1: shell\nold=old-s3cret keep=keep-s3cret\n")
        j.mark_finished(rid, "succeeded", 0)
    rules = tmp_path / "rules.trg"
    rules.write_text(DROPPED)

    async def start_then_reload() -> None:
        rt = Runtime(rules, ServeOptions(state_dir=state))
        await rt.start()
        try:
            rules.write_text(DROPPED.replace('secret old = env "TRG_TEST_OLD_TOKEN"\n', "")
                             .replace("old=$TRG_TEST_OLD_TOKEN ", ""))
            await rt._reload_once(True)
            assert "old" not in rt.secrets and rt.secrets["keep"] == "keep-s3cret"   # reloaded
        finally:
            await rt.stop()

    asyncio.run(start_then_reload())
    r = invoke("logs", str(rid), "--state", str(state))
    assert r.exit_code == 0 and "old=[secret old] keep=[secret keep]\n" in r.stdout, r.stdout
    # serve --dashboard's own routes, given the values serve holds after the reload: the
    # dropped secret is known from the state folder's names only
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from triggerlang.dashboard.app import dashboard_routes

    app = Starlette(routes=dashboard_routes(state, rules_path=rules, secrets={"keep": "keep-s3cret"}))
    with TestClient(app, client=("127.0.0.1", 50000)) as c:
        for path in (f"/api/runs/{rid}/log", f"/dashboard/runs/{rid}"):
            page = c.get(path)
            assert page.status_code == 200 and "old-s3cret" not in page.text, (path, page.text)
            assert "[secret old]" in page.text and "[secret keep]" in page.text, (path, page.text)
    names = json.loads((state / "secret-names.json").read_text())
    assert names["secrets"] == {"keep": {"env": "TRG_TEST_KEEP_TOKEN"}}
    assert [(e["name"], e["ref"], e["base_dir"]) for e in names["earlier"]] == \
        [("old", {"env": "TRG_TEST_OLD_TOKEN"}, str(tmp_path.resolve()))]
    assert "s3cret" not in json.dumps(names)
    monkeypatch.delenv("TRG_TEST_OLD_TOKEN")   # a view that cannot read it: as printed, and no note
    r = invoke("logs", str(rid), "--state", str(state))
    assert "old=old-s3cret keep=[secret keep]\n" in r.stdout and r.stderr == "", (r.stdout, r.stderr)
    # kept while the journal holds a run from before the drop: once pruned (the oldest run
    # queued after it), the next write forgets it
    write_secret_names(state, {"base_dir": str(tmp_path), "secrets": {}}, oldest_run=time.time() + 1)
    assert json.loads((state / "secret-names.json").read_text())["earlier"] == []
    assert LogMasks(state_dir=state).masker(None, rid) is None


def test_a_journal_that_cannot_say_its_oldest_run_is_a_warning_not_a_crash(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Review of 728bb71: the journal's error (a StoreError, which has no strerror) raised
    AttributeError inside the handler meant to log it, at serve's start or a reload."""
    import logging
    from types import SimpleNamespace

    from triggerlang.runtime.serve import JournalError, Runtime

    def oldest() -> float:
        raise JournalError("journal: database is locked")

    rt = SimpleNamespace(store=None, state_dir=tmp_path)
    # (earlier rules declared a secret these drop: the journal is asked about its runs)
    (tmp_path / "secret-names.json").write_text('{"base_dir": "/", "secrets": {"old": {"env": "OLD"}}}')
    with caplog.at_level(logging.WARNING, logger="triggerlang"):
        Runtime._write_secret_names(rt, {"secrets": {}}, SimpleNamespace(oldest_run_queued_at=oldest))
    assert "cannot write secret-names.json" in caplog.text and "database is locked" in caplog.text, caplog.text
