"""``triggerc match``: dry runs of events against compiled rules (SPEC §8).

Events come as ``{source, type, data}`` JSON (one file, stdin, or a ``.jsonl`` batch of
one event per line), or as a provider's raw payload (``--github push``) read through the
same normaliser the server uses. A raw payload can give two events (a GitHub
``workflow_run`` completion is also a ``ci.completed``): the result then covers both.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from functools import cached_property, partial
from typing import Any, Iterator

from .actions import ActionError, bind_inputs, display_argv
from .compile.matcher import reason_text
from .events import MISSING as _MISSING
from .events import MAX_EVENT_CHARS, Event, JSONError, complete_data, read_json
from .events import get_path as _get_path


class EventInputError(Exception):
    """An event that cannot be read: message for the user, exit 1."""


def _events_from_obj(obj: Any, provider: tuple[str, str] | None, where: str,
                     raw_hint: str | None = None) -> list[Event]:
    """The events of one JSON value: an event ``{source, type, data}``, or with ``provider``
    (name, event) a webhook's body. ``raw_hint``: how the caller takes a body instead (the
    CLI's ``--github EVENT`` flags when None), said when ``obj`` looks like one."""
    if provider is not None:
        from .providers import ProviderError, normalise

        try:
            return normalise(provider[0], provider[1], obj, {})
        except ProviderError as e:
            raise EventInputError(f"{where}: {e}") from None
    try:
        ev = Event.from_json(obj)
    except ValueError as e:
        hint = ""
        if isinstance(obj, dict) and "source" not in obj and "type" not in obj and obj:
            from .providers import BUILTIN

            hint = "; for a webhook's body as the provider sent it, say whose and which event: " + (
                raw_hint or f"--{BUILTIN[0]} EVENT (or {', '.join(f'--{p}' for p in BUILTIN[1:])})")
        raise EventInputError(f"{where}: {e}{hint}") from None
    complete_data(ev.source, ev.type, ev.data)  # as serve completes an emitted one that names only its path
    return [ev]


