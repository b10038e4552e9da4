"""``triggerc serve``: the runtime's main loop (SPEC §9).

Start-up, in order, each step failing with one clear line (exit 1) rather than a
traceback: read the rules (a ``.trg`` compiled in process, or a manifest JSON); resolve
the secrets (a missing environment variable is named, its value never printed); open the
journal in the state directory and take its lock (a second ``serve`` on the same state
directory would start the same queued runs again: it is refused, naming the first one's
pid); recover what a crash left (interrupted and queued runs);
start the sources the manifest lists and only those, logging one line each.

While running: when the rules file changes (checked every second, by content hash) and
has settled, it is recompiled (a manifest is read again); if that fails, the old rules keep
running and the diagnostics are logged; if the result is the running rules (a comment
changed), nothing happens (:meth:`Runtime.reload_loop` says why); otherwise the engine takes the new rules and each source whose settings changed is
stopped and started again (a source no rule needs any more is stopped, a new one started).
A source that cannot start then (the new HTTP listener's port is taken) is logged once
and tried again every second until it starts or the next reload says otherwise.
SIGHUP and SIGUSR1 ask for that look at the rules file at once, with ``--no-reload`` too,
and read the HTTPS certificate and key files again (the SIGHUP of a terminal that closed
stops instead: :func:`executor.stop_on_signals`).

Under systemd (``NOTIFY_SOCKET``), the service manager is told when ``serve`` is ready,
reloading and stopping, and is pinged for its watchdog (runtime/notify.py).

SIGINT / SIGTERM: stop accepting (sources stop first),
give running runs ``grace`` seconds, then stop them and mark them ``interrupted``; exit 0.
A second SIGINT / SIGTERM during the grace period (Ctrl-C again) stops the running runs at
once (marked ``interrupted`` too).

The warnings ``check`` gives for the rules (an unauthenticated webhook route, a run.* loop)
are logged when ``serve`` starts and after each reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .. import defaults
from ..api import load_compiled, load_rules  # (load_rules re-exported: serve.load_rules is the name others knew)
from ..sources.base import Source, SourceContext, load_source_class
from .deliveries import DeliveryRecorder
from .engine import MAX_BACKLOG, MAX_PARALLEL, Engine, StartError, resolve_secrets
from .executor import close_spawner, pidfd_child_watcher, restore_child_watcher, stop_on_signals
from .journal import Journal
from .loops import DEFAULT_MAX_CHAIN_DEPTH, DEFAULT_MAX_RETRIGGERS
from .notify import STOP_MARGIN, Notifier
from .store import StoreError as JournalError

log = logging.getLogger("triggerlang")


@dataclass
class ServeOptions:
    host: str | None = None
    port: int | None = None
    state_dir: Path | None = None
    reload: bool = True
    grace: float = 10.0
    force_http: bool = False           # start the HTTP listener even if no rule needs it (emit, dashboard)
    dashboard: bool = False
    dashboard_token: str | None = None
    tls: tuple[str, str] | None = None  # (certificate chain, private key) PEM files: HTTPS
    reload_interval: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)
    # store mode (SPEC §12): a postgresql:// URL makes this an ingest node
    store_url: str | None = None
    workers: int = 4                   # slots of the embedded worker; 0: ingest only
    migrate: bool = False              # bring an older store schema up to date
    lease: float = 10.0
    heartbeat: float = 2.0
    reap_interval: float = 2.0
    max_open_groups: int = 100_000     # correlation groups open at once (SPEC §11.3.9)
    # loop protection (runtime/loops.py)
    max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH
    max_retriggers: int = DEFAULT_MAX_RETRIGGERS
    max_backlog: int = MAX_BACKLOG     # queued runs past which deliveries get 503 (back-pressure)
    max_parallel: int = MAX_PARALLEL   # runs at once, all rules together (SQLite mode; store mode: workers)
    start_rules: tuple[str, ...] = ()  # --start: rules that run once at start (Engine.start_now)
    also: tuple[str, ...] = ()         # `serve a.trg b.trg`: the files after the first, read as if it included them


def log_warnings(diagnostics: list, rules_path: Path | None = None) -> None:
    """``check``'s warnings, one log line each (``file:line:col: warning[CODE]: message
    (hint)``, and the same as fields in --log-format json): an unauthenticated webhook
    route (TRG209) or a run.* loop (TRG503) is said where the operator looks. Those the
    rules file's config (``triggerc.toml``, triggerlang/config.py) leaves out are not; a
    config ``check`` would refuse is said once, and every warning then logged: the rules
    still run, as with no config."""
    if rules_path is not None and diagnostics:
        from ..config import ConfigError, config_of

        try:
            cfg = config_of(str(rules_path))
            diagnostics = [d for d in diagnostics if cfg.keeps(d)]
        except ConfigError as e:
            log.warning("%s: its ignores are not applied", e)
    for d in diagnostics:
        hint = f" ({d.hint})" if d.hint else ""
        log.warning("%s:%d:%d: %s[%s]: %s%s", d.file, d.span.start.line, d.span.start.column, d.severity,
                    d.code, d.message, hint, extra={"code": d.code, "file": d.file, "line": d.span.start.line,
                                                     "column": d.span.start.column})


def _reason(e: Exception) -> str:
    """Why a source could not start, in one line: an ``OSError(errno, message)`` (the http
    source's 'cannot listen on ...') is its message, without Python's ``[Errno N]``."""
    if isinstance(e, OSError) and e.strerror and e.filename is None:
        return e.strerror
    return str(e)


RELOAD_SETTLE = 0.2
"""Seconds a changed rules file must stay the same before it is read as the new rules."""
RELOAD_SETTLE_TRIES = 10
"""...looks at most; then the last bytes read are taken."""


def _read(path: Path) -> bytes | None:
    """The rules file's bytes (None when it cannot be read: the compile says why)."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def _fingerprint(data: bytes | None, included: tuple[list[str], list[str]] = ([], []),
                 digest: str | None = None) -> str | None:
    """The rules file's content hash, and with its includes (``included``: the files they
    read and their globs) a hash of those files and of the files the globs match now
    (``digest``: that hash of the texts a compile read, when there is one)."""
    if data is None:
        return None
    if not included[0] and not included[1]:
        return hashlib.sha256(data).hexdigest()
    from ..sourcefile import current_inputs

    return hashlib.sha256(data).hexdigest() + ":" + (digest or current_inputs(*included))


