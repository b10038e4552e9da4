"""Prometheus metrics of a running ``serve`` or ``worker`` (issue 14), with prometheus-client.

``GET /metrics`` on ``serve``'s HTTP listener (any rules with an ``http`` source, or
``--http``/``--dashboard``), and on ``triggerc worker --metrics-port PORT``, answers the
Prometheus text format. Access is the dashboard's: without a token loopback clients only
(403 for others), with ``--token`` (``TRIGGERLANG_DASHBOARD_TOKEN``) the token, as
``Authorization: Bearer`` or ``?token=``, compared in constant time (401 without it).

Every process has its own registry (no module-level state), so two runtimes in one
process (the tests) never mix their counts. What each process counts:

=========================================  ===========================================  =======================
metric                                     what                                         counted by
=========================================  ===========================================  =======================
``triggerlang_events_total``               events journaled, by ``source``, ``type``    serve / ingest node
``triggerlang_deliveries_total``           webhook deliveries answered, by ``route``,   serve / ingest node
                                           ``status`` (the HTTP code)
``triggerlang_deliveries_rejected_total``  refused deliveries by ``route`` and           serve / ingest node
                                           ``reason`` (``signature``, ``bad_request``,
                                           ``too_large``, ``forbidden``, ``unavailable``)
``triggerlang_runs_total``                 runs that reached a final status, by         the process that
                                           ``rule``, ``status`` (``skipped`` too)        ran or decided them
``triggerlang_run_duration_seconds``       histogram of run times, by ``rule``          idem
``triggerlang_run_queue_wait_seconds``     histogram of queued -> started, by ``rule``  idem
``triggerlang_journal_commit_seconds``     histogram of the commit of an event and      serve / ingest node
                                           its runs (the ``202`` waits for it)
``triggerlang_chain_depth_exceeded_total`` events too deep in a ``run.*`` chain         idem
``triggerlang_rule_paused``                1 while loop protection pauses a rule        idem
``triggerlang_runs_queued``,               runs waiting / going now, by ``rule``, read  serve / ingest node
``triggerlang_runs_running``               from the store at each scrape
``triggerlang_correlation_open_groups``    open correlation groups, by ``rule``, read    serve / ingest node
                                           from the store at each scrape
=========================================  ===========================================  =======================

In store mode an ingest node counts the events, deliveries and commits it handled (with
the runs its store decided with them), the runs its reaper found interrupted, and the
runs of its embedded worker (with the ``run.*`` events their ends journaled); the queue gauges come from the shared store, so every node
shows the same. ``triggerc worker --metrics-port`` serves a worker's own run counters and
histograms (and its store's queue gauges); without it a worker exposes nothing.

Two Prometheus conventions shape the labels (https://prometheus.io/docs/practices/):

* **Series exist from the start.** ``increase(triggerlang_runs_total{status="failed"}[5m])``
  cannot see a rule's first failure if the series is born with the value 1, and a gauge
  that vanishes when it falls to 0 leaves a gap instead of a 0. So :meth:`Metrics.load`
  (called with every manifest, at start and on each reload) creates, for every rule, its
  ``triggerlang_runs_total`` series of each final status, its two histograms and its
  ``triggerlang_rule_paused`` at 0; the queue gauges give 0 for a rule with nothing
  queued or running. A rule a reload removed keeps its counters (they never go down).
* **No label value comes from a sender.** ``type`` is the event's type only when the
  catalogue knows it for its source, or a rule listens to it (``github.my_event``); any
  other is counted as ``other``, and an unknown source as ``other`` too. Without it, an
  unsigned GitHub route would make a new series of every ``X-GitHub-Event`` header it is
  sent. ``route`` is the declared route (``/hooks/*``), never the request's path.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any, Callable, Iterable

log = logging.getLogger("triggerlang")

REJECT_REASONS = {400: "bad_request", 401: "signature", 403: "forbidden", 413: "too_large", 500: "unavailable",
                  503: "unavailable"}
"""The ``reason`` label of a refused delivery, by its status."""

_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_COMMIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class Metrics:
    """One process's metrics (see the module docstring). ``store`` (or a function giving
    it) feeds the gauges read at scrape time; ``None`` leaves them out."""

    def __init__(self, store: Any = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self._store = store
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events = Counter("triggerlang_events", "Events journaled, by source and type", ["source", "type"],
                              registry=r)
        self.deliveries = Counter("triggerlang_deliveries", "Webhook deliveries answered, by route and HTTP status",
                                  ["route", "status"], registry=r)
        self.rejected = Counter("triggerlang_deliveries_rejected", "Webhook deliveries refused, by route and reason",
                                ["route", "reason"], registry=r)
        self.runs = Counter("triggerlang_runs", "Runs that reached a final status, by rule and status",
                            ["rule", "status"], registry=r)
        self.duration = Histogram("triggerlang_run_duration_seconds", "How long runs ran, by rule", ["rule"],
                                  buckets=_DURATION_BUCKETS, registry=r)
        self.wait = Histogram("triggerlang_run_queue_wait_seconds",
                              "How long runs waited in their queue before they started, by rule", ["rule"],
                              buckets=_WAIT_BUCKETS, registry=r)
        self.commit = Histogram("triggerlang_journal_commit_seconds",
                                "Time to commit an event and its runs to the journal", buckets=_COMMIT_BUCKETS,
                                registry=r)
        self.too_deep = Counter("triggerlang_chain_depth_exceeded",
                                "Events journaled without runs: too deep in a run.* chain", registry=r)
        self.paused_rules = Gauge("triggerlang_rule_paused", "1 while loop protection pauses the rule", ["rule"],
                                  registry=r)
        self._children: dict[tuple, Any] = {}
        self._rules: tuple[str, ...] = ()
        # (source, type) pairs that are label values, and the sources (see load, type_label)
        self._labelled: frozenset[tuple[str, str]] = frozenset()
        self._sources: frozenset[str] = frozenset()
        self.correlation_groups: Callable[[], dict[str, int]] | None = None
        """The open correlation groups by rule, read at each scrape (from the store's
        ``correlation_stats``, when it keeps correlation groups)."""
        if store is not None:
            if hasattr(self.store(), "correlation_stats"):
                self.correlation_groups = lambda: {rule: st.get("open", 0) for rule, st in
                                                   self.store().correlation_stats()["rules"].items()}
            r.register(_StoreGauges(self))

    def store(self) -> Any:
        return self._store() if callable(self._store) else self._store

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, kept: prometheus_client takes a lock and builds the
        key on every ``labels`` call, and serve reports several times per run (no metric
        here ever removes a child, so a kept one stays the registered one)."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def load(self, manifest: dict) -> None:
        """A (new) manifest is in use: its rules' series are created at 0, every rule is
        un-paused (a reload un-pauses them all), and the event types its rules name are
        label values from now on (see the module docstring)."""
        from ..check.catalogue import get_source, source_names
        from .store import FINAL_STATUSES

        names = tuple(r["name"] for r in manifest.get("rules", []))
        # the catalogue's types and the rules' own, once per manifest, not per event
        labelled: set[tuple[str, str]] = set()
        sources = frozenset(source_names())
        for source in sources:
            spec = get_source(source)
            if spec is not None:
                labelled.update((source, t) for t in (*spec.events, *spec.known_events))
        for r in manifest.get("rules", []):
            trigger = r.get("trigger")
            members = trigger.get("members", []) if isinstance(trigger, dict) else [r]
            for m in members:
                if m.get("source", "") in sources:
                    labelled.update((m["source"], t) for t in m.get("types") or [])
        self._labelled, self._sources = frozenset(labelled), sources
        for rule in names:
            for status in sorted(FINAL_STATUSES):
                self._child(self.runs, rule, status)
            self._child(self.duration, rule)
            self._child(self.wait, rule)
        for rule in sorted({*names, *self._rules}):
            self.paused_rules.labels(rule).set(0)
        self._rules = tuple(dict.fromkeys((*self._rules, *names)))

    def rule_names(self) -> tuple[str, ...]:
        """Every rule of the manifests loaded so far (the queue gauges give each a 0)."""
        return self._rules

    def type_label(self, source: str, typ: str) -> tuple[str, str]:
        """The ``source`` and ``type`` labels of an event: names a sender cannot invent
        (the pairs :meth:`load` derived from the catalogue and the rules)."""
        if (source, typ) in self._labelled:
            return source, typ
        return (source, "other") if source in self._sources else ("other", "other")

    # -- what the runtime reports

    def event(self, source: str, typ: str) -> None:
        self._child(self.events, *self.type_label(source, typ)).inc()

    def journaled(self, source: str, typ: str, decided: Iterable[tuple[str, str]], too_deep: bool) -> None:
        """An event journaled (by an engine or an ingest node, a source's event or a
        ``correlation.*`` one alike), the runs decided final with it (:meth:`runs_decided`),
        and whether it was matched deeper than ``--max-chain-depth``."""
        self.event(source, typ)
        self.runs_decided(decided)
        if too_deep:
            self.too_deep.inc()

    def delivery(self, route: str, status: int) -> None:
        self._child(self.deliveries, route, str(status)).inc()
        if status >= 400:
            self._child(self.rejected, route, REJECT_REASONS.get(status, f"http_{status}")).inc()

    def committed(self, seconds: float) -> None:
        self.commit.observe(seconds)

    def run_started(self, rule: str, wait: float | None) -> None:
        if wait is not None:
            self._child(self.wait, rule).observe(max(0.0, wait))

    def run_ended(self, rule: str, status: str, duration: float | None = None) -> None:
        self._child(self.runs, rule, status).inc()
        if duration is not None:
            self._child(self.duration, rule).observe(max(0.0, duration))

    def runs_decided(self, runs: Iterable[tuple[str, str]]) -> None:
        """Runs recorded final when their event was (``skipped``): (rule, status) pairs."""
        for rule, status in runs:
            if status != "queued":
                self._child(self.runs, rule, status).inc()

    def paused(self, rule: str, on: bool) -> None:
        self.paused_rules.labels(rule).set(1 if on else 0)

    # -- the text format

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _StoreGauges:
    """Gauges read from the store at each scrape: the queue, open correlation groups."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list:
        return []  # read at scrape time: nothing to describe ahead

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        queued = GaugeMetricFamily("triggerlang_runs_queued", "Runs waiting in their queue now, by rule",
                                   labels=["rule"])
        running = GaugeMetricFamily("triggerlang_runs_running", "Runs going now, by rule", labels=["rule"])
        try:
            store = self.metrics.store()
            counts = store.run_counts() if store is not None and hasattr(store, "run_counts") else {}
        except Exception as e:  # a scrape must not fail for it: the gauges are left out
            log.warning("metrics: cannot read the queue: %s", e)
            return
        for rule in self.metrics.rule_names():
            counts.setdefault(rule, {})
        for rule, c in sorted(counts.items()):
            queued.add_metric([rule], c.get("queued", 0))
            running.add_metric([rule], c.get("running", 0))
        yield queued
        yield running
        groups = self.metrics.correlation_groups
        if groups is not None:
            fam = GaugeMetricFamily("triggerlang_correlation_open_groups", "Open correlation groups, by rule",
                                    labels=["rule"])
            try:
                for rule, n in sorted(groups().items()):
                    fam.add_metric([rule], n)
            except Exception as e:
                log.warning("metrics: cannot read the correlation groups: %s", e)
                return
            yield fam


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics_route(metrics: Metrics, token: str | None) -> Any:
    """``GET /metrics`` as a Starlette route: loopback clients only without a token, the
    token (Bearer header or ``?token=``) with one."""
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from ..sources.http import is_loopback

    secret = (token or "").strip().encode("utf-8") or None

    async def endpoint(request: Request) -> Response:
        if secret is None:
            if not is_loopback(request.client.host if request.client else None):
                return JSONResponse({"error": "/metrics answers loopback clients only; start with --token to "
                                              "open it to others"}, status_code=403)
        else:
            query = request.query_params.get("token")
            given = query.encode("utf-8") if query is not None else None
            auth = request.headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":  # the header's bytes as sent (read as Latin-1)
                given = auth[7:].strip().encode("latin-1")
            if given is None or not hmac.compare_digest(given, secret):
                # a wrong token (a stale one in the scrape config) is told apart from none
                why = ("the token does not match this server's (its --token or TRIGGERLANG_DASHBOARD_TOKEN)"
                       if given is not None else
                       "/metrics needs the token: send Authorization: Bearer <token> or add ?token=<token>")
                return JSONResponse({"error": why}, status_code=401,
                                    headers={"WWW-Authenticate": 'Bearer realm="triggerlang"'})
        body = await run_in_threadpool(metrics.render)
        return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})

    return Route("/metrics", endpoint, methods=["GET"])


