"""``triggerc mcp``: a Model Context Protocol server over stdio (SPEC §14), on the official SDK.

Coding agents write and debug rules with it. Tools (typed input schemas; every result is
structured JSON):

| tool | does |
|---|---|
| ``check`` | diagnostics of a rules file (or of text given as if it were that file), as ``triggerc check --format json`` |
| ``explain`` | match one event, or a raw GitHub/GitLab payload, against a rules file: the runs it would start and, for each other rule of the event's source, the first condition that failed and the value the event had |
| ``catalogue`` | the sources, a source's events, or an event's typed fields; an event a webhook provider is not known to send gets its common fields with a ``warning`` (``check``'s TRG207) and the ``closest`` known names |
| ``emit`` | send one event to a running ``triggerc serve`` — loopback only; a trigger the catalogue does not know is sent with a ``warning`` (``triggerc emit``'s) |
| ``runs``, ``run_log``, ``events`` | history from the store (``--state``, default ``.triggerlang``; or ``--store``) |
| ``groups`` | correlation groups (SPEC §11): open, fired, expired... with their members |

Everything is read-only except ``emit``, whose URL must name a loopback host (and which
follows no redirect). **No result carries a secret's value**: the server never reads
secrets for itself, and as a safety net every result is scrubbed of the values of the
secrets declared by the rules files it has seen (the ``check``/``explain`` files and the
``.trg`` files beside the state folder) and by the names ``serve`` leaves in the state
folder, read from this process's environment and files as ``serve`` reads them —
an action that prints its token to its log shows ``[secret NAME]`` here (wherever the value
stands as a token of its own, whatever its length: :mod:`triggerlang.masking`).

Imported only by ``triggerc mcp``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from .. import __version__
from ..check import catalogue as C
from ..correlation.state import GROUP_FILTERS
from ..masking import Masker, read_secrets, stand_in

MAX_LOG_BYTES = 256 * 1024

INSTRUCTIONS = """Tools for triggerlang rules (.trg files: `on git.push branch="main" run deploy with <sha>`).
Write or edit a rules file, then call `check` until it reports no errors; use `catalogue` for
the events and typed fields a trigger offers, and `explain` to see what an event (or a raw
GitHub/GitLab payload) would run and why each other rule did not match. `runs`, `run_log`
and `events` read what a running `triggerc serve` did; `emit` sends it a test event."""


class _Redactor:
    """Replaces the values of known secrets in results (see the module docstring), where
    they stand as tokens of their own (:mod:`triggerlang.masking`), whatever their length."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}   # value -> secret name
        self.seen: set[Path] = set()
        self._masker: tuple[dict[str, str], Masker] | None = None  # for which values

    def learn_file(self, path: Path) -> None:
        try:
            p = path.resolve()
        except OSError:
            return
        if p in self.seen or not p.is_file():
            return
        self.seen.add(p)
        from ..syntax import ast as A
        from ..syntax.parser import parse

        try:
            module, _ = parse(p.read_text("utf-8"), str(p))
        except (OSError, UnicodeDecodeError):
            return
        self._learn({d.name.value: {d.kind: d.ref.value} for d in module.decls if isinstance(d, A.Secret)}, p.parent)

    def learn_state(self, folder: Path) -> None:
        """The secrets ``serve`` names in its state folder (``secret-names.json``, as
        ``triggerc logs`` reads them: :mod:`triggerlang.runtime.logview`)."""
        from ..runtime.logview import earlier_declared, read_secret_names

        names = read_secret_names(folder)
        if names is not None:
            self._learn(names["secrets"], Path(names.get("base_dir") or folder.resolve().parent))
            for name, ref, base in earlier_declared(names):   # the secrets of earlier rules
                self._learn({name: ref}, base)

    def _learn(self, declared: dict, base: Path) -> None:
        """The values of ``declared`` (``{name: {"env": VAR} | {"file": path}}``) this process
        can read, as ``serve`` reads them."""
        values, _ = read_secrets(declared, base, os.environ)
        self.values.update({v: n for n, v in values.items()})

    def learn_folder(self, folder: Path) -> None:
        try:
            for f in sorted(folder.glob("*.trg")):
                self.learn_file(f)
        except OSError:
            pass

    def scrub(self, obj: Any) -> Any:
        if not self.values:
            return obj
        if self._masker is None or self._masker[0] != self.values:
            self._masker = (dict(self.values), Masker({v: stand_in(n) for v, n in self.values.items()}))
        return self._scrub(obj, self._masker[1])

    def _scrub(self, obj: Any, masker: Masker) -> Any:
        if isinstance(obj, str):
            return masker.mask(obj)
        if isinstance(obj, dict):
            return {self._scrub(k, masker): self._scrub(v, masker) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self._scrub(x, masker) for x in obj]
        return obj


