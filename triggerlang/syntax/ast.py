"""The syntax tree of a ``.trg`` file: immutable dataclasses, every node with a span.

Spans are excluded from equality (``compare=False``), so two trees are equal when they
say the same thing, wherever it was written: the formatter's property test relies on
``parse(fmt(x)) == parse(x)``. Lark never leaks out of :mod:`triggerlang.syntax`.

The node classes are dataclasses (``dataclasses.fields``, ``replace`` and ``is_dataclass``
work on them), declared with :func:`node` rather than ``@dataclass(frozen=True)``: that
decorator compiles six methods per class when the module is imported (17 ms for the 40-odd
classes here, a tenth of ``triggerc check``'s start-up), and its frozen ``__init__`` sets
each field through ``object.__setattr__``. :func:`node` compiles nothing at import: the
comparison, hashing, ``repr`` and immutability come from :class:`Node`, and each class's
``__init__`` is compiled the first time the class is instantiated (so a run pays only for
the node kinds it builds), writing the fields straight into the instance dictionary.
"""

from __future__ import annotations

import os
import re
from dataclasses import MISSING, FrozenInstanceError, dataclass, field, fields, is_dataclass, replace
from operator import attrgetter
from typing import ClassVar, NamedTuple, Union

from ..diagnostics import NO_SPAN, Diagnostic, FileSpan, Pos, Span


def _span() -> Span:
    return field(default=NO_SPAN, compare=False, repr=False)


class Node:
    """What every syntax node shares: immutable, equal (and hashing alike) when the fields
    that take part in comparison are equal, printed as ``Name(field=value, ...)``."""

    __slots__ = ()
    _key: staticmethod     # node -> its compared fields as one tuple (set by :func:`node`)
    _shown: tuple[str, ...]  # the fields repr() shows

    def __init__(self, *args, **kwargs) -> None:
        # first instance of this class: compile its own __init__, then use it from now on
        cls = self.__class__
        cls.__init__ = _compile_init(cls)
        cls.__init__(self, *args, **kwargs)

    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return self._key(self) == other._key(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key(self))

    def __repr__(self) -> str:
        return f"{self.__class__.__qualname__}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self._shown) + ")"

    def __setattr__(self, name, value):
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise FrozenInstanceError(f"cannot delete field {name!r}")


def node(cls: type) -> type:
    """Make ``cls`` (a subclass of :class:`Node`) a dataclass node: fields from its
    annotations, as ``@dataclass(frozen=True)`` would read them."""
    cls = dataclass(init=False, repr=False, eq=False)(cls)
    fs = fields(cls)
    compared = tuple(f.name for f in fs if f.compare)
    cls._key = staticmethod(attrgetter(*compared) if len(compared) > 1 else _one_key(compared))
    cls._shown = tuple(f.name for f in fs if f.repr)
    return cls


def _one_key(names: tuple[str, ...]):
    if not names:  # pragma: no cover - every node says something
        return lambda n: ()
    get = attrgetter(names[0])
    return lambda n: (get(n),)


def _compile_init(cls: type):
    """``__init__(self, field, ..., field=default)`` for a node class, storing each field in
    the instance dictionary (what a dataclass's generated ``__init__`` does, without the
    frozen dataclass's ``object.__setattr__`` per field)."""
    params, body, env = [], [], {}
    for f in fields(cls):
        if f.default_factory is not MISSING:  # pragma: no cover - nodes hold immutable values
            raise TypeError(f"{cls.__name__}.{f.name}: node fields take a default, not a factory")
        if f.default is MISSING:
            params.append(f.name)
        else:
            env[f"_dflt_{f.name}"] = f.default
            params.append(f"{f.name}=_dflt_{f.name}")
        body.append(f"    _d_[{f.name!r}] = {f.name}\n")
    src = f"def __init__(self, {', '.join(params)}):\n    _d_ = self.__dict__\n" + "".join(body)
    exec(src, env)  # noqa: S102 - our own field names, as dataclasses does
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


# --------------------------------------------------------------------------- values

@node
class Name(Node):
    """An identifier where a name is declared or referenced."""
    value: str
    span: Span = _span()


