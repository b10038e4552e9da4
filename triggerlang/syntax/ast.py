"""The syntax tree of a ``.trg`` file: frozen dataclasses, every node with a span.

Spans are excluded from equality (``compare=False``), so two trees are equal when they
say the same thing, wherever it was written: the formatter's property test relies on
``parse(fmt(x)) == parse(x)``. Lark never leaks out of :mod:`triggerlang.syntax`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Union

from ..diagnostics import NO_SPAN, Diagnostic, Pos, Span


def _span() -> Span:
    return field(default=NO_SPAN, compare=False, repr=False)


# --------------------------------------------------------------------------- values

@dataclass(frozen=True)
class Name:
    """An identifier where a name is declared or referenced."""
    value: str
    span: Span = _span()


@dataclass(frozen=True)
class Str:
    """A string literal (``raw`` for ``r"..."``); ``value`` has escapes resolved."""
    value: str
    raw: bool = False
    span: Span = _span()


@dataclass(frozen=True)
class Num:
    """An integer or decimal literal."""
    value: int | float
    text: str = field(default="", compare=False)
    span: Span = _span()


@dataclass(frozen=True)
class Duration:
    """A duration literal such as ``250ms`` or ``5m``; ``ms`` is its length in milliseconds."""
    ms: float
    text: str = field(default="", compare=False)
    span: Span = _span()


@dataclass(frozen=True)
class Bool:
    """``true`` or ``false``."""
    value: bool
    span: Span = _span()


@dataclass(frozen=True)
class Regex:
    """A regex literal ``/pattern/flags`` (Python ``re`` syntax, flags from ``ims``)."""
    pattern: str
    flags: str = ""
    span: Span = _span()


@dataclass(frozen=True)
class ListLit:
    """A list literal ``[v, v, ...]``."""
    items: tuple["Value", ...]
    span: Span = _span()


@dataclass(frozen=True)
class Ref:
    """A bare identifier used as a value: a ``let`` name (or, in an action argv, a parameter)."""
    name: str
    span: Span = _span()


@dataclass(frozen=True)
class FieldPath:
    """A dotted event field path: ``branch``, ``payload.x.y``, ``headers.x-name``."""
    parts: tuple[str, ...]
    span: Span = _span()

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Placeholder:
    """``<path>``: the value of an event field, bound when the rule runs."""
    path: FieldPath
    span: Span = _span()


Value = Union[Str, Num, Duration, Bool, Regex, ListLit, Ref]


# --------------------------------------------------------------------------- filters

@dataclass(frozen=True)
class Compare:
    """``FIELD OP VALUE`` with OP one of ``= != ~ !~ in not-in < <= > >=``."""
    field: FieldPath
    op: str
    value: Value
    span: Span = _span()
    op_span: Span = _span()


@dataclass(frozen=True)
class Has:
    """``has FIELD``: present and not null."""
    field: FieldPath
    span: Span = _span()


@dataclass(frozen=True)
class Not:
    expr: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class And:
    items: tuple["Expr", ...]
    span: Span = _span()


@dataclass(frozen=True)
class Or:
    items: tuple["Expr", ...]
    span: Span = _span()


Expr = Union[Compare, Has, Not, And, Or]


# --------------------------------------------------------------------------- triggers

@dataclass(frozen=True)
class EventTrigger:
    """``SOURCE.EVENT`` or ``SOURCE.*``."""
    source: Name
    event: Name          # value "*" for any event of the source
    span: Span = _span()

    @property
    def text(self) -> str:
        return f"{self.source.value}.{self.event.value}"


@dataclass(frozen=True)
class EveryTrigger:
    """``every DURATION``."""
    interval: Union[Duration, Ref]
    span: Span = _span()


@dataclass(frozen=True)
class CronTrigger:
    """``cron "m h dom mon dow" [tz "Area/City"]``."""
    expr: Str
    tz: Str | None = None
    span: Span = _span()


# --------------------------------------------------------------------------- correlation triggers (§11)

@dataclass(frozen=True)
class Member:
    """One member of a correlation trigger: ``SOURCE.EVENT [FILTER] [as ALIAS] [key KEY]``.

    ``keys`` is the member's own key (``key <p>`` or ``key (<a>, <b>)``), which overrides
    the trigger's ``same`` keys for this member; empty when it has none.
    """
    trigger: EventTrigger
    filter: "Expr | None" = None
    alias: Name | None = None
    keys: tuple[Placeholder, ...] = ()
    span: Span = _span()


@dataclass(frozen=True)
class Group:
    """``all(...)``, ``any(...)``, ``seq(...)``, ``N of (...)`` (kind ``n_of``) or ``N of
    MEMBER`` (kind ``count``, one item). At the top of a rule ``same``/``within``/``max``
    are its clauses and ``trailing`` a filter written after it (TRG709); a nested group
    has none of its own (the grammar accepts ``same``/``within`` there so that the checker
    can say so, TRG707). ``trailing_comma`` records the author's choice to put the items
    one per line (the formatter keeps it, as black keeps a magic trailing comma).
    """
    kind: str
    items: tuple["Item", ...]
    n: Num | None = None
    same: tuple[Placeholder, ...] = ()
    within: "Value | None" = None
    max: "Value | None" = None
    trailing: "Expr | None" = None
    trailing_comma: bool = field(default=False, compare=False)
    span: Span = _span()


@dataclass(frozen=True)
class AbsentWindow:
    """The window of ``absent(...)``: ``within D`` (with ``after``), ``for D`` (a quiet
    period), or ``between cron "A" and cron "B" [tz "Area/City"]``."""
    kind: str                          # "within" | "for" | "between"
    duration: "Value | None" = None
    start: Str | None = None
    end: Str | None = None
    tz: Str | None = None
    span: Span = _span()


@dataclass(frozen=True)
class Absence:
    """``absent(MEMBER) [after MEMBER] [same KEYS [in LIST]] WINDOW [max N]``.

    Nested in a group (which is not allowed, TRG711) only ``member`` is set.
    """
    member: Member
    after: Member | None = None
    same: tuple[Placeholder, ...] = ()
    same_in: "Value | None" = None
    window: AbsentWindow | None = None
    max: "Value | None" = None
    trailing: "Expr | None" = None
    span: Span = _span()


Item = Union[Member, Group, Absence]
Correlation = Union[Group, Absence]
Trigger = Union[EventTrigger, EveryTrigger, CronTrigger, Group, Absence]


# --------------------------------------------------------------------------- rules

@dataclass(frozen=True)
class Arg:
    """One argument of ``with``: positional (``name`` None) or named."""
    name: Name | None
    value: Union[Value, Placeholder]
    span: Span = _span()


@dataclass(frozen=True)
class Policy:
    """One policy after the action: ``kind`` is debounce, busy, timeout, retry or dedupe.

    ``value`` is the duration / mode / count; ``extra`` the ``backoff`` duration of retry,
    or the ``for`` duration of dedupe; ``key`` the placeholder of dedupe.
    """
    kind: str
    value: Union[Value, Name, None] = None
    extra: Union[Value, None] = None
    key: Placeholder | None = None
    span: Span = _span()


@dataclass(frozen=True)
class Rule:
    """``[LABEL:] on TRIGGER [FILTER] run ACTION [with ARGS] [POLICIES]``."""
    label: Name | None
    trigger: Trigger
    filter: Expr | None
    action: Name
    args: tuple[Arg, ...] = ()
    policies: tuple[Policy, ...] = ()
    span: Span = _span()

    @property
    def name(self) -> str:
        return self.label.value if self.label else f"L{self.span.start.line}"


# --------------------------------------------------------------------------- declarations

@dataclass(frozen=True)
class Let:
    name: Name
    value: Value
    span: Span = _span()


@dataclass(frozen=True)
class Secret:
    """``secret NAME = env "VAR"`` or ``secret NAME = file "path"``."""
    name: Name
    kind: str            # "env" | "file"
    ref: Str
    span: Span = _span()


@dataclass(frozen=True)
class Option:
    """``name=value`` in a source declaration or an ``http`` action."""
    name: Name
    value: Value
    span: Span = _span()


@dataclass(frozen=True)
class SourceDecl:
    kind: Name
    options: tuple[Option, ...] = ()
    span: Span = _span()


@dataclass(frozen=True)
class Param:
    name: Name
    default: Value | None = None
    span: Span = _span()


@dataclass(frozen=True)
class ExecBody:
    """``exec PROGRAM ARG...``: literals (Str) and parameters (Ref)."""
    argv: tuple[Union[Str, Ref], ...]
    span: Span = _span()


@dataclass(frozen=True)
class ShellBody:
    script: Str
    span: Span = _span()


@dataclass(frozen=True)
class HttpBody:
    method: Name
    url: Str
    options: tuple[Option, ...] = ()
    span: Span = _span()


@dataclass(frozen=True)
class ActionOption:
    """``cwd "dir"`` or ``env NAME="value"``."""
    kind: str
    name: Name | None
    value: Str
    span: Span = _span()


@dataclass(frozen=True)
class ActionDecl:
    name: Name
    params: tuple[Param, ...]
    body: Union[ExecBody, ShellBody, HttpBody]
    options: tuple[ActionOption, ...] = ()
    has_parens: bool = field(default=False, compare=False)
    span: Span = _span()


# --------------------------------------------------------------------------- tests (§10)

@dataclass(frozen=True)
class GivenField:
    field: FieldPath
    value: Value
    span: Span = _span()


@dataclass(frozen=True)
class Given:
    """``given TRIGGER field=value...`` or ``given PROVIDER.EVENT from "file.json"``."""
    trigger: EventTrigger
    fields: tuple[GivenField, ...] = ()
    from_file: Str | None = None
    span: Span = _span()


@dataclass(frozen=True)
class Expect:
    """``expect RULE [with ARGS]`` (kind "match"), ``expect not RULE`` ("not"),
    ``expect only RULE, ...`` ("only"), ``expect none`` ("none"), and for correlation
    rules (§11.6) ``expect open RULE [key V] [missing A, ...]`` ("open") and ``expect
    expired RULE [key V] [missing ...]`` ("expired"): ``key`` holds the key's values
    (several for a composite key), ``missing`` the aliases; ``has_missing`` whether
    ``missing`` was written."""
    kind: str
    rules: tuple[Name, ...] = ()
    args: tuple[Arg, ...] = ()
    has_with: bool = False
    key: tuple["Value", ...] = ()
    missing: tuple[Name, ...] = ()
    has_missing: bool = False
    span: Span = _span()


@dataclass(frozen=True)
class Wait:
    """``wait D``: the test's virtual clock moves forward by D (§11.6)."""
    duration: "Value"
    span: Span = _span()


