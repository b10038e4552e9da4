"""The commands that run rules: ``serve``, ``worker``, and the ``store`` group that manages
a shared PostgreSQL store."""

from __future__ import annotations

import click

from .common import (_STORE_OPT, IntRange, Seconds, _check_store_url, _open_journal, _open_pg, _program_files,
                     _store_option, examples, fail, usage_error)


# --------------------------------------------------------------------------- serve

EXAMPLES_SERVE = examples(
    "triggerc serve rules.trg",
    "triggerc serve main.trg hooks.trg   # one program of two files",
    "triggerc serve rules.trg --port 9000 --dashboard",
    "triggerc serve rules.trg --host 0.0.0.0 --port 8443 --tls-cert fullchain.pem --tls-key privkey.pem",
    "triggerc serve rules.trg --log-format json --grace 30",
    "TRIGGERLANG_STORE=postgresql://trg@db/trg triggerc serve rules.trg --workers 0   # an ingest node",
)


@click.command(epilog=EXAMPLES_SERVE)
@click.argument("rules", metavar="FILE...|MANIFEST", nargs=-1, required=True)
@click.option("--host", help="Address the HTTP listener binds (default 127.0.0.1, loopback only).")
@click.option("--port", type=IntRange(0, 65535), help="Port of the HTTP listener (default 8080).")
# No file_okay=False here: a state path that is a file is a start error (exit 1, one line
# from the journal), like a port in use, not a usage error.
@click.option("--state", "state_dir", type=click.Path(), help="State folder (default .triggerlang/ beside the rules).")
@click.option("--no-reload", is_flag=True, help="Do not reload the rules when the file changes.")
@click.option("--reload-interval", type=Seconds(0.05, 3600), default=1.0, show_default=True,
              help="Seconds between two looks at the rules files for a change (not with --no-reload).")
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="Serve HTTPS: PEM certificate chain (with --tls-key).")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="Serve HTTPS: PEM private key (with --tls-cert).")
@click.option("--grace", type=Seconds(0, 86400), default=10.0, show_default=True, help="Seconds running runs get to finish on SIGINT/SIGTERM.")
@click.option("--http", "force_http", is_flag=True, help="Start the HTTP listener even if no rule needs it (for triggerc emit).")
@click.option("--start", "start_rules", multiple=True, metavar="RULE",
              help="Run RULE once at start, as if its trigger had fired (watchexec's run at start: a dev "
                   "server under busy restart); repeatable. Not with --store.")
@click.option("--dashboard", is_flag=True, help="Serve the dashboard at /dashboard on the HTTP listener.")
@click.option("--token", "dashboard_token", envvar="TRIGGERLANG_DASHBOARD_TOKEN", help="Bearer token the dashboard requires (or TRIGGERLANG_DASHBOARD_TOKEN).")
@click.option("-v", "--verbose", is_flag=True, help="Log every request and event.")
@_store_option("A postgresql:// store shared by several nodes (SPEC §12): this serve is an ingest node. "
               "Also read from TRIGGERLANG_STORE.")
@click.option("--workers", type=IntRange(0, 1024), default=4, show_default=True,
              help="With --store: slots of the embedded worker; 0 makes this node ingest only.")
@click.option("--migrate", is_flag=True, help="With --store: bring an older store schema up to date first.")
@click.option("--lease", type=Seconds(0.2, 3600), default=10.0, show_default=True,
              help="With --store: seconds a worker's claim or heartbeat holds a run.")
@click.option("--heartbeat", type=Seconds(0.05, 600), default=2.0, show_default=True,
              help="With --store: seconds between a worker's heartbeats (and the reaper's rounds).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one JSON object per line (time, level, logger, message and fields such as run_id, "
                   "rule, route, remote).")
@click.option("--max-open-groups", type=IntRange(1, 100_000_000), default=100_000, show_default=True,
              help="Correlation groups open at once, all rules together; past it new groups are refused "
                   "(SPEC §11.3.9).")
@click.option("--max-chain-depth", type=IntRange(0, 10000), default=10, show_default=True,
              help="A run.* event more runs deep than this in a chain is journaled but starts no run "
                   "(stops a run.* loop).")
@click.option("--max-retriggers", type=IntRange(0, 100000), default=20, show_default=True,
              help="Pause a file rule whose runs re-trigger it this many times in a row (its own writes "
                   "match it); 0: never. `triggerc resume RULE` or a reload un-pauses it.")
