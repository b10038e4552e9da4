"""Correlation outcomes and explanations for people (``triggerc match``, rule tests).

One line per outcome, after the rule's name, e.g.::

    deploy_gate: opens group sha=3f1d… as ci (1/2, missing review, closes in 2h)
    release_gate: group sha=3f1d complete with e2e (3/3)
    stale_pr: arms a window for number=42 as pr (fires in 1d unless review comes)
    release_gate: group sha=9a9a expired (1/3, missing test, e2e)
"""

from __future__ import annotations

import json
from typing import Any, Callable

from ..compile.matcher import explain_failure, reason_text
from ..events import Event, type_note
from .clock import human
from .engine import Correlator, Outcome
from .spec import CorrRule, MemberSpec


def _group(o: Outcome) -> str:
    return "the group" if o.key_label in ("", "(no key)") else f"group {o.key_label}"


def _window(o: Outcome) -> str:
    return "the window" if o.key_label in ("", "(no key)") else f"the window for {o.key_label}"


def outcome_text(o: Outcome, now: float) -> str:
    """What one outcome did, as a sentence (without the rule's name)."""
    miss = f", missing {', '.join(o.missing)}" if o.missing else ""
    closes = f", closes in {human(o.deadline - now, left=True)}" if o.deadline is not None and o.deadline > now else ""
    prog = o.progress
    inner = lambda: ", ".join(x for x in (prog, miss.lstrip(", "), closes.lstrip(", ")) if x)  # noqa: E731
    a = o.action
    if a == "open":
        return f"opens {_group(o)} as {o.member} ({inner()})"
    if a == "admit":
        return f"admits {o.member} to {_group(o)} ({inner()})"
    if a == "replace":
        extra = f"; {o.reason}" if o.reason else ""
        return f"{o.member} replaces its earlier event in {_group(o)} ({inner()}){extra}"
    if a == "fire":
        if o.member is not None and o.deadline is not None:   # any: fired, absorbs until its deadline
            return f"{_group(o)} fires with {o.member}; it absorbs the rest of its window{closes}"
        if o.member is not None and not o.missing:
            return f"{_group(o)} complete with {o.member}" + (f" ({prog})" if prog else "")
        if o.member is not None:
            return f"{_group(o)} fires with {o.member}" + (f" ({prog})" if prog else "")
        return f"{_window(o)} closed without {', '.join(o.missing) or 'the event'}: fires"
    if a == "absorb":
        return f"absorbed by {_group(o)} (it fired{closes})"
    if a == "arm":
        why = f"; {o.reason}" if o.reason else ""
        by = f" by {o.member}" if o.member else ""
        unless = f" unless {', '.join(o.missing)} comes" if o.missing else ""
        fires = f" (fires in {human(o.deadline - now, left=True)}{unless})" if o.deadline is not None else ""
        return f"arms {_window(o)}{by}{fires}{why}"
    if a == "disarm":
        return f"{o.member} came: {_window(o)} is disarmed"
    if a == "ignore":
        return f"ignores {o.member}: {o.reason}"
    if a == "refuse":
        return f"{o.reason} (an event for {o.member} would open {_group(o)})"
    if a == "expire":
        return f"{_group(o)} expired ({', '.join(x for x in (prog, miss.lstrip(', ')) if x)})"
    if a == "close":
        return f"{_group(o)} closes: its window ended"
    if a == "slide":
        return f"an event slid out of {_group(o)}'s window ({inner()})"
    if a == "discard":
        return f"{_group(o)} discarded: {o.reason}"
    return f"{a} {_group(o)}"  # pragma: no cover


def explain_members(engine: Correlator, event: Event, outcomes: list[Outcome]) -> list[dict]:
    """For each member, of each correlation rule, that listens to the event's source: the
    first condition that failed, or what the correlation did with the event and why."""
    out: list[dict] = []
    for r in engine.rules:
        members = [m for m in r.members if m.source == event.source]
        if not members:
            continue
        mine = [o for o in outcomes if o.rule == r.name and o.event_id == event.id]
        chosen = mine[0] if mine else None
        for m in members:
            entry: dict[str, Any] = {"rule": r.name, "member": m.alias}
            if (why := member_mismatch(m, event)) is not None:
                entry.update(why)
                entry["text"] = "no match: " + reason_text(why)
            elif chosen is not None and chosen.member == m.alias:
                entry["action"] = chosen.action
                entry["reason"] = chosen.reason
                if chosen.action in ("ignore", "refuse"):
                    entry["text"] = f"not admitted: {chosen.reason}"
                elif chosen.action == "absorb":
                    entry["text"] = "absorbed: the group already fired and absorbs the rest of its window"
                else:
                    entry["text"] = f"admitted: {outcome_text(chosen, chosen.time)}"
            elif chosen is not None:
                entry["action"] = "other"
                entry["text"] = f"matched, but the event went to `{chosen.member}` (one event fills one slot per rule)"
            else:  # pragma: no cover - a matching member always gives an outcome
                entry["text"] = "matched"
            out.append(entry)
    return out