class Runtime:
    """One running ``serve``: the engine plus its sources."""

    def __init__(self, rules_path: Path, opts: ServeOptions, notify: Notifier | None = None):
        self.rules_path = rules_path
        self.opts = opts
        self.notify = notify or Notifier(None)  # systemd's Type=notify (runtime/notify.py)
        self.sources: dict[str, tuple[Source, Any]] = {}
        self.stop_event = asyncio.Event()
        self.stop_now = asyncio.Event()  # a second SIGINT/SIGTERM: do not wait for running runs
        self.dashboard_closing = threading.Event()  # set by stop(): the dashboard's open streams end
        self.reload_now = asyncio.Event()  # SIGHUP/SIGUSR1: look at the rules file now (also with --no-reload)
        self.reload_signal = "SIGUSR1"     # which of the two asked, for the log
        self.engine: Engine | None = None
        self.http: Source | None = None
        self.lock_fd: int | None = None
        self.store: Any = None             # store mode: the PostgreSQL store
        self.worker: Any = None            # store mode: the embedded worker
        self.reaper: Any = None
        self.metrics: Any = None           # GET /metrics (runtime/metrics.py)
        self.operator: Any = None          # the dashboard's re-run / cancel / resume (runtime/operations.py)
        self.deliveries: Any = None        # the webhook routes' delivery history (runtime/deliveries.py)
        self._ping: asyncio.Future | None = None  # store mode: the /readyz round trip under way
        self.unstarted: dict | None = None # a reload's manifest whose sources did not all start yet
        self.included: tuple[list[str], list[str]] = ([], [])  # the files and globs the last compile's includes read

    @property
    def shown(self) -> str:
        """The rules file, and the other files given with it (``main.trg + hooks.trg``)."""
        return " + ".join((str(self.rules_path), *self.opts.also))

    def source_configs(self, manifest: dict) -> dict[str, Any]:
        cfgs = dict(manifest.get("sources") or {})
        if "http" not in cfgs and (self.opts.force_http or self.opts.dashboard):
            cfgs["http"] = defaults.http_section()
        return cfgs

    def secrets_needed(self, manifest: dict) -> set[str] | None:
        """The names of the manifest's secrets this process reads (None: all of them): on an
        ingest-only node (``--store`` with ``--workers 0``), which runs no action, those its
        webhook routes verify with (an ``http`` action's secret is the workers' business:
        they read it when they run it)."""
        if not (self.opts.store_url and self.opts.workers == 0):
            return None
        routes = ((manifest.get("sources") or {}).get("http") or {}).get("routes") or []
        return {r["verify"]["secret"] for r in routes if (r.get("verify") or {}).get("secret")}

    def load(self) -> dict:
        """The rules at start: the manifest compiled from the rules file's bytes (or read from
        a manifest JSON), with :attr:`fingerprint` and :attr:`included` set from what was
        compiled; StartError when the rules cannot run."""
        data = _read(self.rules_path)  # compiled as read: the fingerprint is of the rules loaded
        manifest, c = load_compiled(self.rules_path, lambda ds: log_warnings(ds, self.rules_path), data,
                                    self.opts.also)
        # (a manifest is what runs: the rules files it was compiled from are not watched)
        self._watch(data, c)
        return manifest

    def _watch(self, data: bytes | None, c: Any) -> None:
        """What the next look at the files compares with (:meth:`reload_loop`): the bytes
        compiled and the texts their includes read as the compile read them (``c``, a
        :class:`~triggerlang.api.Compiled`, None for a manifest), each file read once. A hash
        of the included files read again after the compile would take in an edit made in
        between, and the look would never see it: the rules compiled before it would run on."""
        from ..syntax.includes import included_digest

        if c is None or c.module is None:
            self.included = ([], [])
            self.fingerprint = _fingerprint(data)
            return
        self.included = ([f.path for f in c.module.included], [g for g, _ in c.module.include_globs])
        self.fingerprint = _fingerprint(data, self.included, included_digest([c.module]))

    async def start(self) -> None:
        manifest = self.load()
        self.base_dir = Path(manifest.get("base_dir") or self.rules_path.resolve().parent)
        self.state_dir = (self.opts.state_dir or (self.rules_path.resolve().parent / ".triggerlang")).resolve()
        secrets = resolve_secrets(manifest, self.base_dir, os.environ, self.secrets_needed(manifest))
        self.secrets = secrets
        if self.opts.store_url:
            await self._start_store_mode(manifest)
            return
        journal = Journal(self.state_dir)
        try:
            self.lock_fd = lock_state_dir(self.state_dir)
        except StartError:
            journal.close()
            raise
        warn_if_open_to_others(self.state_dir)
        self._write_secret_names(manifest, journal)
        from .metrics import Metrics
        from .operations import EngineOperator

        # one commit per loop pass for every event, run start and run end; checkpoints in a thread
        journal.start_group_commit()
        self.metrics = Metrics(store=journal)
        self.deliveries = DeliveryRecorder(journal, metrics=self.metrics)  # joins the loop's group commit
        self.engine = Engine(manifest, journal, secrets, self.base_dir, max_open_groups=self.opts.max_open_groups,
                             max_chain_depth=self.opts.max_chain_depth, max_retriggers=self.opts.max_retriggers,
                             metrics=self.metrics, max_backlog=self.opts.max_backlog,
                             max_parallel=self.opts.max_parallel)
        self.operator = EngineOperator(self.engine)
        recovered = self.engine.recover()
        if recovered:
            log.info("%s", recovered.line())
        self.engine.start_correlations()   # past deadlines, before any source starts (SPEC §11.3.7)
        startable = {r.name for r in self.engine.matcher.rules}
        for rule in self.opts.start_rules:
            if rule in self.engine.rules and rule not in startable:
                raise StartError(f"--start {rule}: a correlation rule has no trigger of its own to fire")
            if rule not in startable:
                known = ", ".join(r["name"] for r in manifest["rules"] if r["name"] in startable) or "none"
                raise StartError(f"--start {rule}: {self.rules_path} has no rule {rule} (rules: {known})")
        await self.apply_sources(manifest)
        if not self.sources:
            log.info("no source to start: the rules need none (rules on run.* only?)")
        for rule in self.opts.start_rules:
            run_id = self.engine.start_now(rule)
            log.info("run %d of %s: started with serve (--start)", run_id, rule, extra={"run_id": run_id, "rule": rule})
        if self.opts.start_rules:
            await self.engine.journal.flush()
        log.info("serving %d rule(s) from %s; journal in %s", len(manifest["rules"]), self.shown, self.state_dir)

    async def _start_store_mode(self, manifest: dict) -> None:
        """An ingest node (SPEC §12.1): no journal file, no state lock, nothing to recover
        (every node's reaper does that); an embedded worker unless ``--workers 0``."""
        from .cluster import IngestEngine, Reaper, Worker, WorkerOptions, node_pool, unsupported, use_daemon_threads
        from .store import open_store

        problem = unsupported(manifest)   # (before the store is opened: said without a database)
        if problem is not None:
            raise StartError(problem)

        from .metrics import Metrics
        from .operations import StoreOperator

        use_daemon_threads(asyncio.get_running_loop())   # (a call a hung database holds cannot hold the end)
        self.store = await asyncio.to_thread(open_store, self.opts.store_url, migrate=self.opts.migrate)
        self.store.bound_calls()   # (a delivery, a claim, a heartbeat: none waits for ever on a hung database)
        self.metrics = Metrics(store=self.store)
        self.deliveries = DeliveryRecorder(self.store, metrics=self.metrics, in_thread=True)
        self.engine = IngestEngine(manifest, self.store, max_open_groups=self.opts.max_open_groups,
                                   max_chain_depth=self.opts.max_chain_depth,
                                   max_retriggers=self.opts.max_retriggers, metrics=self.metrics)
        await asyncio.to_thread(self.engine.join, self.opts.lease)   # (cancels what no node's rules have)
        self.engine._started = True
        if self.engine.correlations is not None:   # past deadlines, before any source (SPEC §11.3.7)
            await asyncio.to_thread(self.engine.correlations.start)
            self.engine.correlations.start_timers()
        self.operator = StoreOperator(self.store, engine=self.engine)
        self.reaper = Reaper(self.store, self.opts.reap_interval, keep=self.engine.keep, metrics=self.metrics)
        self.reaper.start()
        if self.opts.workers > 0:
            self.worker = Worker(self.store, WorkerOptions(
                slots=self.opts.workers, pools=("default", node_pool()), base_dir=self.base_dir,
                lease=self.opts.lease, heartbeat=self.opts.heartbeat, grace=self.opts.grace,
                max_chain_depth=self.opts.max_chain_depth), metrics=self.metrics)
            await self.worker.start()
        await self.apply_sources(manifest)
        if not self.sources:
            log.info("no source to start: the rules need none (rules on run.* only?)")
        log.info("serving %d rule(s) from %s; store %s (%s)", len(manifest["rules"]), self.shown,
                 self.store.describe(),
                 f"embedded worker with {self.opts.workers} slot(s)" if self.worker else "ingest only")
        if self.worker is None and "file" in self.sources:
            log.warning("the runs of file rules wait in the pool %s: only a worker on this host runs them "
                        "(triggerc worker --pool %s, or serve --workers N)", node_pool(), node_pool())

    def _write_secret_names(self, manifest: dict, journal: Any) -> None:
        """The secrets' names and references (never their values) beside the journal, for
        ``triggerc logs`` and ``triggerc dashboard`` to mask run logs with (runtime/logview.py),
        with those of earlier rules while the journal keeps a run from before they were
        dropped; the store keeps the manifests itself."""
        if self.store is not None:
            return
        from .logview import SECRET_NAMES, write_secret_names

        try:
            write_secret_names(self.state_dir, manifest, journal.oldest_run_queued_at)
        except (OSError, JournalError) as e:
            log.warning("cannot write %s in %s: %s (triggerc logs and triggerc dashboard show secrets as "
                        "printed in run logs)", SECRET_NAMES, self.state_dir, getattr(e, "strerror", None) or e)

    def ask_reload(self, signal_name: str) -> None:
        """SIGHUP or SIGUSR1: a look at the rules file (and the certificate) now."""
        self.reload_signal = signal_name
        self.reload_now.set()

    def status(self) -> str:
        """What ``systemctl status`` shows (``STATUS=``): the rules and where they listen."""
        rules = len(self.engine.manifest["rules"]) if self.engine is not None else 0
        where = [f"http on {src.url}" if hasattr(src, "url") else kind for kind, (src, _) in sorted(self.sources.items())]
        return f"serving {rules} rule(s) from {self.shown}" + (f"; {', '.join(where)}" if where else "")

    def context(self) -> SourceContext:
        opts: dict[str, Any] = {"shared_store": True} if self.store is not None else {}
        if self.opts.host:
            opts["host"] = self.opts.host
        if self.opts.port is not None:
            opts["port"] = self.opts.port
        if self.opts.tls is not None:
            opts["tls"] = self.opts.tls
        return SourceContext(base_dir=self.base_dir, state_dir=self.state_dir, submit=self.engine.submit,
                             secrets=self.secrets, log=log, options=opts,
                             submit_then=getattr(self.engine, "submit_then", None),
                             overloaded=getattr(self.engine, "overloaded", None),
                             record_delivery=self.deliveries, last_tick=self.last_tick,
                             not_ready=self.not_ready if self.store is not None else None)

    async def not_ready(self) -> str | None:
        """Store mode, for ``GET /readyz``: why this node cannot journal a delivery now (the
        store did not answer a ``SELECT 1`` within :data:`~triggerlang.defaults.READY_TIMEOUT`,
        or answered an error), or None. One round trip at a time: the probes of a load
        balancer that come while one is under way wait for it, and one that hangs (a
        network cut) is not started again until it ends. (With the SQLite journal there is
        no such question to ask before a write: only back-pressure makes ``/readyz`` 503.)"""
        ping = self._ping
        if ping is None or ping.done():
            ping = self._ping = asyncio.ensure_future(asyncio.to_thread(self.store.ping))
            # (retrieved: a ping that fails after its probe gave up is no "never retrieved" traceback)
            ping.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            await asyncio.wait_for(asyncio.shield(ping), defaults.READY_TIMEOUT)
        except asyncio.TimeoutError:
            return f"the store {self.store.describe()} has not answered in {defaults.READY_TIMEOUT:g}s"
        except JournalError as e:
            return str(e)
        return None

    async def last_tick(self, rule: str) -> str | None:
        """:meth:`Store.last_tick <.store.Store.last_tick>` for a ``catch up`` schedule: the
        shared store in a thread; the journal on the loop's thread, where it sees the open
        group-commit batch (a tick submitted just before a reload)."""
        if self.store is not None:
            return await asyncio.to_thread(self.store.last_tick, rule)
        return self.engine.journal.last_tick(rule)

    def extra_routes(self) -> list:
        """Routes beside the webhooks: ``/metrics`` always, the dashboard when asked."""
        from .metrics import metrics_route

        routes = [metrics_route(self.metrics, self.opts.dashboard_token)] if self.metrics is not None else []
        if not self.opts.dashboard:
            return routes
        from ..dashboard.app import dashboard_routes

        return routes + dashboard_routes(
            None if self.store is not None else self.state_dir, token=self.opts.dashboard_token, engine=self.engine,
            store_url=self.opts.store_url if self.store is not None else None, operator=self.operator,
            listener=self._listener, closing=self.dashboard_closing, secrets=self.secrets)

    def _listener(self) -> tuple[str, int] | None:
        """The HTTP listener's bound (host, port), or None while there is none."""
        src = self.sources.get("http", (None, None))[0]
        return (src.host, src.port) if src is not None else None

    async def apply_sources(self, manifest: dict) -> None:
        wanted = self.source_configs(manifest)
        for kind in sorted(set(self.sources) - set(wanted)):
            src, _ = self.sources.pop(kind)
            await src.stop()
            log.info("stopped source %s (no rule needs it any more)", kind)
        for kind in sorted(wanted):
            cfg = wanted[kind]
            if kind in self.sources:
                if self.sources[kind][1] == cfg:
                    continue
                old, _ = self.sources[kind]
                reconfigure = getattr(old, "reconfigure", None)
                if reconfigure is not None:
                    # e.g. new HTTP routes on the same port: no gap in which deliveries are refused
                    try:
                        done = await reconfigure(cfg)
                    except (OSError, ValueError) as e:
                        raise StartError(_reason(e)) from None
                    if done:
                        self.sources[kind] = (old, cfg)
                        log.info("reconfigured %s", old.describe())
                        continue
                self.sources.pop(kind)
                await old.stop()
            try:
                cls = load_source_class(kind)
            except KeyError:
                raise StartError(f"no source plug-in for {kind!r}") from None
            kwargs = {}
            if kind == "http":
                kwargs["extra_routes"] = self.extra_routes()
            src = cls(cfg, self.context(), **kwargs)
            try:
                await src.start()
            except (OSError, ValueError) as e:
                raise StartError(_reason(e)) from None
            self.sources[kind] = (src, cfg)
            log.info("started %s", src.describe())
            if kind == "http" and self.opts.dashboard and getattr(src, "url", None):
                from ..dashboard.app import serve_note

                log.info("%s", serve_note(src.url, self.opts.dashboard_token))  # once bound: --port 0 picks one

    async def _settled(self, data: bytes, fingerprint: str | None) -> tuple[bytes, str | None] | None:
        """The rules file's bytes, and their fingerprint, once two reads ``RELOAD_SETTLE``
        seconds apart agree (at most ``RELOAD_SETTLE_TRIES`` looks, then the last read), so
        that a writer's bursts (an editor truncating then writing, ``cat >> rules.trg`` in
        pieces) make one reload of what it wrote rather than one per piece (the files its
        includes read too: the fingerprint covers them with ``data``); None when serve stops
        meanwhile."""
        for _ in range(RELOAD_SETTLE_TRIES):
            try:
                await asyncio.wait_for(self.stop_event.wait(), RELOAD_SETTLE)
                return None
            except asyncio.TimeoutError:
                pass
            again = _read(self.rules_path)
            if again is None:
                return data, fingerprint
            fp = _fingerprint(again, self.included)
            if fp == fingerprint:  # (it hashes the bytes too)
                return data, fingerprint
            data, fingerprint = again, fp
        return data, fingerprint

    async def reload_loop(self) -> None:
        """Every ``reload_interval`` seconds (unless ``--no-reload``), and whenever SIGUSR1
        comes (adnanh/webhook's ``kill -USR1``, systemd's ``ExecReload``; with
        ``--no-reload`` too): has the rules file's content changed (sha256)? A SIGUSR1 that
        finds it unchanged says so in the log.

        Then, once it has settled (:meth:`_settled`), its bytes are compiled (a manifest is
        read) and, if the result differs from the running rules, loaded: the new rules'
        warnings are logged (each one, as at start, where they come before the ``serving``
        line), then ``reloaded FILE: N rule(s)``. Two changes give no reload and no
        ``reloaded`` line, only a line at debug level (``-v``): a ``reloaded`` line means
        the running rules changed.

        - the compiled rules are identical to the running ones (a comment or blank line
          after the last rule, since the manifest keeps each rule's line; the second piece
          of a write the first look already had whole): there is nothing to reload, and
          their warnings have been said (a paused rule stays paused: ``triggerc resume``,
          or a change to the rules, un-pauses it);
        - the file is empty: what an editor or ``cat > rules.trg`` leaves between truncating
          the file and writing it, which would stop every source for a moment. A file
          meant to hold no rules can say so with a comment.
        """
        stopping = asyncio.ensure_future(self.stop_event.wait())
        try:
            while not self.stop_event.is_set():
                asked = asyncio.ensure_future(self.reload_now.wait())
                await asyncio.wait({stopping, asked}, timeout=self.opts.reload_interval if self.opts.reload else None,
                                   return_when=asyncio.FIRST_COMPLETED)
                asked.cancel()
                if self.stop_event.is_set():
                    return
                signalled = self.reload_now.is_set()
                self.reload_now.clear()
                if not signalled:
                    await self._reload_once(False)
                    continue
                # every SIGHUP is a reload for the service manager (Type=notify-reload waits for
                # READY=1 after each one), also when nothing changed
                self.notify.reloading()
                try:
                    self._reload_certificates()
                    await self._reload_once(True)
                finally:
                    self.notify.ready(self.status())
        finally:
            stopping.cancel()

    def _reload_certificates(self) -> None:
        """SIGHUP and SIGUSR1 also read the HTTPS certificate and key again (a renewal);
        files it cannot use are logged and the current certificate stays."""
        for kind, (src, _) in sorted(self.sources.items()):
            reload_certificate = getattr(src, "reload_certificate", None)
            if reload_certificate is None:
                continue
            try:
                if reload_certificate():
                    log.info("%s: %s: TLS certificate read again; new connections get it", self.reload_signal, kind)
            except OSError as e:
                log.error("%s: %s; the current certificate stays", self.reload_signal, _reason(e))

    async def _reload_once(self, signalled: bool) -> None:
        """One look at the rules file (:meth:`reload_loop`); ``signalled``: asked by SIGHUP or
        SIGUSR1, which says so in the log when the file has not changed (and tells the
        service manager itself)."""
        from ..api import compile_bytes
        from ..diagnostics import render_text

        if self.unstarted is not None:  # a source a reload could not start: try again
            with contextlib.suppress(StartError):  # said once, by the reload
                await self.apply_sources(self.unstarted)
                self.unstarted = None
        data = _read(self.rules_path)
        fp = _fingerprint(data, self.included)
        if data is None or fp == self.fingerprint:
            if signalled:
                log.info("%s: %s has not changed: nothing to reload", self.reload_signal, self.rules_path)
            return
        settled = await self._settled(data, fp)
        if settled is None:
            return
        data, fp = settled
        if fp == self.fingerprint:  # changed, then changed back
            return
        self.fingerprint = fp
        if not data:
            log.debug("%s is empty: not reloaded (being written?); the previous rules keep running",
                      self.rules_path)
            return
        if self.rules_path.suffix == ".json":  # a manifest (`triggerc compile -o`): read, not compiled
            try:
                manifest, _ = load_rules(self.rules_path, data=data)
            except StartError as e:
                log.error("reload: %s; the previous rules keep running", e)
                return
            diagnostics: list = []
        else:
            c = compile_bytes(data, str(self.rules_path), tests=False, also=self.opts.also)
            if c.module is not None:  # what its includes read: watched from now on
                self._watch(data, c)
            if not c.ok:
                log.error("reload: %s has errors; the previous rules keep running:\n%s",
                          self.rules_path, render_text(c.diagnostics, c.sources).rstrip())
                return
            manifest, diagnostics = c.manifest, c.diagnostics
        if manifest == self.engine.manifest:
            log.debug("%s changed, its rules did not: nothing to reload", self.rules_path)
            return
        log_warnings(diagnostics, self.rules_path)
        if self.store is not None:
            from .cluster import unsupported

            problem = unsupported(manifest)
            if problem is not None:
                log.error("reload: %s; the previous rules keep running", problem)
                return
        try:
            secrets = resolve_secrets(manifest, self.base_dir, os.environ, self.secrets_needed(manifest))
        except StartError as e:
            log.error("reload: %s; the previous rules keep running", e)
            return
        if not signalled:
            self.notify.reloading()
        self.secrets.clear()
        self.secrets.update(secrets)
        self.engine.load(manifest)
        self._write_secret_names(manifest, self.engine.journal)
        self.unstarted = None
        try:
            await self.apply_sources(manifest)
        except StartError as e:
            self.unstarted = manifest
            log.error("reload: %s; the new rules are loaded, and what they need is started as soon as "
                      "it can be (tried every %gs)", e, self.opts.reload_interval)
        log.info("reloaded %s: %d rule(s)", self.rules_path, len(manifest["rules"]))
        if not signalled:
            self.notify.ready(self.status())

    async def stop(self) -> None:
        # the dashboard's streams end within one poll (a tab left open does not hold the
        # HTTP listener's stop for the rest of the stream's lifetime)
        self.dashboard_closing.set()
        budget = None
        if self.store is not None:
            from .cluster import StoreBudget

            # the store's answers: STOP_STORE_WAIT in all, beyond --grace; the sources' stop
            # counts too, as what it waits for is the deliveries being journaled
            budget = StoreBudget()
        with budget.counting() if budget is not None else contextlib.nullcontext():
            for kind in sorted(self.sources):
                src, _ = self.sources[kind]
                try:
                    await src.stop()
                except Exception:  # pragma: no cover - a source failing to stop must not block the rest
                    log.exception("stopping source %s", kind)
        self.sources.clear()
        if budget is not None and self.engine is not None:
            try:
                await budget.call(self.engine.leave)
            except asyncio.TimeoutError:
                log.error("stop: this node's registration in the store was not removed, as the store did not answer "
                          "within %gs (it runs out after its %gs lease)", budget.seconds, self.engine.lease)
        if self.deliveries is not None:
            if budget is None:
                await self.deliveries.close()
            else:
                with budget.counting():
                    await self.deliveries.close(wait=budget.left())
        if self.worker is not None:
            await self.worker.drain(self.opts.grace, self.stop_now, budget)
            self.worker = None
        if self.reaper is not None:
            await self.reaper.stop()
            self.reaper = None
        if budget is not None:
            if self.engine is not None:
                if self.engine.correlations is not None:
                    with contextlib.suppress(asyncio.TimeoutError):   # (its deadlines are kept in the store)
                        await budget.wait(self.engine.correlations.stop())
                self.engine.close()
            self.store.close()
        elif self.engine is not None:
            await self.engine.drain(self.opts.grace, self.stop_now)
            stats = self.engine.journal.commit_stats()
            if stats.get("commits"):
                log.info("journal: %d writes in %d commits (the longest %.1f ms), %d checkpoints", stats["writes"],
                         stats["commits"], stats["max_commit_ms"], stats["checkpoints"])
            self.engine.journal.close()
        close_spawner(asyncio.get_running_loop())  # the runs are over: the spawner process exits
        if self.lock_fd is not None:
            os.close(self.lock_fd)  # releases the lock
            self.lock_fd = None


