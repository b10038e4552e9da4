"""The commands that read the history of runs: ``runs``, ``groups``, ``events`` and
``logs``, with their tables and ``--follow``."""

from __future__ import annotations

import json
import os
import re
import sys

import click

from ..correlation.state import GROUP_FILTERS
from .common import _STORE_OPT, IntRange, _color, _open_journal, color_option, examples, fail, usage_error


# --------------------------------------------------------------------------- history

def _table(rows: list[list[str]], header: list[str], colors: list[str | None] | None = None,
           color: bool = False, colored: str = "status") -> str:
    """Aligned columns under an upper-case header; with ``color``, the ``colored`` column
    of row n in ``colors[n]`` (an SGR code)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(header, widths)).rstrip()]
    idx = header.index(colored)
    for n, r in enumerate(rows):
        cells = [c.ljust(w) for c, w in zip(r, widths)]
        if color and colors and colors[n]:
            cells[idx] = f"\x1b[{colors[n]}m{cells[idx]}\x1b[0m"
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


STATUS_COLORS = {"succeeded": "32", "failed": "31", "timed_out": "31", "interrupted": "33", "cancelled": "33",
                 "skipped": "2", "running": "36", "queued": "34"}


def _short_time(iso: str | None) -> str:
    """A journal time (ISO 8601 UTC) in the local time zone, with the zone named:
    ``2026-11-24 19:15:53 CET`` (``TZ=UTC triggerc runs`` shows UTC)."""
    from datetime import datetime

    if not iso:
        return "-"
    try:
        t = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return t.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _seconds(s: float | None) -> str:
    """A length of time for a table cell: ``0.4s``, ``42.0s``, ``3m05s``, ``2h03m``."""
    if s is None:
        return "-"
    if s < 60:
        return f"{s:.1f}s"
    s = round(s)
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"




EXAMPLES_RUNS = examples(
    "triggerc runs",
    "triggerc runs --status failed --limit 50",
    "triggerc runs -f                        # follow, like tail -f",
    "TZ=UTC triggerc runs --format json --state /srv/app/.triggerlang",
)


@click.command(epilog=EXAMPLES_RUNS)
@click.option("--state", "state_dir", default=".triggerlang", show_default=True, type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--limit", type=IntRange(1, 100000), default=20, show_default=True)
@click.option("--rule", help="Only runs of this rule.")
@click.option("--status", type=click.Choice(["queued", "running", "succeeded", "failed", "timed_out",
                                            "cancelled", "interrupted", "skipped"]), help="Only runs with this status.")
@click.option("--event", "event_id", metavar="ID", help="Only the runs of this event.")
@click.option("--since", metavar="WHEN", help="Only runs queued since WHEN: a length of time back (15m, 1h, 7d) or "
                                              "a date and time (2026-11-24 19:00, local time unless it names a zone).")
@click.option("--until", metavar="WHEN", help="Only runs queued before WHEN (as --since).")
@click.option("-q", "--search", metavar="TEXT",
              help="Only runs whose id, event id, an input's value or the event's delivery id holds TEXT.")
@click.option("-f", "--follow", is_flag=True,
              help="Keep going: print each new run, and a run again when its status changes (oldest first; "
                   "JSON Lines with --format json). Stop with Ctrl-C.")
@color_option
@_STORE_OPT
def runs(state_dir, fmt, limit, rule, status, event_id, since, until, search, follow, color_mode,
         store_url) -> None:
    """Run history from the journal, newest first.

    WAIT is the time a run spent queued before it started (started - queued: a debounce or
    a retry's backoff counts), DURATION its run time. Times are in the local time zone,
    named on each time; --format json gives ISO 8601 UTC and wait/duration in seconds.
    """
    filters = {"rule": rule, "status": status, "event_id": event_id, "q": search,
               "since": _when(since, "--since"), "until": _when(until, "--until")}
    j = _open_journal(state_dir, store_url)
    color = _color(mode=color_mode) and fmt == "text"
    if follow:
        _follow_runs(j, fmt, limit, filters, color)
        return
    items = j.list_runs(limit=limit, **filters)
    if fmt == "json":
        click.echo(json.dumps([_run_json(r) for r in items], indent=2))
        return
    rows, colors = [], []
    for r in items:
        rows.append(_run_cells(r))
        colors.append(STATUS_COLORS.get(r["status"]))
    if not rows:
        click.echo("no runs match" if any(v is not None for v in filters.values()) else "no runs yet")
        return
    click.echo(_table(rows, RUN_HEADER, colors, color), nl=False, color=color)


EXAMPLES_GROUPS = examples(
    "triggerc groups",
    "triggerc groups --rule release_gate --status open",
    "triggerc groups --key 3f1d --explain",
    "triggerc groups --format json --state /srv/app/.triggerlang",
)

GROUP_HEADER = ["id", "rule", "state", "key", "opened", "closes", "members", "missing", "run"]
GROUP_COLORS = {"fired": "32", "expired": "31", "discarded": "33", "open": "34", "armed": "34", "satisfied": "2",
                "rearmed": "2"}


def _missing_cell(g: dict, stats: dict) -> str:
    """The MISSING column: the members not there, and for ``N of m`` (whose one member is
    never missing) the events still needed when the group is open or expired, as MEMBERS
    counts them: ``fail×2`` (README: Seeing groups)."""
    trigger = ((((stats["rules"].get(g["rule"]) or {}).get("meta") or {}).get("entry") or {}).get("trigger") or {})
    if trigger.get("kind") == "count" and g["state"] in ("open", "expired") and trigger.get("members"):
        need, alias = int(trigger.get("n") or 0) - len(g["members"]), trigger["members"][0]["alias"]
        if need > 0:
            return alias if need == 1 else f"{alias}×{need}"
    return ", ".join(g["missing"]) or "-"


@click.command(epilog=EXAMPLES_GROUPS)
@click.option("--state", "state_dir", default=".triggerlang", show_default=True, type=click.Path(file_okay=False))
@click.option("--rule", help="Only groups of this rule.")
@click.option("--status", type=click.Choice(list(GROUP_FILTERS)),
              help="open: open groups and armed absence windows; armed: the windows alone; "
                   "satisfied: windows the event came in.")
@click.option("--key", "key_value", metavar="V", help="Only groups with this key value (e.g. a sha).")
@click.option("--explain", is_flag=True, help="For each missing member, its trigger's latest events and why "
                                              "each was not admitted.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--limit", type=IntRange(1, 100000), default=20, show_default=True)
@color_option
@_STORE_OPT
def groups(state_dir, rule, status, key_value, explain, fmt, limit, color_mode, store_url) -> None:
    """Correlation groups (SPEC §11) from the journal, newest first.

    A group is one key's progress towards a correlation: STATE is open (waiting for
    MISSING), armed (an absence window), fired (RUN is its run), expired (its window
    closed first), satisfied (the awaited event came), rearmed (a new after-event
    replaced the window) or discarded (the rule changed).
    """
    import time as _time

    from ..correlation.clock import human, parse_time

    j = _open_journal(state_dir, store_url)
    lister = getattr(j, "list_groups", None)
    if lister is None:  # pragma: no cover - every store has groups
        fail("this store has no correlation groups")
    items = lister(limit=limit, rule=rule, status=status, key=key_value)
    stats = j.correlation_stats() if explain or fmt == "text" else {"rules": {}}
    now = _time.time()
    explained: dict[str, list[str]] = {}
    if explain:
        from ..correlation.render import explain_group

        for g in items:
            entry = ((stats["rules"].get(g["rule"]) or {}).get("meta") or {}).get("entry")
            recent: dict[str, list[dict]] = {}
            for m in (entry or {}).get("trigger", {}).get("members", []):
                if m["alias"] in g["missing"]:
                    typ = m["types"][0] if m.get("types") and len(m["types"]) == 1 else None
                    recent[m["alias"]] = j.list_events(limit=5, source=m["source"], type=typ)
            explained[g["id"]] = explain_group(g, entry, recent, getattr(j, "groups_of_event", None),
                                           getattr(j, "get_group", None))
    if fmt == "json":
        if explain:
            items = [{**g, "explain": explained.get(g["id"], [])} for g in items]
        click.echo(json.dumps(items, indent=2))
        return
    if not items:
        click.echo("no correlation groups" + (" match" if rule or status or key_value else " yet"))
        return
    rows, colors = [], []
    for g in items:
        deadline = parse_time(g["deadline"] or "") if g["deadline"] else None
        if g["live"] and deadline is not None:
            when = f"in {human(deadline - now, left=True)}" if deadline > now else "due"
        else:
            when = _short_time(g["closed_at"]) if g["closed_at"] else "-"
        counts: dict[str, int] = {}
        for m in g["members"]:
            counts[m["alias"]] = counts.get(m["alias"], 0) + 1
        members = ", ".join(a if n == 1 else f"{a}×{n}" for a, n in counts.items()) or "-"
        key = " ".join(_key_cell(k) for k in g["keys"]) or "-"
        rows.append([g["id"], g["rule"], g["state"], key, _short_time(g["opened_at"]), when, members,
                     _missing_cell(g, stats), str(g["run_id"]) if g["run_id"] else "-"])
        colors.append(GROUP_COLORS.get(g["state"]))
    color = _color(mode=color_mode)
    table = _table(rows, GROUP_HEADER, colors, color, colored="state")
    if not explain:
        click.echo(table, nl=False, color=color)
    else:
        lines = table.rstrip("\n").split("\n")
        click.echo(lines[0], color=color)
        for g, line in zip(items, lines[1:]):
            click.echo(line, color=color)
            for x in explained.get(g["id"], []):
                click.echo(x)
    refused = {r: s["refused"] for r, s in stats["rules"].items() if s.get("refused")}
    if refused:
        click.echo("refused openings (max open groups reached): " +
                   ", ".join(f"{r} {n}" for r, n in sorted(refused.items())), err=True)


EXAMPLES_EVENTS = examples(
    "triggerc events",
    "triggerc events --source github -f",
)


@click.command(epilog=EXAMPLES_EVENTS)
@click.option("--state", "state_dir", default=".triggerlang", show_default=True, type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--limit", type=IntRange(1, 100000), default=20, show_default=True)
@click.option("--source", help="Only events of this source.")
@click.option("--type", "type_", metavar="TYPE", help="Only events of this type (push, post, modified...).")
@click.option("--rule", help="Only events this rule matched.")
@click.option("--unmatched", is_flag=True, help="Only events no rule took: no ordinary rule matched them and no correlation rule's "
                                                "member took them (why: triggerc match --explain).")
@click.option("--since", metavar="WHEN", help="Only events received since WHEN: a length of time back (15m, 1h, 7d) "
                                              "or a date and time (2026-11-24 19:00, local time unless it names "
                                              "a zone).")
@click.option("--until", metavar="WHEN", help="Only events received before WHEN (as --since).")
@click.option("-q", "--search", metavar="TEXT",
              help="Only events whose id, delivery id or a value of their data holds TEXT.")
@click.option("-f", "--follow", is_flag=True,
              help="Keep going: print each new event as it is journaled (oldest first; JSON Lines with "
                   "--format json). Stop with Ctrl-C.")
@color_option
@_STORE_OPT
def events(state_dir, fmt, limit, source, type_, rule, unmatched, since, until, search, follow, color_mode,
           store_url) -> None:
    """Events received, newest first, with the rules they matched.

    Times are in the local time zone, named on each time; --format json gives ISO 8601 UTC.
    """
    filters = {"source": source, "type": type_, "rule": rule, "unmatched": unmatched, "q": search,
               "since": _when(since, "--since"), "until": _when(until, "--until")}
    j = _open_journal(state_dir, store_url)
    color = _color(mode=color_mode) and fmt == "text"
    if follow:
        _follow_events(j, fmt, limit, filters, color)
        return
    items = j.list_events(limit=limit, **filters)
    if fmt == "json":
        click.echo(json.dumps([{k: e.get(k) for k in EVENT_KEYS} for e in items], indent=2))
        return
    if not items:
        click.echo("no events match" if any(v for v in filters.values()) else "no events yet")
        return
    rows = [_event_cells(e) for e in items]
    # an event no rule matched stands out (yellow), as under --follow
    colors = ["33" if not e.get("matched") else None for e in items]
    click.echo(_table(rows, EVENT_HEADER, colors, color, "matched"), nl=False, color=color)


def _when(text: str | None, option: str) -> float | None:
    """A ``--since``/``--until`` bound as epoch seconds: a length of time back, or a date and
    time, in the local time zone unless it names one (``runs`` and ``events`` print local
    times); a usage error when it is neither."""
    import datetime as _dt
    import time

    from ..runtime.store import BadQuery, parse_when

    if text is None:
        return None
    try:
        naive = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        naive = None
    if naive is not None and naive.tzinfo is None:
        return naive.astimezone().timestamp()
    try:
        return parse_when(text, time.time())
    except BadQuery:
        usage_error(f"{option}: {text!r} is not a time: give a length of time back (15m, 1h, 7d) or a date "
                    "and time (2026-11-24 19:00, local time unless it names a zone)")
    return None  # pragma: no cover - usage_error exits


EXAMPLES_LOGS = examples(
    "triggerc logs 42",
    "triggerc logs 42 -f                     # a running run, to its end",
    "triggerc logs 42 2>/dev/null | grep -i error",
    "triggerc logs 42 --show-secrets         # the secrets' values too, for their owner",
)


@click.command(epilog=EXAMPLES_LOGS)
@click.argument("run_id", type=IntRange(1))
@click.option("--state", "state_dir", default=".triggerlang", show_default=True, type=click.Path(file_okay=False))
@click.option("-f", "--follow", is_flag=True,
              help="A run still queued or running: print its output as it is written, until it ends (Ctrl-C "
                   "stops sooner).")
@click.option("--show-secrets", is_flag=True,
              help="Print the values of the rules' secrets as the action printed them (they are shown as "
                   "[secret NAME] otherwise).")
@_STORE_OPT
def logs(run_id: int, state_dir: str, follow: bool, show_secrets: bool, store_url: str | None) -> None:
    """The whole log of run RUN_ID: what its action wrote, stdout and stderr in the order
    they came, between triggerlang's own lines (the command; how it ended).

    The bytes as the action wrote them (the dashboard's "download"): terminal escapes are
    kept, output that is not UTF-8 is not re-encoded, but the value of each secret the rules
    declare is shown as [secret NAME] (--show-secrets: as printed); a secret this process
    cannot read (its variable is not set here) is named on stderr and shown as printed. With
    the shared store, the part the store keeps (its last 1 MiB). Exit 0, 1 when there is no
    such run; a run that has no output (yet) says so on stderr.
    """
    from pathlib import Path

    from ..runtime.logview import LogFollower, LogMasks
    from ..runtime.store import FINAL_STATUSES

    j = _open_journal(state_dir, store_url)
    masker = None if show_secrets else LogMasks(
        state_dir=None if store_url else Path(state_dir),
        note=lambda m: click.echo(f"triggerc: note: {m}", err=True)).masker(j, run_id)
    log = LogFollower(j, run_id, masker)
    out = sys.stdout.buffer

    def step() -> bool:
        run = j.get_run(run_id)  # the status first: once it is final, the log read next is whole
        if run is None:
            fail(f"there is no run {run_id}")
        final = run["status"] in FINAL_STATUSES
        def skipped() -> None:
            if log.skipped:
                click.echo(f"(the store keeps the last part of a log: its first {log.skipped} bytes "
                           "are not shown)", err=True)
                log.skipped = 0

        try:
            for block in log.read(final):
                skipped()
                out.write(block)
            skipped()
            out.flush()
        except BrokenPipeError:  # `triggerc logs 5 | head`: the reader is gone
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - no flush error at exit
            raise SystemExit(0) from None
        if final or not follow:
            if not log.exists:
                why = f"it ended {run['status']} without starting" + (f": {run['error']}" if run.get("error")
                                                                       else "")
                click.echo(f"run {run_id} has no log: " + (why if final else f"it is {run['status']}, "
                                                           "no output yet (-f waits for it)"), err=True)
            return True
        return False

    if follow:
        _follow_loop(step, at_once=True)
    else:
        step()


RUN_HEADER = ["id", "rule", "action", "status", "exit", "wait", "duration", "queued", "inputs"]
RUN_KEYS = ("id", "rule", "action", "status", "exit_code", "inputs", "event_id", "queued_at", "started_at",
            "finished_at", "attempt", "duration", "wait", "error")
EVENT_HEADER = ["id", "event", "time", "matched"]
EVENT_KEYS = ("id", "source", "type", "time", "matched")


def _run_json(r: dict) -> dict:
    return {k: r.get(k) for k in RUN_KEYS}


# C0 and C1 control characters, and the Unicode line separators and bidirectional overrides
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _cell(v: object) -> str:
    """A value from an event (an input, a key) as a table cell: a string as it is, unless it
    holds a control character, which would reach the terminal as it is (a newline forges a
    row; an escape sequence recolours, moves the cursor over earlier rows, retitles the
    window): then JSON-quoted with escapes, as any other value is shown."""
    if isinstance(v, str) and not _UNSAFE.search(v):
        return v
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(v, ensure_ascii=False))


def _key_cell(v: object) -> str:
    """A correlation key value as a table cell: as ``match`` and ``--explain`` show it (the
    string "1" quoted, the number 1 not), with what would reach the terminal escaped."""
    from ..correlation.spec import key_shown

    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", key_shown(v))


def _run_cells(r: dict) -> list[str]:
    """One run as the cells of the ``runs`` table."""
    code = "-" if r.get("exit_code") is None else str(r["exit_code"])
    inputs = " ".join(f"{k}={_cell(v)}" for k, v in (r.get("inputs") or {}).items())
    return [str(r["id"]), r["rule"], r["action"], r["status"], code, _seconds(r.get("wait")),
            _seconds(r.get("duration")), _short_time(r.get("queued_at")), inputs[:60]]


def _event_cells(e: dict) -> list[str]:
    return [e["id"], _cell(f"{e['source']}.{e['type']}"), _short_time(e.get("time")),
            ", ".join(e.get("matched") or []) or "(none)"]


# --------------------------------------------------------------------------- --follow
#
# `runs --follow` / `events --follow` print the newest --limit rows oldest first, then poll
# the journal (a reader of the SQLite WAL: it never blocks `serve`) and append what is new,
# like `tail -f`. A run is printed again when its status changes, so a line per
# transition shows what happened. The table's columns are sized from the header and
# the first rows (longer cells later push the line out rather than reflow the table).
# With --format json each row is one JSON object per line (JSON Lines).

FOLLOW_INTERVAL = 0.5  # seconds between two looks at the journal
FOLLOW_WINDOW = 200  # newest rows read on every look (more are paged in when they are all new)
FOLLOW_MAX = 10_000  # new rows printed at most per look


def _follow_line(cells: list[str], widths: list[int], color: str | None = None, col: int | None = None) -> str:
    out = [c.ljust(w) for c, w in zip(cells, widths)]
    if color and col is not None:
        out[col] = f"\x1b[{color}m{out[col]}\x1b[0m"
    return "  ".join(out).rstrip()


def _follow_widths(header: list[str], rows: list[list[str]], minimum: list[int]) -> list[int]:
    return [max([len(h), m] + [len(r[i]) for r in rows]) for i, (h, m) in enumerate(zip(header, minimum))]


def _follow_loop(poll, at_once: bool = False) -> None:
    """Poll until Ctrl-C or SIGTERM (exit 0), or until ``poll`` returns True (``at_once``:
    the first poll before the first pause, under the handlers already). Both handlers are installed here: a process
    started with SIGINT ignored (a background job of a non-interactive shell, some CI
    runners) would otherwise never stop on the SIGINT a user or script sends it. A shared
    store that cannot be read (the database restarting) is said once on stderr, and the
    follow goes on when it is back."""
    import signal
    import time

    from ..runtime.store import StoreError

    def _stop(signum, frame):  # noqa: ARG001 - signal handler signature
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)
    down = False
    try:
        while True:
            if not at_once:
                time.sleep(FOLLOW_INTERVAL)
            at_once = False
            try:
                if poll():
                    return
            except StoreError as e:
                if not down:
                    click.echo(f"triggerc: warning: {e}; still following", err=True)
                down = True
                continue
            if down:
                click.echo("triggerc: the store answers again", err=True)
            down = False
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # `triggerc runs -f | head`: the reader is gone
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - no flush error at exit


def _follow_runs(j, fmt: str, limit: int, filters: dict, color: bool) -> None:
    from ..runtime.store import FINAL_STATUSES

    header = RUN_HEADER

    def state(r: dict) -> tuple:
        return r["status"], r["exit_code"], r["started_at"], r["finished_at"]

    window = j.list_runs(limit=max(limit, FOLLOW_WINDOW), **filters)
    seen = {r["id"]: state(r) for r in window}
    top = max(seen, default=0)
    first = list(reversed(window[:limit]))
    widths = _follow_widths(header, [_run_cells(r) for r in first], [4, 12, 8, 11, 4, 6, 8, 23, 0])

    def show(r: dict) -> None:
        if fmt == "json":
            click.echo(json.dumps(_run_json(r)))
        else:
            click.echo(_follow_line(_run_cells(r), widths, STATUS_COLORS.get(r["status"]) if color else None, 3),
                       color=color)

    if fmt == "text":
        click.echo("  ".join(h.upper().ljust(w) for h, w in zip(header, widths)).rstrip())
    for r in first:
        show(r)

    def poll() -> None:
        nonlocal seen, top
        rows = _newer_pages(lambda before: j.list_runs(limit=FOLLOW_WINDOW, before_id=before, **filters),
                            lambda r: r["id"] <= top, lambda r: r["id"])
        # runs seen before and not finished yet, gone past the window (many runs queued
        # since): looked up by id, FOLLOW_WINDOW at a time, so their ends are printed too.
        # Not under --status, where a run that changes status leaves the selection.
        fetched = {r["id"] for r in rows}
        if filters.get("status") is None:
            pending = sorted(rid for rid, st in seen.items() if rid not in fetched and st[0] not in FINAL_STATUSES)
            for i in range(0, len(pending), FOLLOW_WINDOW):
                chunk = pending[i:i + FOLLOW_WINDOW]
                rows += j.list_runs(limit=len(chunk), ids=chunk, **filters)
        rows.sort(key=lambda r: r["id"])
        for r in rows:
            if seen.get(r["id"]) != state(r):
                show(r)
        # keep what may still change (unfinished runs) and the newest window
        now = {r["id"]: state(r) for r in rows}
        seen = {rid: st for rid, st in {**seen, **now}.items()
                if st[0] not in FINAL_STATUSES or rid in now}
        top = max([top, *now])

    _follow_loop(poll)


def _newer_pages(page, reached, cursor) -> list[dict]:
    """The rows newer than the last look, newest first, paging back (``page(before)``, the
    ``FOLLOW_WINDOW`` rows before a cursor, ``None``: the newest) until a row ``reached``
    says was seen already, so a burst of more rows than one window between two looks is
    printed whole; at most ``FOLLOW_MAX`` rows, and a line on stderr says how many more
    there were not printed."""
    rows: list[dict] = []
    before = None
    while True:
        batch = page(before)
        for r in batch:
            if reached(r):
                return rows
            if len(rows) == FOLLOW_MAX:
                click.echo(f"triggerc: more than {FOLLOW_MAX} new rows since the last look; "
                           f"printing the newest {FOLLOW_MAX}", err=True)
                return rows
            rows.append(r)
        if len(batch) < FOLLOW_WINDOW:
            return rows
        before = cursor(batch[-1])


def _follow_events(j, fmt: str, limit: int, filters: dict, color: bool) -> None:
    header = EVENT_HEADER
    first = list(reversed(j.list_events(limit=limit, **filters)))
    widths = _follow_widths(header, [_event_cells(e) for e in first], [20, 14, 23, 0])

    def show(e: dict) -> None:
        if fmt == "json":
            click.echo(json.dumps({k: e.get(k) for k in EVENT_KEYS}))
        else:
            # an event no rule matched stands out (yellow), like a skipped run
            click.echo(_follow_line(_event_cells(e), widths, "33" if color and not e.get("matched") else None, 3),
                       color=color)

    if fmt == "text":
        click.echo("  ".join(h.upper().ljust(w) for h, w in zip(header, widths)).rstrip())
    for e in first:
        show(e)
    last = first[-1] if first else None

    def poll() -> None:
        nonlocal last
        top = j.list_events(limit=1, **filters)
        if not top or (last is not None and top[0]["id"] == last["id"]):
            return
        # newer than the last one printed: received after it (it may have been pruned)
        def reached(e: dict) -> bool:
            return last is not None and (e["id"] == last["id"] or e["received_at"] < last["received_at"])

        new = _newer_pages(lambda before: j.list_events(limit=FOLLOW_WINDOW, before=before, **filters),
                           reached, lambda e: e["id"])
        for e in reversed(new):
            show(e)
        last = new[0] if new else top[0]

    _follow_loop(poll)