@node
class Str(Node):
    """A string literal (``raw`` for ``r"..."``); ``value`` has escapes resolved."""
    value: str
    raw: bool = False
    span: Span = _span()


@node
class Num(Node):
    """An integer or decimal literal."""
    value: int | float
    text: str = field(default="", compare=False)
    span: Span = _span()


@node
class Duration(Node):
    """A duration literal such as ``250ms`` or ``5m``; ``ms`` is its length in milliseconds."""
    ms: float
    text: str = field(default="", compare=False)
    span: Span = _span()


@node
class Bool(Node):
    """``true`` or ``false``."""
    value: bool
    span: Span = _span()


@node
class Regex(Node):
    """A regex literal ``/pattern/flags`` (Python ``re`` syntax, flags from ``ims``)."""
    pattern: str
    flags: str = ""
    span: Span = _span()


@node
class ListLit(Node):
    """A list literal ``[v, v, ...]``."""
    items: tuple["Value", ...]
    span: Span = _span()


@node
class Ref(Node):
    """A bare identifier used as a value: a ``let`` name (or, in an action argv, a parameter)."""
    name: str
    span: Span = _span()


@node
class FieldPath(Node):
    """A dotted event field path: ``branch``, ``payload.x.y``, ``headers.x-name``."""
    parts: tuple[str, ...]
    span: Span = _span()

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@node
class Placeholder(Node):
    """``<path>``: the value of an event field, bound when the rule runs. ``<path ~ /re/>``
    (``pattern``): the part of it the regex finds, its first group if it has one."""
    path: FieldPath
    span: Span = _span()
    pattern: "Regex | None" = None


Value = Union[Str, Num, Duration, Bool, Regex, ListLit, Ref]


# --------------------------------------------------------------------------- filters

@node
class Compare(Node):
    """``FIELD OP VALUE`` with OP one of ``= != ~ !~ in not-in < <= > >=``."""
    field: FieldPath
    op: str
    value: Value
    span: Span = _span()
    op_span: Span = _span()


@node
class Has(Node):
    """``has FIELD``: present and not null."""
    field: FieldPath
    span: Span = _span()


@node
class Not(Node):
    """``not EXPR``."""
    expr: "Expr"
    span: Span = _span()


@node
class And(Node):
    """Conditions that must all hold: side by side, or joined by ``and``."""
    items: tuple["Expr", ...]
    span: Span = _span()


@node
class Or(Node):
    """Alternatives joined by ``or``."""
    items: tuple["Expr", ...]
    span: Span = _span()


Expr = Union[Compare, Has, Not, And, Or]


# --------------------------------------------------------------------------- triggers

@node
class EventTrigger(Node):
    """``SOURCE.EVENT`` or ``SOURCE.*``."""
    source: Name
    event: Name          # value "*" for any event of the source
    span: Span = _span()

    @property
    def text(self) -> str:
        return f"{self.source.value}.{self.event.value}"


@node
class EveryTrigger(Node):
    """``every DURATION [catch up]``."""
    interval: Union[Duration, Ref]
    span: Span = _span()
    catch_up: bool = False  # a tick missed while serve was down is made up at its start


@node
class CronTrigger(Node):
    """``cron "m h dom mon dow" [tz "Area/City"] [catch up]``."""
    expr: Str
    tz: Str | None = None
    span: Span = _span()
    catch_up: bool = False  # as EveryTrigger's


# --------------------------------------------------------------------------- correlation triggers (§11)

@node
class Member(Node):
    """One member of a correlation trigger: ``SOURCE.EVENT [FILTER] [as ALIAS] [key KEY]``.

    ``keys`` is the member's own key (``key <p>`` or ``key (<a>, <b>)``), which overrides
    the trigger's ``same`` keys for this member; empty when it has none.
    """
    trigger: EventTrigger
    filter: "Expr | None" = None
    alias: Name | None = None
    keys: tuple[Placeholder, ...] = ()
    span: Span = _span()


@node
class Group(Node):
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


