"""Webhook verification schemes: one closed table, read by the manifest and the HTTP source.

A provider names the schemes it accepts (:class:`~triggerlang.providers.base.Verification`);
the manifest carries ``{"scheme", "secret", "header"?}`` per route; the HTTP source calls
:func:`check` on the raw body before anything parses it. Every comparison is constant-time
(:func:`hmac.compare_digest`). Nothing here imports a server library.

| scheme | reads | passes when |
|---|---|---|
| ``github`` | ``X-Hub-Signature-256`` | ``sha256=<hex HMAC-SHA256 of the body>`` |
| ``gitea`` | ``X-Gitea-Signature`` / ``X-Forgejo-Signature`` / ``X-Gogs-Signature`` (bare hex), else ``X-Hub-Signature-256`` (``sha256=<hex>``) | the first of those headers present holds the body's HMAC |
| ``hmac`` | ``X-Signature-256`` or the route's ``header`` | ``sha256=<hex>`` or the bare hex (several joined by commas: one matches) |
| ``hmac-sha1``, ``hmac-sha512`` | ``X-Signature`` or the route's ``header`` | the same with SHA-1 (``sha1=<hex>``), SHA-512 (``sha512=<hex>``): adnanh/webhook's ``payload-hmac-sha1``/``-sha512`` |
| ``token`` | ``X-Gitlab-Token`` or the route's ``header`` | the header is the secret |
| ``bearer`` | ``Authorization`` or the route's ``header`` | ``Bearer <secret>`` |
| ``query`` | the query parameter the route names (``param``, ``token`` by default), or that top-level field of a JSON object or urlencoded form body | the parameter is the secret (adnanh/webhook's ``?token=``, Jenkins' Generic Webhook Trigger); the HTTP source drops it from the event, and refuses (400) a request that sends it twice with different values |
| ``standard`` | ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``, each once | one ``v1,<base64>`` of the space-separated list is the HMAC of ``id.timestamp.body`` keyed with the base64 key after ``whsec_``, and the timestamp is within :data:`STANDARD_TOLERANCE` of now |

Decision (standard): ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` are each
read once (a scheme's ``single``). A request that sends one of them twice with different
values is refused (400, by the HTTP source, before the signature is computed) rather than
verified with the first value, as the reference libraries' ``headers.get`` do: the
signature would vouch for one timestamp or id while the event's ``headers`` (and a rule or
an action reading them) hold both, and a proxy in front that keeps the last value would
have judged the other (a stale timestamp after a fresh one passed). No sender of the
standard sends one twice; the spec puts several signatures in one header, space-separated.
The same value twice says one thing and is taken, as for every delivery header
(:func:`~triggerlang.providers.base.single_header`).

Decision (standard): a ``webhook-id`` holding a ``.`` is verified like any other, not
refused. The spec asks the *sender* not to let the id (or the timestamp) be user-chosen,
"or at the very least not be allowed to include any ``.``", since ``id.timestamp.body``
could then be cut elsewhere; it sets no rule for receivers, and the reference libraries
(Python, Go, JavaScript) verify such an id. Here the cut cannot move to forge a delivery:
the timestamp must be ASCII digits within 5 minutes of now, so only a sender that signed
an id ending in ``.<a current timestamp>`` could be replayed with its boundaries moved,
and refusing dots would refuse a sender whose ids have them (dotted ids are ordinary ids)
for no gain against its own bug.

Decision (gitea): when several signature headers are present, the first of the list is
the one checked (Gitea sends ``X-Gitea-Signature`` and ``X-Gogs-Signature`` with the same
value); a sender cannot pass by adding a second header with another value, because only
the first present one counts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from ..events import whole_number
from .base import CREDENTIAL_HEADERS

STANDARD_TOLERANCE = 300.0
"""Seconds a Standard Webhooks timestamp may be off the server clock (replay window)."""

def ip_range(text: str) -> "ipaddress.IPv4Network | ipaddress.IPv6Network":
    """One entry of a route's ``allow`` list: an address (``10.1.2.3``, ``::1``) or a CIDR
    range (``192.168.0.0/24``; host bits may be set, ``192.168.0.1/24`` is that /24, as
    adnanh/webhook's ``ip-whitelist`` reads it). ValueError with a plain message if not."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address or a CIDR range") from None


def client_address(host: str | None) -> "ipaddress.IPv4Address | ipaddress.IPv6Address | None":
    """A client's address as the server saw it (an IPv4-mapped IPv6 address as its IPv4
    address); None for no address (a Unix socket) or one that is not an IP address."""
    if not host:
        return None
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def address_allowed(host: str | None, ranges: "tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]") -> bool:
    """Whether a client address is in one of ``ranges`` (a client with no address is in none)."""
    addr = client_address(host)
    return addr is not None and any(addr in r for r in ranges)


Check = Callable[[bytes, Mapping[str, str], bytes, "str | None", float], "str | None"]
"""(secret, lower-case headers, raw body, the route's header, now) -> None if it passes, else why.
A scheme that ``reads_query`` gets the query parameters and the route's parameter name instead
of the headers and a header name."""


@dataclass(frozen=True)
class Scheme:
    """One verification scheme: the headers it reads (lower case) and its check."""

    name: str
    headers: tuple[str, ...]
    check: Check
    custom_header: bool = False  # the route's ``header`` replaces headers[0]
    key: Callable[[str], bytes] = lambda secret: secret.encode("utf-8")
    what: str = ""  # what it checks, for people (the dashboard): "HMAC-SHA1 signature"
    reads_query: bool = False  # its check is given the query parameters in place of the headers
    single: tuple[str, ...] = ()  # headers that must say one thing: sent twice with different values, refused
    either: bool = False  # its headers are alternatives, a delivery carries any one (gitea's)


    def checked(self, header: str | None) -> str | None:
        """The header a delivery must carry with the right value on a route of this scheme
        (``header``: the route's ``header=``), or None when there is no one such header:
        it reads the query, or takes any of several headers (gitea's)."""
        if self.reads_query or self.either:
            return None
        return header.lower() if self.custom_header and header else self.headers[0]

    def reads(self, header: str | None) -> frozenset[str]:
        """The headers this scheme reads on a route (redacted from event data after it)."""
        names = set(self.headers)
        if self.custom_header and header:
            names.discard(self.headers[0])
            names.add(header.lower())
        return frozenset(names)


def hex_hmac(secret: bytes, body: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(secret, body, algorithm).hexdigest().encode("ascii")


def _eq(expected: bytes, given: str) -> bool:
    """Constant-time equality of a secret-derived value and a header value.

    Header values arrive decoded as latin-1 (what HTTP carries), so they are encoded back
    to latin-1 to get the bytes the sender sent; secrets are UTF-8 encoded, so a non-ASCII
    secret sent as UTF-8 bytes compares equal.
    """
    try:
        raw = given.strip().encode("latin-1")
    except UnicodeEncodeError:  # not from the wire (a test's dict, say): cannot match
        return False
    return hmac.compare_digest(expected, raw)


def _github(secret: bytes, headers: Mapping[str, str], body: bytes, header: str | None, now: float) -> str | None:
    value = headers.get("x-hub-signature-256")
    if value is None:
        return "missing x-hub-signature-256 header"
    # GitHub sends lower-case hex; accept upper case from other senders.
    return None if _eq(b"sha256=" + hex_hmac(secret, body), value.lower()) else "signature does not match"


_GITEA_HEADERS = ("x-gitea-signature", "x-forgejo-signature", "x-gogs-signature", "x-hub-signature-256")


def _gitea(secret: bytes, headers: Mapping[str, str], body: bytes, header: str | None, now: float) -> str | None:
    for name in _GITEA_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        v = value.strip().lower()
        if name == "x-hub-signature-256":
            if not v.startswith("sha256="):
                return "signature does not match"
            v = v[len("sha256="):]
        return None if _eq(hex_hmac(secret, body), v) else "signature does not match"
    return "missing x-gitea-signature header (or x-forgejo-signature, x-gogs-signature, x-hub-signature-256)"


MAX_SIGNATURES = 10
"""Comma-separated signatures an ``hmac`` header may hold (adnanh/webhook tries each: a
sender rotating its secret signs with both); a header with more is refused."""


def _hmac_scheme(algorithm: str, default_header: str) -> Check:
    """The check of an ``hmac`` scheme: the route's header (else ``default_header``) holds
    ``<algorithm>=<hex>`` or the bare hex of the body's HMAC, or several of those joined by
    commas, one of which must match. The algorithm is the route's, never the sender's:
    a ``sha1=`` value on a SHA-256 route does not match."""
    prefix = algorithm + "="

    def check(secret: bytes, headers: Mapping[str, str], body: bytes, header: str | None, now: float) -> str | None:
        name = (header or default_header).lower()
        value = headers.get(name)
        if value is None:
            return f"missing {name} header"
        given = value.split(",")
        if len(given) > MAX_SIGNATURES:
            return f"more than {MAX_SIGNATURES} signatures in {name}"
        expected = hex_hmac(secret, body, algorithm)
        ok = False
        for sig in given:
            v = sig.strip().lower()
            ok |= _eq(expected, v[len(prefix):] if v.startswith(prefix) else v)  # each compared: constant work
        return None if ok else "signature does not match"

    return check


def _token(secret: bytes, headers: Mapping[str, str], body: bytes, header: str | None, now: float) -> str | None:
    name = (header or "x-gitlab-token").lower()
    value = headers.get(name)
    if value is None:
        return f"missing {name} header"
    return None if _eq(secret, value) else "token does not match"


def _bearer(secret: bytes, headers: Mapping[str, str], body: bytes, header: str | None, now: float) -> str | None:
    name = (header or "authorization").lower()
    value = headers.get(name)
    if value is None:
        return f"missing {name} header"
    scheme, _, token = value.strip().partition(" ")
    ok = _eq(secret, token)  # compare even when the scheme is wrong: constant work
    return None if ok and scheme.lower() == "bearer" else "bearer token does not match"


def _query_token(secret: bytes, params: Mapping[str, str], body: bytes, param: str | None, now: float) -> str | None:
    """Scheme ``query``: it reads the request's query parameters (percent-decoded, UTF-8)
    where the other schemes read its headers, and ``param`` is the route's parameter."""
    name = param or "token"
    value = params.get(name)
    if value is None:
        return f"missing ?{name}= in the query string (or a top-level {name} field in the body)"
    return None if hmac.compare_digest(secret, value.strip().encode("utf-8")) else "token does not match"


def standard_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64 after ``whsec_``.

    A secret without the prefix is taken as base64 too (some senders show it bare).
    ValueError when it is not base64: the route could never verify a delivery.
    """
    text = secret.strip()
    if text.startswith("whsec_"):
        text = text[len("whsec_"):]
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a Standard Webhooks secret is 'whsec_' followed by base64") from None
    if not key:
        raise ValueError("a Standard Webhooks secret is 'whsec_' followed by base64")
    return key


def standard_signature(key: bytes, msg_id: str | bytes, timestamp: str, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of id.timestamp.body>``, as a sender writes it (``msg_id``
    text is UTF-8 encoded; bytes are the ``webhook-id`` as sent)."""
    raw_id = msg_id.encode("utf-8") if isinstance(msg_id, str) else msg_id
    mac = hmac.new(key, raw_id + f".{timestamp}.".encode("utf-8") + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


_STANDARD_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def _standard(secret: bytes, headers: Mapping[str, str], body: bytes, header: str | None, now: float) -> str | None:
    msg_id, stamp, sigs = (headers.get(h) for h in _STANDARD_HEADERS)
    for name, value in (("webhook-id", msg_id), ("webhook-timestamp", stamp), ("webhook-signature", sigs)):
        if not value or not value.strip():
            return f"missing {name} header"
    stamp = stamp.strip()
    seconds = whole_number(stamp) if len(stamp) <= 12 else None
    if seconds is None:
        return "webhook-timestamp is not a number of seconds"
    if abs(now - seconds) > STANDARD_TOLERANCE:
        return "webhook-timestamp is more than 5 minutes off (a replay, or a wrong clock)"
    try:   # the id's bytes as sent (Starlette's headers are latin-1 text), as the sender signed them
        raw_id: str | bytes = msg_id.strip().encode("latin-1")
    except UnicodeEncodeError:  # not from the wire (a test's dict, say): its text in UTF-8
        raw_id = msg_id.strip()
    expected = standard_signature(secret, raw_id, stamp, body).encode("ascii")
    ok = False
    for sig in sigs.split():
        ok |= _eq(expected, sig)  # every candidate compared: constant work whatever the order
    return None if ok else "signature does not match"


SCHEMES: dict[str, Scheme] = {
    "github": Scheme("github", ("x-hub-signature-256", "x-hub-signature"), _github, what="HMAC-SHA256 signature"),
    "gitea": Scheme("gitea", (*_GITEA_HEADERS, "x-hub-signature"), _gitea, what="HMAC-SHA256 signature",
                    either=True),
    "hmac": Scheme("hmac", ("x-signature-256",), _hmac_scheme("sha256", "x-signature-256"), custom_header=True,
                   what="HMAC-SHA256 signature"),
    "hmac-sha1": Scheme("hmac-sha1", ("x-signature",), _hmac_scheme("sha1", "x-signature"), custom_header=True,
                        what="HMAC-SHA1 signature"),
    "hmac-sha512": Scheme("hmac-sha512", ("x-signature",), _hmac_scheme("sha512", "x-signature"),
                          custom_header=True, what="HMAC-SHA512 signature"),
    "token": Scheme("token", ("x-gitlab-token",), _token, custom_header=True, what="shared token"),
    "bearer": Scheme("bearer", ("authorization",), _bearer, custom_header=True, what="bearer token"),
    "query": Scheme("query", (), _query_token, what="token in the query string", reads_query=True),
    "standard": Scheme("standard", ("webhook-signature",), _standard, key=standard_key,
                       what="Standard Webhooks signature", single=_STANDARD_HEADERS),
}
"""Every verification scheme by name; an unknown scheme in a manifest is an error."""

VERIFY_HEADERS = frozenset(name for scheme in SCHEMES.values() for name in scheme.headers)
"""Every header a scheme reads (a token or a signature): redacted from event data on every
route, not only on the routes that check it (a sender may sign for a secret the rules do
not declare, and a signature is an HMAC of the body keyed with that secret)."""

ALWAYS_REDACTED = CREDENTIAL_HEADERS | VERIFY_HEADERS
"""The headers no rule ever sees the value of, on any route (a route's own ``header=`` too):
a condition on one never holds (``check``: TRG501; ``convert webhook``: a TODO)."""


def check(scheme: str, secret: bytes, headers: Mapping[str, str], body: bytes, header: str | None = None,
          now: float | None = None) -> str | None:
    """None if the request passes ``scheme``, else why not (no secret in the text)."""
    return SCHEMES[scheme].check(secret, headers, body, header, time.time() if now is None else now)
