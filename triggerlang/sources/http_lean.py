"""The fast front end of the HTTP source: webhook routes answered by the connection itself.

uvicorn serves the listening socket with its httptools protocol (llhttp parses the
request in C). For a request whose path is a webhook or generic route of the manifest,
the protocol below does what the ASGI application would, without the application: no
ASGI scope, no task, no Starlette request, one ``write`` for the whole answer. It calls
the SAME steps as the Starlette endpoint (:class:`~triggerlang.sources.http._Handlers`:
routing, the size limit, back-pressure, the provider registry's verification and
normaliser, ``submit``), in the same order, so both front ends give the same answers;
every other request (``/healthz``, ``/readyz``, ``/events``, the dashboard and its API, unknown paths)
goes to the Starlette application as before.

How a fast request goes through the connection:

- **headers** (``on_headers_complete``): route (404/405 come from the handlers), then a
  ``Content-Length`` over the limit is answered ``413`` at once, and so is ``503`` when
  the runs' backlog is over its bound; ``Expect: 100-continue`` gets its ``100`` only
  when the body is wanted;
- **body**: gathered up to the limit (``413`` as soon as it passes it; the rest is read
  and dropped, as the Starlette path does);
- **complete**: ``handle`` verifies and submits; the answer is written when the events
  are committed (a callback on the commit's future, not a task);
- **pipelining and keep-alive** stay uvicorn's: a fast request stands in the connection's
  pipeline where a request-response cycle would, answers go out in order, the keep-alive
  timer, flow control and graceful shutdown are uvicorn's own;
- **headers** are bounded (:data:`MAX_HEAD`, ``431``): httptools gathers a request's
  line and headers without a limit, so a client that never ends them would grow the
  process's memory without bound (the body has its own limit, ``413``);
- **stopping**: a request being answered finishes; an idle connection, and one whose
  request is still coming in, is closed at once (:meth:`LeanProtocol.shutdown`), so a
  stalled client does not hold the stop for uvicorn's graceful-shutdown time;
- **a client that half-closes** after its request (``shutdown(SHUT_WR)``) still gets its
  answer, then the connection closes (uvicorn alone closes on end-of-file at once, and an
  answer that waits for the journal's commit would be lost).

``X-Forwarded-For`` is applied exactly as uvicorn's proxy middleware applies it for the
application (from the peers it trusts: loopback), so ``remote`` is the same on both paths.

The subclass relies on a few names of uvicorn's ``HttpToolsProtocol`` (checked when the
class is made: if one is missing, :func:`lean_protocol` returns None and every request
takes the Starlette path, slower but the same).
"""

from __future__ import annotations

import http
import json
import logging
import time
import urllib.parse
from dataclasses import dataclass
from functools import partial
from typing import Any, Mapping

from starlette.datastructures import Headers
from starlette.responses import Response

_NEEDED = ("on_message_begin", "on_headers_complete", "on_body", "on_message_complete", "on_response_complete",
           "_start_asgi_task", "connection_made", "connection_lost", "_unset_keepalive_if_required", "shutdown",
           "timeout_keep_alive_handler", "data_received")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
MAX_HEAD = 1024 * 1024
"""Bytes a request line and its headers may take (reads that end inside them, counted
whole): past it, ``431`` and the connection is closed. httptools sets no bound, and the
headers arrive before any signature can be checked."""
REQUEST_TIMEOUT = 30.0
"""Seconds a request may take to come in whole, from its first byte to its body's last
(Go's ``http.Server.ReadTimeout``; nginx's ``client_header_timeout`` and
``client_body_timeout``, 60 s each, count between reads, which a client sending a byte
now and then never reaches): past it, ``408`` and the connection is closed. uvicorn sets
no such bound, so a client that stalled mid-request, or sent nothing at all after
connecting, held its connection (and a file descriptor of ``serve``) for ever: a few
hundred of them (slowloris) and ``serve`` could open no journal or log file, nor accept
the next sender. A connection that sends nothing is closed after the keep-alive timeout
(uvicorn's 5 s), as an idle keep-alive connection is.

A total rather than nginx's time between reads, because a slowloris client sends a byte
just often enough to pass the latter; 30 s because the senders give up sooner (GitHub
closes a delivery after 10 s) and a 10 MiB body, the largest taken, needs only 350 KB/s
to arrive within it."""
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))  # Starlette's JSONResponse