@dataclass(frozen=True)
class At:
    """``at "2024-03-04T02:30:00+01:00"``: the virtual clock is set to that instant."""
    time: Str
    span: Span = _span()


Step = Union[Given, Wait, At, Expect]


@dataclass(frozen=True)
class TestBlock:
    """A test: its steps in order. ``given`` is the first ``given`` (None when the test
    only moves the clock), ``expects`` every ``expect`` of the test."""
    name: Str
    steps: tuple[Step, ...]
    span: Span = _span()

    @property
    def given(self) -> Given | None:
        return next((s for s in self.steps if isinstance(s, Given)), None)

    @property
    def givens(self) -> tuple[Given, ...]:
        return tuple(s for s in self.steps if isinstance(s, Given))

    @property
    def expects(self) -> tuple[Expect, ...]:
        return tuple(s for s in self.steps if isinstance(s, Expect))


Decl = Union[Let, Secret, SourceDecl, ActionDecl, Rule, TestBlock]


@dataclass(frozen=True)
class Module:
    """A parsed file: its declarations in order (those that parsed)."""
    decls: tuple[Decl, ...]
    file: str = field(default="<input>", compare=False)
    span: Span = _span()


# --------------------------------------------------------------------------- moving a tree

_FIELDS: dict[type, tuple[str, ...] | None] = {str: None, int: None, float: None, bool: None, type(None): None}
"""Per class: the fields :func:`shifted` walks (None: a value with no spans in it)."""