@node
class AbsentWindow(Node):
    """The window of ``absent(...)``: ``within D`` (with ``after``), ``for D`` (a quiet
    period), or ``between cron "A" and cron "B" [tz "Area/City"]``."""
    kind: str                          # "within" | "for" | "between"
    duration: "Value | None" = None
    start: Str | None = None
    end: Str | None = None
    tz: Str | None = None
    span: Span = _span()


@node
class Absence(Node):
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

@node
class Arg(Node):
    """One argument of ``with``: positional (``name`` None) or named."""
    name: Name | None
    value: Union[Value, Placeholder]
    span: Span = _span()


@node
class Policy(Node):
    """One policy after the action: ``kind`` is debounce, busy, timeout, retry or dedupe.

    ``value`` is the duration / mode / count; ``extra`` the ``backoff`` duration of retry,
    or the ``for`` duration of dedupe; ``key`` the placeholder of dedupe; ``signal`` the
    signal of ``busy signal SIGHUP`` (a name after any other mode is for check to refuse).
    """
    kind: str
    value: Union[Value, Name, None] = None
    extra: Union[Value, None] = None
    key: Placeholder | None = None
    span: Span = _span()
    signal: Name | None = None


@node
class Rule(Node):
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
        """The label, or ``L<line>`` for a rule without one; in an included file (a span
        that carries its file) ``<stem>-L<line>``, so that two files' unlabelled rules on
        the same line are two rules (``common-L3``)."""
        if self.label:
            return self.label.value
        file = self.span.file
        return f"L{self.span.start.line}" if file is None else f"{file_stem(file)}-L{self.span.start.line}"


def file_stem(file: str) -> str:
    """A file's name without its folder and ``.trg``, as a name's characters allow."""
    stem = os.path.basename(file).removesuffix(".trg")
    return re.sub(r"[^A-Za-z0-9_\-]", "_", stem) or "_"


# --------------------------------------------------------------------------- declarations

@node
class Include(Node):
    """``include "PATH"``: a file, or a glob of files, whose declarations join this file's
    (read by :mod:`triggerlang.syntax.includes`)."""
    path: Str
    span: Span = _span()


@node
class Let(Node):
    """``let NAME = VALUE``."""
    name: Name
    value: Value
    span: Span = _span()


@node
class Secret(Node):
    """``secret NAME = env "VAR"`` or ``secret NAME = file "path"``."""
    name: Name
    kind: str            # "env" | "file"
    ref: Str
    span: Span = _span()


@node
class Option(Node):
    """``name=value`` in a source declaration or an ``http`` action."""
    name: Name
    value: Value
    span: Span = _span()


@node
class SourceDecl(Node):
    """``source KIND option=value ...``."""
    kind: Name
    options: tuple[Option, ...] = ()
    span: Span = _span()


@node
class Param(Node):
    """An action parameter: ``NAME`` or ``NAME=default``."""
    name: Name
    default: Value | None = None
    span: Span = _span()


@node
class ExecBody(Node):
    """``exec PROGRAM ARG...``: literals (Str) and parameters (Ref)."""
    argv: tuple[Union[Str, Ref], ...]
    span: Span = _span()


@node
class ShellBody(Node):
    """``shell "script"``."""
    script: Str
    span: Span = _span()


@node
class HttpBody(Node):
    """``http post "URL" [option=value ...]``."""
    method: Name
    url: Str
    options: tuple[Option, ...] = ()
    span: Span = _span()


@node
class ActionOption(Node):
    """``cwd "dir"`` or ``env NAME="value"``."""
    kind: str
    name: Name | None
    value: Str
    span: Span = _span()


@node
class StopOption(Node):
    """``stop SIGNAL [grace DURATION]`` or ``stop grace DURATION``: how the runtime stops
    the action's process group (a busy restart, a cancel, a timeout)."""
    signal: Name | None
    grace: Union[Duration, Ref, None]
    span: Span = _span()

    kind: ClassVar[str] = "stop"


@node
class ActionDecl(Node):
    """``action NAME[(PARAMS)] = BODY [OPTIONS]``."""
    name: Name
    params: tuple[Param, ...]
    body: Union[ExecBody, ShellBody, HttpBody]
    options: tuple[Union[ActionOption, StopOption], ...] = ()
    has_parens: bool = field(default=False, compare=False)
    span: Span = _span()