def _finite_file(fh) -> bool:
    """Whether ``fh`` is a regular file (its lines end with it), not a device or a pipe whose
    line may never end: those are read a bounded line at a time (the batch loops read a
    regular file's lines the faster way)."""
    import os
    import stat

    try:
        return stat.S_ISREG(os.fstat(fh.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):  # (no file descriptor: a test's stream)
        return False


def _too_long(where: str) -> EventInputError:
    return EventInputError(f"{where}: over {MAX_EVENT_CHARS // 2**20} MiB, too large for an event; the rest is not read")


_UNDECODED = re.compile("[\udc80-\udcff]")


def _not_utf8(text: str) -> bool:
    """Whether text read by :func:`_open` held bytes that are not UTF-8 (they are read as
    lone surrogates, ``surrogateescape``, which UTF-8 text never decodes to; JSON's
    ``"\\udc80"`` escape is six ASCII characters, not one)."""
    return not text.isascii() and _UNDECODED.search(text) is not None


def _open(path: str):
    """The event file (or stdin) as text whose bytes that are not UTF-8 are read, not
    raised at: a strict decoder fails on the whole buffered chunk, so the error named the
    chunk's first line and the lines before the bad one went unanswered. Each line (or
    the whole file) is checked with :func:`_not_utf8` instead."""
    if path == "-":
        try:
            sys.stdin.reconfigure(encoding="utf-8", errors="surrogateescape")
        except (AttributeError, ValueError, io.UnsupportedOperation):  # not a TextIOWrapper, or already read
            pass
        return sys.stdin
    try:
        return open(path, encoding="utf-8", errors="surrogateescape")
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
    CLI's error lines), computing nothing the line does not show (no inputs, no argv): this
    is the path ``triggerc match rules.trg events.jsonl`` takes. See :func:`_batch`.
    """
    names_of = getattr(matcher, "names", None)
    if names_of is None:
        def names_of(ev: Event) -> list[str]:
            return [r.name for r in matcher.matching_rules(ev)]
    names_for = getattr(matcher, "names_for", None)
    if names_for is None:
        def names_for(source: str, typ: str, data: dict) -> list[str]:
            return names_of(Event(source, typ, data, "", ""))

    def one(src: str, typ: str, data: dict) -> str:
        names = names_for(src, typ, data)
        return ", ".join(names) + "\n" if names else "(no match)\n"

    def many(evs: list[Event]) -> str:
        names = [n for ev in evs for n in names_of(ev)]
        return ", ".join(names) + "\n" if names else "(no match)\n"
    return _batch(path, provider, write, seen_type, one, many)


def batch_json(path: str, provider: tuple[str, str] | None, dry: "DryRun", write, seen_type=None) -> bool:
    """Batch mode with ``--format json`` and no ``--explain``: one compact JSON line per event
    line, ``{"matches": [{"rule", "action", "inputs", "argv"}]}``.

    The same bytes as ``read_events`` + :meth:`DryRun.run` + ``json.dumps`` (and the CLI's
    error lines): each rule's matches are written by a function made for that rule on its
    first match (:func:`_match_json`), the rest by one JSON encoder made once. See :func:`_batch`.
    """
    matcher = dry.matcher
    matching = getattr(matcher, "matching_indexes", None)
    if matching is None:
        def matching(source: str, typ: str, data: dict) -> list[int]:
            return [r.index for r in matcher.matching_rules(Event(source, typ, data, "", ""))]
    rules = matcher.rules
    entries: list = [None] * len(rules)   # per rule index: (the JSON maker of its matches, their fixed start)
    shapes: dict = {}                      # makers, shared by rules that bind the same action the same way
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    no_match = encode({"matches": []}) + "\n"

    def one(src: str, typ: str, data: dict) -> str:
        found = matching(src, typ, data)
        if not found:
            return no_match
        out = []
        for i in found:
            entry = entries[i]
            if entry is None:
                entry = entries[i] = _match_json(rules[i], dry.actions, shapes, encode)
            out.append(entry[1] + entry[0](data))
        return '{"matches":[' + ",".join(out) + "]}\n"

    def many(evs: list[Event]) -> str:
        return encode(dry.run(evs)) + "\n"
    return _batch(path, provider, write, seen_type, one, many)


def _batch(path: str, provider: tuple[str, str] | None, write, seen_type, one, many) -> bool:
    """The loop of the batch modes: for each line of a ``.jsonl`` file, the result line
    ``one(source, type, data)`` for an event in the plain form (the well-formed case of
    :meth:`Event.from_json`, with no :class:`Event` made, nor an id and a time minted for
    it, which a dry run shows neither of), else ``many(events)`` for what
    :func:`_events_from_obj` makes of the line (a provider's payload: one or two events);
    an error line ``{"error": ...}`` for a line that is none of these, as the CLI's general
    loop writes them. Returns True when some line was bad; raises EventInputError when the
    file cannot be opened. ``seen_type(source, type)`` is called once per distinct event
    type (the CLI warns of a type the catalogue does not know)."""
    fh = _open(path)
    name = "<stdin>" if path == "-" else path
    loads, dumps = read_json, json.dumps
    any_bad = False
    lineno = 0
    types: set[tuple[str, str]] = set()
    write, pending, flush = _lines_out(write, path)
    try:
        try:
            for line in fh if _finite_file(fh) else iter(partial(fh.readline, MAX_EVENT_CHARS + 1), ""):
                lineno += 1
                if len(line) > MAX_EVENT_CHARS:
                    any_bad = True
                    write(dumps({"error": str(_too_long(f"{name}:{lineno}"))}) + "\n")
                    break
                if _not_utf8(line):
                    any_bad = True
                    write(dumps({"error": f"{name}:{lineno}: not UTF-8 text"}) + "\n")
                    continue
                if len(pending) >= _BATCH_OUT:
                    flush()
                try:
                    obj = loads(line, False)
                except JSONError as e:
                    if not line.strip():
                        continue
                    any_bad = True
                    write(dumps({"error": f"{name}:{lineno}: {e}"}) + "\n")
                    continue
                if provider is None and obj.__class__ is dict:
                    src, typ, data = obj.get("source"), obj.get("type"), obj.get("data", {})
                    if src.__class__ is str and src and typ.__class__ is str and typ and data.__class__ is dict:
                        if seen_type is not None and (src, typ) not in types:
                            types.add((src, typ))
                            seen_type(src, typ)
                        if src == "file" or src == "http":
                            complete_data(src, typ, data)
                        write(one(src, typ, data))
                        continue
                try:
                    evs = _events_from_obj(obj, provider, f"{name}:{lineno}")
                except EventInputError as e:
                    any_bad = True
                    write(dumps({"error": str(e)}) + "\n")
                    continue
                if provider is None and seen_type is not None:
                    for ev in evs:
                        if (ev.source, ev.type) not in types:
                            types.add((ev.source, ev.type))
                            seen_type(ev.source, ev.type)
                write(many(evs))
        except UnicodeDecodeError:
            any_bad = True
            write(dumps({"error": f"{name}:{lineno + 1}: not UTF-8 text"}) + "\n")
    finally:
        flush()
        if fh is not sys.stdin:
            fh.close()
    return any_bad


_BATCH_OUT = 256
"""Result lines written at once by the batch loops (reading a file: a write per line costs
a system call each when Python's output is unbuffered, ``PYTHONUNBUFFERED`` or ``-u``)."""


def _lines_out(write, path: str):
    """``(write a line, the lines not written yet, flush)`` for a batch loop: lines are gathered and written
    :data:`_BATCH_OUT` at a time (the loop flushes), except when reading stdin, where each
    result is written as soon as its line is read (a live feed)."""
    pending: list[str] = []

    def flush() -> None:
        if pending:
            write("".join(pending))
            pending.clear()
    return (write if path == "-" else pending.append), pending, flush


def _match_json(rule, actions: dict, shapes: dict, encode) -> tuple:
    """``(maker, start)``: one match of ``rule`` as compact JSON, ``start + maker(data)``: the
    text ``json.dumps`` gives of what :meth:`DryRun.run` makes of it,
    ``{"rule","action","inputs","argv"}``, the inputs as ``rule.inputs`` then
    :func:`~triggerlang.actions.bind_inputs` make them and the argv as
    :func:`~triggerlang.actions.display_argv` does. ``start`` holds the rule's and the
    action's names; the maker, shared by every rule that binds the same action the same
    way (10,000 generated rules are a handful of shapes), works out once which input comes
    from which field or default, in which order, and the argv's fixed words, and at each
    event encodes only what comes from the event."""
    from json.encoder import encode_basestring as quote

    start = '{"rule":' + quote(rule.name) + ',"action":' + quote(rule.action) + ',"inputs":{'
    key = (rule.action, tuple((k, b["field"], b.get("regex"), b.get("flags")) if "field" in b else (k, None, repr(b.get("value")))
                              for k, b in rule.args.items()))
    make = shapes.get(key)
    if make is None:
        make = shapes[key] = _json_maker(actions.get(rule.action, {}), rule.args, encode, quote)
    return make, start


def _json_maker(action: dict, args: dict, encode, quote):
    from .actions import arg_text
    from .compile.patterns import bound_value
    from .events import MISSING, get_path

    given = []   # (input, dotted path or None, literal value)
    captures = {}   # input -> its binding, for <field ~ /re/>
    for param, b in args.items():
        given.append((param, tuple(b["field"].split(".")) if "field" in b else None, b.get("value")))
        if "regex" in b:
            captures[param] = b
    bound = {g[0] for g in given}
    order = []   # the inputs in bind_inputs' order: (input, from the rule's arguments?, default)
    for prm in action.get("params") or []:
        if isinstance(prm, dict) and isinstance(prm.get("name"), str):
            if prm["name"] in bound:   # (its default, if any, stands in for a missing field)
                order.append((prm["name"], True, prm.get("default")))
            elif "default" in prm:
                order.append((prm["name"], False, prm["default"]))
    named = {o[0] for o in order}
    order.extend((g[0], True, None) for g in given if g[0] not in named)
    named = {o[0] for o in order}   # the inputs' names
    keys = [quote(k) + ":" for k, _, _ in order]
    words = None     # exec: (True, fixed text) | (False, input name); None: the argv is not exec's
    argv_text = "null"
    kind = action.get("kind")
    if kind == "exec":
        words = []
        for item in action.get("argv") or []:
            if "value" in item:
                words.append((True, arg_text(item["value"])))
            elif "param" in item and item["param"] in named:
                words.append((False, item["param"]))
            else:
                words = None  # an item display_argv refuses: no argv
                break
    elif kind == "shell":
        argv_text = encode(["/bin/sh", "-c", action.get("script", "")])

    def general(data: dict) -> str:
        got = {}
        for param, path, literal in given:
            if path is None:
                got[param] = literal
            else:
                if param in captures:
                    v = bound_value(data, captures[param])
                else:
                    v = data.get(path[0], MISSING) if len(path) == 1 else get_path(data, path)
                got[param] = None if v is MISSING else v
        inputs = {}
        parts = []
        for (param, from_rule, default), k in zip(order, keys):
            v = inputs[param] = got[param] if from_rule and got[param] is not None else default
            parts.append(k + (quote(v) if v.__class__ is str else encode(v)))
        if words is None:
            return ",".join(parts) + '},"argv":' + argv_text + "}"
        argv = []
        for fixed, w in words:
            if fixed:
                argv.append(w)
            else:
                v = inputs[w]
                if v.__class__ is list:
                    argv.extend(arg_text(x) for x in v)
                else:
                    argv.append(arg_text(v))
        if not argv or not argv[0]:
            return ",".join(parts) + '},"argv":null}'
        return ",".join(parts) + '},"argv":[' + ",".join([quote(w) for w in argv]) + "]}"

    if captures:
        return general
    return _json_fast(given, order, words, argv_text, encode, quote, general) or general


def _json_fast(given, order, words, argv_text, encode, quote, general):
    """The maker of :func:`_json_maker` for the usual event, compiled for its shape: when
    every input taken from the event is a string (the argv's first word, if one, not
    empty), each is quoted once and set between the fixed parts of the text, worked out
    here; any other event goes to ``general``, which does all :func:`display_argv` does.
    None when the shape has nothing to gain (an argv that is never there)."""
    from .actions import arg_text

    env: dict = {"M": _MISSING, "get_path": _get_path, "quote": quote, "general": general}
    code = ["def make(data):"]
    var = {}        # input taken from the event -> its variable
    for j, (param, path, literal) in enumerate(given):
        if path is None:
            continue
        var[param] = f"g{j}"
        if len(path) == 1:
            code.append(f"    g{j} = data.get({path[0]!r}, M)")
        else:
            env[f"p{j}"] = path
            code.append(f"    g{j} = get_path(data, p{j})")
    literal_of = {param: literal for param, path, literal in given if path is None}
    value_of = {}   # input -> its fixed value (a literal or a default), for the others
    pieces = []     # the inputs' text: fixed strings and ("q", variable)
    for k, (param, from_rule, default) in enumerate(order):
        pieces.append(("," if k else "") + quote(param) + ":")
        if from_rule and param in var:
            pieces.append(("q", var[param]))
        else:
            value = literal_of[param] if from_rule else default
            value_of[param] = value
            pieces.append(quote(value) if value.__class__ is str else encode(value))
    pieces.append('},"argv":')
    first = None    # the variable of the argv's first word, when it comes from the event
    if words is None:
        pieces.append(argv_text + "}")
    else:
        argv: list = []   # fixed words (str) and ("q", variable)
        for fixed, w in words:
            if fixed:
                argv.append(w)
            elif w in var:
                argv.append(("q", var[w]))
            else:
                v = value_of[w]
                argv.extend(arg_text(x) for x in v) if v.__class__ is list else argv.append(arg_text(v))
        if not argv or argv[0] == "":
            return None  # never an argv: the general maker says so
        if argv[0].__class__ is tuple:
            first = argv[0][1]
        pieces.append("[")
        for k, w in enumerate(argv):
            pieces.append(w if w.__class__ is tuple else quote(w))
            pieces.append("," if k < len(argv) - 1 else "]}")
    guard = [f"{v}.__class__ is str" for v in var.values()]
    if first is not None:
        guard.append(first)   # (a first word that is empty: no argv)
    if guard:
        code.append(f"    if not ({' and '.join(guard)}):")
        code.append("        return general(data)")
    for v in var.values():
        code.append(f"    q{v} = quote({v})")
    parts, fixed = [], ""
    for piece in pieces:
        if piece.__class__ is tuple:
            if fixed:
                parts.append(repr(fixed))
                fixed = ""
            parts.append(f"q{piece[1]}")
        else:
            fixed += piece
    if fixed:
        parts.append(repr(fixed))
    code.append("    return " + " + ".join(parts))
    exec("\n".join(code), env)  # noqa: S102 - our own names and repr()'d constants
    return env["make"]


def _iter(fh, path, provider, batch):
    name = "<stdin>" if path == "-" else path
    try:
        for _, where, obj in _objects(fh, name, batch):
            if isinstance(obj, EventInputError):
                yield obj
                continue
            try:
                yield _events_from_obj(obj, provider, where)
            except EventInputError as e:
                yield e
    finally:
        if fh is not sys.stdin:
            fh.close()


def read_timed(path: str, provider: tuple[str, str] | None, batch: bool) -> Iterator[tuple]:
    """The inputs of a dry run with correlation rules (SPEC §11.5): ``("events", [Event],
    arrival time or None, line)``, ``("wait", seconds, text, line)`` for a ``{"wait": "10m"}``
    line, or an :class:`EventInputError`. An event's ``time``, if present, is its arrival."""
    from .check.values import MAX_DURATION_S, MAX_DURATION_TEXT
    from .correlation.clock import LATEST, parse_duration, parse_time

    fh = _open(path)
    name = "<stdin>" if path == "-" else path
    try:
        for lineno, where, obj in _objects(fh, name, batch):
            if isinstance(obj, EventInputError):
                yield obj
                continue
            if isinstance(obj, dict) and "wait" in obj and "source" not in obj:
                secs = parse_duration(obj["wait"]) if isinstance(obj["wait"], str) else None
                if secs is None or secs <= 0 or not batch:
                    yield EventInputError(f"{where}: a wait line is {{\"wait\": \"10m\"}} with a duration "
                                          "longer than zero, in a .jsonl file")
                    continue
                if secs > MAX_DURATION_S:
                    yield EventInputError(f"{where}: a wait is at most {MAX_DURATION_TEXT} (100 years)")
                    continue
                yield ("wait", secs, obj["wait"], lineno)
                continue
            try:
                events = _events_from_obj(obj, provider, where)
            except EventInputError as e:
                yield e
                continue
            at = None
            if provider is None and isinstance(obj, dict) and obj.get("time") is not None:
                at = parse_time(obj["time"]) if isinstance(obj["time"], str) else None
                if at is None:
                    yield EventInputError(f"{where}: 'time' is not an ISO 8601 time: {json.dumps(obj['time'])}")
                    continue
                if at > LATEST:
                    yield EventInputError(f"{where}: 'time' is past the year 9000: {json.dumps(obj['time'])}")
                    continue
            yield ("events", events, at, lineno)
    finally:
        if fh is not sys.stdin:
            fh.close()


def _objects(fh, name: str, batch: bool):
    """``(line, where, JSON value)`` of an event file: the whole file (``batch`` False, at
    ``name``), or each non-blank line of a ``.jsonl`` (at ``name:line``). A value that cannot
    be read is an :class:`EventInputError` instead (a line that is not UTF-8 too: the lines
    after it are still read); a whole-file read ends at its error."""
    if not batch:
        try:
            text = fh.read(MAX_EVENT_CHARS + 1)
        except UnicodeDecodeError:
            yield 1, name, EventInputError(f"{name}: not UTF-8 text")
            return
        if len(text) > MAX_EVENT_CHARS:
            yield 1, name, _too_long(name)
            return
        if _not_utf8(text):
            yield 1, name, EventInputError(f"{name}: not UTF-8 text")
            return
        try:
            obj: Any = read_json(text)
        except JSONError as e:
            obj = EventInputError(f"{name}: {e}")
        yield 1, name, obj
        return
    lineno = 0
    while True:
        try:
            line = fh.readline(MAX_EVENT_CHARS + 1)
        except UnicodeDecodeError:
            yield lineno + 1, name, EventInputError(f"{name}:{lineno + 1}: not UTF-8 text")
            return
        if not line:
            return
        lineno += 1
        if len(line) > MAX_EVENT_CHARS:
            yield lineno, name, _too_long(f"{name}:{lineno}")
            return
        if not line.strip():
            continue
        where = f"{name}:{lineno}"
        if _not_utf8(line):
            yield lineno, where, EventInputError(f"{where}: not UTF-8 text")
            continue
        try:
            obj = read_json(line, False)
        except JSONError as e:
            obj = EventInputError(f"{where}: {e}")
        yield lineno, where, obj


def _listened_text(listened: list[str]) -> str:
    """--explain's line for an event no rule of its source could have matched."""
    if not listened:
        return "no rule listens to any event (the file has no rules)"
    return "no rule listens to this event's source; the rules listen to " + ", ".join(listened)


class DryRun:
    """Matches events and describes the runs they would create.

    With correlation rules in the manifest, events go through a
    :class:`~triggerlang.correlation.sim.Simulation` instead (one state shared by every
    event of a run, a clock that starts at the first event's time or now): the result adds
    ``"correlations"``, and :meth:`wait` moves the clock.
    """

    def __init__(self, manifest: dict, matcher, shown_as: str = ""):
        self.manifest = manifest
        self.matcher = matcher
        # a rule an include read is written in another file: its reasons name it (relative to
        # where the main file is shown as, ``shown_as``), as check and test do, not a bare
        # `(line L:C)` that reads as a line of the main file
        folder = os.path.dirname(shown_as)
        self.rule_files = {r["name"]: os.path.normpath(os.path.join(folder, f)) for r in manifest.get("rules", [])
                           if (f := (r.get("span") or {}).get("file"))}
        self.actions = manifest.get("actions", {})
        self.correlating = any(isinstance(r.get("trigger"), dict) for r in manifest.get("rules", []))
        self.sim = None

    @cached_property
    def listened(self) -> list[str]:
        """The triggers the rules listen to (``--explain``'s answer when none is the event's)."""
        return sorted({r["trigger"] for r in self.manifest["rules"] if r.get("source") and r.get("trigger")})

    def _sim(self, at: float | None):
        if self.sim is None:
            import time

            from .correlation.sim import Simulation

            self.sim = Simulation(self.manifest["rules"], self.actions, at if at is not None else time.time(),
                                  matcher=self.matcher)
        return self.sim

    def _in_file(self, r: dict) -> dict:
        """A reason (``{rule, condition, span...}``) with the ``file`` of an included rule, and
        a ``text`` that names it when the reason had one."""
        f = self.rule_files.get(r.get("rule"))
        if f is None or not r.get("span"):
            return r
        r = {**r, "file": f}
        if "text" in r and r.get("condition"):
            r["text"] = "no match: " + self._reason(r)
        return r

    def _reason(self, r: dict) -> str:
        f, span = r.get("file"), r.get("span")
        return reason_text(r, f" ({f}:{span[0]}:{span[1]})" if f and span else None)

    def run(self, events: list[Event], explain: bool = False, at: float | None = None) -> dict:
        if self.correlating:
            return self._run_correlated(events, explain, at)
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
                    reasons.append(self._in_file(r))
        out: dict[str, Any] = {"matches": matches}
        if explain:
            out["not_matched"] = reasons
            if not matches and not reasons:  # no rule of the event's source to say anything about
                out["listened"] = self.listened
        return out

    # ------------------------------------------------------------------ correlations
    def _run_correlated(self, events: list[Event], explain: bool, at: float | None) -> dict:
        from .correlation.render import explain_members

        sim = self._sim(at)
        step = sim.deliver(events, at)
        out = self._step_json(step, len(events) > 1)
        if explain:
            reasons = []
            for ev in events:
                for r in self.matcher.explain(ev):
                    reasons.append(self._in_file({**r, "event": f"{ev.source}.{ev.type}"} if len(events) > 1 else r))
            out["not_matched"] = reasons
            out["correlation_explain"] = [self._in_file(x) for ev in events
                                          for x in explain_members(sim.engine, ev, step.outcomes)]
        return out

    def wait(self, seconds: float, text: str) -> dict:
        """A ``{"wait": "10m"}`` line: the clock moves; expiries and absence fires happen."""
        from .correlation.clock import iso

        sim = self._sim(None)
        step = sim.advance(sim.now + seconds)
        return {"wait": text, "time": iso(sim.now), **self._step_json(step, True)}

    def _step_json(self, step, many: bool) -> dict:
        from .correlation.clock import iso

        matches = []
        for d in step.deliveries:
            for m in d.matches:
                action = self.actions.get(m.rule.action, {})
                inputs = bind_inputs(action, m.inputs)
                entry = {"rule": m.rule.name, "action": m.rule.action, "inputs": inputs, "argv": self._argv(m.rule.action, inputs)}
                if many or d.chained:
                    entry["event"] = f"{d.event.source}.{d.event.type}"
                matches.append(entry)
        corr = []
        for o in step.outcomes:
            entry = o.to_json()
            if o.run is not None:
                inputs = bind_inputs(self.actions.get(o.run.action, {}), o.run.inputs)
                entry["run"] = {"action": o.run.action, "inputs": inputs, "argv": self._argv(o.run.action, inputs),
                                "event_id": o.run.event.id}
            entry["text"] = o.rule + ": " + self._outcome_text(o, o.time)  # "in 2h" from when it happened
            corr.append(entry)
        return {"time": iso(step.time), "matches": matches, "correlations": corr}

    def _outcome_text(self, o, now: float) -> str:
        from .correlation.render import outcome_text

        return outcome_text(o, now)

    def _argv(self, action_name: str, inputs: dict) -> list[str] | None:
        try:
            return display_argv(self.actions.get(action_name, {}), inputs, action_name)
        except ActionError:
            return None

    def text(self, result: dict, batch: bool) -> str:
        if "correlations" in result:
            return self._corr_text(result, batch)
        if batch:  # a line per event; with --explain, its reasons indented below it (as with correlations)
            names = [m["rule"] for m in result["matches"]]
            return "".join([(", ".join(names) if names else "(no match)") + "\n",
                            *(f"  {r['rule']}: no match: {self._reason(r)}\n" for r in result.get("not_matched", [])),
                            *([f"  {_listened_text(result['listened'])}\n"] if "listened" in result else [])])
        lines = []
        if not result["matches"]:
            lines.append("no rule matches this event")
        if "listened" in result:
            lines.append(_listened_text(result["listened"]))
        for m in result["matches"]:
            call = " ".join(_shell_quote(a) for a in m["argv"]) if m["argv"] else self._describe(m["action"])
            lines.append(f"{m['rule']}: runs {m['action']} -> {call}")
            for k, v in m["inputs"].items():
                lines.append(f"    {k} = {json.dumps(v, ensure_ascii=False)}")
        for r in result.get("not_matched", []):
            lines.append(f"{r['rule']}: no match: {self._reason(r)}")
        return "\n".join(lines) + "\n"

    def _corr_text(self, result: dict, batch: bool) -> str:
        """Text of a correlating dry run: the ordinary matches as usual, then one line per
        correlation outcome; in batch mode, a line per input then its details indented."""
        pad = "  " if batch else ""
        lines: list[str] = []
        direct = [m for m in result["matches"] if m.get("event", "").split(".")[0] != "correlation"]
        chained = [m for m in result["matches"] if m not in direct]
        if batch:
            if "wait" in result:
                lines.append(f"(wait {result['wait']}: {result['time']})")
            else:
                names = [m["rule"] for m in direct]
                lines.append(", ".join(names) if names else "(no match)")
        elif not direct:
            lines.append("no rule matches this event")
        if not batch:
            lines.extend(self._match_lines(direct, ""))
        for c in result["correlations"]:
            line = pad + c["text"]
            run = c.get("run")
            if run:
                call = " ".join(_shell_quote(a) for a in run["argv"]) if run["argv"] else self._describe(run["action"])
                line += f": runs {run['action']} -> {call}"
            lines.append(line)
            if run:
                lines.extend(f"{pad}    {k} = {json.dumps(v, ensure_ascii=False)}" for k, v in run["inputs"].items())
        for m in chained:
            lines.extend(self._match_lines([m], pad, f" (on {m['event']})"))
        for r in result.get("not_matched", []):
            lines.append(f"{pad}{r['rule']}: no match: {self._reason(r)}")
        for r in result.get("correlation_explain", []):
            lines.append(f"{pad}{r['rule']} [{r['member']}]: {r['text']}")
        return "\n".join(lines) + "\n"

    def _match_lines(self, matches: list[dict], pad: str, suffix: str = "") -> list[str]:
        lines = []
        for m in matches:
            call = " ".join(_shell_quote(a) for a in m["argv"]) if m["argv"] else self._describe(m["action"])
            lines.append(f"{pad}{m['rule']}: runs {m['action']} -> {call}{suffix}")
            for k, v in m["inputs"].items():
                lines.append(f"{pad}    {k} = {json.dumps(v, ensure_ascii=False)}")
        return lines

    def _describe(self, action: str) -> str:
        a = self.actions.get(action, {})
        if a.get("kind") == "http":
            return f"POST {a.get('url')}"
        return action


def _shell_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def run_correlated(dry: DryRun, path: str, provider: tuple[str, str] | None, batch: bool, fmt: str,
                   explain: bool, write) -> bool:
    """``triggerc match`` on a rules file with correlation rules: every line shares one state
    and one clock (a line's ``time`` is its arrival and may not go back; ``{"wait": "10m"}``
    moves the clock). Writes one result per line; returns True when some line was bad.
    Raises EventInputError when the file cannot be opened, or (single mode) read."""
    import time

    from .correlation.clock import LATEST, iso

    any_bad = False
    for item in read_timed(path, provider, batch):
        if isinstance(item, EventInputError):
            if not batch:
                raise item
            any_bad = True
            write(json.dumps({"error": str(item)}) + "\n")
            continue
        if item[0] == "wait":
            if (dry.sim.now if dry.sim is not None else time.time()) + item[1] > LATEST:
                any_bad = True
                msg = f"{path}:{item[3]}: this wait takes the clock past the year 9000"
                if not batch:  # pragma: no cover - a wait line is refused outside a .jsonl file
                    raise EventInputError(msg)
                write(json.dumps({"error": msg}) + "\n")
                continue
            result = dry.wait(item[1], item[2])
        else:
            _, events, at, lineno = item
            if at is not None and dry.sim is not None and at < dry.sim.now:
                any_bad = True
                msg = (f"{path}:{lineno}: time {iso(at)} is before the previous line's ({iso(dry.sim.now)}): "
                       "lines arrive in order")
                if not batch:
                    raise EventInputError(msg)
                write(json.dumps({"error": msg}) + "\n")
                continue
            result = dry.run(events, explain, at)
        if fmt == "json":
            write(json.dumps(result, ensure_ascii=False, separators=(",", ":") if batch else None,
                             indent=None if batch else 2) + "\n")
        else:
            write(dry.text(result, batch))
    return any_bad
