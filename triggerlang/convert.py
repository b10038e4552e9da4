"""``triggerc convert webhook``: an adnanh/webhook hooks file turned into a rules file.

README "Coming from adnanh/webhook" is the specification: its table says what each hook
property becomes, and its "Not carried over" list what cannot. The converter follows it:

- each hook is one labelled rule ``ID: on http.request path="/hooks/ID" FILTER run ID with
  ARGS`` (``http.post`` etc. when ``http-methods`` pins one method, ``method in [...]`` for
  several), an ``exec`` action named after it (argv, never a shell; ``cwd``), and, when
  the route needs one, a ``source http path="/hooks/ID"`` with its ``hmac*=`` and
  ``header=``, ``allow=``, ``reply=`` and ``json_fields=``;
- the ``trigger-rule``'s top-level ``and`` is split: signature matches go to the route
  (secrets become ``secret NAME = env "VAR"``: a secret's value is never written out; hooks
  with the same secret share one variable), ``ip-whitelist`` matches (alone, or an ``or``
  of them) become ``allow=``, a value match on a URL parameter or a header named like a
  secret the route's ``token=`` (``query=``, ``header=``), the rest is the rule's filter;
- what cannot be carried over gets a ``# TODO(convert): ...`` comment at its hook and a
  :class:`Problem`. A condition that cannot be written (a signature inside ``or``/``not``,
  an unknown match type, a template) would leave the rule looser than the hook was: such
  a rule is written commented out, so that nothing runs that the hook would have refused.

The conversion is deterministic (hooks in file order, same input same bytes) and its text
is what ``triggerc fmt`` writes. YAML hooks files are not read (that would need a YAML
parser, and one installed by chance would make the output depend on the machine): the
error says to convert them with ``yq -o json``.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field

from .actions import input_env_name
from .compile.patterns import regex_literal
from .fmt import fmt_string, format_text
from .providers.base import CREDENTIAL_HEADERS, CREDENTIAL_PARAMS
from .providers.verify import ALWAYS_REDACTED, ip_range
from .syntax.parser import DECL_KEYWORDS, RESERVED

URL_PREFIX = "hooks"

SIGNATURES = {  # webhook's match type -> the http source's option (payload-hash-* are its old names)
    "payload-hmac-sha1": "hmac_sha1", "payload-hash-sha1": "hmac_sha1",
    "payload-hmac-sha256": "hmac", "payload-hash-sha256": "hmac",
    "payload-hmac-sha512": "hmac_sha512", "payload-hash-sha512": "hmac_sha512",
}

NOT_CARRIED = {  # property -> why, in one line (README "Not carried over")
    "response-headers": "the answer is the journal's receipt, sent before the command runs; its headers are fixed",
    "include-command-output-in-response": "the command runs after the answer: its output is in `triggerc logs N`",
    "include-command-output-in-response-on-error": "the command runs after the answer: its output is in "
                                                   "`triggerc logs N`",
    "pass-file-to-command": "the run gets the whole event as JSON on stdin "
                            "(`jq -r .data.payload.FIELD | base64 -d > file`)",
    "success-http-response-code": "a delivery that starts a run is answered 202 (200 with the route's reply=)",
    "trigger-rule-mismatch-http-response-code": "a delivery no rule matches is answered 202 with \"runs\": []",
    "trigger-signature-soft-failures": "a wrong signature is always refused (401) before any rule is tried",
}
HANDLED = frozenset({
    "id", "execute-command", "command-working-directory", "response-message", "http-methods",
    "parse-parameters-as-json", "pass-arguments-to-command", "pass-environment-to-command", "trigger-rule",
    "incoming-payload-content-type",
})
METHOD_EVENTS = ("GET", "POST", "PUT", "PATCH", "DELETE")
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
SEGMENT_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*")
GETENV_RE = re.compile(r'\{\{\s*getenv\s+"([A-Za-z_][A-Za-z0-9_]*)"\s*(\|\s*js\s*)?\}\}')


@dataclass(frozen=True)
class Problem:
    """A property of a hook that was not carried over (a TODO in the output)."""
    hook: str
    prop: str
    message: str

    def line(self, file: str) -> str:
        return f"{file}: hook {self.hook}: {self.prop}: {self.message}"


@dataclass
class Conversion:
    """The rules text (``None`` when the file could not be read as hooks: see ``error``),
    what was not carried over, the environment variables the secrets come from (name ->
    the hooks that use it), and notes on what changes for the commands."""
    text: str | None = None
    error: str | None = None
    problems: list[Problem] = field(default_factory=list)
    secrets: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Unwritable(Exception):
    """A condition or value of a hook that has no triggerlang spelling (the message says why)."""


# --------------------------------------------------------------------------- reading

def load_hooks(text: str, file: str) -> tuple[list[dict] | None, str | None]:
    """The hooks of a hooks file, or an error in one line (``file:line:col`` for JSON)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        if file.endswith((".yml", ".yaml")) or not text.lstrip().startswith(("[", "{")):
            return None, (f"{file}: not JSON ({e.msg} at line {e.lineno} column {e.colno}); a YAML hooks file: "
                          f"convert it first with `yq -o json {file} > hooks.json`")
        return None, f"{file}:{e.lineno}:{e.colno}: not JSON: {e.msg}"
    if not isinstance(data, list):
        return None, f"{file}: not a hooks file: expected a list of hooks, found a JSON {_kind(data)}"
    seen: set[str] = set()
    for i, hook in enumerate(data, 1):
        if not isinstance(hook, dict):
            return None, f"{file}: hook {i} is a JSON {_kind(hook)}, not an object"
        hid = hook.get("id")
        if not isinstance(hid, str) or not hid:
            return None, f"{file}: hook {i} has no \"id\""
        if not isinstance(hook.get("execute-command"), str) or not hook["execute-command"]:
            return None, f"{file}: hook {hid} has no \"execute-command\""
        if hid in seen:
            return None, f"{file}: hook id {hid} is defined twice"
        seen.add(hid)
    return data, None


