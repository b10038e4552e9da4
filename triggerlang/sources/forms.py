"""Request bodies that are not JSON: HTML forms (``application/x-www-form-urlencoded``,
``multipart/form-data``) read into a generic http event's ``payload`` (SPEC §4).

Slack slash commands, Twilio, Mailgun, Plex and many small senders post forms, not JSON;
adnanh/webhook reads both kinds into its ``payload`` and so does this module, so that
``payload.token="..."`` or ``<payload.text>`` means the same for a form as for JSON.

Decisions:

- **JSON first.** A body that parses as JSON is JSON whatever its ``Content-Type``
  (``curl -d '{...}'`` says form): the caller tries JSON, then this module.
- **Credentials.** A field named as a credential of
  :data:`~triggerlang.providers.base.CREDENTIAL_PARAMS` (Slack's ``token``, ``password``,
  ``api_key``...) is redacted as a query parameter is: its name stays, its value is
  ``<redacted>``, in ``payload`` and in ``text`` (the HTTP source does it, with
  :func:`hide_fields` for an urlencoded body's text; in a multipart body's text each such
  value is replaced where it stands). A JSON body is not: its ``token`` may be anything,
  and it is no form the sender filled in. The route's own ``query=`` token is read from a
  form's field too (and from a JSON object's top-level field: the HTTP source's
  ``_param_values``), and left out like the query parameter.
- **A repeated field keeps its last value**, as ``query`` does (one rule for both, the
  same function); adnanh/webhook keeps the first.
- **At most** :data:`MAX_FIELDS` fields (a form body with more, or multipart parts, has no
  ``payload``).
- **Field values are strings.** A form carries no types: ``payload.count="3"``, not
  ``payload.count=3``. A field that holds a JSON document (Travis CI's ``payload=<JSON>``,
  Plex's ``payload`` part) is read as JSON when the route names it in ``json_fields``
  (adnanh/webhook's ``parse-parameters-as-json``); a value that is not JSON stays a string.
- **Multipart**: a part without a file name is a string field; a part sent as
  ``application/json`` (a file or not) is parsed as JSON, as adnanh/webhook does (a Plex
  event's ``payload`` part, when Plex types it); any other file part becomes
  ``{"filename", "content_type", "size"}``: a binary upload is not copied into the
  journal's ``payload`` (the raw body stays in ``text``). A multipart body that cannot be
  read is no payload (``null``), not a refused request, as a body that is not JSON is.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qsl, unquote_plus

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
MAX_FIELDS = 10_000
"""Fields of a form body read into ``payload``; a body with more gets ``null`` (a 10 MiB
body of ``a&a&...`` would otherwise be millions of entries)."""


def media_type(headers: Mapping[str, str]) -> str:
    """The request's media type, lower case, without parameters (``""`` when absent)."""
    return (headers.get("content-type") or "").split(";", 1)[0].strip().lower()


def fields(text: str, max_fields: int | None = None) -> dict[str, str]:
    """``a=1&b=x+y`` as ``{"a": "1", "b": "x y"}``: blank values kept, a repeated key
    keeps its last value (a query string and a form body alike). ValueError past
    ``max_fields``."""
    out: dict[str, str] = {}
    for k, v in parse_qsl(text, keep_blank_values=True, max_num_fields=max_fields):
        out[k] = v
    return out


def hide_fields(text: str, hide: Callable[[str], bool], mark: str) -> str:
    """An urlencoded body's ``text`` with the value of each field whose (decoded) name
    ``hide`` says replaced by ``mark``; everything else as it was sent."""
    pieces = text.split("&")
    for i, piece in enumerate(pieces):
        name, eq, _ = piece.partition("=")
        if eq and hide(unquote_plus(name)):
            pieces[i] = f"{name}={mark}"
    return "&".join(pieces)


def form_payload(headers: Mapping[str, str], body: bytes, parse_json: Callable[[bytes], Any],
                 json_fields: Iterable[str] = ()) -> Any:
    """The payload of a non-JSON body sent as a form: its fields, each of ``json_fields``
    that holds JSON read as JSON (one that does not stays a string); None for any other
    type."""
    kind = media_type(headers)
    out: dict[str, Any] | None
    if kind == FORM:
        try:
            out = dict(fields(body.decode("utf-8", errors="replace"), MAX_FIELDS))
        except ValueError:  # more fields than any form has: not read into memory as a dict
            return None
    elif kind == MULTIPART:
        out = _multipart(headers.get("content-type") or "", body, parse_json)
    else:
        return None
    for name in json_fields if out is not None else ():
        value = out.get(name)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                out[name] = parse_json(value.encode("utf-8"))
    return out


def _multipart(content_type: str, body: bytes, parse_json: Callable[[bytes], Any]) -> dict[str, Any] | None:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", errors="replace")
    try:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    except Exception:  # the email package's parser is lenient; anything it raises is bad input
        return None
    if not message.is_multipart():
        return None
    out: dict[str, Any] = {}
    for i, part in enumerate(message.iter_parts()):
        if i >= MAX_FIELDS:
            return None
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            continue
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if part.get_content_type() == "application/json":
            try:
                out[name] = parse_json(data)
                continue
            except ValueError:
                pass
        if filename is None:
            out[name] = _text(data, part.get_content_charset())
        else:
            out[name] = {"filename": filename, "content_type": part.get_content_type(), "size": len(data)}
    return out


def _text(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", errors="replace")