@dataclass
class Incoming:
    """One request as the handlers see it, from either front end (Starlette's, or the
    fast protocol of :mod:`triggerlang.sources.http_lean`)."""

    method: str
    path: str  # percent-decoded
    raw_path: bytes  # as sent (the log's), without the query string
    query: bytes  # the raw query string
    headers: Headers  # lower-case names
    client: str | None  # the peer (X-Forwarded-For applied for loopback peers)
    body: bytes = b""
    verify: str = "skipped"  # the signature's result: ok, failed, none (no verification), skipped
    trigger: str | None = None  # the delivery's (first) event, once it is read


@dataclass
class Reply:
    """An answer: a JSON body, a status, extra headers. With ``text`` (a route's
    ``reply=``), the body sent is that text as ``text/plain``; ``content`` stays what the
    delivery history reads."""

    status: int
    content: Any
    headers: Mapping[str, str] | None = None
    text: str | None = None

    def body(self) -> bytes:
        if self.text is not None:
            return self.text.encode("utf-8")
        return _ENCODER.encode(self.content).encode("utf-8")

    @property
    def media_type(self) -> str:
        return "application/json" if self.text is None else "text/plain; charset=utf-8"

    def response(self) -> Response:
        return Response(self.body(), status_code=self.status, headers=dict(self.headers or {}),
                        media_type=self.media_type)


def _status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("ascii")


_STATUS = {s: _status_line(s) for s in (200, 202, 400, 401, 403, 404, 405, 413, 500, 503)}


class _NoEvent:
    """uvicorn sets a cycle's ``message_event`` when the connection drops; nothing waits here."""

    def set(self) -> None:
        pass


_NO_EVENT = _NoEvent()


class _LeanRequest:
    """A fast request. In the connection's pipeline it stands where uvicorn's
    ``RequestResponseCycle`` would: ``response_complete``, ``keep_alive``,
    ``disconnected`` and ``message_event`` are what uvicorn reads of a cycle."""

    __slots__ = ("handlers", "route", "inc", "keep_alive", "expect_100", "body", "reply", "started", "complete",
                 "response_complete", "disconnected", "message_event", "t0")

    def __init__(self, handlers: Any, inc: Incoming, keep_alive: bool, expect_100: bool) -> None:
        self.handlers = handlers
        self.route: Any = None  # the HttpRoute
        self.inc = inc
        self.keep_alive = keep_alive
        self.expect_100 = expect_100
        self.body = bytearray()
        self.reply: Reply | None = None  # answered before the body (405, 413, 503)
        self.started = False  # at the head of the pipeline: it may answer
        self.complete = False  # the whole body is in
        self.response_complete = False
        self.disconnected = False
        self.message_event = _NO_EVENT
        self.t0 = time.monotonic()


def _received(cycle: Any) -> bool:
    """Whether the whole request of ``cycle`` is in: a fast request's body, or that of
    uvicorn's ``RequestResponseCycle`` (``more_body`` until its last byte)."""
    if isinstance(cycle, _LeanRequest):
        return cycle.complete
    return not getattr(cycle, "more_body", False)


class _NoRoutes:
    lean = None  # every request goes to the ASGI application


def bounded_protocol() -> Any:
    """uvicorn's ``http`` setting for a server without webhook routes (the standalone
    dashboard, a worker's ``/metrics``): the protocol below with no fast routes, for its
    bound on a request's headers (:data:`MAX_HEAD`); ``"auto"`` when it cannot be made."""
    return lean_protocol(_NoRoutes) or "auto"


