"""The commands that talk to a running ``triggerc serve``: ``emit``, ``rerun``, ``cancel``
and ``resume``."""

from __future__ import annotations

import json

import click

from .. import defaults
from .common import IntRange, Seconds, _unknown_event_warner, examples, fail, usage_error


# --------------------------------------------------------------------------- emit

def _server_url(url: str) -> str:
    """``--url`` as given, without its trailing slash; a usage error unless it is an
    http:// or https:// URL with a host (``localhost:8080`` alone would be read as a
    scheme, and urllib raises on some others) and, if it names one, a port from 1 to 65535."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # an unclosed [
        ok = False
    if not ok:
        usage_error(f"--url {url!r} is not an http:// or https:// URL (write http://HOST:PORT)")
    try:  # (urlsplit reads the port only when asked: 99999 was "connection refused")
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        usage_error(f"--url {url!r}: {parts.netloc.rsplit(':', 1)[-1]!r} is not a port (a number from 1 to 65535)")
    return url.rstrip("/")


def _parse_field(item: str) -> tuple[list[str], object]:
    from ..events import JSONError, read_json

    if "=" not in item:
        usage_error(f"{item!r}: write field=value")
    k, v = item.split("=", 1)
    if not all(k.split(".")):
        usage_error(f"{item!r}: write field=value (a field of a field as parent.field)")
    try:
        val = read_json(v, False)
    except JSONError:  # (NaN, 1e999 and nesting too deep to read are strings too: none is JSON to send)
        val = v
    return k.split("."), val


def _no_such_event(source: str, typ: str) -> None:
    """A usage error for an event no rule can name (:func:`~triggerlang.check.checker.no_such_event`:
    ``git.pushh``, ``git.*``), else on to the warner: a webhook provider's event the
    catalogue does not know (``github.pushh``) is a warning and is sent, as ``check`` only
    warns on it (TRG207: providers add events), and so is a source it does not know (the
    server may have a plug-in this machine lacks)."""
    from ..check.checker import no_such_event

    why = no_such_event(source, typ)
    if why is not None:
        usage_error(why)
    _unknown_event_warner()(source, typ)


EXAMPLES_EMIT = examples(
    "triggerc emit git.push branch=main sha=$(git rev-parse HEAD)",
    "triggerc emit ci.completed pipeline=build status=success --id build-$CI_JOB_ID",
)


@click.command(epilog=EXAMPLES_EMIT)
@click.argument("trigger", metavar="SOURCE.EVENT")
@click.argument("fields", nargs=-1, metavar="[FIELD=VALUE]...")
@click.option("--data", "data_json", help="The event's data as a JSON object (fields are merged into it).")
@click.option("--url", default=f"http://{defaults.HTTP_HOST}:{defaults.HTTP_PORT}", show_default=True, envvar="TRIGGERLANG_URL",
              help="The running server (or TRIGGERLANG_URL).")
@click.option("--id", "event_id", help="An event id; re-sending the same id creates nothing new.")
@click.option("--timeout", type=Seconds(0, 3600, min_open=True), default=10.0, show_default=True)
def emit(trigger: str, fields, data_json, url, event_id, timeout) -> None:
    """Send one event to a running `triggerc serve` (for git hooks and CI scripts).

    VALUEs are JSON when they parse as JSON (3, true, ["a"]), strings otherwise.
    """
    import urllib.error
    import urllib.request

    from ..events import JSONError, read_json

    if "." not in trigger:
        usage_error(f"{trigger!r}: write SOURCE.EVENT, e.g. git.push")
    source, typ = trigger.split(".", 1)
    if (source, typ) == ("file", "changed"):  # serve would refuse it (400): say it here, offline
        from ..events import Event, type_note

        usage_error(type_note(Event(source, typ, {})) + " (emit file.modified path=...)")
    _no_such_event(source, typ)
    data: dict = {}
    if data_json:
        try:
            data = read_json(data_json)
        except JSONError as e:
            usage_error(f"--data: {e}")
        if not isinstance(data, dict):
            usage_error("--data must be a JSON object")
    for item in fields:
        path, val = _parse_field(item)
        cur = data
        for i, part in enumerate(path[:-1]):
            cur = cur.setdefault(part, {})
            if not isinstance(cur, dict):  # a.b=2 after a=1: say so, never drop it
                usage_error(f"{item!r}: {'.'.join(path[:i + 1])} is {json.dumps(cur)}, which has no fields")
        cur[path[-1]] = val
    from ..events import Event, name_conflict

    conflict = name_conflict(Event(source, typ, data))
    if conflict is not None:
        what, name, other = conflict
        usage_error(what + (f": emit {source}.{other}, or drop {name}=" if other
                            else f" ({name} follows from the event's name: drop it)"))
    body = {"source": source, "type": typ, "data": data}
    if event_id:
        body["id"] = event_id
    req = urllib.request.Request(_server_url(url) + "/events", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            answer = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")[:300]
        fail(f"the server refused the event ({e.code}): {detail}")
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        fail(f"cannot reach {url}: {reason} (is `triggerc serve --http` running?)")
    runs = answer.get("runs", [])
    if answer.get("duplicate"):  # a retried --id: nothing new (exit 0: the event is in, as the retry wanted)
        click.echo(f"already accepted {answer.get('event_id')}: nothing new, its run(s) {runs if runs else '[]'}")
        return
    click.echo(f"accepted {answer.get('event_id')}: {len(runs)} run(s) {runs if runs else ''}".rstrip())


# --------------------------------------------------------------------------- rerun, cancel, resume
#
# These talk to the running serve's API (POST /api/runs/ID/rerun ...) with the dashboard
# token, for both stores: with SQLite only the running engine can start a re-run now or
# stop a running run's process group, and in store mode the same API writes the shared
# store. See triggerlang/runtime/operations.py.

_OPERATOR_OPTS = [
    click.option("--url", default="http://127.0.0.1:8080", show_default=True, envvar="TRIGGERLANG_URL",
                 help="The running `triggerc serve --dashboard --token T` (or a dashboard --store)."),
    click.option("--token", envvar="TRIGGERLANG_DASHBOARD_TOKEN", help="The dashboard token "
                 "(or TRIGGERLANG_DASHBOARD_TOKEN): re-run, cancel and resume need it."),
    click.option("--timeout", type=Seconds(0, 3600, min_open=True), default=10.0, show_default=True),
]


def _operator_options(f):
    for opt in reversed(_OPERATOR_OPTS):
        f = opt(f)
    return f


def _operate(url: str, token: str | None, path: str, timeout: float) -> dict:
    """POST to the running server's API as the CLI; the JSON answer, or exit 1 with why."""
    import getpass
    import socket
    import urllib.error
    import urllib.request

    if not token:
        usage_error("the dashboard token is needed: give --token or set TRIGGERLANG_DASHBOARD_TOKEN "
                    "(serve must run with --dashboard --token)")
    try:
        who = f"{getpass.getuser()}@{socket.gethostname()}"
    except Exception:  # no user name in this environment
        who = socket.gethostname()
    req = urllib.request.Request(_server_url(url) + path, data=b"", method="POST",
                                 headers={"Authorization": f"Bearer {token}".encode("utf-8", "replace"),
                                          "Accept": "application/json",
                                          # UTF-8 bytes: a str header must be Latin-1, a token or user name need not be
                                          "X-Triggerlang-Actor": who.encode("utf-8", "replace")})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        raw = e.read().decode("utf-8", "replace")
        try:
            detail = json.loads(raw).get("error") or raw
        except ValueError:
            detail = raw
        hint = ""
        if e.code == 404 and "no route" in detail:
            hint = " (is the dashboard on? start serve with --dashboard --token)"
        fail(f"{detail[:300]}{hint}" if e.code in (401, 403, 404, 409, 503) else
             f"the server answered {e.code}: {detail[:300]}")
    except (urllib.error.URLError, OSError) as e:
        fail(f"cannot reach {url}: {getattr(e, 'reason', e)} (is `triggerc serve --dashboard` running?)")
    return {}