def shifted(node, lines: int, offset: int):
    """``node`` with every span moved down ``lines`` lines and on ``offset`` characters.

    Columns do not move: a declaration always starts in column 1. Generic over the node
    classes (any frozen dataclass, tuples of them, spans), so new node kinds need nothing
    here. Used by the parser's cache (:class:`~triggerlang.syntax.parser.ParseCache`).
    """
    if lines == 0 and offset == 0:
        return node
    return _shift(node, lines, offset)


def _shift(v, dl: int, do: int, _new=tuple.__new__, _obj_new=object.__new__):
    cls = v.__class__
    if cls is Span:
        if v is NO_SPAN:
            return v
        s, e = v
        return _new(Span, (_new(Pos, (s[0] + dl, s[1], s[2] + do)), _new(Pos, (e[0] + dl, e[1], e[2] + do))))
    if cls is tuple:
        return tuple([_shift(x, dl, do) for x in v])
    try:
        names = _FIELDS[cls]
    except KeyError:
        names = _FIELDS[cls] = tuple(f.name for f in fields(cls)) if is_dataclass(cls) else None
    if names is None:
        return v
    new = _obj_new(cls)
    d = new.__dict__
    old = v.__dict__
    for n in names:
        x = old[n]
        d[n] = x if _FIELDS.get(x.__class__, 0) is None else _shift(x, dl, do)
    return new


def shifted_diagnostic(d: Diagnostic, lines: int, offset: int) -> Diagnostic:
    """A diagnostic of a cached declaration, moved with it (see :func:`shifted`)."""
    if lines == 0 and offset == 0:
        return d
    return replace(d, span=_shift(d.span, lines, offset))