async def serve_metrics(metrics: Metrics, host: str, port: int, token: str | None) -> Any:
    """A small HTTP server for ``/metrics`` alone (``triggerc worker --metrics-port``):
    the started uvicorn server (``should_exit = True`` stops it) and its task."""
    import asyncio
    import contextlib

    import uvicorn
    from starlette.applications import Starlette

    from ..sources.http import _bind
    from ..sources.http_lean import bounded_protocol

    app = Starlette(routes=[metrics_route(metrics, token)])
    socks = _bind(host, port)
    config = uvicorn.Config(app, host=host, port=socks[0].getsockname()[1], log_level="warning", log_config=None,
                            access_log=False, lifespan="off", server_header=False, timeout_graceful_shutdown=1,
                            http=bounded_protocol())

    class _Server(uvicorn.Server):
        def capture_signals(self):  # type: ignore[no-untyped-def,override]
            return contextlib.nullcontext()  # signals belong to the worker

    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=socks), name="triggerlang-metrics")
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the metrics server stopped while starting")
        await asyncio.sleep(0.01)
    server.port = socks[0].getsockname()[1]  # type: ignore[attr-defined]
    return server, task


__all__ = ["Metrics", "metrics_route", "serve_metrics", "REJECT_REASONS", "CONTENT_TYPE"]
