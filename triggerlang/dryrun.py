"""``triggerc match``: dry runs of events against compiled rules (SPEC §8).

Events come as ``{source, type, data}`` JSON (one file, stdin, or a ``.jsonl`` batch of
one event per line), or as a provider's raw payload (``--github push``) read through the
same normaliser the server uses. A raw payload can give two events (a GitHub
``workflow_run`` completion is also a ``ci.completed``): the result then covers both.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Iterator

from .actions import ActionError, bind_inputs, display_argv
from .events import Event


class EventInputError(Exception):
    """An event that cannot be read: message for the user, exit 1."""


def _events_from_obj(obj: Any, provider: tuple[str, str] | None, where: str) -> list[Event]:
    if provider is not None:
        from .providers import ProviderError, normalise

        try:
            return normalise(provider[0], provider[1], obj, {})
        except ProviderError as e:
            raise EventInputError(f"{where}: {e}") from None
    try:
        return [Event.from_json(obj)]
    except ValueError as e:
        raise EventInputError(f"{where}: {e}") from None


def _open(path: str):
    try:
        return sys.stdin if path == "-" else open(path, encoding="utf-8")
    except FileNotFoundError:
        raise EventInputError(f"{path}: no such file") from None
    except OSError as e:
        raise EventInputError(f"{path}: {e.strerror or e}") from None


def read_events(path: str, provider: tuple[str, str] | None, batch: bool) -> Iterator[list[Event] | EventInputError]:
    """Yield the events of each input (a list per line in batch mode), or an error per bad line.

    Raises EventInputError at once when the file cannot be opened or (single mode) parsed.
    """
    return _iter(_open(path), path, provider, batch)


def _dry_event(obj: Any) -> Event | None:
    """``Event.from_json`` for the well-formed case, without minting an id and a time
    (a dry run shows neither); None sends anything else through ``from_json``."""
    if obj.__class__ is dict:
        src, typ, data = obj.get("source"), obj.get("type"), obj.get("data", {})
        if src.__class__ is str and src and typ.__class__ is str and typ and data.__class__ is dict:
            return Event(src, typ, data, "", "")
    return None


def batch_names(path: str, provider: tuple[str, str] | None, matcher, write, seen_type=None) -> bool:
    """Batch mode with text output and no ``--explain``: one line of rule names per event line.

    The same output as ``read_events`` + :meth:`DryRun.run` + :meth:`DryRun.text` (and the
    CLI's error lines), in one loop that computes nothing the line does not show (no inputs,
    no argv): this is the path ``triggerc match rules.trg events.jsonl`` takes, and the one
    the benchmark measures. Returns True when some line was bad. Raises EventInputError
    when the file cannot be opened. ``seen_type(source, type)`` is called once for each
    distinct event type read (the CLI warns about a type the catalogue does not know).
    """
    fh = _open(path)
    name = "<stdin>" if path == "-" else path
    names_of = getattr(matcher, "names", None)
    if names_of is None:
        def names_of(ev: Event) -> list[str]:
            return [r.name for r in matcher.matching_rules(ev)]
    names_for = getattr(matcher, "names_for", None)
    if names_for is None:
        def names_for(source: str, typ: str, data: dict) -> list[str]:
            return names_of(Event(source, typ, data, "", ""))
    loads, dumps, JSONDecodeError = json.loads, json.dumps, json.JSONDecodeError
    any_bad = False
    lineno = 0
    types: set[tuple[str, str]] = set()
    try:
        try:
            for line in fh:
                lineno += 1
                try:
                    obj = loads(line)
                except JSONDecodeError as e:
                    if not line.strip():
                        continue
                    any_bad = True
                    write(dumps({"error": f"{name}:{lineno}: not valid JSON ({e.msg})"}) + "\n")
                    continue
                # the well-formed case of Event.from_json, without making an Event (nor
                # minting an id and a time, which a dry run shows neither of)
                if provider is None and obj.__class__ is dict:
                    src, typ, data = obj.get("source"), obj.get("type"), obj.get("data", {})
                    ok = src.__class__ is str and src and typ.__class__ is str and typ and data.__class__ is dict
                else:
                    ok = False
                if ok:
                    if seen_type is not None and (src, typ) not in types:
                        types.add((src, typ))
                        seen_type(src, typ)
                    names = names_for(src, typ, data)
                else:
                    try:
                        evs = _events_from_obj(obj, provider, f"{name}:{lineno}")
                    except EventInputError as e:
                        any_bad = True
                        write(dumps({"error": str(e)}) + "\n")
                        continue
                    names = [n for ev in evs for n in names_of(ev)]
                write(", ".join(names) + "\n" if names else "(no match)\n")
        except UnicodeDecodeError:
            any_bad = True
            write(dumps({"error": f"{name}:{lineno + 1}: not UTF-8 text"}) + "\n")
    finally:
        if fh is not sys.stdin:
            fh.close()
    return any_bad


def _iter(fh, path, provider, batch):
    name = "<stdin>" if path == "-" else path
    try:
        if not batch:
            try:
                text = fh.read()
            except UnicodeDecodeError:
                yield EventInputError(f"{name}: not UTF-8 text")
                return
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                yield EventInputError(f"{name}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})")
                return
            try:
                yield _events_from_obj(obj, provider, name)
            except EventInputError as e:
                yield e
            return
        loads = json.loads
        lineno = 0
        while True:
            try:
                line = fh.readline()
            except UnicodeDecodeError:
                yield EventInputError(f"{name}:{lineno + 1}: not UTF-8 text")
                return
            if not line:
                return
            lineno += 1
            if not line.strip():
                continue
            try:
                obj = loads(line)
            except json.JSONDecodeError as e:
                yield EventInputError(f"{name}:{lineno}: not valid JSON ({e.msg})")
                continue
            try:
                yield _events_from_obj(obj, provider, f"{name}:{lineno}")
            except EventInputError as e:
                yield e
    finally:
        if fh is not sys.stdin:
            fh.close()


class DryRun:
    """Matches events and describes the runs they would create."""

    def __init__(self, manifest: dict, matcher):
        self.manifest = manifest
        self.matcher = matcher
        self.actions = manifest.get("actions", {})

    def run(self, events: list[Event], explain: bool = False) -> dict:
        matches = []
        reasons = []
        for ev in events:
            for m in self.matcher.match(ev):
                action = self.actions.get(m.rule.action, {})
                inputs = bind_inputs(action, m.inputs)
                try:
                    argv = display_argv(action, inputs, m.rule.action)
                except ActionError:
                    argv = None
                entry = {"rule": m.rule.name, "action": m.rule.action, "inputs": inputs, "argv": argv}
                if len(events) > 1:
                    entry["event"] = f"{ev.source}.{ev.type}"
                matches.append(entry)
            if explain:
                for r in self.matcher.explain(ev):
                    if len(events) > 1:
                        r = {**r, "event": f"{ev.source}.{ev.type}"}
                    reasons.append(r)
        out: dict[str, Any] = {"matches": matches}
        if explain:
            out["not_matched"] = reasons
        return out

    def text(self, result: dict, batch: bool) -> str:
        if batch:
            names = [m["rule"] for m in result["matches"]]
            return (", ".join(names) if names else "(no match)") + "\n"
        lines = []
        if not result["matches"]:
            lines.append("no rule matches this event")
        for m in result["matches"]:
            call = " ".join(_shell_quote(a) for a in m["argv"]) if m["argv"] else self._describe(m["action"])
            lines.append(f"{m['rule']}: runs {m['action']} -> {call}")
            for k, v in m["inputs"].items():
                lines.append(f"    {k} = {json.dumps(v, ensure_ascii=False)}")
        for r in result.get("not_matched", []):
            span = r.get("span")
            where = f" (line {span[0]}:{span[1]})" if span else ""
            note = f"; {r['note']}" if r.get("note") else ""
            lines.append(f"{r['rule']}: no match: {r['condition']}{where} failed; "
                         f"{r.get('field')} was {json.dumps(r.get('value'), ensure_ascii=False)}{note}")
        return "\n".join(lines) + "\n"

    def _describe(self, action: str) -> str:
        a = self.actions.get(action, {})
        if a.get("kind") == "http":
            return f"POST {a.get('url')}"
        return action


def _shell_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)
