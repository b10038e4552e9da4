"""The routes of the HTTP source, as the listener manifest's ``sources.http`` section
gives them, and which one takes a request (SPEC §4, §9): for the server
(:mod:`triggerlang.sources.http`), and for what must see a delivery as the server would
without starting one: the checker (TRG501 on a route's own credential) and rule tests
(a ``given`` http event redacted by the route ``serve`` would pick for it). No server
library is imported here, so ``triggerc check`` stays light.

What a route hides from rules beyond what every route hides (its own credential,
:meth:`HttpRoute.withheld`): the header its ``header=`` names (and every header its scheme
reads), whose value rules see as ``<redacted>``; the ``query=`` parameter, left out of the
event's ``query``, and the body's top-level field of that name, left out of ``payload``
(``<redacted>`` in ``text``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterable, Mapping

from .. import defaults
from ..compile.patterns import PatternError, compile_glob, is_literal, literal_prefix
from ..providers import REDACTED, get_provider, provider_names
from ..providers.verify import ALWAYS_REDACTED, SCHEMES, ip_range

RESERVED_PATHS = defaults.BUILT_IN_PATHS
MAX_REPLY = 64 * 1024  # characters of a route's reply= text


@dataclass(frozen=True)
class HttpRoute:
    """One manifest route, checked, with its secret resolved (kept out of repr; empty when
    :func:`parse_routes` was given no secrets)."""

    index: int
    path: str
    kind: str  # a provider's name, or http
    methods: frozenset[str] | None  # None: every method
    scheme: str | None  # a scheme of providers.verify.SCHEMES, or None
    header: str | None  # lower-case header the scheme reads instead of its own (verify["header"])
    secret: bytes = b""
    regex: re.Pattern[str] | None = None  # None: an exact path
    allow: tuple[Any, ...] | None = None  # ip networks a client must be in (allow=[...]); None: any client
    reply: str | None = None  # the text/plain answer to a delivery that started a run (reply="...")
    json_fields: tuple[str, ...] = ()  # form fields that hold a JSON document (json_fields=[...])
    param: str | None = None  # the query parameter holding the token (scheme "query"), dropped from the event

    def __repr__(self) -> str:  # the secret stays out of every log and traceback
        return f"HttpRoute({self.path!r}, {self.kind}, verify={self.scheme})"

    def allows(self, method: str) -> bool:
        return self.methods is None or method in self.methods

    @cached_property
    def redacted_headers(self) -> frozenset[str]:
        """Headers whose values never reach event data: credentials, every signature header
        a scheme knows (verified here or not), and the route's own header."""
        if self.scheme is None:
            return ALWAYS_REDACTED
        return ALWAYS_REDACTED | SCHEMES[self.scheme].reads(self.header)

    def withheld(self, where: str, name: str) -> bool:
        """Whether rules never see the value sent as ``headers.NAME``, ``query.NAME`` or
        ``payload.NAME`` to this route because it is the credential its own options name:
        the header of its ``header=`` (``<redacted>``), or its ``query=`` token (left out
        of ``query``, and of ``payload`` as the body's top-level field). The header a
        scheme reads when none is named (``Authorization``) is a credential on every route
        (:data:`ALWAYS_REDACTED`), not this one's own."""
        if where == "headers":
            return (self.header is not None and name.lower() == self.header
                    and self.header not in SCHEMES[self.scheme or ""].headers)
        return where in ("query", "payload") and name == self.param

    def checks(self, where: str, name: str) -> bool:
        """Whether this route answers 401 to a delivery without the right value of
        ``headers.NAME``, ``query.NAME`` or ``payload.NAME``: its own credential
        (:meth:`withheld`), or the one header its scheme reads where the route names none
        (``Authorization`` for ``token=``, ``X-Hub-Signature-256`` for GitHub's
        ``secret=``), which every route redacts but only this one checks (``check``'s
        TRG501 says the route already checks it rather than to check it on the route)."""
        if where == "headers" and self.scheme is not None and name.lower() == SCHEMES[self.scheme].checked(self.header):
            return True
        return self.withheld(where, name)

    def served(self, data: dict[str, Any]) -> dict[str, Any]:
        """An http or webhook event's ``data`` as this route hands it to rules: its own
        header ``<redacted>``, its ``query=`` token left out of ``query`` and of a JSON
        object ``payload`` (and ``<redacted>`` in ``text``), in place."""
        headers, query, payload = data.get("headers"), data.get("query"), data.get("payload")
        if isinstance(headers, dict):
            for k in headers:
                if self.withheld("headers", k):
                    headers[k] = REDACTED
        if self.param is not None:
            if isinstance(query, dict):
                query.pop(self.param, None)
            if isinstance(payload, dict) and isinstance(payload.get(self.param), str):
                value = payload.pop(self.param)
                if isinstance(data.get("text"), str):
                    data["text"] = hide_value(data["text"], value)
        return data