def lean_protocol(entry: Any) -> type | None:
    """An ``HttpToolsProtocol`` subclass that answers the routes of ``entry.lean`` (the
    current ``http._Handlers``, swapped by a reload) itself; None when httptools or the
    uvicorn names it needs are missing."""
    try:
        import httptools
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return None
    if not all(hasattr(HttpToolsProtocol, name) for name in _NEEDED):
        return None

    class LeanProtocol(HttpToolsProtocol):  # type: ignore[misc,valid-type]
        _lean: _LeanRequest | None = None
        _idle_since: float | None = None
        _peer: str | None = None
        _trusted_peer = False
        _in_head = False  # inside a request's line and headers
        _deadline: Any = None  # the timer of the request coming in (REQUEST_TIMEOUT)
        _before: Any = None  # the cycle before the request coming in (still being answered, maybe)
        _head_bytes = 0  # bytes of the reads that arrived while _in_head

        def data_received(self, data: bytes) -> None:  # type: ignore[override]
            if self._in_head:  # the last read ended inside a request's headers: this one is more of them
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEAD:
                    self._refuse_head()
                    return
                super().data_received(data)
                return
            super().data_received(data)
            if self._in_head:  # this read began a request and ended inside its headers: it counts too
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEAD:
                    self._refuse_head()

        def _refuse_head(self) -> None:
            self._in_head = False
            handlers = entry.lean
            if handlers is not None:
                handlers.log.info("rejected a request from %s: 431 its headers are over %d bytes",
                                  self._peer or "-", MAX_HEAD,
                                  extra={"status": 431, "remote": self._peer or "-", "reason": "headers too large"})
            if not self.transport.is_closing():
                body = _ENCODER.encode({"error": f"the request's headers are over the limit of {MAX_HEAD} bytes"}
                                       ).encode("utf-8")
                self.transport.write(self._response(431, body, None, close=True))
                self.transport.close()

        def _response(self, status: int, body: bytes, headers: Mapping[str, str] | None, close: bool,
                      with_body: bool = True, media_type: str = "application/json") -> bytes:
            """An answer as sent: the status line, uvicorn's default headers, ours."""
            out = [_STATUS.get(status) or _status_line(status)]
            for name, value in self.server_state.default_headers:
                out += [name, b": ", value, b"\r\n"]
            out.append(b"content-type: %s\r\ncontent-length: %d\r\n" % (media_type.encode("ascii"), len(body)))
            for name, value in (headers or {}).items():
                out += [name.lower().encode("latin-1"), b": ", value.encode("latin-1"), b"\r\n"]
            if close:
                out.append(b"connection: close\r\n")
            out.append(b"\r\n")
            if with_body:
                out.append(body)
            return b"".join(out)

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._peer = self.client[0] if self.client else None
            trusted = getattr(self.app, "trusted_hosts", None)  # ProxyHeadersMiddleware, when on
            self._trusted_peer = trusted is not None and self._peer in trusted
            # idle until its first byte: closed after the keep-alive timeout, as after an answer
            self._idle_since = self.loop.time()
            self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self._keep_alive_check)

        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            if self.timeout_keep_alive_task is not None:
                self.timeout_keep_alive_task.cancel()
                self.timeout_keep_alive_task = None

        # The keep-alive timeout, without a timer per answer: uvicorn arms one after every
        # answer and cancels it when the next request comes; here one timer per idle
        # period checks when the connection last went idle.

        def _unset_keepalive_if_required(self) -> None:
            self._idle_since = None

        def on_response_complete(self) -> None:
            self.server_state.total_requests += 1
            if self.transport.is_closing():
                return
            self._idle_since = None
            self.flow.resume_reading()
            if self.pipeline:
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)
                return
            self._idle_since = self.loop.time()
            if self.timeout_keep_alive_task is None:
                self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self._keep_alive_check)

        def _keep_alive_check(self) -> None:
            self.timeout_keep_alive_task = None
            if self._idle_since is None:  # busy: the next answer arms it again
                return
            left = self._idle_since + self.timeout_keep_alive - self.loop.time()
            if left > 0:
                self.timeout_keep_alive_task = self.loop.call_later(left, self._keep_alive_check)
            else:
                self.timeout_keep_alive_handler()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._lean = None
            self._in_head, self._head_bytes = True, 0
            self._before = self.cycle
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(REQUEST_TIMEOUT, self._request_timed_out)

        def _request_timed_out(self) -> None:
            """The request that began :data:`REQUEST_TIMEOUT` ago is not all in: ``408``
            and close (nothing of it was journaled: the sender may retry). Not while an
            earlier request of the connection is still being answered, nor while uvicorn
            has paused reading (a pipelined request waits in the socket, not on its
            sender): the time starts again. One that was answered already (a ``413`` whose
            rest was being read and dropped) is closed without a second answer."""
            self._deadline = None
            if self.transport.is_closing():
                return
            before = self._before
            if self.flow.read_paused or (before is not None and not before.response_complete):
                self._deadline = self.loop.call_later(REQUEST_TIMEOUT, self._request_timed_out)
                return
            current = self.cycle if self.cycle is not before else None  # None: its headers are not all in
            self._in_head = False
            if current is not None:
                current.keep_alive = False
                if current.response_complete:
                    self.transport.close()
                    return
                current.response_complete = True  # (no answer of its own may follow this one)
            handlers = entry.lean
            if handlers is not None:
                handlers.log.info("rejected a request from %s: 408 not all sent within %.0fs",
                                  self._peer or "-", REQUEST_TIMEOUT,
                                  extra={"status": 408, "remote": self._peer or "-", "reason": "request timeout"})
            body = _ENCODER.encode({"error": f"the request was not all sent within {REQUEST_TIMEOUT:.0f}s"}
                                   ).encode("utf-8")
            self.transport.write(self._response(408, body, None, close=True))
            self.transport.close()

        def on_headers_complete(self) -> None:
            self._in_head = False
            handlers = entry.lean  # http._Handlers
            if handlers is None or self.parser.should_upgrade():
                return super().on_headers_complete()
            try:
                raw_path = httptools.parse_url(self.url).path
                path = raw_path.decode("ascii")
            except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
                return super().on_headers_complete()
            if "%" in path:
                path = urllib.parse.unquote(path)
            if not handlers.fast_path(path):
                return super().on_headers_complete()
            method = self.parser.get_method().decode("ascii")
            query = self.url.partition(b"?")[2].partition(b"#")[0]
            headers = Headers(raw=self.headers)
            inc = Incoming(method, path, raw_path, query, headers, self._client_host(headers))
            version = self.parser.get_http_version()
            req = _LeanRequest(handlers, inc, version != "1.0" and self.parser.should_keep_alive(),
                               self.expect_100_continue)
            route = handlers.route(inc)
            if isinstance(route, Reply):
                req.reply = route
            else:
                req.route = route
                req.reply = handlers.refuse_early(route, inc)
            existing = self.cycle
            self.cycle = req  # type: ignore[assignment]
            self._lean = req
            if existing is None or existing.response_complete:
                self._lean_start(req)
            else:  # pipelined behind an unanswered request: uvicorn starts it in turn
                self.flow.pause_reading()
                self.pipeline.appendleft((req, None))

        def on_body(self, body: bytes) -> None:
            req = self._lean
            if req is None:
                return super().on_body(body)
            if req.reply is not None or req.response_complete:
                return  # answered already (413...): the rest is read and dropped
            if len(req.body) + len(body) > req.handlers.max_body:
                assert req.route is not None
                req.reply = req.handlers.reject(req.inc, req.route.path, 413,
                                                f"body is over the limit of {req.handlers.max_body} bytes")
                if req.started:
                    self._lean_send(req, req.reply)
                return
            req.body += body

        def on_message_complete(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            req = self._lean
            if req is None:
                return super().on_message_complete()
            self._lean = None
            req.complete = True
            if req.started and req.reply is None and not req.response_complete:
                self._lean_handle(req)

        def shutdown(self) -> None:
            """The server is stopping (uvicorn calls this on every connection). A request
            that is all in and being answered (its event waiting for the journal's commit,
            a dashboard page being made) gets its answer, then the connection closes, as
            uvicorn does it. A connection with nothing being answered is closed now: an
            idle one, and one whose request is still coming in (headers or body not all
            sent): nothing of that request was journaled, so the sender retries as after
            any dropped connection. uvicorn kept the latter open and waited its whole
            graceful-shutdown time for a client that had stalled mid-request, then logged
            an ERROR ("Cancel 0 running task(s)")."""
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete and _received(cycle):
                super().shutdown()
            else:
                self.transport.close()

        def eof_received(self) -> bool | None:
            """The client closed its side (``shutdown(SHUT_WR)`` after its request): answer
            what it sent, then close; uvicorn would close at once, losing an answer that
            waits for the journal's commit. A request that is not all in when its sender
            stops sending (half its body, then EOF) never will be: the connection closes
            now, as a stop closes it (nothing of it was journaled). Kept half-open, it
            waited, answerless, for as long as the client cared to hold it."""
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete and _received(cycle):
                cycle.keep_alive = False
                return True  # half-open: the answer can still be written
            return None

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            if isinstance(cycle, _LeanRequest):  # the next of a pipeline: in a callback, not deeper in the stack
                self.loop.call_soon(self._lean_start, cycle)
            else:
                super()._start_asgi_task(cycle, app)

        # -- the fast request's life

        def _lean_start(self, req: _LeanRequest) -> None:
            req.started = True
            if req.reply is not None:
                self._lean_send(req, req.reply)
            elif req.complete:
                self._lean_handle(req)
            elif req.expect_100 and not self.transport.is_closing():
                self.transport.write(_CONTINUE)

        def _lean_handle(self, req: _LeanRequest) -> None:
            assert req.route is not None
            req.inc.body = bytes(req.body)
            req.body = bytearray()
            try:
                req.handlers.handle(req.route, req.inc, partial(self._lean_send, req))
            except Exception:  # a bug: the one 5xx, with the traceback in the log
                req.handlers.log.exception("the %s delivery could not be handled", req.route.path)
                self._lean_send(req, Reply(500, {"error": "internal error: the event was not accepted, try again"}))

        def _lean_send(self, req: _LeanRequest, reply: Reply) -> None:
            if req.response_complete:
                return
            req.response_complete = True
            handlers = req.handlers
            if req.route is not None:
                handlers.delivered(req.route, req.inc, reply, req.t0)
            if handlers.log.isEnabledFor(logging.DEBUG):
                handlers.log.debug("%s %s -> %s (%.1f ms)", req.inc.method, req.inc.raw_path.decode("latin-1"),
                                   reply.status, (time.monotonic() - req.t0) * 1000)
            if req.disconnected or self.transport.is_closing():
                return
            self.transport.write(self._response(reply.status, reply.body(), reply.headers, not req.keep_alive,
                                                req.inc.method != "HEAD", reply.media_type))
            if not req.keep_alive:
                self.transport.close()
            self.on_response_complete()

        def _client_host(self, headers: Headers) -> str | None:
            """The client as uvicorn's proxy middleware would make it (X-Forwarded-For from a
            trusted peer)."""
            if not self._trusted_peer:
                return self._peer
            forwarded = headers.getlist("x-forwarded-for")
            if not forwarded:
                return self._peer
            found, _ = self.app.trusted_hosts.get_trusted_client_address(", ".join(forwarded))
            return found or self._peer

    return LeanProtocol