EXAMPLES_RERUN = examples(
    "triggerc rerun 42",
    "TRIGGERLANG_DASHBOARD_TOKEN=$T triggerc rerun 42 --url http://build-box:8080",
)


@click.command(epilog=EXAMPLES_RERUN)
@click.argument("run_id", type=IntRange(1))
@_operator_options
def rerun(run_id: int, url: str, token: str | None, timeout: float) -> None:
    """Run an ended run again: a new run with the same inputs, linked to the original.

    Asks the running serve (its dashboard API, with the dashboard token); the re-run is
    journaled with your user@host. Prints the new run's id.
    """
    answer = _operate(url, token, f"/api/runs/{run_id}/rerun", timeout)
    click.echo(f"run {run_id} re-run as run {answer.get('rerun')}")


EXAMPLES_CANCEL = examples(
    "triggerc cancel 42",
    "triggerc runs --status running && triggerc cancel 57",
)


@click.command(epilog=EXAMPLES_CANCEL)
@click.argument("run_id", type=IntRange(1))
@_operator_options
def cancel(run_id: int, url: str, token: str | None, timeout: float) -> None:
    """Cancel a queued or running run.

    A queued run is marked cancelled; a running run's process group gets SIGTERM, then
    SIGKILL 5 s later, and the run ends cancelled. Journaled with your user@host.
    """
    answer = _operate(url, token, f"/api/runs/{run_id}/cancel", timeout)
    if answer.get("status") == "cancelled":
        click.echo(f"run {run_id} cancelled")
    else:
        click.echo(f"run {run_id} is being stopped (SIGTERM, then SIGKILL after 5 s)")


EXAMPLES_RESUME = examples(
    "triggerc resume build_docs",
)


@click.command(epilog=EXAMPLES_RESUME)
@click.argument("rule")
@_operator_options
def resume(rule: str, url: str, token: str | None, timeout: float) -> None:
    """Un-pause a file rule that loop protection paused (its own runs kept re-triggering it).

    A reload of the rules un-pauses every rule too.
    """
    answer = _operate(url, token, f"/api/rules/{urllib_quote(rule)}/resume", timeout)
    click.echo(f"rule {rule} resumed" if answer.get("resumed") else f"rule {rule} was not paused")


def urllib_quote(text: str) -> str:
    import urllib.parse

    return urllib.parse.quote(text, safe="")
