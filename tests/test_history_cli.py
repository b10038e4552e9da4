"""The run history from a terminal, against a real ``triggerc serve`` (SQLite journal).

``runs``, ``events`` and ``groups`` print values that come from senders (inputs,
correlation keys): a control character among them must not reach the terminal as it is,
where a newline forges a row and an escape sequence rewrites what the user sees.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runtime_helpers import Server, cli, done, post, stop_ok

RULES = r"""
action talk = shell "echo out-1; echo err-1 >&2; printf 'bin \\377\\376 \\033[31mred\\033[0m\\n'; echo out-2"
action flood = shell "i=0; while [ $i -lt 20000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done"
action tick = shell "for i in 1 2 3 4 5 6; do echo tick $i; echo warn $i >&2; sleep 0.3; done"
action hold = shell "sleep 30"
action say(msg) = exec "true"
action ok = exec "true"
talk: on http.post path="/talk" run talk
flood: on http.post path="/flood" run flood
tick: on http.post path="/tick" run tick
hold: on http.post path="/hold" run hold busy queue
say: on http.post path="/say" run say with <payload.msg>
gate: on all(http.post path="/a" as a, http.post path="/b" as b) same <payload.k> within 1h run ok
"""


@pytest.fixture
def serve(tmp_path: Path):
    rules = tmp_path / "rules.trg"
    rules.write_text(RULES)
    s = Server(rules, tmp_path / "state", "--grace", "0.5").start()  # a run left holding is interrupted
    try:
        yield s
    finally:
        s.ensure_dead()


HOSTILE = "a\x1b[2J\x1b]0;pwned\x07\n99  say  say  succeeded  0  forged\u202e"


def test_runs_events_and_groups_do_not_pass_control_characters_to_the_terminal(serve: Server) -> None:
    """Before: `triggerc runs` printed an input as it came: the newline forged a second
    row, the escapes cleared the screen and retitled the window (on a terminal, where
    nothing strips them)."""
    s = serve
    assert post(s, "/say", {"msg": HOSTILE}).status_code == 202
    assert post(s, "/a", {"k": HOSTILE}).status_code == 202
    s.wait_runs(lambda rs: done(rs, 1), "the run")
    for args in (["runs"], ["events"], ["groups"], ["runs", "--format", "text", "--limit", "5"]):
        r = cli(*args, "--state", str(s.state), "--color", "always") if args[0] != "groups" else \
            cli(*args, "--state", str(s.state))
        assert r.returncode == 0, r.stderr
        rows = r.stdout.splitlines()
        assert len(rows) == (3 if args[0] == "events" else 2), (args, r.stdout)  # the header and the rows
        shown = re.sub(r"\x1b\[3[0-9]m|\x1b\[0m", "", r.stdout)  # the status colours
        assert not any(c in shown for c in "\x1b\x07\u202e"), (args, shown)
    runs = cli("runs", "--state", str(s.state)).stdout
    assert 'msg="a\\u001b[2J\\u001b]0;pwned\\u0007\\n99  say' in runs
    groups = cli("groups", "--state", str(s.state)).stdout
    assert '"a\\u001b[2J' in groups
    # the json keeps the value itself
    assert '"msg": "a\\u001b[2J\\u001b]0;pwned\\u0007\\n99' in cli("runs", "--state", str(s.state),
                                                                   "--format", "json").stdout
    stop_ok(s)