@click.option("--max-backlog", type=IntRange(1), default=None, metavar="N",
              help="Queued runs past which new deliveries get 503 with Retry-After, before anything is "
                   "journaled (default 100000).")
@click.option("--max-parallel", type=IntRange(1, 4096), default=None, metavar="N",
              help="Runs that go at once, all rules together (default 16); the others wait in their rule's "
                   "queue. With --store, --workers sets it.")
def serve(rules: tuple[str, ...], host, port, state_dir, no_reload, reload_interval, tls_cert, tls_key, grace, force_http, start_rules, dashboard,
          dashboard_token, verbose, store_url, workers, migrate, lease, heartbeat, log_format, max_open_groups, max_chain_depth,
          max_retriggers, max_backlog, max_parallel) -> None:
    """Run the rules: start the sources they need, journal events, run actions.

    Logs check's warnings for the rules when it starts and on each reload. Stops cleanly on
    SIGINT/SIGTERM (exit 0): running runs get --grace seconds, and a second Ctrl-C stops
    them at once (they are marked interrupted). Exits 1 when it cannot start.

    Several FILEs are one program, as if the first included the others: its folder is the
    program's (state, relative paths), and a change to any of them reloads.
    """
    import logging
    from pathlib import Path

    from ..runtime.pid1 import become_init_if_pid_1
    from ..runtime.serve import ServeOptions, serve as run_serve, setup_logging

    rules, also = _program_files(rules, "serve")
    path = Path(rules)
    if not path.exists():
        usage_error(f"{rules}: no such file")
    if path.is_dir():  # (one program per serve: a file that includes the folder's files is that program)
        usage_error(f"{rules} is a folder: serve runs one rules file; to run the files in it, serve a file "
                    f"that includes them: include \"{rules.rstrip('/')}/*.trg\" (README: Rules in several files)")
    become_init_if_pid_1()  # docker run ... triggerc serve: reap the orphans (runtime/pid1.py)
    setup_logging(logging.DEBUG if verbose else logging.INFO, log_format)
    opts = ServeOptions(host=host, port=port, state_dir=Path(state_dir) if state_dir else None,
                        reload=not no_reload, reload_interval=reload_interval, grace=grace, force_http=force_http, dashboard=dashboard,
                        dashboard_token=dashboard_token, max_open_groups=max_open_groups,
                        max_chain_depth=max_chain_depth, max_retriggers=max_retriggers, also=also)
    if no_reload and click.get_current_context().get_parameter_source("reload_interval") \
            is click.core.ParameterSource.COMMANDLINE:
        usage_error("--reload-interval is how often serve looks at the rules files; with --no-reload it does not look")
    if max_backlog is not None:
        opts.max_backlog = max_backlog
    if start_rules:
        if store_url:
            usage_error("--start is for the SQLite journal: with --store, every ingest node would start the run")
        opts.start_rules = tuple(dict.fromkeys(start_rules))
    if (tls_cert is None) != (tls_key is None):
        usage_error("--tls-cert and --tls-key go together: the certificate chain and its private key")
    if tls_cert is not None:
        opts.tls = (str(Path(tls_cert).resolve()), str(Path(tls_key).resolve()))
    if max_parallel is not None:
        if store_url:
            usage_error("--max-parallel is for the SQLite journal; with --store, --workers N sets the runs at once")
        opts.max_parallel = max_parallel
    given = click.get_current_context().get_parameter_source
    if store_url and max_backlog is not None:
        usage_error("--max-backlog bounds the SQLite journal's in-memory queue; with --store, runs wait in the "
                    "database")
    if not store_url:
        for name in ("workers", "migrate", "lease", "heartbeat"):
            if given(name) is click.core.ParameterSource.COMMANDLINE:
                usage_error(f"--{name} is for a shared store: give --store URL (or TRIGGERLANG_STORE)"
                            + ("; on the SQLite journal, --max-parallel N sets the runs at once"
                               if name == "workers" else ""))
    if store_url:
        _check_store_url(store_url)
        opts.store_url, opts.workers, opts.migrate = store_url, workers, migrate
        opts.lease, opts.heartbeat, opts.reap_interval = lease, heartbeat, heartbeat
        _check_lease(lease, heartbeat)
    raise SystemExit(run_serve(path, opts))


def _check_lease(lease: float, heartbeat: float) -> None:
    if heartbeat * 2 > lease:
        usage_error(f"--heartbeat {heartbeat:g} must be at most half of --lease {lease:g}, "
                    "or a slow heartbeat loses its runs")