def _one_line(text: str) -> str:
    """``text`` for a comment or a message line: control characters escaped, as JSON would."""
    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029\x85]", lambda m: json.dumps(m.group())[1:-1], text)


def _kind(v) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(v), "number")


# --------------------------------------------------------------------------- names and values

def _name(raw: str, taken: set[str], fallback: str = "x", reserved: frozenset[str] = RESERVED) -> str:
    """A NAME of the language for ``raw`` (other characters become ``_``), not a reserved
    word and not in ``taken`` (then ``_2``, ``_3``...); added to ``taken``."""
    base = re.sub(r"[^A-Za-z0-9_\-]", "_", raw).strip("_") or fallback
    if not NAME_RE.fullmatch(base) or base in reserved:
        base = f"{fallback}_{base}"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def _env_var(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper() + "_SECRET"


def _untemplated(value, what: str) -> str:
    if not isinstance(value, str):
        value = json.dumps(value) if not isinstance(value, bool) else ("true" if value else "false")
    if "{{" in value:
        raise Unwritable(f"{what} is a template ({{{{ ... }}}}), which is not evaluated: write the value it gives")
    return value


def _path(prefix: str, name: str, what: str) -> str:
    segments = name.split(".")
    if not all(SEGMENT_RE.fullmatch(s) for s in segments):
        raise Unwritable(f"{what} {name!r} is not a field path (letters, digits, _ and - between dots)")
    return ".".join([prefix, *segments])


def _field(param, what: str) -> str:
    """The event field a webhook ``parameter`` ({source, name}) reads."""
    if not isinstance(param, dict):
        raise Unwritable(f"{what} has no parameter")
    source, name = param.get("source"), param.get("name")
    if source in ("entire-payload", "raw-request-body"):
        return "text"
    if source == "entire-headers":
        return "headers"
    if source == "entire-query":
        return "query"
    if not isinstance(name, str) or not name:
        raise Unwritable(f"{what}: a {source} parameter without a name")
    if source == "payload":
        return _path("payload", name.removeprefix("root."), what)
    if source in ("header", "url", "query") and not SEGMENT_RE.fullmatch(name):
        raise Unwritable(f"{what}: the {source} name {name!r} is not a field name (letters, digits, _ and -)")
    if source == "header":
        return f"headers.{name.lower()}"
    if source in ("url", "query"):
        return f"query.{name}"
    if source == "request" and name.lower() in ("method", "remote-addr"):
        return "method" if name.lower() == "method" else "remote"
    raise Unwritable(f"{what}: source {source!r} name {name!r} has no event field")


# --------------------------------------------------------------------------- trigger rules

def _conjuncts(rule) -> list:
    if isinstance(rule, dict) and set(rule) == {"and"} and isinstance(rule["and"], list):
        return [c for sub in rule["and"] for c in _conjuncts(sub)]
    return [rule]


def _match(rule) -> dict | None:
    return rule["match"] if isinstance(rule, dict) and set(rule) == {"match"} and isinstance(
        rule["match"], dict) else None


def _expr(rule, holes: list[str], top: bool = False) -> str:
    """A webhook rule as a triggerlang filter expression (parenthesised unless ``top``). A
    part that has no spelling is written ``TODO`` and its reason added to ``holes``."""
    if not isinstance(rule, dict) or len(rule) != 1:
        holes.append("a rule that is not one of and/or/not/match")
        return "TODO"
    (kind, body), = rule.items()
    if kind in ("and", "or") and isinstance(body, list) and body:
        parts = [_expr(b, holes) for b in body]
        joined = f" {kind} ".join(parts)
        return joined if top or len(parts) == 1 else f"({joined})"
    if kind == "not":
        return f"not {_expr(body, holes)}"
    try:
        return _condition(kind, body)
    except Unwritable as e:
        holes.append(str(e))
        return "TODO"


URL_TOKEN_NAMES = CREDENTIAL_PARAMS
"""URL parameters whose ``value`` match is taken for a secret (``?token=42``): the ones the
HTTP source always redacts, so a condition on one could never hold. The route checks it
(``token=S query="token"``); a second one, or one beside a signature (a route checks one
way), is a TODO. A value match on another parameter (``?env=prod``) stays a condition.
So does a top-level ``payload`` field of those names (the Slack hook's ``token``): a form
body's is redacted too, and ``query=`` reads it from a form body as well; a JSON sender
that puts its token in the body then gets a 401 (``missing ?token= ... or a token field
in a form body``), said at once, where a condition would have kept a secret in the rules
file and matched a form sender never."""


def _url_token(m: dict) -> bool:
    param = m.get("parameter") if isinstance(m.get("parameter"), dict) else {}
    return (m.get("type") == "value" and param.get("source") in ("url", "payload") and isinstance(m.get("value"), str)
            and bool(m["value"]) and isinstance(param.get("name"), str)
            and param["name"].lower() in URL_TOKEN_NAMES and SEGMENT_RE.fullmatch(param["name"]) is not None
            and ("{{" not in m["value"] or GETENV_RE.fullmatch(m["value"].strip()) is not None))


HEADER_TOKEN_ENDINGS = ("-token", "_token", "-secret", "_secret", "-api-key", "_api_key", "-apikey", "_apikey",
                        "-password", "_password")
"""Header names (``X-`` left aside) whose ``value`` match is taken for a secret, as the URL
parameters of :data:`URL_TOKEN_NAMES` are, with those names: ``X-Gitlab-Token`` (webhook's
GitLab example), ``X-Static-Token`` (its Azure one), ``api_key`` (its Synology one),
``X-Api-Key``. The route checks them (``token=S header="X-Gitlab-Token"``: the header's
value is the secret) and redacts them. ``X-Event-Key`` (Bitbucket's event) is no secret."""


def _header_token(m: dict) -> str | None:
    """The secret a ``value`` match on a header named like one compares with (after
    ``Bearer`` for ``Authorization``), else None: the match stays a condition."""
    param = m.get("parameter") if isinstance(m.get("parameter"), dict) else {}
    name, value = param.get("name"), m.get("value")
    if m.get("type") != "value" or param.get("source") != "header" or not isinstance(value, str) \
            or not isinstance(name, str) or SEGMENT_RE.fullmatch(name) is None:
        return None
    low = name.lower()
    if low == "authorization":
        scheme, _, value = value.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
    elif low.removeprefix("x-") not in URL_TOKEN_NAMES and not low.endswith(HEADER_TOKEN_ENDINGS):
        return None
    value = value.strip()
    if not value or ("{{" in value and GETENV_RE.fullmatch(value) is None):
        return None
    return value


def _typed(value: str) -> str | None:
    """The JSON number or boolean whose text (as webhook writes it: Go's ``%v``) is ``value``."""
    if value in ("true", "false"):
        return value
    if re.fullmatch(r"-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?", value):
        return value
    return None


def _condition(kind: str, body) -> str:
    """One ``match`` as a condition."""
    if kind != "match" or not isinstance(body, dict):
        raise Unwritable(f"an empty {kind!r}" if kind in ("and", "or") else f"a rule of kind {kind!r}")
    mtype = body.get("type")
    if mtype in SIGNATURES or mtype == "ip-whitelist":
        raise Unwritable(f"a match of type {mtype} inside or/not (a route's check holds for every delivery)")
    if mtype not in ("value", "regex"):
        raise Unwritable(f"match type {mtype!r} is not carried over")
    fld = _field(body.get("parameter"), f"the {mtype} match")
    if fld in ("headers", "query"):
        raise Unwritable(f"a {mtype} match on all the {fld} at once")
    name = str(body["parameter"].get("name"))  # (a field: a dict, see _field)
    if fld.startswith("headers.") and fld[len("headers."):] in ALWAYS_REDACTED:
        low = name.lower()
        how = ("token=NAME, for Authorization: Bearer" if low == "authorization" else
               f'token=NAME header="{name}"' if low in CREDENTIAL_HEADERS - {"proxy-authorization", "cookie"} else
               "its secret, token or hmac")
        raise Unwritable(f"a {mtype} match on the {name} header, which is redacted before rules see it (a "
                         f"credential): check it on the route ({how})")
    if fld.startswith("query.") and name.lower() in CREDENTIAL_PARAMS:
        raise Unwritable(f"a {mtype} match on the {name} URL parameter, which is redacted before rules see it (a "
                         f'credential): check it on the route (token=NAME query="{name}")')
    if mtype == "value":
        value = _untemplated(body.get("value", ""), "the match value")
        if fld == "method":
            value = value.upper()
        typed = _typed(value) if fld.startswith("payload.") else None
        if typed is not None:  # webhook compares the value's text: "5" matches 5, "true" true
            return f"{fld} in [{fmt_string(value)}, {typed}]"
        return f"{fld}={fmt_string(value)}"
    pattern = _untemplated(body.get("regex", ""), "the match regex")
    try:
        re.compile(pattern)
    except re.error as e:
        raise Unwritable(f"the regex {pattern!r} is not one Python reads: {e}") from None
    if not pattern or re.search(r"[\x00-\x1f\x7f\u2028\u2029\x85]", pattern):
        raise Unwritable(f"the regex {pattern!r} is empty or holds a control character (write it with \\n, \\t...)")
    return f"{fld} ~ {regex_literal(pattern)}"


# --------------------------------------------------------------------------- one hook

@dataclass
class _Hook:
    """What one hook becomes, before it is written."""
    label: str
    path: str
    route: dict[str, str] = field(default_factory=dict)  # option -> written value
    allow: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    disabled: bool = False


class _Converter:
    def __init__(self, file: str, url_prefix: str) -> None:
        self.file = file
        self.url_prefix = url_prefix
        self.result = Conversion()
        self.labels: set[str] = set()
        self.secret_names: dict[str, tuple[str, str]] = {}  # a secret's value (in memory only) -> NAME, VAR
        self.secret_lines: list[str] = []

    def todo(self, h: _Hook, hid: str, prop: str, message: str) -> None:
        self.result.problems.append(Problem(_one_line(hid), _one_line(prop), _one_line(message)))
        h.comments.append(f"# TODO(convert): {_one_line(prop)}: {_one_line(message)}")

    def secret(self, h: _Hook, hid: str, value: str) -> str:
        m = GETENV_RE.fullmatch(value.strip())
        key = f"env:{m.group(1)}" if m else value
        if key not in self.secret_names:
            name = _name(h.label + "-secret", self.labels)
            var = m.group(1) if m else _env_var(h.label)
            self.secret_names[key] = name, var
            self.secret_lines.append(f"secret {name} = env {fmt_string(var)}")
        name, var = self.secret_names[key]
        self.result.secrets.setdefault(var, []).append(_one_line(hid))
        return name

    def items(self, h: _Hook, hid: str, hook: dict, prop: str) -> list:
        """The list a property holds (a TODO, and nothing, when it holds something else)."""
        value = hook.get(prop)
        if value in (None, []):
            return []
        if not isinstance(value, list):
            self.todo(h, hid, prop, f"a JSON {_kind(value)}, not a list: left out")
            return []
        return value

    def hook(self, hook: dict) -> list[str]:
        hid = hook["id"]
        h = _Hook(_name(hid, self.labels, "hook", RESERVED | frozenset(DECL_KEYWORDS)), "/" + "/".join(p for p in (self.url_prefix, hid) if p))
        for prop in hook:
            if prop in NOT_CARRIED and hook[prop] not in (None, False, [], "", 0):
                self.todo(h, hid, prop, NOT_CARRIED[prop])
            elif prop not in HANDLED and prop not in NOT_CARRIED:
                self.todo(h, hid, prop, "not a property webhook documents: left out")
        if hook.get("incoming-payload-content-type"):
            h.comments.append("# incoming-payload-content-type: not needed, a JSON body is read whatever its "
                              "Content-Type")
        self.trigger_rule(h, hid, hook.get("trigger-rule"))
        trigger = self.methods(h, hid, hook.get("http-methods"))
        if hook.get("response-message"):
            try:
                h.route["reply"] = fmt_string(_untemplated(hook["response-message"], "the message"))
            except Unwritable as e:
                self.todo(h, hid, "response-message", str(e))
        fields = []
        for arg in self.items(h, hid, hook, "parse-parameters-as-json"):
            if isinstance(arg, dict) and arg.get("source") == "payload" and isinstance(arg.get("name"), str) \
                    and SEGMENT_RE.fullmatch(arg["name"]):
                fields.append(fmt_string(arg["name"]))
            else:
                self.todo(h, hid, "parse-parameters-as-json",
                          f"{json.dumps(arg)}: only a top-level payload field is decoded (json_fields=)")
        if fields:
            h.route["json_fields"] = "[" + ", ".join(fields) + "]"
        if h.allow:
            h.route["allow"] = "[" + ", ".join(fmt_string(a) for a in h.allow) + "]"
        action, with_args = self.action(h, hid, hook)
        lines = [f"# hook {_one_line(hid)}", *h.comments]
        if h.route:
            lines.append(f"source http path={fmt_string(h.path)} "
                         + " ".join(f"{k}={v}" for k, v in h.route.items()))
        lines.append(action)
        rule = f"{h.label}: on {trigger} path={fmt_string(h.path)} {' '.join(h.conditions)}".rstrip()
        rule += f" run {h.label}" + (f" with {', '.join(with_args)}" if with_args else "")
        lines.append(f"# {rule}" if h.disabled else rule)
        return lines

    def trigger_rule(self, h: _Hook, hid: str, rule) -> None:
        if rule is None:
            return
        parts = _conjuncts(rule)
        signed = any((_match(p) or {}).get("type") in SIGNATURES for p in parts)
        for part in parts:
            m = _match(part)
            ors = part.get("or") if isinstance(part, dict) and set(part) == {"or"} else None
            written = len(h.conditions)
            try:
                if m is not None and m.get("type") in SIGNATURES:
                    self.signature(h, hid, m)
                elif m is not None and not signed and "token" not in h.route and _url_token(m):
                    # webhook's ?token=42: the route's secret, out of the rules file and the journal
                    h.route["token"] = self.secret(h, hid, m["value"])
                    h.route["query"] = fmt_string(m["parameter"]["name"])
                elif m is not None and not signed and "token" not in h.route and _header_token(m) is not None:
                    # webhook's GitLab hook (X-Gitlab-Token): the route's secret, as a URL token is
                    h.route["token"] = self.secret(h, hid, _header_token(m))
                    if m["parameter"]["name"].lower() != "authorization":
                        h.route["header"] = fmt_string(m["parameter"]["name"])
                elif m is not None and m.get("type") == "ip-whitelist":
                    self.allow(h, [m])
                elif isinstance(ors, list) and ors and all((_match(o) or {}).get("type") == "ip-whitelist"
                                                           for o in ors):
                    self.allow(h, [_match(o) for o in ors])
                else:
                    holes: list[str] = []
                    h.conditions.append(_expr(part, holes))
                    if holes:
                        raise Unwritable("; ".join(dict.fromkeys(holes)))
            except Unwritable as e:
                if len(h.conditions) == written:  # a route check: its place in the filter is shown
                    h.conditions.append("TODO")
                h.disabled = True
                self.todo(h, hid, "trigger-rule", f"{e}: the rule is commented out until its TODO is written by hand")

    def signature(self, h: _Hook, hid: str, m: dict) -> None:
        opt = SIGNATURES[m["type"]]
        if any(k.startswith("hmac") for k in h.route):
            raise Unwritable("a second signature check")
        param = m.get("parameter") if isinstance(m.get("parameter"), dict) else {}
        if param.get("source") != "header" or not isinstance(param.get("name"), str) or not param["name"]:
            raise Unwritable(f"a {m['type']} signature read from {param.get('source')!r}, not a header")
        secret = m.get("secret")
        if not isinstance(secret, str) or not secret:
            raise Unwritable(f"a {m['type']} match without a secret")
        if "{{" in secret and not GETENV_RE.fullmatch(secret.strip()):
            raise Unwritable("the secret is a template other than {{ getenv \"VAR\" }}")
        h.route[opt] = self.secret(h, hid, secret)
        h.route["header"] = fmt_string(param["name"])

    def allow(self, h: _Hook, matches: list[dict]) -> None:
        if h.allow:
            raise Unwritable("two ip-whitelist checks that must both hold")
        for m in matches:
            r = m.get("ip-range")
            if not isinstance(r, str) or not r:
                raise Unwritable("an ip-whitelist match without an ip-range")
            try:
                ip_range(r)
            except ValueError as e:
                raise Unwritable(f"ip-whitelist: {e}") from None
            h.allow.append(r.strip())

    def methods(self, h: _Hook, hid: str, methods) -> str:
        if not methods:
            return "http.request"
        if not isinstance(methods, list) or not all(isinstance(x, str) for x in methods):
            self.todo(h, hid, "http-methods", "not a list of method names: every method is taken")
            return "http.request"
        ms = list(dict.fromkeys(x.strip().upper() for x in methods))
        if len(ms) == 1 and ms[0] in METHOD_EVENTS:
            return f"http.{ms[0].lower()}"
        h.conditions.insert(0, f"method in [{', '.join(fmt_string(x) for x in ms)}]" if len(ms) > 1
                            else f"method={fmt_string(ms[0])}")
        return "http.request"

    def action(self, h: _Hook, hid: str, hook: dict) -> tuple[str, list[str]]:
        params: list[str] = []  # the action's parameters, in order
        with_args: list[str] = []  # the rule's value for each
        by_value: dict[str, str] = {}
        taken: set[str] = {"cwd", "stop"}  # in an exec body, cwd "dir" and stop SIGNAL are options
        argv: list[str] = []

        def param(arg, i: int, prop: str, env: bool) -> str | None:
            try:
                if not isinstance(arg, dict):
                    raise Unwritable("not a {source, name} object")
                if arg.get("source") == "string":
                    value = fmt_string(_untemplated(arg.get("name", ""), "the string"))
                    base = f"arg{i}"
                else:
                    fld = _field(arg, "the argument")
                    value = f"<{fld}>"
                    base = fld.rpartition(".")[2]
            except Unwritable as e:
                self.todo(h, hid, prop, f"{json.dumps(arg)}: {e}; passed as \"\"")
                value, base = '""', f"arg{i}"
            if env and isinstance(arg, dict) and arg.get("envname"):
                base = str(arg["envname"]).lower()
            if value in by_value and not env and value.startswith("<"):
                return by_value[value]
            name = _name(base, taken, "arg")
            params.append(name)
            by_value.setdefault(value, name)
            with_args.append(value)
            return name

        for i, arg in enumerate(self.items(h, hid, hook, "pass-arguments-to-command"), 1):
            argv.append(param(arg, i, "pass-arguments-to-command", False))
        renamed = []
        for i, arg in enumerate(self.items(h, hid, hook, "pass-environment-to-command"), len(argv) + 1):
            name = param(arg, i, "pass-environment-to-command", True)
            if isinstance(arg, dict):
                old = arg.get("envname") or f"HOOK_{arg.get('name', '')}"
                renamed.append(f"{_one_line(str(old))} is now {input_env_name(name)}")
        if renamed:
            h.comments.append("# pass-environment-to-command: " + ", ".join(renamed) + " (the name is fixed)")
            self.result.notes.append(f"{self.file}: hook {_one_line(hid)}: the command's environment: " + ", ".join(renamed))
        cwd = hook.get("command-working-directory")
        body = f"exec {fmt_string(_program(hook['execute-command'], cwd))}" + "".join(f" {a}" for a in argv)
        if cwd not in (None, "") and not isinstance(cwd, str):
            self.todo(h, hid, "command-working-directory", f"a JSON {_kind(cwd)}, not a folder: left out")
        elif cwd:
            body += f" cwd {fmt_string(cwd)}"
        for prop in ("execute-command", "command-working-directory"):
            if isinstance(hook.get(prop), str) and "{{" in hook[prop]:
                self.todo(h, hid, prop, "a template ({{ ... }}), which is not evaluated: write the value it gives")
        head = f"action {h.label}" + (f"({', '.join(params)})" if params else "")
        return f"{head} = {body}", with_args


def _program(command: str, cwd: object) -> str:
    """The program of a hook's ``exec``: webhook looks a relative ``execute-command`` up in
    the hook's ``command-working-directory`` (``./deploy.sh`` with ``/srv/app`` runs
    ``/srv/app/deploy.sh``; a bare name too: it joins the two before its lookup,
    adnanh/webhook#316 and #457), while a relative program of an action is relative to the rules file's folder whatever
    its ``cwd``: so the two are written joined. A template in either is left as written
    (its TODO says so)."""
    if not isinstance(cwd, str) or not cwd or command.startswith("/") or "{{" in command + cwd:
        return command
    return posixpath.join(cwd, command[2:] if command.startswith("./") else command)


# --------------------------------------------------------------------------- the file

def convert_webhook(text: str, file: str = "hooks.json", url_prefix: str = URL_PREFIX) -> Conversion:
    """Convert the text of an adnanh/webhook hooks file (JSON) into a rules file's text;
    ``url_prefix`` is webhook's ``-urlprefix`` (a hook's route is ``/PREFIX/ID``)."""
    hooks, error = load_hooks(text, file)
    if hooks is None:
        return Conversion(error=error)
    conv = _Converter(file, url_prefix.strip("/"))
    blocks = [conv.hook(h) for h in hooks]
    base = file.replace("\\", "/").rpartition("/")[2]  # the file's name, not where it was: same bytes anywhere
    head = [f"# Converted from {base} by `triggerc convert webhook` (README: Coming from adnanh/webhook).",
            "# One rule per hook; a delivery is answered 202 once journaled, and the command runs after."]
    if conv.secret_lines:
        head += ["", *conv.secret_lines]
    out = "\n".join(head + [line for b in blocks for line in ["", *b]]) + "\n"
    formatted, diags = format_text(out, file)
    if formatted is None:  # a bug of the converter: say so rather than write a broken file
        raise AssertionError(f"convert webhook wrote rules that do not parse: {list(diags)}\n{out}")
    conv.result.text = formatted
    return conv.result