def member_mismatch(m: MemberSpec, event: Event) -> dict | None:
    """Why member ``m`` does not take ``event``: its trigger's type, or the first condition
    of its filter that failed (as ``--explain`` says it); None when it takes it."""
    if not m.accepts_type(event.type):
        return {"condition": f"trigger {m.trigger}", "span": _span(m.span), "field": "type",
                "value": event.type, "note": type_note(event)}
    return explain_failure(m.filter, event.data)


def member_reasons(rules: list[CorrRule], event: Event) -> list[dict]:
    """For the dashboard's event page, which has no correlation engine at hand: for each
    member of ``rules`` that listens to the event's source, why it does not take the event,
    or (``condition`` None) that it does: what the correlation did with it is journaled."""
    out: list[dict] = []
    for r in rules:
        for m in r.members:
            if m.source != event.source:
                continue
            entry = {"rule": r.name, "member": m.alias, "condition": None, "span": _span(m.span), "field": None,
                     "value": None, "note": f"the event matches member {m.alias}: what the correlation did "
                                            f"with it is under Correlation groups"}
            why = member_mismatch(m, event)
            if why is not None:  # (its own note, if any, replaces the one above: a type's says the types)
                entry.update({"note": None, **why})
            out.append(entry)
    return out


def _earlier_group(group: dict, event_id: str, admitted: Callable[[str], list[dict]] | None,
                   group_of: Callable[[str], dict | None] | None) -> str | None:
    """What became of the earlier group of ``group``'s rule that an event went to, if any."""
    if admitted is None:
        return None
    for w in reversed(admitted(event_id)):
        gid = w.get("group")
        if not gid or gid == group["id"] or w.get("rule") != group["rule"]:
            continue
        g = group_of(gid) if group_of is not None else None
        if g is None or not g.get("closed_at"):
            return f"went to group {gid} ({w.get('action')}), before this group opened"
        at, reason = g["closed_at"], g.get("reason") or ""
        if g["state"] == "discarded" and reason.endswith("while serve was stopped"):
            return f"belonged to group {gid}, which serve discarded when it started at {at} ({reason})"
        if g["state"] == "discarded":
            return f"belonged to group {gid}, which the reload of {at} discarded ({reason})"
        return f"belonged to group {gid}, {g['state']} at {at}, before this group opened"
    return None


def _span(s: dict | None) -> list[int] | None:
    if not s:
        return None
    return [s["line"], s["column"], s["end_line"], s["end_column"]]


def explain_group(group: dict, entry: dict | None, recent: dict[str, list[dict]],
                  admitted: Callable[[str], list[dict]] | None = None,
                  group_of: Callable[[str], dict | None] | None = None) -> list[str]:
    """For each missing member of a group: its trigger's latest events (``recent`` by alias,
    newest first, as the store lists them) and why each was not admitted (``triggerc groups
    --explain``). ``entry`` is the rule's manifest entry (stored with the rule's state);
    ``admitted`` gives what the correlations did with an event, ``group_of`` a group by id.

    An event of the group's key from before the group opened is said to belong to the
    earlier group of the rule it went to, when it went to one: a reload that changed the
    rule discards its groups, so the event that opened the discarded group is not this
    group's, and "arrived before the group opened" alone would hide why."""
    from .clock import parse_time
    from .spec import CorrRule

    if not group.get("missing"):
        return []
    if entry is None:
        return [f"  (the rule {group['rule']} is no longer known: its members cannot be explained)"]
    rule = CorrRule(entry)
    opened = parse_time(group.get("opened_at") or "")
    deadline = parse_time(group.get("deadline") or "") if group.get("deadline") else None
    want = tuple(json.dumps(k, ensure_ascii=False, separators=(",", ":")) for k in group.get("keys") or [])
    out: list[str] = []
    for alias in group["missing"]:
        m = rule.by_alias.get(alias)
        if m is None:
            continue
        events = recent.get(alias) or []
        out.append(f"  {alias} ({m.trigger}): " + ("its latest events:" if events else "no event of this trigger yet"))
        for ev in events:
            data = ev.get("data") or {}
            at = parse_time(ev.get("received_at") or "") or 0.0
            why = explain_failure(m.filter, data) if m.accepts_type(ev.get("type", "")) else {
                "condition": f"trigger {m.trigger}", "field": "type", "value": ev.get("type")}
            if why is not None:
                text = "condition " + reason_text(why, where="")
            else:
                k = rule.key(m.index, data)
                if isinstance(k, str):
                    text = f"not admitted: {k}"
                elif k[0] != want:
                    text = f"key {rule.key_label(k[1])} is another group's (this one is {rule.key_label(group['keys'])})"
                elif opened is not None and at < opened:
                    text = _earlier_group(group, ev["id"], admitted, group_of) or "arrived before the group opened"
                elif deadline is not None and at >= deadline:
                    text = "arrived after the window closed"
                else:
                    where = admitted(ev["id"]) if admitted is not None else []
                    text = ("admitted to " + ", ".join(f"{w['group']} ({w['action']})" for w in where if w.get("group"))
                            if where else "matches, but was not admitted (see the event's page)")
            out.append(f"    {ev.get('id')} {ev.get('received_at')}: {text}")
    return out