# --------------------------------------------------------------------------- worker

EXAMPLES_WORKER = examples(
    "TRIGGERLANG_STORE=postgresql://trg@db/trg triggerc worker --slots 8",
    "triggerc worker --store postgresql://trg@db/trg --pool default --pool node:$(hostname) --base /srv/app",
)


@click.command(epilog=EXAMPLES_WORKER)
@_store_option("The postgresql:// store to claim runs from (or TRIGGERLANG_STORE).", required=True)
@click.option("--slots", type=IntRange(1, 1024), default=4, show_default=True, help="Runs at once.")
@click.option("--pool", "pools", multiple=True, metavar="NAME",
              help="Claim the runs of this pool (repeatable; default: 'default'). File-watching runs are in "
                   "the pool node:<hostname> of the node that saw the change.")
@click.option("--base", "base_dir", type=click.Path(file_okay=False),
              help="Folder where actions' relative paths start (default: the rules file's folder on the "
                   "ingest node, as the manifest says).")
@click.option("--grace", type=Seconds(0, 86400), default=10.0, show_default=True,
              help="Seconds running runs get to finish on SIGINT/SIGTERM.")
@click.option("--migrate", is_flag=True, help="Bring an older store schema up to date first.")
@click.option("--lease", type=Seconds(0.2, 3600), default=10.0, show_default=True,
              help="Seconds a claim or heartbeat holds a run.")
@click.option("--heartbeat", type=Seconds(0.05, 600), default=2.0, show_default=True,
              help="Seconds between heartbeats (and the reaper's rounds).")
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one JSON object per line, as serve --log-format json.")
@click.option("--max-chain-depth", type=IntRange(0, 10000), default=10, show_default=True,
              help="A run.* event this worker journals more runs deep than this starts no run.")
@click.option("--metrics-port", type=IntRange(0, 65535),
              help="Serve this worker's Prometheus metrics at http://HOST:PORT/metrics.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Address of --metrics-port.")
@click.option("--token", envvar="TRIGGERLANG_DASHBOARD_TOKEN",
              help="Token /metrics requires (else loopback clients only). Also TRIGGERLANG_DASHBOARD_TOKEN.")
def worker(store_url, slots, pools, base_dir, grace, migrate, lease, heartbeat, verbose, log_format, max_chain_depth,
           metrics_port, metrics_host, token) -> None:
    """Claim runs from a shared store and run them (SPEC §12.1).

    Runs each with the action of the manifest it was created under, heartbeats its lease,
    stores its log, retries and chains like serve. Stops cleanly on SIGINT/SIGTERM.
    """
    import logging
    from pathlib import Path

    from ..runtime.serve import setup_logging

    _check_store_url(store_url)
    _check_lease(lease, heartbeat)
    from ..runtime.cluster import WorkerOptions, run_worker
    from ..runtime.pid1 import become_init_if_pid_1

    become_init_if_pid_1()  # docker run ... triggerc worker: reap the orphans (runtime/pid1.py)

    setup_logging(logging.DEBUG if verbose else logging.INFO, log_format)
    opts = WorkerOptions(slots=slots, pools=tuple(pools) or ("default",),
                         base_dir=Path(base_dir).resolve() if base_dir else None, lease=lease, heartbeat=heartbeat,
                         grace=grace, max_chain_depth=max_chain_depth)
    metrics_at = (metrics_host, metrics_port) if metrics_port is not None else None
    raise SystemExit(run_worker(store_url, opts, migrate=migrate, reap_interval=heartbeat, metrics_at=metrics_at,
                                token=token or None))


# --------------------------------------------------------------------------- store

class _Duration(click.ParamType):
    name = "DURATION"
    _UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

    def convert(self, value, param, ctx):
        import re

        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*", str(value))
        if not m:
            self.fail(f"{value!r} is not a duration (like 30d, 12h, 90m)", param, ctx)
        return float(m.group(1)) * self._UNITS[m.group(2)]


EXAMPLES_STORE = examples(
    "triggerc store init --store postgresql://trg@db/trg",
    "TRIGGERLANG_STORE=postgresql://trg@db/trg triggerc store migrate",
    "triggerc store prune --older-than 30d",
    "triggerc store import .triggerlang --store postgresql://trg@db/trg",
)


@click.group("store", epilog=EXAMPLES_STORE)
def store_group() -> None:
    """Manage a shared PostgreSQL store: schema and history."""


