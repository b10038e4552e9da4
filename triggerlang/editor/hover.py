"""Hover: what the word under the cursor is, from the catalogue and the document's names.

A field shows its type and meaning on the trigger's event, a trigger its event's doc and
fields, an action its signature, a let its value, a secret its reference (never a value: the
editor never reads one), a policy its meaning, a rule its trigger and action. Works on the
one declaration under the cursor (:func:`~triggerlang.editor.document.declaration_at`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..check import catalogue as C
from ..diagnostics import Span
from ..syntax import ast as A
from . import knowledge as K
from .document import Names, _fmt, path_at, signature, trigger_context


@dataclass
class HoverResult:
    markdown: str
    span: Span


def hover(decl: Any, line: int, col: int, names: Names) -> HoverResult | None:
    """Hover for the 0-based position in ``decl`` (None when there is nothing to say)."""
    chain = path_at(decl, line, col)
    if len(chain) < 1:
        return None
    fld, node = chain[-1]
    parent = chain[-2][1] if len(chain) > 1 else None
    ctx = trigger_context(chain)
    span = getattr(node, "span", None)

    if isinstance(node, A.Name):
        if isinstance(parent, A.EventTrigger):
            if fld == "source":
                return HoverResult(_source_md(node.value), span)
            return HoverResult(_event_md(parent.source.value, node.value), span)
        if isinstance(parent, A.Rule) and fld == "action":
            return _action_hover(node.value, names, span)
        if isinstance(parent, A.Rule) and fld == "label":
            return HoverResult(_rule_md(parent), span)
        if isinstance(parent, A.Expect):
            rule = names.rules.get(node.value)
            return HoverResult(_rule_md(rule, names) if rule else f"rule `{node.value}` (not declared)",
                               span)
        if isinstance(parent, A.Arg) and fld == "name":
            return _param_hover(chain, node.value, names, span)
        if isinstance(parent, A.ActionDecl):
            return HoverResult(f"```trg\naction {signature(parent)}\n```", span)
        if isinstance(parent, A.Param):
            return HoverResult(f"parameter `{node.value}`" + (f", default `{_fmt_value(parent.default)}`"
                                                              if parent.default is not None else ""), span)
        if isinstance(parent, (A.Let, A.Secret)):
            return HoverResult(f"```trg\n{_fmt(parent)}\n```", span)
        if isinstance(parent, A.SourceDecl):
            return HoverResult(_source_md(node.value), span)
        if isinstance(parent, A.Option):
            return _option_hover(chain, node.value, span)
        if isinstance(parent, A.Policy):
            return HoverResult(K.POLICY_DOCS.get(parent.kind, "") + _busy_line(node.value), span)
        return None
    if isinstance(node, A.FieldPath) or isinstance(node, A.Placeholder):
        path = node.path if isinstance(node, A.Placeholder) else node
        if isinstance(parent, A.Placeholder):
            span = parent.span
        return HoverResult(_field_md(ctx, path), span) if ctx else None
    if isinstance(node, A.Ref):
        return _ref_hover(chain, node, names, span)
    if isinstance(node, A.Str) and isinstance(parent, A.Compare) and ctx and ctx[0] == "run" \
            and parent.field.parts == ("rule",) and node.value in names.rules:
        return HoverResult(_rule_md(names.rules[node.value], names), span)
    if isinstance(node, A.Policy):
        return HoverResult(K.POLICY_DOCS.get(node.kind, ""), span)
    if isinstance(node, A.EventTrigger):
        return HoverResult(_event_md(node.source.value, node.event.value), span)
    if isinstance(node, (A.EveryTrigger, A.CronTrigger)):
        doc = K.KEYWORD_DOCS["every" if isinstance(node, A.EveryTrigger) else "cron"]
        if node.catch_up:
            doc += "\n\n" + K.KEYWORD_DOCS["catch up"]
        return HoverResult(doc + "\n\n" + _event_md("schedule", "tick"), span)
    # a keyword of the declaration itself (the cursor on `let`, `on`, `run`...)
    if node is decl or isinstance(node, (A.Rule, A.Let, A.Secret, A.SourceDecl, A.ActionDecl, A.TestBlock)):
        return None
    return None


def _fmt_value(v: Any) -> str:
    from ..fmt import fmt_value

    try:
        return fmt_value(v)
    except TypeError:
        return "?"


def _busy_line(mode: str) -> str:
    doc = K.BUSY_MODE_DOCS.get(mode)
    return f"\n\n`{mode}`: {doc}" if doc else ""


def _source_md(name: str) -> str:
    src = C.get_source(name)
    if src is None:
        return f"`{name}`: not a source"
    events = ", ".join(f"`{name}.{e}`" for e in sorted(src.events))
    more = " (and any other event name the provider sends)" if src.open_events else ""
    opts = ", ".join(f"`{k}` ({t})" for k, t in sorted(src.options.items()))
    text = f"**source `{name}`**: {src.doc}\n\nevents: {events}{more}"
    if opts:
        text += f"\n\noptions: {opts}"
    return text


def _event_md(source: str, event: str) -> str:
    spec = C.get_event(source, event)
    if spec is None:
        return f"`{source}.{event}`: not in the catalogue"
    fields = "\n".join(f"- `{k}`: {t}" for k, t in sorted(spec.fields.items()))
    src = C.get_source(source)
    raw = ""
    if src is not None and src.raw:
        raw = "\n\nraw: " + ", ".join(f"`{r}.…`" for r in sorted(src.raw))
    return f"**`{source}.{event}`**: {spec.doc}\n\n{fields}{raw}"


def _field_md(ctx: tuple[str, str], path: A.FieldPath) -> str:
    src, ev = ctx
    typ = C.field_type(src, ev, path.parts)
    trig = f"{src}.{ev}"
    if typ is None:
        return f"`{path.dotted}`: {trig} has no such field"
    doc = K.field_doc(src, ev, path.parts[0])
    if len(path.parts) > 1 and path.parts[0] in ("headers", "query"):
        doc = f"the {path.parts[0][:-1] if path.parts[0] == 'headers' else 'query'} value `{path.parts[1]}`"
    elif len(path.parts) > 1:
        doc = f"a value inside `{path.parts[0]}` (untyped)"
    return f"`{path.dotted}`: **{typ}**, field of `{trig}`" + (f"\n\n{doc}" if doc else "")


def _rule_md(r: A.Rule, names: Names | None = None) -> str:
    where = names.where(r) if names is not None else ""  # (another file's: its name and line)
    return f"rule `{r.name}`" + ("" if where else f" (line {r.span.start.line})") + f"\n```trg\n{_fmt(r)}\n```{where}"


def _action_hover(name: str, names: Names, span: Span) -> HoverResult:
    a = names.actions.get(name)
    if a is None:
        return HoverResult(f"action `{name}` is not declared", span)
    return HoverResult(f"```trg\naction {signature(a)}\n```" + names.where(a), span)


def _param_hover(chain, name: str, names: Names, span: Span) -> HoverResult | None:
    action = None
    for _, n in reversed(chain):
        if isinstance(n, A.Rule):
            action = n.action.value
        elif isinstance(n, A.Expect) and n.rules:
            r = names.rules.get(n.rules[0].value)
            action = r.action.value if r else None
        if action:
            break
    decl = names.actions.get(action) if action else None
    if decl is None:
        return None
    p = next((p for p in decl.params if p.name.value == name), None)
    if p is None:
        return HoverResult(f"action `{action}` has no parameter `{name}`", span)
    default = f" (default `{_fmt_value(p.default)}`)" if p.default is not None else " (required)"
    return HoverResult(f"parameter `{name}` of `action {signature(decl)}`{default}" + names.where(decl), span)


def _option_hover(chain, name: str, span: Span) -> HoverResult | None:
    src = next((n for _, n in reversed(chain) if isinstance(n, A.SourceDecl)), None)
    if src is None:
        return None
    spec = C.get_source(src.kind.value)
    typ = spec.options.get(name) if spec else None
    if typ is None:
        return HoverResult(f"source {src.kind.value} has no option `{name}`", span)
    what = "the name of a `secret`" if typ == C.SECRET else typ
    return HoverResult(f"option `{name}` of source `{src.kind.value}`: {what}", span)


def _ref_hover(chain, ref: A.Ref, names: Names, span: Span) -> HoverResult | None:
    action = next((n for _, n in reversed(chain) if isinstance(n, A.ActionDecl)), None)
    if action is not None and any(isinstance(n, A.ExecBody) for _, n in chain):
        p = next((p for p in action.params if p.name.value == ref.name), None)
        if p is not None:
            return HoverResult(f"parameter `{ref.name}` of `action {signature(action)}`", span)
    if ref.name in names.lets:
        return HoverResult(f"```trg\n{_fmt(names.lets[ref.name])}\n```" + names.where(names.lets[ref.name]), span)
    if ref.name in names.secrets:
        s = names.secrets[ref.name]
        return HoverResult(f'secret `{ref.name}`: read from {s.kind} "{s.ref.value}" when serve starts '
                           "(its value is never shown)" + names.where(s), span)
    return HoverResult(f"`{ref.name}`: not a let or secret of this file", span)