def parse_routes(config: Mapping[str, Any], secrets: Mapping[str, str] | None) -> list[HttpRoute]:
    """The manifest's routes as :class:`HttpRoute`; ValueError on a malformed route.
    ``secrets`` None: the routes' shape only, their secrets left unread (the checker and
    rule tests, which never verify a request)."""
    routes: list[HttpRoute] = []
    for i, r in enumerate(config.get("routes") or ()):
        if not isinstance(r, Mapping):
            raise ValueError(f"http route #{i + 1} is not an object")
        path, kind = r.get("path"), r.get("kind", "http")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"http route #{i + 1}: path must be a string starting with '/', not {path!r}")
        if path in RESERVED_PATHS:
            raise ValueError(f"http route {path}: {path} is built in (health and readiness checks, emit, metrics)")
        if kind != "http" and (not isinstance(kind, str) or get_provider(kind) is None):
            raise ValueError(f"http route {path}: unknown kind {kind!r} "
                             f"(expected one of {', '.join([*provider_names(), 'http'])})")
        methods: frozenset[str] | None
        if kind != "http":
            methods = frozenset({"POST"})
        elif r.get("methods") is None:
            methods = None
        else:
            ms = r["methods"]
            if isinstance(ms, str) or not all(isinstance(m, str) and m for m in ms):
                raise ValueError(f"http route {path}: methods must be a list of method names")
            methods = frozenset(m.upper() for m in ms)
        scheme = header = param = None
        secret = b""
        verify = r.get("verify")
        if verify is not None:
            if not isinstance(verify, Mapping):
                raise ValueError(f"http route {path}: verify must be an object or null")
            scheme = verify.get("scheme")
            if scheme not in SCHEMES:
                raise ValueError(
                    f"http route {path}: unknown verify scheme {scheme!r} (expected one of {', '.join(SCHEMES)})"
                )
            if SCHEMES[scheme].custom_header and verify.get("header"):
                header = str(verify["header"]).lower()
            if scheme == "query":
                param = verify.get("param") or "token"
                if not isinstance(param, str):
                    raise ValueError(f"http route {path}: verify param must be a query parameter's name")
            if secrets is not None:
                secret = _secret(path, scheme, verify.get("secret"), secrets)
        allow = None
        if r.get("allow") is not None:
            given = r["allow"]
            if isinstance(given, str) or not all(isinstance(a, str) for a in given):
                raise ValueError(f"http route {path}: allow must be a list of addresses or CIDR ranges")
            try:
                allow = tuple(ip_range(a) for a in given)
            except ValueError as e:
                raise ValueError(f"http route {path}: allow: {e}") from None
        reply = r.get("reply")
        if reply is not None and (not isinstance(reply, str) or len(reply) > MAX_REPLY):
            raise ValueError(f"http route {path}: reply must be a text of at most {MAX_REPLY} characters")
        json_fields = r.get("json_fields") or ()
        if isinstance(json_fields, str) or not all(isinstance(f, str) for f in json_fields):
            raise ValueError(f"http route {path}: json_fields must be a list of field names")
        regex = None
        if not is_literal(path):
            try:
                regex = compile_glob(path)
            except PatternError as e:
                raise ValueError(f"http route {path}: {e}") from None
        routes.append(HttpRoute(i, path, kind, methods, scheme, header, secret, regex, allow, reply,
                                tuple(json_fields), param))
    return routes


def _secret(path: str, scheme: str, name: Any, secrets: Mapping[str, str]) -> bytes:
    """The key of a route's check from the value of its secret; ValueError when it has none."""
    value = secrets.get(name) if isinstance(name, str) else None
    if not value:
        raise ValueError(f"http route {path}: secret {name!r} has no value (is it declared and set?)")
    try:
        return SCHEMES[scheme].key(value)
    except ValueError as e:
        raise ValueError(f"http route {path}: secret {name!r}: {e}") from None


class RouteTable:
    """Finds the route for a path: exact paths first, then globs by longest literal prefix."""

    def __init__(self, routes: Iterable[HttpRoute]) -> None:
        self.exact: dict[str, list[HttpRoute]] = {}
        globs: list[HttpRoute] = []
        for r in routes:
            if r.regex is None:
                self.exact.setdefault(r.path, []).append(r)
            else:
                globs.append(r)
        self.globs = sorted(globs, key=lambda r: (-len(literal_prefix(r.path)), r.index))

    def candidates(self, path: str) -> list[HttpRoute]:
        found = self._candidates(path)
        if not found and len(path) > 1 and path.endswith("/"):
            found = self._candidates(path.rstrip("/") or "/")
        return found

    def pick(self, path: str, method: str) -> HttpRoute | None:
        """The route that takes a ``method`` request to ``path``: the first candidate that
        allows the method (None: the server answers 404 or 405)."""
        return next((r for r in self.candidates(path) if r.allows(method)), None)

    def _candidates(self, path: str) -> list[HttpRoute]:
        return list(self.exact.get(path, ())) + [r for r in self.globs if r.regex.match(path)]  # type: ignore[union-attr]


def hide_value(text: str, value: str) -> str:
    """``text`` (a body as sent) with ``value`` replaced by ``<redacted>`` where it stands,
    as written and as JSON writes it (escaped)."""
    for form in {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}:
        if form:
            text = text.replace(form, REDACTED)
    return text
