"""The dashboard, and the servers for editors and agents: ``dashboard``, ``lsp`` and
``mcp``."""

from __future__ import annotations

import click

from .. import defaults
from .common import _STORE_OPT, IntRange, _check_store_url, _open_pg, _store_option, examples, fail, usage_error


# --------------------------------------------------------------------------- dashboard

EXAMPLES_DASHBOARD = examples(
    "triggerc dashboard --rules rules.trg      # http://127.0.0.1:8081/dashboard/",
    'triggerc dashboard --state /srv/app/.triggerlang --host 0.0.0.0 --token "$TOKEN"',
)


@click.command(epilog=EXAMPLES_DASHBOARD)
@click.option("--state", "state_dir", type=click.Path(file_okay=False),
              help="State folder (default .triggerlang/, beside --rules when given).")
@click.option("--rules", "rules_path", type=click.Path(dir_okay=False),
              help="The rules (.trg or manifest .json), to say why an event matched nothing.")
@click.option("--host", default=defaults.HTTP_HOST, show_default=True, help="Address to bind.")
@click.option("--port", type=IntRange(0, 65535), default=8081, show_default=True,
              help="Port (serve's listener defaults to 8080, so both can run).")
@click.option("--token", envvar="TRIGGERLANG_DASHBOARD_TOKEN",
              help="Require this token (Authorization: Bearer, or ?token=). Without one, only loopback "
                   "clients are answered. Also read from TRIGGERLANG_DASHBOARD_TOKEN.")
@_STORE_OPT
def dashboard(state_dir, rules_path, host, port, token, store_url) -> None:
    """Serve the dashboard over the journal: events, runs, logs, live.

    The page is at /dashboard/ and the JSON API under /api/ (runs, events, sources,
    groups). Over a SQLite journal it is read-only; with --store URL --token T it can
    re-run, cancel and resume too. `triggerc serve --dashboard` mounts the same on its
    listener.
    """
    from pathlib import Path

    from ..dashboard.app import run_standalone
    from ..sources.http import is_loopback

    if rules_path is not None and not Path(rules_path).is_file():
        usage_error(f"{rules_path}: no such file")
    if state_dir is not None:
        state = Path(state_dir)
    elif rules_path is not None:
        state = Path(rules_path).resolve().parent / ".triggerlang"
    else:
        state = Path(".triggerlang")
    if store_url:
        _open_pg(store_url, create=False).close()  # a clear error now rather than a 503 per request
    elif not (state / "journal.sqlite3").exists():
        usage_error(f"no journal in {state} (give the state folder with --state; "
                    "it is .triggerlang/ beside the rules file)")
    if token is not None and not token.strip():
        usage_error("--token is empty (leave it out to allow loopback clients only)")
    if not token and host != "localhost" and not is_loopback(host):
        click.echo(f"triggerc: note: without --token the dashboard answers loopback clients only, "
                   f"even on {host}", err=True)
    raise SystemExit(run_standalone(state, host=host, port=port, token=token,
                                    rules_path=Path(rules_path) if rules_path else None,
                                    echo=lambda m: click.echo(m, err=True), store_url=store_url or None))


# --------------------------------------------------------------------------- editors and agents (SPEC §14)

def _editor_extra(what: str):
    """The ``editor`` extra's modules are imported only here (``check`` stays lean)."""
    try:
        if what == "lsp":
            from ..editor import lsp as mod
        else:
            from ..editor import mcp_server as mod
    except ImportError as e:
        fail(f"`triggerc {what}` needs the editor extra: pip install 'triggerlang[editor]' ({e})")
    return mod


EXAMPLES_LSP = examples(
    "triggerc lsp                              # what an editor starts; see editors/README.md",
    "nvim: vim.lsp.start({ name = \"triggerc\", cmd = { \"triggerc\", \"lsp\" } })",
)


@click.command("lsp", epilog=EXAMPLES_LSP)
@click.option("--stdio", is_flag=True, help="Talk over stdin/stdout (the default and only transport).")
def lsp_cmd(stdio: bool) -> None:
    """Language server for .trg files over stdio: diagnostics, hover, completion, definitions,
    references, symbols, formatting and quick fixes. Start it from your editor."""
    _editor_extra("lsp").main()


EXAMPLES_MCP = examples(
    "triggerc mcp --state .triggerlang       # what an MCP client starts",
    "claude mcp add triggerlang -- triggerc mcp --state /srv/app/.triggerlang",
)


@click.command("mcp", epilog=EXAMPLES_MCP)
@click.option("--state", "state_dir", type=click.Path(file_okay=False),
              help="State folder the history tools read (default .triggerlang/ in the working folder).")
@_store_option("Read history from this postgresql:// store instead (or TRIGGERLANG_STORE).")
@click.option("--url", default="http://127.0.0.1:8080", show_default=True, envvar="TRIGGERLANG_URL",
              help="The running server `emit` sends to (loopback only; or TRIGGERLANG_URL).")
def mcp_cmd(state_dir: str | None, store_url: str | None, url: str) -> None:
    """Model Context Protocol server over stdio, for coding agents: check, explain, catalogue,
    emit, runs, run_log, events, groups. Read-only except emit (to a loopback server)."""
    from pathlib import Path

    mod = _editor_extra("mcp")
    if store_url:
        _check_store_url(store_url)
    try:
        server = mod.build_server(state_dir=Path(state_dir) if state_dir else None, url=url, store_url=store_url)
    except ValueError as e:
        usage_error(str(e))
    server.run("stdio")
