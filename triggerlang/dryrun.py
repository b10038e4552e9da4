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


def read_events(path: str, provider: tuple[str, str] | None, batch: bool) -> Iterator[list[Event] | EventInputError]:
    """Yield the events of each input (a list per line in batch mode), or an error per bad line.

    Raises EventInputError at once when the file cannot be opened or (single mode) parsed.
    """
    try:
        fh = sys.stdin if path == "-" else open(path, encoding="utf-8")
    except FileNotFoundError:
        raise EventInputError(f"{path}: no such file") from None
    except OSError as e:
        raise EventInputError(f"{path}: {e.strerror or e}") from None
    return _iter(fh, path, provider, batch)


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