LOCK_NAME = "serve.lock"


def lock_state_dir(state_dir: Path, advice: str = "stop it, or give this one another --state") -> int:
    """Take the state directory's exclusive lock for this process; its file descriptor.

    ``flock`` on ``<state>/serve.lock``, which holds the pid of the owner. The kernel drops
    the lock when the process dies, ``kill -9`` included, so a crash never leaves a stale
    lock behind. StartError, naming the owner and then ``advice``, when another process holds it.
    """
    import fcntl

    path = state_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by runs (O_CLOEXEC)
    except OSError as e:
        raise StartError(f"cannot create the lock file {path}: {e.strerror or e}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        try:
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        except OSError:
            owner = ""
        os.close(fd)
        who = f" (pid {owner})" if owner.isdigit() else ""
        raise StartError(f"another triggerc serve{who} is using the state directory {state_dir}: {advice}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


def warn_if_open_to_others(state_dir: Path) -> None:
    """A warning when users other than the owner (and its group) may enter the state folder:
    it holds the events' payloads and the runs' logs. ``serve`` creates it 0700; one that
    existed keeps its mode (serve changes no mode it did not set), as does systemd's
    ``StateDirectory=`` unless ``StateDirectoryMode=0700`` says otherwise."""
    try:
        mode = state_dir.stat().st_mode & 0o777
    except OSError:
        return
    if mode & 0o007:
        log.warning("the state directory %s is open to other users (mode %04o), and it holds the events' "
                    "payloads and the runs' logs: chmod 700 it (systemd: StateDirectoryMode=0700)", state_dir, mode)


async def _main(rules_path: Path, opts: ServeOptions) -> int:
    with LoopLogWriter.bound():
        return await _run(rules_path, opts)


async def _run(rules_path: Path, opts: ServeOptions) -> int:
    notify = Notifier.from_environ(os.environ)  # before any run's process inherits the variables
    rt = Runtime(rules_path, opts, notify)
    # the first SIGINT/SIGTERM stops gracefully (runs get --grace seconds); a second one,
    # while that is going on, stops the running runs at once; SIGHUP reloads (or stops, when
    # it is the terminal closing)
    stop_on_signals(asyncio.get_running_loop(), rt.stop_event, rt.stop_now, reload=rt.ask_reload, who="serve")
    # webhook's `kill -USR1` (and systemd's ExecReload): look at the rules file now, also with
    # --no-reload; handled from the start (its default would end the process), acted on once started
    with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, rt.ask_reload, "SIGUSR1")
    watchdog = asyncio.create_task(notify.watchdog())  # from the loop: a stuck loop stops pinging
    try:
        try:
            await rt.start()
        except (StartError, JournalError) as e:
            log.error("%s", e)
            notify.stopping(f"could not start: {e}")
            await rt.stop()
            return 1
        notify.ready(rt.status())
        reload_task = asyncio.create_task(rt.reload_loop())
        await rt.stop_event.wait()
        log.info("stopping: no new events are accepted")
        notify.stopping(needs=opts.grace + STOP_MARGIN)
        reload_task.cancel()
        await rt.stop()
        log.info("stopped cleanly")
        return 0
    finally:
        watchdog.cancel()
        notify.close()


LOG_FORMATS = ("text", "json")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (ISO 8601 UTC, milliseconds), ``level``,
    ``logger``, ``message``, then the structured fields the log call passed as ``extra``
    (``run_id``, ``rule``, ``status``, ``route``, ``remote``, ``code``...), and ``exc`` with
    the traceback when there is one."""

    _STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}

    def format(self, record: logging.LogRecord) -> str:
        import datetime as dt

        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds")
                      .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for k, v in record.__dict__.items():
            if k not in self._STANDARD and not k.startswith("_") and k not in out:
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class LoopLogWriter(logging.StreamHandler):
    """stderr, written once per pass of the event loop rather than once per line.

    ``serve`` logs a line per finished run: under load that is a thousand ``write`` calls
    a second on the loop's thread. While it is bound to the running loop
    (:meth:`bound`), the lines that thread logs at INFO and DEBUG wait in memory until the
    end of the loop's current pass (a ``call_soon``) and leave in one write, in order;
    a WARNING or worse, a line from another thread, or any line while no loop is bound
    is written at once, after the lines waiting before it. Nothing waits longer than the
    pass that logged it, and :meth:`flush` (``logging.shutdown`` calls it) writes what
    waits."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None

    @classmethod
    @contextlib.contextmanager
    def bound(cls) -> Iterator[None]:
        """Bind the ``triggerlang`` logger's writer (if :func:`setup_logging` installed
        one) to the running loop for the duration; unbound and flushed after."""
        found = [h for h in logging.getLogger("triggerlang").handlers if isinstance(h, cls)]
        for h in found:
            h._loop, h._thread = asyncio.get_running_loop(), threading.get_ident()
        try:
            yield
        finally:
            for h in found:
                h._loop = h._thread = None
                h.flush()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        loop = self._loop
        if loop is not None and record.levelno < logging.WARNING and threading.get_ident() == self._thread:
            self._pending.append(line)
            if len(self._pending) == 1:
                try:
                    loop.call_soon(self._write_pending)
                except RuntimeError:  # the loop is closed
                    self._write_pending()
            return
        self._write(line)

    def _write_pending(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write("")

    def _write(self, line: str) -> None:
        """What waits, then ``line``, in one write (the handler's lock is held)."""
        text = "".join(self._pending) + line if self._pending else line
        self._pending.clear()
        if not text:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except RecursionError:  # pragma: no cover - as logging.StreamHandler does
            raise
        except Exception:  # pragma: no cover - a closed stderr: nothing to write to
            pass

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._pending:
                self._write("")
        super().flush()


class JournalPrefix(logging.Formatter):
    """For a stderr that is systemd's journal: every line of a record starts with its
    syslog priority (``<3>`` an error, ``<4>`` a warning, ``<6>`` info, ``<7>`` debug), the
    ``sd-daemon(3)`` prefix journald reads and strips, so that ``journalctl -p warning``
    finds the warnings (without it, every line is recorded at the unit's
    ``SyslogLevel=``, info); a JSON line stays one JSON object in the entry's message."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        level = record.levelno
        prefix = "<2>" if level >= logging.CRITICAL else "<3>" if level >= logging.ERROR else \
            "<4>" if level >= logging.WARNING else "<6>" if level >= logging.INFO else "<7>"
        return "\n".join(prefix + line for line in self.inner.format(record).split("\n"))


def is_journal(stream: Any, environ: Any) -> bool:
    """Whether ``stream`` is the journal's stream that systemd gave the service: its device
    and inode are ``JOURNAL_STREAM``'s (``systemd.exec(5)``; a stream a child redirected
    elsewhere, or inherited the variable with, is not)."""
    value = environ.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


def setup_logging(level: int = logging.INFO, fmt: str = "text", environ: Any = None) -> None:
    """Log to stderr: ``text`` (``time LEVEL message``, local time) or ``json`` (one object a
    line, :class:`JsonLogFormatter`). uvicorn's own warnings and errors go the same way.
    When stderr is systemd's journal (:func:`is_journal`), each line starts with its
    priority (:class:`JournalPrefix`), and ``text`` leaves out the time, which the journal
    records itself."""
    # Neither format shows where a call was made, nor the thread or process: the logging
    # HOWTO's "Optimization" switches skip collecting them (a frame walk and three look-ups
    # per record; serve logs a line per finished run, a thousand a second under load).
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    h = LoopLogWriter(sys.stderr)
    journal = is_journal(sys.stderr, os.environ if environ is None else environ)
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonLogFormatter()
    elif journal:
        formatter = logging.Formatter("%(levelname)s %(message)s")
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S")
    h.setFormatter(JournalPrefix(formatter) if journal else formatter)
    root = logging.getLogger("triggerlang")
    root.handlers[:] = [h]
    root.setLevel(level)
    root.propagate = False
    server = logging.getLogger("uvicorn")
    server.handlers[:] = [h]
    server.setLevel(max(level, logging.WARNING))
    server.propagate = False


def serve(rules_path: Path, opts: ServeOptions) -> int:
    """Run until SIGINT/SIGTERM; the exit code (0 clean stop, 1 could not start)."""
    with asyncio.Runner() as runner:
        # Reap runs through pidfds on the loop rather than one waitpid thread per run
        # (Python 3.11; 3.12+ does it by default): see executor.pidfd_child_watcher.
        watcher = pidfd_child_watcher(runner.get_loop())
        try:
            return runner.run(_main(rules_path, opts))
        finally:
            runner.close()  # cancels what is left while the watcher can still reap it
            restore_child_watcher(watcher)
