"""The one home of the defaults that more than one phase needs (SPEC §3, §9).

The checker writes the policy defaults into every rule, the manifest writer the HTTP and
watcher defaults into the listener manifest, and the runtime falls back on the same values
for a hand-written manifest that leaves them out: all of them read them here.
"""

from __future__ import annotations

from types import MappingProxyType

# --- HTTP listener (SPEC §9) -------------------------------------------------------------
HTTP_HOST = "127.0.0.1"
"""Loopback only, unless ``--host`` or ``source http host=`` says otherwise."""
HTTP_PORT = 8080
HTTP_MAX_BODY = 10 * 1024 * 1024
"""A larger request body is refused with 413."""
BUILT_IN_PATHS = ("/healthz", "/readyz", "/events", "/metrics")
"""Paths ``serve`` answers itself (liveness, readiness, ``emit``, Prometheus metrics): no
route may take them. ``GET /metrics`` is answered before any route is looked at, so a route
there never heard a scrape's GET, and a POST to it would be the only method it got."""
READY_TIMEOUT = 3.0
"""Seconds ``/readyz`` waits for the store to answer before it says it does not."""

# --- watchers ----------------------------------------------------------------------------
GIT_POLL = 0.25
"""Seconds between two looks at a watched repository's refs."""
IGNORED_FOLDERS = (".git", ".hg", ".svn", ".bzr", "_darcs", ".pijul", ".jj", ".fossil-settings", "__pycache__")
"""Folders the file watcher never reports, nor anything in them, at any depth: version
control (watchexec's default ignores, and Jujutsu's) and Python's byte code."""
EDITOR_TEMP_FILES = ("*.sw[a-p]", "*.swx", "*~", ".#*", "#*#", "4913", "*.tmp", ".DS_Store", "*___jb_tmp___",
                     "*___jb_old___", "*___jb_bak___", ".goutputstream-*", "*.kate-swp")
"""Names of files the file watcher never reports (globs): editors' swap, backup, lock and
temporary files (vim, emacs, JetBrains, GNOME, Kate) and macOS's .DS_Store."""
ALWAYS_IGNORED = (*(f"**/{d}/**" for d in IGNORED_FOLDERS), *EDITOR_TEMP_FILES)
"""Both, as the manifest lists them (the file section's ``always_ignored``)."""
STATE_DIR = ".triggerlang"

# --- policies (SPEC §3) ------------------------------------------------------------------
BUSY_MODES = ("queue", "skip", "restart", "parallel", "signal")
TIMEOUT_S = 3600.0
FILE_DEBOUNCE_S = 0.1
BACKOFF_S = 5.0
POLICIES = MappingProxyType({"debounce": None, "busy": "queue", "timeout": TIMEOUT_S, "retry": 0,
                             "backoff": BACKOFF_S, "dedupe": None})
"""A rule's policies when it writes none (a file rule's debounce is :data:`FILE_DEBOUNCE_S`)."""
TICK_ALREADY_WAITING = ("busy queue: a tick of this rule is already waiting for the running run "
                        "(schedule ticks do not pile up)")
"""Why a ``schedule.tick`` run is recorded ``skipped`` under ``busy queue``: at most one tick
waits behind a running run of its rule, as a systemd timer that elapses while its unit is
still active starts nothing more. Queued, a scheduled action slower than its period would
grow a backlog without bound (and run stale ticks long after a restart). Both stores."""


def http_section(routes: list | None = None, host: str = HTTP_HOST, port: int = HTTP_PORT) -> dict:
    """A manifest's ``sources.http`` with these routes and the default limits."""
    return {"host": host, "port": port, "max_body": HTTP_MAX_BODY, "routes": list(routes or [])}