@store_group.command("init", epilog=examples(
    "triggerc store init --store postgresql://trg@db/trg",
    "TRIGGERLANG_STORE=postgresql://trg@db/trg triggerc store init"))
@_STORE_OPT
def store_init(store_url) -> None:
    """Create the schema in an empty database (nothing to do if it is there)."""
    _open_and_say(store_url, migrate=False)


def _open_and_say(store_url: str, migrate: bool) -> None:
    """Open the store (creating its schema; ``migrate``: bringing it up to date), close it,
    and say which store it is and its schema version."""
    from ..runtime.pgstore import SCHEMA_VERSION

    st = _open_pg(store_url, create=True, migrate=migrate)
    st.close()
    click.echo(f"store {st.describe()}: schema {SCHEMA_VERSION}")


@store_group.command("migrate", epilog=examples(
    "TRIGGERLANG_STORE=postgresql://trg@db/trg triggerc store migrate"))
@_STORE_OPT
def store_migrate(store_url) -> None:
    """Apply the migrations the schema lacks (idempotent)."""
    _open_and_say(store_url, migrate=True)


@store_group.command("prune", epilog=examples(
    "triggerc store prune --older-than 30d --store postgresql://trg@db/trg",
    "triggerc store prune --older-than 90d --state /srv/app/.triggerlang"))
@_store_option("The postgresql:// store (or TRIGGERLANG_STORE); without it, the SQLite journal of --state.")
@click.option("--state", "state_dir", default=".triggerlang", show_default=True, type=click.Path(file_okay=False),
              help="The state folder of a serve on the SQLite journal (when no --store is given).")
@click.option("--older-than", "older_than", type=_Duration(), required=True,
              help="Delete finished runs, their logs and events older than this (30d, 12h...).")
def store_prune(store_url, state_dir, older_than) -> None:
    """Delete history older than a duration; waiting and running runs are kept.

    Works on the shared store (--store) and on a SQLite journal (--state), beside a
    running serve; run it from cron or a schedule rule to keep a retention period.
    """
    from pathlib import Path

    from ..runtime.store import StoreError

    if not store_url and not (Path(state_dir) / "journal.sqlite3").exists():
        usage_error(f"no journal in {state_dir}: give the state folder with --state, or the store with "
                    "--store URL or TRIGGERLANG_STORE")
    st = _open_pg(store_url, create=False) if store_url else _open_journal(state_dir)
    try:
        n = st.prune(older_than)
    except StoreError as e:
        fail(str(e))
    finally:
        st.close()
    manifests = f"{n['manifests']} manifest(s), " if store_url else ""
    click.echo(f"pruned {n['runs']} run(s), {n['events']} event(s), {manifests}"
               f"{n.get('groups', 0)} closed correlation group(s)")


@store_group.command("import", epilog=examples(
    "triggerc store import .triggerlang --store postgresql://trg@db/trg"))
@click.argument("state_dir", type=click.Path(file_okay=False))
@_STORE_OPT
@click.option("--interrupt-unfinished", is_flag=True,
              help="Import runs still queued or running as interrupted (they never run) instead of refusing.")
def store_import(state_dir, store_url, interrupt_unfinished) -> None:
    """Copy a SQLite journal's history (STATE_DIR, e.g. .triggerlang) into an empty store.

    Events with their delivery keys, runs with their ids and logs, dedupe keys, the audit
    trail and the delivery history, in one transaction. A journal with runs still queued
    or running is refused (let serve run them first), unless --interrupt-unfinished
    imports them interrupted; open correlation groups are not imported (they start over).
    Stop the serve that uses the journal first.
    """
    from pathlib import Path

    from ..runtime.store import StoreError
    from ..runtime.storeimport import import_journal

    st = _open_pg(store_url, create=True, migrate=True)
    try:
        n = import_journal(Path(state_dir), st, interrupt_unfinished=interrupt_unfinished)
    except StoreError as e:
        fail(str(e))
    finally:
        st.close()
    interrupted = f" ({n['interrupted']} unfinished, now interrupted)" if n["interrupted"] else ""
    click.echo(f"imported {n['events']} event(s), {n['runs']} run(s){interrupted}, {n['logs']} log(s), {n['dedupe']} dedupe key(s), {n['audit']} audit entr"
               f"{'y' if n['audit'] == 1 else 'ies'} and {n['deliveries']} delivery record(s) into {st.describe()}")
    if n["open_groups"]:
        click.echo(f"not imported: {n['open_groups']} open correlation group(s); they start over in the store")