# --------------------------------------------------------------------------- tests (§10)

@node
class GivenField(Node):
    """``field=value`` in a ``given`` step."""
    field: FieldPath
    value: Value
    span: Span = _span()


@node
class Given(Node):
    """``given TRIGGER field=value...`` or ``given PROVIDER.EVENT from "file.json"``."""
    trigger: EventTrigger
    fields: tuple[GivenField, ...] = ()
    from_file: Str | None = None
    span: Span = _span()


@node
class Expect(Node):
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


@node
class Wait(Node):
    """``wait D``: the test's virtual clock moves forward by D (§11.6)."""
    duration: "Value"
    span: Span = _span()


@node
class At(Node):
    """``at "2024-03-04T02:30:00+01:00"``: the virtual clock is set to that instant."""
    time: Str
    span: Span = _span()


Step = Union[Given, Wait, At, Expect]


@node
class TestBlock(Node):
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


Decl = Union[Include, Let, Secret, SourceDecl, ActionDecl, Rule, TestBlock]


class IncludedFile(NamedTuple):
    """A file an ``include`` read: its absolute real ``path``, the ``name`` diagnostics give
    it (relative to the working folder when the including file's was) and its ``text``;
    ``via``: the string of the ``include`` in the file given to the front end that read
    it, directly or through other includes (where the editor reports its errors)."""

    path: str
    name: str
    text: str
    via: "Span | None" = None


@node
class Module(Node):
    """A parsed file: its declarations in order (those that parsed). ``unparsed``: the
    words of the declarations that did not (a syntax error drops one), so that a name
    only such a declaration uses is not also reported as never used; and ``action NAME``
    for an action declaration that did not parse, so that the rules running it are not
    also told the action is unknown.

    After :func:`~triggerlang.syntax.includes.expand_includes`, ``decls`` also hold the
    included files' declarations (spans that carry their file), each after the ``include``
    that read it; ``included`` lists those files, ``include_globs`` each glob with the
    files it matched (absolute), and ``included_tests`` the test blocks of the included
    files, which are not this file's tests (they run when their own file is tested)."""
    decls: tuple[Decl, ...]
    file: str = field(default="<input>", compare=False)
    span: Span = _span()
    unparsed: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    included: tuple[IncludedFile, ...] = field(default=(), compare=False, repr=False)
    include_globs: tuple[tuple[str, tuple[str, ...]], ...] = field(default=(), compare=False, repr=False)
    included_tests: tuple[TestBlock, ...] = field(default=(), compare=False, repr=False)


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

    def move(v: Span, _new=tuple.__new__) -> Span:
        if v is NO_SPAN:
            return v
        s, e = v
        return _new(Span, (_new(Pos, (s[0] + lines, s[1], s[2] + offset)),
                           _new(Pos, (e[0] + lines, e[1], e[2] + offset))))

    return _map_spans(node, move)


def in_file(node, file: str):
    """``node`` with every span (that does not carry a file yet) in ``file``: the
    declarations of an included file, whose diagnostics name that file."""
    return _map_spans(node, lambda v: FileSpan.of(v, file))


def _map_spans(v, change, _obj_new=object.__new__):
    """``v`` rebuilt with ``change(span)`` for each plain :class:`Span` in it."""
    cls = v.__class__
    if cls is Span:
        return change(v)
    if cls is tuple:
        return tuple([_map_spans(x, change) for x in v])
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
        d[n] = x if _FIELDS.get(x.__class__, 0) is None else _map_spans(x, change)
    return new


def shifted_diagnostic(d: Diagnostic, lines: int, offset: int) -> Diagnostic:
    """A diagnostic of a cached declaration, moved with it (see :func:`shifted`)."""
    if lines == 0 and offset == 0:
        return d
    def move(sp: Span) -> Span:
        return shifted(sp, lines, offset)

    return replace(d, span=move(d.span), fix=d.fix.moved(move) if d.fix is not None else None,
                   related=tuple((move(sp), m) for sp, m in d.related))