def _closest(name: str, known: Any, guess: str | None, n: int = 5) -> list[str]:
    """The ``n`` known names nearest to ``name``, nearest first (``guess``, the checker's
    did-you-mean, leads when it has one; then difflib's ratio). Always ``n`` when there
    are as many, even if none is close: an agent that wrote a name the provider does not
    send gets names to look at rather than nothing, as TRG207's hint gives it."""
    import difflib

    ranked = difflib.get_close_matches(name, sorted(known), n + 1, 0.0)
    return ([guess] if guess else []) + [k for k in ranked if k != guess][:n - (1 if guess else 0)]


def _is_loopback_url(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # never leave the loopback server
        return None


def build_server(state_dir: Path | None = None, url: str = "http://127.0.0.1:8080",
                 store_url: str | None = None) -> MCPServer:
    """The MCP server: ``state_dir`` is the default journal folder (or ``store_url`` a
    PostgreSQL store, SPEC §12), ``url`` the default ``emit`` target (a loopback URL)."""
    if not _is_loopback_url(url):
        raise ValueError(f"--url {url}: emit only reaches a server on loopback (127.0.0.1, ::1, localhost)")
    redactor = _Redactor()
    if store_url:
        from ..runtime.store import url_secrets

        for s in url_secrets(store_url):  # the store URL is a secret too (SPEC §12.1)
            redactor.values[s] = "store password"
    default_state = state_dir
    server_url = url
    server = MCPServer("triggerlang", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")

    def done(result: dict[str, Any]) -> dict[str, Any]:
        return redactor.scrub(result)

    def rules_path(path: str) -> Path:
        p = Path(path).expanduser()
        if p.is_dir():  # (triggerc check FOLDER checks each file; these tools read one)
            raise ToolError(f"{path} is a folder: give one .trg file of it")
        if not p.is_file():
            raise ToolError(f"{path}: no such rules file")
        redactor.learn_file(p)
        companion = p.with_name(p.name[: -len("_test.trg")] + ".trg") if p.name.endswith("_test.trg") else None
        if companion is not None:
            redactor.learn_file(companion)
        return p

    def journal(state: str | None):
        """The store the history tools read (runtime/store.py's read API): ``--store``'s
        PostgreSQL, unless the call names a state folder; else that folder's SQLite journal."""
        from ..runtime.store import StoreError, open_store, redact_url

        if store_url and not state:
            try:
                return open_store(store_url, create=False)
            except StoreError as e:
                raise ToolError(redactor.scrub(str(e))) from None
            except Exception as e:  # noqa: BLE001 - a driver error: one line, without the password
                raise ToolError(f"cannot open the store {redact_url(store_url)}: {redactor.scrub(str(e))}") from None
        folder = Path(state).expanduser() if state else (default_state or Path(".triggerlang"))
        if not (folder / "journal.sqlite3").is_file():
            raise ToolError(f"no journal in {folder}: pass `state` (the state folder of `triggerc serve`, "
                            ".triggerlang/ beside the rules file)")
        redactor.learn_folder(folder.resolve().parent)
        redactor.learn_state(folder)
        try:
            return open_store(None, folder)
        except StoreError as e:
            raise ToolError(str(e)) from None

    # ------------------------------------------------------------------ check
    @server.tool(description="Check a triggerlang rules file: every problem (syntax, names, types, lints) "
                             "with its code, line:column span and a hint, as `triggerc check --format json`. "
                             "Give `text` to check unsaved text as if it were the file at `path`.")
    def check(
        path: Annotated[str, Field(description="The .trg file (an X_test.trg sees X.trg's declarations)",
                                   min_length=1)],
        text: Annotated[str | None, Field(description="Check this text instead of the file's content")] = None,
        strict: Annotated[bool, Field(description="Count warnings as problems (like --strict)")] = False,
    ) -> dict[str, Any]:
        from ..api import SourceFileError, compile_file, compile_text, companion_of

        p = Path(path).expanduser()
        if text is None:
            rules_path(path)
            try:
                c = compile_file(p)
            except SourceFileError as e:
                raise ToolError(str(e)) from None
        else:
            main = None
            comp = companion_of(p) if p.name.endswith("_test.trg") else None
            if comp is not None:
                redactor.learn_file(comp)
                try:
                    main = compile_file(comp)
                except SourceFileError:
                    main = None
            c = compile_text(text, str(path), str(p.resolve().parent), main.program if main else None)
        from ..config import ConfigError, config_of

        try:  # the file's triggerc.toml, as `triggerc check` reads it
            cfg = config_of(str(p))
        except ConfigError as e:
            raise ToolError(str(e)) from None
        diags = [d.to_json() for d in c.diagnostics if cfg.keeps(d)]
        errors = sum(d["severity"] == "error" for d in diags)
        warnings = len(diags) - errors
        return done({"file": str(path), "ok": errors == 0 and not ((strict or cfg.strict) and warnings),
                     "errors": errors, "warnings": warnings, "diagnostics": diags})

    # ------------------------------------------------------------------ explain
    @server.tool(description="Match one event against a rules file (a dry run, nothing runs): the rules it "
                             "matches with the run each would start (action, inputs, argv), and for each "
                             "other rule of the event's source the first condition that failed, where it is "
                             "written and the value the event had. Give `event` as {source, type, data}, or "
                             "`payload` (a raw webhook body) with `provider` and `provider_event`.")
    def explain(
        path: Annotated[str, Field(description="The .trg rules file", min_length=1)],
        event: Annotated[dict[str, Any] | None, Field(
            description='An event: {"source": "git", "type": "push", "data": {"branch": "main", ...}}')] = None,
        payload: Annotated[dict[str, Any] | None, Field(description="A raw webhook body, as the provider sent it")] = None,
        provider: Annotated[Literal["github", "gitlab"] | None, Field(description="Who sent `payload`")] = None,
        provider_event: Annotated[str | None, Field(
            description="The provider's event name (X-GitHub-Event: push, pull_request, workflow_run...)")] = None,
    ) -> dict[str, Any]:
        from ..api import SourceFileError, compile_file
        from ..compile.index import build_matcher
        from ..dryrun import DryRun, EventInputError, _events_from_obj

        if (event is None) == (payload is None):
            raise ToolError("give exactly one of `event` or `payload`")
        if payload is not None and (provider is None or not provider_event):
            raise ToolError("a raw `payload` needs `provider` (github or gitlab) and `provider_event`")
        p = rules_path(path)
        try:
            c = compile_file(p, tests=False)
        except SourceFileError as e:
            raise ToolError(str(e)) from None
        if not c.ok:
            return done({"ok": False, "error": "the rules file has errors: fix them first (see diagnostics)",
                         "diagnostics": [d.to_json() for d in c.diagnostics if d.is_error]})
        try:
            events = _events_from_obj(event if event is not None else payload,
                                      (provider, provider_event) if payload is not None else None,
                                      "event" if event is not None else "payload",
                                      "give it as `payload`, with `provider` (github or gitlab) and `provider_event`")
        except EventInputError as e:
            raise ToolError(str(e)) from None
        # an included rule's reasons name its file as `triggerc match PATH` does: relative to
        # the folder of `path` as given (absolute for an absolute path), not to the main file's
        dry = DryRun(c.manifest, build_matcher(c.manifest["rules"]), shown_as=str(p))
        result = dry.run(events, explain=True)
        return done({"ok": True, "events": [{"source": e.source, "type": e.type, "data": e.data} for e in events],
                     **result})

    # ------------------------------------------------------------------ catalogue
    @server.tool(description="The event catalogue: without arguments, every source; with `source`, its "
                             "events, options and raw prefixes; with `source` and `event`, that trigger's "
                             "typed fields (and, for an event the webhook provider is not known to send, a "
                             "`warning` and the `closest` known event names).")
    def catalogue(
        source: Annotated[str | None, Field(description="A source: file, git, http, github, gitlab, ci, run...")] = None,
        event: Annotated[str | None, Field(description="An event of the source (push, pull_request, *...)")] = None,
    ) -> dict[str, Any]:
        from ..check.checker import trigger_problem
        from ..diagnostics import did_you_mean
        from .knowledge import field_doc

        if source is None and event is not None:
            raise ToolError(f"`event` {event!r} needs its `source` (catalogue with no arguments lists them)")
        if source is None:
            return {"sources": [{"name": n, "doc": s.doc, "events": sorted(s.events), "open_events": s.open_events,
                                 "listener": s.listener or None} for n, s in sorted(C.CATALOGUE.items())]}
        src = C.get_source(source)
        if src is None:
            raise ToolError(f"unknown source {source!r}" + (f" ({did_you_mean(source, C.CATALOGUE)})"
                                                            if did_you_mean(source, C.CATALOGUE) else ""))
        if event is None:
            return {"source": source, "doc": src.doc, "open_events": src.open_events,
                    "events": [{"name": e, "doc": s.doc} for e, s in sorted(src.events.items())],
                    "options": dict(sorted(src.options.items())), "raw": sorted(src.raw),
                    "common_fields": dict(sorted(src.common.items()))}
        spec = C.get_event(source, event)
        if spec is None:
            hint = did_you_mean(event, src.events)
            raise ToolError(f"{source} has no event {event!r}" + (f" ({hint})" if hint else ""))
        out: dict[str, Any] = {
            "trigger": f"{source}.{event}", "doc": spec.doc,
            "fields": [{"name": k, "type": t, "doc": field_doc(source, event, k)} for k, t in sorted(spec.fields.items())],
            "raw": {r: ("any (JSON)" if r == "payload" else "map of str") for r in sorted(src.raw)}}
        problem = trigger_problem(source, event)
        if problem is not None:  # a webhook event the provider is not known to send: check's TRG207
            out["warning"] = f"{problem[0]}: {problem[1]}" + (f" ({problem[2]})" if problem[2] else "")
            out["closest"] = _closest(event, src.known_events, problem[3])
        return out

    # ------------------------------------------------------------------ emit
    @server.tool(description="Send one event to a running `triggerc serve --http` (POST /events), as "
                             "`triggerc emit` does. Only a loopback server is reachable. This is the one tool "
                             "that changes anything: the server journals the event and starts its runs. A "
                             "trigger the catalogue does not know is sent too, with a `warning` (a typo?).")
    def emit(
        trigger: Annotated[str, Field(description="SOURCE.EVENT, e.g. git.push", pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*\.[A-Za-z0-9_\-*]+$")],
        data: Annotated[dict[str, Any] | None, Field(description="The event's fields")] = None,
        url: Annotated[str | None, Field(description="The server (default: the --url of triggerc mcp)")] = None,
        id: Annotated[str | None, Field(description="An event id: re-sending it creates nothing new")] = None,
    ) -> dict[str, Any]:
        from ..check.checker import trigger_problem

        target = url or server_url
        if not _is_loopback_url(target):
            raise ToolError(f"{target}: emit only reaches a server on loopback (127.0.0.1, ::1, localhost)")
        source, typ = trigger.split(".", 1)
        problem = trigger_problem(source, typ)  # sent all the same, as `triggerc emit` sends it
        body: dict[str, Any] = {"source": source, "type": typ, "data": data or {}}
        if id:
            body["id"] = id
        req = urllib.request.Request(target.rstrip("/") + "/events", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(req, timeout=10) as resp:
                answer = json.loads(resp.read() or b"{}")
                status = resp.status
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")[:300]
            raise ToolError(f"the server refused the event ({e.code}): {detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise ToolError(f"cannot reach {target}: {getattr(e, 'reason', e)} "
                            "(is `triggerc serve --http` running?)") from None
        out = {"status": status, "event_id": answer.get("event_id"), "runs": answer.get("runs", []),
               "duplicate": bool(answer.get("duplicate"))}
        if problem is not None:  # no rule can take it: a typo, most likely
            out["warning"] = f"{trigger}: {problem[1]}" + (f" ({problem[2]})" if problem[2] else "")
        return done(out)

    # ------------------------------------------------------------------ history
    @server.tool(description="Runs from the journal, newest first: id, rule, action, status, exit code, "
                             "inputs, the event, times, attempt, error.")
    def runs(
        state: Annotated[str | None, Field(description="The state folder (default .triggerlang)")] = None,
        limit: Annotated[int, Field(ge=1, le=1000)] = 20,
        rule: Annotated[str | None, Field(description="Only this rule's runs")] = None,
        status: Annotated[Literal["queued", "running", "succeeded", "failed", "timed_out", "cancelled",
                                  "interrupted", "skipped"] | None, Field(description="Only runs with this status")] = None,
        event_id: Annotated[str | None, Field(description="Only the runs of this event")] = None,
    ) -> dict[str, Any]:
        j = journal(state)
        try:
            items = j.list_runs(limit=limit, rule=rule, status=status, event_id=event_id)
        finally:
            j.close()
        keys = ("id", "rule", "action", "status", "exit_code", "inputs", "event_id", "queued_at", "started_at",
                "finished_at", "attempt", "wait", "duration", "error")
        return done({"runs": [{k: r.get(k) for k in keys} for r in items]})

    @server.tool(description="The output of one run (its log file), the end of it when long.")
    def run_log(
        run_id: Annotated[int, Field(ge=1, description="The run's id")],
        state: Annotated[str | None, Field(description="The state folder (default .triggerlang)")] = None,
        max_bytes: Annotated[int, Field(ge=1, le=MAX_LOG_BYTES)] = 64 * 1024,
    ) -> dict[str, Any]:
        j = journal(state)
        try:
            run = j.get_run(run_id)
            if run is None:
                raise ToolError(f"no run {run_id} in this journal")
            text, truncated, exists = j.read_log(run_id, max_bytes)
        finally:
            j.close()
        return done({"run_id": run_id, "rule": run.get("rule"), "status": run.get("status"),
                     "log": text, "truncated": truncated, "exists": exists})

    @server.tool(description="Events received, newest first, with the rules they matched.")
    def events(
        state: Annotated[str | None, Field(description="The state folder (default .triggerlang)")] = None,
        limit: Annotated[int, Field(ge=1, le=1000)] = 20,
        source: Annotated[str | None, Field(description="Only events of this source")] = None,
        type: Annotated[str | None, Field(description="Only events of this type")] = None,
        include_data: Annotated[bool, Field(description="Include each event's data")] = False,
    ) -> dict[str, Any]:
        j = journal(state)
        try:
            items = j.list_events(limit=limit, source=source, type=type)
        finally:
            j.close()
        keys = ("id", "source", "type", "time", "received_at", "matched", "delivery_key") + (("data",) if include_data else ())
        return done({"events": [{k: e.get(k) for k in keys} for e in items]})

    @server.tool(description="Correlation groups (SPEC §11): open, fired and expired groups of correlation "
                             "rules, with their members, newest first.")
    def groups(
        state: Annotated[str | None, Field(description="The state folder (default .triggerlang)")] = None,
        rule: Annotated[str | None, Field(description="Only this rule's groups")] = None,
        status: Annotated[Literal[tuple(GROUP_FILTERS)] | None,  # type: ignore[valid-type]
                          Field(description="Only groups in this state (open: open groups and armed absence "
                                            "windows; armed: the windows alone; satisfied: windows the awaited "
                                            "event came in)")] = None,
        key: Annotated[str | None, Field(description="Only groups with this key value (e.g. a sha)")] = None,
        limit: Annotated[int, Field(ge=1, le=1000)] = 20,
    ) -> dict[str, Any]:
        j = journal(state)
        try:
            items = j.list_groups(limit=limit, rule=rule, status=status, key=key)
        finally:
            j.close()
        return done({"groups": items})

    return server
