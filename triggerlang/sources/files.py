"""The file source: file-system changes under a root become ``file.*`` events (SPEC §4).

Manifest section: ``{"root": ".", "roots": ["src", "."], "ignore": ["*.log", "build/**"],
"state_dir": ".triggerlang"}``. ``root`` is relative to the rules file's folder; ``roots``
(the literal prefixes of the rules' ``path`` globs) are relative to ``root``.

Algorithm
---------
1. **Watch set.** Each root is resolved (``realpath``). A root that does not exist yet is
   replaced by its nearest existing parent, so that its creation and everything later
   written in it are seen; roots inside other roots are dropped (one watcher, one event
   per change). A root outside ``root`` is ignored with a warning.
2. **Watching.** One ``watchfiles.awatch`` over the watch set (inotify/FSEvents, recursive),
   with ``step`` 5 ms and ``debounce`` 50 ms: a burst is yielded once it has been quiet
   for 5 ms, a continuous stream at least every 50 ms (the rule's own debounce, 100 ms
   by default, is what groups a burst into one run). 5 ms rather than 10: a change
   reaches the journal in 9.4 ms instead of 18.6 (p50, ``bench/latency.py``) for 0.15 %
   more of a core while idle (the native watcher wakes every step). watchfiles' own default filter is
   off; this module filters. ``start()`` returns once the native watcher is live (the
   first time it polls the stop flag), so a change made right after ``start()`` is seen.
   ``stop()`` sets the stop flag, which the watcher checks every step. With ``poll``
   (seconds, ``source file poll=2s``) the source scans the folders that often instead:
   for file systems whose changes the kernel does not report (NFS, SMB, some container
   bind mounts), as ``watchexec --poll``. It scans them itself, with the rescan of step 8
   (:meth:`FileSource._poll_loop`): a path there and not known is created, a known one
   gone is deleted, a file whose inode or modification or change time (in nanoseconds)
   differs from the last scan's is modified. Not watchfiles' polling watcher
   (``force_polling``): that one compares whole seconds of modification time, so it missed
   a file changed twice within a second (created then written, a second save), and it
   fails on a name that is not UTF-8 as its native watcher does; a scan skips such a
   name. watchfiles' watcher is still the fallback past ``known_cap`` paths, where the
   source keeps no known set to compare with (logged); it reports a link to nothing
   deleted at every scan, and such a report of a link that has not changed is dropped
   (:meth:`FileSource._dangling_link_unchanged`).
3. **Filtering.** A change is dropped when its path is outside ``root`` once symlinks are
   resolved (``os.path.realpath``), is not under one of the configured roots, has a
   segment that is a version control folder or ``__pycache__``
   (:data:`~triggerlang.defaults.IGNORED_FOLDERS`), is (or is under) the state directory
   (the context's and the manifest's), is named as an editor or OS temporary file
   (:data:`~triggerlang.defaults.EDITOR_TEMP_FILES`: ``*.swp`` ``*~`` ``.#*`` ``#*#``
   ``4913`` ``*___jb_tmp___``...), or matches an ``ignore`` glob. Globs are the language's own
   (:mod:`triggerlang.compile.patterns`: ``*`` and ``?`` within a segment, ``**`` across
   segments, ``[abc]``); a glob without ``/`` is tried against every segment (``*.log``
   anywhere, ``node_modules`` and all below it), one with ``/`` is anchored at ``root``
   and also covers everything below what it matches (``docs/gen`` ignores its content).
   With ``gitignore: true`` (``source file gitignore=true``), a path the repository's
   ``.gitignore`` / ``.ignore`` files ignore is dropped too (:mod:`.gitignore`). A path is
   reported where it is, its folders' links resolved (a link itself is reported as
   itself): inotify names a folder by whichever of its paths it watched last, so a change
   in ``real/`` with a ``linkin -> real`` beside it would otherwise come as ``linkin/...``
   or ``real/...`` by chance; the target's path is the one a rule can rely on.
4. **One event per path.** watchfiles reports a *set* of ``(change, path)`` per batch; the
   changes of one path are folded into one event: ``added`` → ``created``, ``modified`` →
   ``modified``, ``deleted`` → ``deleted``; ``added`` with ``modified`` → ``created``;
   ``deleted`` of a path that exists again → ``modified`` (it was replaced); a path added
   and deleted within the batch and gone now was transient and is dropped. ``modified``
   of a directory (a metadata change) is dropped; directories are created and deleted
   like files. Events go out sorted by path.

   With ``meta: false`` (``source file meta=false``, watchexec's ``--no-meta``), a file's
   ``modified`` that changed neither its size nor its modification time (a ``chmod``, a
   ``chown``, an extended attribute: inotify's ``IN_ATTRIB``, which watchfiles reports as a
   modification like a write) is dropped too, without reading the file
   (:meth:`FileSource._meta_only`): the source keeps a stamp (size, modification and
   change times) of up to 20 000 files, taken by the scan of step 7 and at each change
   (about 5 MB; the oldest go first), and a file without one counts as changed. A
   ``touch`` still counts: it sets the modification time, which make, ninja and rsync take
   for a change, and telling it from a write of the same size would mean reading the file.

   Data: ``path`` (relative to ``root``, ``/`` separators), ``name`` (basename), ``ext``
   (without the dot, ``""`` if none; ``.bashrc`` has none), ``change``.
5. **New folders.** The OS watch on a new folder is only added once its creation has been
   seen, so files written into it at once (``mkdir -p a/b && touch a/b/c``, ``cp -r``,
   ``git checkout``) raise no event. After reporting a created folder, the source walks it
   and reports ``created`` for what it holds (filtered as above, at most 10 000 entries);
   a path whose creation was reported in the last 5 s (and not deleted since) is not
   reported again, whichever of the walk and the watcher saw it first, while it is still
   the same file (device and inode): a file renamed over it since (an editor's atomic
   save of a file it has just created) is a new change and is reported.
6. **Lost folders.** When a watched folder itself disappears, its OS watch dies with it:
   the watcher is restarted on the nearest existing parents, as at start.
7. **Folders moved out.** A folder moved out of the watched tree (``mv src/pkg /tmp``, or
   into a trash folder) raises one event, for the folder: its files were not deleted, so
   the kernel says nothing of them, and a rule on ``src/**/*.py`` would never hear that
   they are gone. So the source keeps the set of paths it knows (:class:`KnownPaths`, the
   way Watchman and chokidar keep a view of the tree): seeded by a scan of the roots once
   the watcher is live (in a thread, which ``start()`` does not wait for: 5 000 paths take
   about 0.1 s; changes seen meanwhile are applied after the scan, and a folder moved out
   before it ends is reported alone), and kept up to date from every event and new-folder
   scan. Only what
   passes the filters of step 3 is kept; symbolic links are kept as entries and not
   followed. When a known folder is reported deleted, each path it held that is gone
   too (and not already reported in the same batch, as ``rm -rf`` does) is reported
   ``deleted`` after it, at most 10 000 of them, as a created folder's content is. A
   folder moved *into* the tree is a created folder (step 5): it and everything it holds
   are reported ``created``; a rename inside the tree is both. A folder replaced within
   one batch (moved away and another put in its place) reports what it held that is gone
   and what the new one holds that was not known. The set costs about 100 bytes a path;
   past :attr:`FileSource.known_cap` paths (100 000, about 10 MB) the source stops
   keeping it, logs a warning, and a folder moved out is reported alone again.

8. **Names that are not UTF-8.** watchfiles cannot report a path whose name is not valid
   UTF-8 (``printf x > $'odd\\xff.txt'``): its native watcher then fails ("Unable to decode
   path ... to string", wrapped in anyio's "unhandled errors in a TaskGroup") and drops
   every change it held, and the failure stays with that watcher. It has no option to skip
   such a name (the Rust side checks the name before any filter, so an ``ignore`` pattern
   cannot help), so the source makes up for it: it restarts the watcher at once (after a
   pause doubling from 50 ms up to 1 s while failures follow within 2 s of each other: a
   file written in a loop under such a name), and once the new one is live it rescans the
   roots against the known set of step 7 and emits, as one batch, what is there and not
   known (created), what is known and gone (deleted), and each file whose modification or
   change time is later than the last batch the watcher delivered, less 250 ms (modified;
   the slack covers the coarse clock of file times and the delay between watchfiles'
   return and this source's; a file changed within it may be reported twice, a run too
   many rather than one too few). A file a rescan reported is not reported by the next one
   while its inode and times are unchanged, so the same name failing again and again does
   not repeat them. Without a known set (past ``known_cap`` paths) the batch is lost, and
   the log says so. The failure is logged in one line, a warning the first time for a
   name and at debug level after: the folder, the name with its bytes escaped as the Rust
   side prints them (``"odd\\xFF.txt"``), how many changes the rescan found, and what to
   do (rename the file or move it out of the watched folders). Walks (steps 5, 7, 8) skip
   such names: an event's path must be text that a journal and JSON can hold.

Known limits: an editor that saves by writing a temporary file and renaming it over the
original produces ``created`` for the original (the kernel reports a new file); watching
a missing root's parent may watch more than needed until restart. Run debounce is the
engine's job, not this source's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import stat
import sys
import time
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from .. import defaults
from ..compile.patterns import PatternError, compile_glob
from ..events import Event, complete_file_data
from .base import Source, SourceContext, StopFlag
from .gitignore import IGNORE_FILES, GitIgnore

__all__ = ["FileSource", "IgnoreRules", "KnownPaths"]

_TEMP_NAMES = re.compile("|".join(compile_glob(g).pattern for g in defaults.EDITOR_TEMP_FILES))
_ALWAYS_SKIP_DIRS = frozenset(defaults.IGNORED_FOLDERS)
_CHANGE = {1: "created", 2: "modified", 3: "deleted"}  # watchfiles.Change values
_SCAN_CAP = 10_000        # entries reported from one newly created folder
_RECENT_WINDOW = 5.0      # seconds during which a reported creation is not reported again
_STAMPS_CAP = 20_000      # meta=false: the files whose stamp is kept (the start's scan, then the latest changed)


class IgnoreRules:
    """The manifest's ``ignore`` globs (see the module docstring for their semantics)."""

    def __init__(self, patterns: Iterable[str], log: Any = None) -> None:
        self.anywhere: list[re.Pattern[str]] = []   # no '/': tried against each segment
        self.anchored: list[re.Pattern[str]] = []   # with '/': against the path and its parents
        for p in patterns:
            p = str(p).strip().rstrip("/")
            if not p:
                continue
            try:
                if "/" in p:
                    self.anchored.append(compile_glob(p.lstrip("/")))
                else:
                    self.anywhere.append(compile_glob(p))
            except PatternError as exc:
                if log is not None:
                    log.warning("file: ignore pattern %r is not a valid glob (%s); skipped", p, exc)

    def match(self, rel: str) -> bool:
        parts = rel.split("/")
        if self.anywhere and any(rx.match(seg) for seg in parts for rx in self.anywhere):
            return True
        if self.anchored:
            for k in range(1, len(parts) + 1):
                prefix = "/".join(parts[:k])
                if any(rx.match(prefix) for rx in self.anchored):
                    return True
        return False


class KnownPaths:
    """The paths under the watched roots a file source knows of, as a tree of folders
    (``{name: subtree}``; ``None`` for a file or a link), relative to the source's root.
    Names are interned: the same name in many folders is stored once."""

    def __init__(self) -> None:
        self._tree: dict[str, Any] = {}
        self.count = 0  # entries held, folders included

    def _node(self, rel: str) -> tuple[dict[str, Any] | None, str]:
        """The folder that holds ``rel`` (None if not known) and ``rel``'s name."""
        *parents, name = rel.split("/")
        node: Any = self._tree
        for seg in parents:
            node = node.get(seg)
            if not isinstance(node, dict):
                return None, name
        return node, name

    def add(self, rel: str, is_dir: bool) -> None:
        """Know ``rel`` (and its parent folders). A file that became a folder, or the
        reverse, is the new kind; a folder that became a file loses what it held."""
        node: dict[str, Any] = self._tree
        *parents, name = rel.split("/")
        for seg in parents:
            sub = node.get(seg)
            if not isinstance(sub, dict):
                if seg not in node:
                    self.count += 1
                sub = node[sys.intern(seg)] = {}
            node = sub
        if name not in node:
            self.count += 1
            node[sys.intern(name)] = {} if is_dir else None
            return
        old = node[name]
        if is_dir and old is None:
            node[name] = {}
        elif not is_dir and isinstance(old, dict):
            self.count -= self._size(old)
            node[name] = None

    def __contains__(self, rel: str) -> bool:
        parent, name = self._node(rel)
        return parent is not None and name in parent

    def descendants(self, rel: str) -> list[str]:
        """What the known folder ``rel`` holds, at any depth, sorted; [] for a file."""
        parent, name = self._node(rel)
        sub = parent.get(name) if parent is not None else None
        out: list[str] = []
        if isinstance(sub, dict):
            self._collect(sub, rel, out)
        return sorted(out)

    def all_paths(self) -> list[str]:
        """Every known path."""
        out: list[str] = []
        for name, sub in self._tree.items():
            out.append(name)
            if isinstance(sub, dict):
                self._collect(sub, name, out)
        return out

    def remove(self, rel: str) -> None:
        """Forget ``rel`` and what it held."""
        parent, name = self._node(rel)
        if parent is None or name not in parent:
            return
        sub = parent.pop(name)
        self.count -= 1 + (self._size(sub) if isinstance(sub, dict) else 0)

    @classmethod
    def _collect(cls, tree: dict[str, Any], prefix: str, out: list[str]) -> None:
        for name, sub in tree.items():
            out.append(f"{prefix}/{name}")
            if isinstance(sub, dict):
                cls._collect(sub, f"{prefix}/{name}", out)

    @classmethod
    def _size(cls, tree: dict[str, Any]) -> int:
        return sum(1 + (cls._size(sub) if isinstance(sub, dict) else 0) for sub in tree.values())


_UNDECODABLE = re.compile(r'Unable to decode path (".*") to string', re.S)
_RESCAN_SLACK_NS = 250_000_000  # a rescan also takes changes this much older than the last batch


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions an exception group holds, at any depth (watchfiles' errors come
    wrapped in anyio's "unhandled errors in a TaskGroup"), or ``[exc]``."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def _reason(exc: BaseException) -> str:
    return "; ".join(str(leaf) or type(leaf).__name__ for leaf in _leaves(exc))


def _undecodable(exc: BaseException) -> str | None:
    """The path watchfiles could not report because its name is not UTF-8, as its Rust side
    printed it (quoted, the bad bytes escaped: ``"/p/src/odd\\xFF.txt"``), or None when
    ``exc`` is another failure."""
    for leaf in _leaves(exc):
        m = _UNDECODABLE.search(str(leaf))
        if m:
            return m.group(1)
    return None


def _utf8(name: str) -> bool:
    """Whether a name from ``os.scandir`` was valid UTF-8 (an invalid byte comes as a lone
    surrogate, which a journal, a manifest or JSON cannot hold)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class FileSource(Source):
    """Watches folders with watchfiles and emits ``file.created|modified|deleted``.

    See the module docstring for the watch set, the filters and the folding of changes.
    """

    kind = "file"
    known_cap = 100_000  # paths kept in the known set (step 7) before it is given up

    def __init__(self, config: Mapping[str, Any], ctx: SourceContext) -> None:
        super().__init__(config, ctx)
        base = Path(ctx.base_dir)
        self.root_text = str(config.get("root", ".") or ".")
        root = Path(self.root_text)
        self.root = os.path.realpath(root if root.is_absolute() else base / root)
        self.roots_text = [str(r) for r in (config.get("roots") or ["."])]
        self.ignore = IgnoreRules(config.get("ignore") or [], ctx.log)
        # ``gitignore=true``: the .gitignore / .ignore files too (sources/gitignore.py)
        self.gitignore = GitIgnore(self.root, ctx.log) if config.get("gitignore") is True else None
        # ``poll=D``: scan every D instead of the kernel's notifications (network shares,
        # some container mounts, where inotify hears nothing)
        self.poll = float(config["poll"]) if isinstance(config.get("poll"), (int, float)) and config["poll"] > 0 else None
        self._poll_native = False  # poll=: watchfiles' polling watcher, once there is no known set
        # ``meta=false``: a change of a file's mode, owner... alone is dropped (step 4)
        self.meta = config.get("meta") is not False
        # meta=false: rel path -> its (size, mtime_ns, ctime_ns) when last seen, oldest first
        self._stamps: dict[str, tuple[int, int, int]] = {}
        states = {os.path.realpath(ctx.state_dir)}
        if config.get("state_dir"):
            sd = Path(str(config["state_dir"]))
            states.add(os.path.realpath(sd if sd.is_absolute() else base / sd))
        self.state_dirs = sorted(states)
        self.roots = self._resolve_roots()
        self._stop: StopFlag | None = None
        self._task: asyncio.Task[None] | None = None
        # rel path -> when its creation was reported, and the file's (st_dev, st_ino) then
        self._recent: dict[str, tuple[float, tuple[int, int] | None]] = {}
        # poll=: rel path of a link to nothing -> its (inode, change time), as last seen
        self._dangling: dict[str, tuple[int, int]] = {}
        self._started_ns = time.time_ns()  # (set again by start())
        # what the roots hold (step 7); None before the first scan and once given up
        self._known: KnownPaths | None = None
        # while the first scan runs: the updates seen meanwhile, (rel, is_dir) or (rel, None)
        self._pending: list[tuple[str, bool | None]] | None = None
        self._seed_task: asyncio.Task[None] | None = None
        self.seeded = asyncio.Event()  # set once the first scan is over (done or given up)
        # a name that is not UTF-8 (step 8): when the watcher last reported a batch (wall
        # clock, ns), the rescans under way, the names already logged, the last failures
        self._reported_ns = time.time_ns()
        self._emitting = asyncio.Lock()  # a rescan's batch and the watcher's are emitted in turn
        self._recover_tasks: set[asyncio.Task[None]] = set()
        self._undecodable_logged: set[str] = set()
        self._undecodable_last = (0.0, 0.0)  # (monotonic time, pause) of the last such failure
        self._submitted = 0  # events submitted so far
        # the files the last rescan reported modified -> their (inode, mtime, ctime) then: a
        # rescan soon after does not report them again while they are unchanged
        self._rescanned: dict[str, tuple[int, int, int]] = {}

    def describe(self) -> str:
        polling = f", polling every {self.poll:g}s" if self.poll is not None else ""
        meta = "" if self.meta else ", ignoring metadata-only changes"
        return f"file: watching {', '.join(self.roots_text)} under {self.root}{polling}{meta}"

    # ---- watch set -------------------------------------------------------------------

    def _resolve_roots(self) -> list[str]:
        roots = []
        for r in self.roots_text:
            p = Path(r)
            full = os.path.realpath(p if p.is_absolute() else Path(self.root) / p)
            if not _under(full, self.root):
                self.ctx.log.warning("file: root %r is outside %s; ignored", r, self.root)
                continue
            roots.append(full)
        return sorted(set(roots))

    def watch_paths(self) -> list[str]:
        """The folders to hand to the watcher: each root or its nearest existing parent,
        with folders inside other folders dropped."""
        cands = set()
        for r in self.roots:
            p = r
            while not os.path.isdir(p):
                parent = os.path.dirname(p)
                if parent == p:
                    break
                p = parent
            if p != r:
                self.ctx.log.info("file: %s does not exist yet; watching %s for it", r, p)
            cands.add(p)
        out: list[str] = []
        for p in sorted(cands, key=len):
            if not any(_under(p, q) for q in out):
                out.append(p)
        return out

    # ---- filtering -------------------------------------------------------------------

    def relative(self, path: str, real: str | None = None) -> str | None:
        """``path`` relative to root with ``/`` separators, or None if it is to be ignored.
        ``real``: ``path`` with its links resolved, when the caller knows it."""
        real = os.path.realpath(path) if real is None else real
        if not _under(real, self.root):
            return None
        if not any(_under(path, r) or _under(real, r) for r in self.roots):
            return None
        for sd in self.state_dirs:
            if _under(real, sd) or _under(path, sd):
                return None
        # where the entry really is: its folders' links resolved, not the entry's own (a link
        # is reported as itself). A change seen through a link inside the root (the kernel
        # names a folder by whichever of its paths was watched last) is reported at its
        # target's path, so a rule on that path hears it.
        loc = path if real == path else os.path.join(os.path.realpath(os.path.dirname(path)),
                                                      os.path.basename(path))
        if _under(loc, self.root):
            rel = os.path.relpath(loc, self.root)
        else:
            rel = os.path.relpath(path, self.root) if _under(path, self.root) else os.path.relpath(real, self.root)
        if rel == ".":
            return None
        rel = rel.replace(os.sep, "/")
        parts = rel.split("/")
        if any(seg in _ALWAYS_SKIP_DIRS for seg in parts):
            return None
        if _TEMP_NAMES.match(parts[-1]):
            return None
        if self.ignore.match(rel):
            return None
        if self.gitignore is not None and self.gitignore.ignored(rel, os.path.isdir(path)):
            return None
        return rel

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._started_ns = time.time_ns()
        self._reported_ns = self._started_ns + _RESCAN_SLACK_NS  # (a rescan looks back from start)
        self._stop = StopFlag(loop)
        self._task = asyncio.create_task(self._run(self._stop), name="file-source")
        if self.poll is not None:  # poll=: the first scan is what the next ones compare with
            self._seed_task = asyncio.create_task(self._seed(), name="file-source-scan")
        if not await self.ready(10):
            if self._task.done():
                self.ctx.log.error("file: the watcher did not start")
            else:
                self.ctx.log.warning("file: the watcher is slow to start; continuing")
        if self._seed_task is None:
            self._seed_task = asyncio.create_task(self._seed(), name="file-source-scan")

    async def ready(self, timeout: float) -> bool:
        """Wait until the current native watcher is live (also after a restart)."""
        flag = self._stop
        if flag is None:
            return False
        end = asyncio.get_running_loop().time() + timeout
        while True:
            live = flag.live
            left = end - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(asyncio.shield(live.wait()), min(left, 0.1))
            except asyncio.TimeoutError:
                if self._task is None or self._task.done():
                    return False
                continue
            if flag.live is live:  # not re-armed by a restart meanwhile
                return True

    async def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()  # also ends the first scan, if it still runs
        seed, self._seed_task = self._seed_task, None
        if seed is not None:
            await asyncio.gather(seed, return_exceptions=True)
        for rescan in list(self._recover_tasks):
            rescan.cancel()
        await asyncio.gather(*self._recover_tasks, return_exceptions=True)
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), 2)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        except Exception:
            pass

    async def _run(self, flag: StopFlag) -> None:
        from watchfiles import awatch  # imported here: `triggerc check` must not load it

        first = True
        recover: str | None = None  # the name watchfiles could not report, before a restart
        while not flag.stopped:
            if not first:
                flag.rearm()
            first = False
            if recover is not None:  # once the new watcher is live, look for what was dropped
                self._recover_tasks.add(task := asyncio.create_task(self._recover(recover), name="file-source-rescan"))
                task.add_done_callback(self._recover_tasks.discard)
                recover = None
            paths = self.watch_paths()
            if self.poll is not None and not self._poll_native:
                if await self._poll_loop(flag):
                    return  # the stop flag was set
                continue  # no known set: watchfiles' polling watcher from now on
            try:
                polling = {} if self.poll is None else {"force_polling": True,
                                                          "poll_delay_ms": max(1, round(self.poll * 1000))}
                gen = awatch(*paths, watch_filter=None, step=5, debounce=50, stop_event=flag,
                             recursive=True, ignore_permission_denied=True, **polling)
                async with contextlib.aclosing(gen):
                    async for changes in gen:
                        self._reported_ns = time.time_ns()
                        async with self._emitting:
                            await self._emit(changes)
                        if not all(os.path.isdir(p) for p in paths):
                            # a watched folder went away: its OS watch is gone with it, so
                            # start over from the nearest existing parents
                            self.ctx.log.info("file: a watched folder disappeared; re-watching")
                            break
                    else:
                        return  # the stop flag was set
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                bad = _undecodable(exc)
                if bad is None:
                    self.ctx.log.error("file: watcher on %s failed (%s); restarting in 1s", ", ".join(paths),
                                       _reason(exc))
                    pause = 1.0
                else:
                    pause = self._undecodable_pause(time.monotonic())
                    recover = bad
                for _ in range(round(pause / 0.05)):
                    if flag.stopped:
                        return
                    await asyncio.sleep(0.05)

    async def _poll_loop(self, flag: StopFlag) -> bool:
        """``poll=``: scan the roots every ``poll`` seconds against the known set (step 7) and
        emit what changed, as the rescan of step 8 does; True once the stop flag is set, False
        when there is no known set to compare with (past ``known_cap`` paths): the caller
        then falls back to watchfiles' polling watcher."""
        while not flag.stopped and not self.seeded.is_set():  # (start() waits for it)
            await asyncio.sleep(0.01)
        if self._known is None and not flag.stopped:
            return self._fall_back()
        flag.is_set()  # live: a change made from now on is found by the next scan
        since = self._started_ns
        while not flag.stopped:
            steps = max(1, round(self.poll / 0.05))  # (the stop flag, every 50 ms)
            for _ in range(steps):
                if flag.stopped:
                    return True
                await asyncio.sleep(self.poll / steps)
            async with self._emitting:
                started = time.time_ns()
                batch = await asyncio.to_thread(self._rescan, since)
                if batch is None:
                    return self._fall_back()
                since = max(since, started - _RESCAN_SLACK_NS)  # (never back: a file is judged once)
                if batch:
                    await self._emit(batch)
        return True

    def _fall_back(self) -> bool:
        self._poll_native = True
        self.ctx.log.warning("file: more than %d paths under %s: polling with watchfiles' watcher, which "
                             "misses a file changed twice within a second", self.known_cap, ", ".join(self.roots_text))
        return False

    def fold(self, changes: Iterable[tuple[Any, str]]) -> list[tuple[str, str]]:
        """``[(rel_path, change)]`` for one watchfiles batch: one entry per path, sorted."""
        return [(rel, change) for _, rel, change in self._fold(changes)]

    def _fold(self, changes: Iterable[tuple[Any, str]]) -> list[tuple[str, str, str]]:
        by_path: dict[str, set[str]] = {}
        for change, path in changes:
            kind = _CHANGE.get(int(change))
            if kind is not None:
                by_path.setdefault(path, set()).add(kind)
        if self.gitignore is not None:  # an ignore file changed: read it anew before filtering
            for path in by_path:
                if os.path.basename(path) in IGNORE_FILES:
                    self.gitignore.forget(path)
        # one entry per reported path: a file seen through a link inside the root and at its
        # own path (the polling watcher names both) is one change
        by_rel: dict[str, tuple[str, set[str]]] = {}
        for path, kinds in by_path.items():
            rel = self.relative(path)
            if rel is not None:
                by_rel.setdefault(rel, (path, set()))[1].update(kinds)
        out: list[tuple[str, str, str]] = []
        for rel, (path, kinds) in by_rel.items():
            if "deleted" in kinds:
                if kinds == {"deleted"} and self.poll is not None and self._dangling_link_unchanged(rel, path):
                    continue
                if os.path.lexists(path):
                    change = "modified"  # deleted and there again: replaced
                elif "created" in kinds:
                    continue  # came and went within the batch
                else:
                    change = "deleted"
            elif "created" in kinds:
                change = "created"
            elif os.path.isdir(path):
                continue  # a folder's metadata changed: noise
            else:
                change = "modified"
            if not self.meta and self._meta_only(rel, path, change, kinds):
                continue  # meta=false: a chmod, a chown...
            out.append((path, rel, change))
        out.sort(key=lambda t: t[1])
        return out

    def _meta_only(self, rel: str, path: str, change: str, kinds: set[str]) -> bool:
        """``meta=false``: whether the file ``path``, reported modified (``kinds``: only
        that), kept its content. It did when its size and modification time are still
        those of its stamp (taken when it was last seen: by the scan of the start, or at its
        last change), its change time has moved since the stamp (the change came after it),
        and its change time is not its modification time. A write sets both times to the
        same instant (so do a ``touch`` and a ``truncate``); a ``chmod`` or a ``chown`` moves
        the change time alone. A file without a stamp counts as changed: a run too many,
        never one too few. Keeps each change's stamp (a deleted file's goes)."""
        before = self._stamps.pop(rel, None)
        if change == "deleted":
            return False
        try:
            st = os.stat(path)
        except OSError:
            return False
        if stat.S_ISDIR(st.st_mode):
            return False
        self._stamps[rel] = now = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if len(self._stamps) > _STAMPS_CAP:  # the oldest goes (a dict keeps its insertion order)
            del self._stamps[next(iter(self._stamps))]
        if change != "modified" or kinds != {"modified"} or before is None or now[2] == now[1]:
            return False  # created, replaced, not known, or written (touched) since its mode changed
        return now[:2] == before[:2] and now[2] != before[2]

    def _dangling_link_unchanged(self, rel: str, path: str) -> bool:
        """Polling only: whether ``path``, reported deleted, is a link to nothing that has
        not changed. The polling watcher cannot read a dangling link's target, so it
        reports the link deleted at every scan; without this, a broken link under a
        ``poll=`` root made a ``file.modified`` every poll, forever. A link is told apart by
        its own ``lstat`` (inode, change time); one not seen before is news only if it
        changed after the source started (else it was there before)."""
        try:
            st = os.lstat(path)
        except OSError:
            self._dangling.pop(rel, None)
            return False
        if not os.path.islink(path) or os.path.exists(path):
            self._dangling.pop(rel, None)
            return False
        sig = (st.st_ino, st.st_ctime_ns)
        before = self._dangling.get(rel)
        self._dangling[rel] = sig
        if before is not None:
            return before == sig
        return st.st_ctime_ns < self._started_ns

    # ---- what the roots hold (step 7) ------------------------------------------------

    def _walk(self, folder: str) -> Iterator[tuple[str, str, bool]]:
        """``(path, rel, is_dir)`` of what ``folder`` holds, at any depth, filtered as
        events are; a link is an entry, never followed. Folders in name order, each
        folder's entries before what its sub-folders hold."""
        real_folder = os.path.realpath(folder) == folder
        stack = [folder]
        while stack:
            try:
                with os.scandir(stack.pop()) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError:
                continue  # gone meanwhile, or unreadable
            folders = []
            for entry in entries:
                if not _utf8(entry.name):
                    continue  # never reported (step 8)
                link = entry.is_symlink()
                rel = self.relative(entry.path, entry.path if real_folder and not link else None)
                if rel is None:
                    continue
                is_dir = not link and entry.is_dir(follow_symlinks=False)
                yield entry.path, rel, is_dir
                if is_dir:
                    folders.append(entry.path)
            stack.extend(reversed(folders))

    def _tops(self) -> list[str]:
        """The roots that exist, without those inside another."""
        tops: list[str] = []
        for r in sorted(self.roots, key=len):
            if os.path.isdir(r) and not any(_under(r, q) for q in tops):
                tops.append(r)
        return tops

    def _scan_roots(self, stamps: dict[str, tuple[int, int, int]] | None = None) -> KnownPaths | None:
        """What the existing roots hold (run in a thread); None past ``known_cap``. With
        ``stamps`` (``meta=false``): the stamps of the first :data:`_STAMPS_CAP` files too."""
        known = KnownPaths()
        for top in self._tops():
            for path, rel, is_dir in self._walk(top):
                known.add(rel, is_dir)
                if stamps is not None and not is_dir and len(stamps) < _STAMPS_CAP:
                    with contextlib.suppress(OSError):
                        st = os.stat(path)
                        stamps[rel] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                if known.count > self.known_cap:
                    return None
                if self._stop is not None and self._stop.stopped:
                    return known
        return known

    async def _seed(self) -> None:
        """Fill the known set by a scan of the roots (in a thread: ``start()`` does not wait
        for it), then apply what events said meanwhile. With ``meta=false``, the files'
        stamps too (the ones taken by events meanwhile are newer: they stay)."""
        self._pending = []
        failed = False
        stamps: dict[str, tuple[int, int, int]] | None = None if self.meta else {}
        try:
            known = await asyncio.to_thread(self._scan_roots, stamps)
            if stamps:
                stamps.update(self._stamps)
                self._stamps = dict(islice(stamps.items(), max(0, len(stamps) - _STAMPS_CAP), None))
        except Exception as exc:  # an unreadable tree must not stop the source
            self.ctx.log.warning("file: could not list %s (%s); a folder moved out will be reported "
                                 "alone", ", ".join(self.roots_text), exc)
            known, failed = None, True
        finally:
            pending, self._pending = self._pending, None
            self.seeded.set()
        if known is None:
            if not failed:
                self._give_up()
        else:
            self._known = known
            for rel, is_dir in pending:
                self._know(rel, is_dir)

    def _know(self, rel: str, is_dir: bool | None) -> None:
        """Note that ``rel`` is there (a folder or not), or with ``is_dir`` None, gone."""
        if self._pending is not None:
            self._pending.append((rel, is_dir))
            return
        known = self._known
        if known is None:
            return
        if is_dir is None:
            known.remove(rel)
        else:
            known.add(rel, is_dir)
            if known.count > self.known_cap:
                self._give_up()

    # ---- a name that is not UTF-8 (step 8) ---------------------------------------------

    def _undecodable_pause(self, now: float) -> float:
        """How long to wait before restarting the watcher after a name it could not report:
        not at all the first time, then twice as long each time another follows within 2 s,
        up to 1 s (a file written in a loop under that name)."""
        last, pause = self._undecodable_last
        pause = 0.0 if now - last > 2.0 else min(1.0, max(0.05, pause * 2))
        self._undecodable_last = (now, pause)
        return pause

    def _rescan(self, since_ns: int) -> list[tuple[int, str]] | None:
        """A watchfiles batch made by walking the roots (run in a thread): what is there and
        not known (added), each file whose modification or change time is ``since_ns`` or
        later (modified), and each known path that is gone (deleted). None without a known
        set (not kept past ``known_cap`` paths)."""
        known = self._known
        if known is None:
            return None
        batch: list[tuple[int, str]] = []
        seen: set[str] = set()
        stamps: dict[str, tuple[int, int, int]] = {}
        for top in self._tops():
            parts = os.path.relpath(top, self.root).replace(os.sep, "/").split("/")
            seen.update("/".join(parts[:k]) for k in range(1, len(parts) + 1))  # the top and its parents
            for path, rel, is_dir in self._walk(top):
                seen.add(rel)
                recent = False
                if not is_dir:
                    with contextlib.suppress(OSError):
                        st = os.lstat(path)
                        stamp = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
                        if max(stamp[1:]) >= since_ns:  # kept: the next rescan skips it if unchanged
                            recent, stamps[rel] = self._rescanned.get(rel) != stamp, stamp
                if rel not in known:
                    batch.append((1, path))
                elif recent:
                    batch.append((2, path))
                if len(seen) > self.known_cap:
                    return None
        batch.extend((3, os.path.join(self.root, *rel.split("/")))
                     for rel in known.all_paths() if rel not in seen)
        self._rescanned = stamps
        return batch

    async def _recover(self, bad: str) -> None:
        """After watchfiles failed on a name that is not UTF-8 (it then drops every change of
        its batch) and was restarted: once the new watcher is live, emit what the rescan of
        the roots finds changed since the last batch, and log the failure in one line."""
        folder, _, name = bad.strip('"').rpartition("/")
        try:
            await self.ready(10)
            await asyncio.wait_for(self.seeded.wait(), 60)
            async with self._emitting:
                since = self._reported_ns - _RESCAN_SLACK_NS
                self._reported_ns = time.time_ns()  # the live watcher reports what follows
                batch = await asyncio.to_thread(self._rescan, since)
                before = self._submitted
                if batch:
                    await self._emit(batch)
                found = self._submitted - before
        except Exception as exc:  # (a cancellation at stop goes through)
            batch, found = None, 0
            self.ctx.log.warning("file: could not rescan %s (%s)", ", ".join(self.roots_text), _reason(exc))
        if batch is None:
            lost = "the other changes it held at that moment were lost (more paths than a rescan covers)"
        else:
            lost = (f"it dropped the other changes of that moment; a rescan of {', '.join(self.roots_text)} "
                    f"found {found} change(s) and reported them")
        again = bad in self._undecodable_logged
        if len(self._undecodable_logged) < 1000:  # (each name once, within reason)
            self._undecodable_logged.add(bad)
        (self.ctx.log.debug if again else self.ctx.log.warning)(
            "file: watchfiles cannot report a name that is not UTF-8: %s in %s; %s. Rename the file "
            "(or move it out of the watched folders: an ignore pattern does not help, the watcher "
            "fails before any filter)%s", f'"{name}"', folder, lost,
            " [again]" if again else "")

    def _give_up(self) -> None:
        self.ctx.log.warning("file: more than %d paths under %s; a folder moved out of the watched "
                             "folders will be reported alone, not the files it held",
                             self.known_cap, ", ".join(self.roots_text))
        self._known = None

    # ---- events ----------------------------------------------------------------------

    async def _emit(self, changes: Iterable[tuple[Any, str]]) -> None:
        now = time.monotonic()
        for p, (t, _) in list(self._recent.items()):
            if now - t > _RECENT_WINDOW:
                del self._recent[p]
        folded = self._fold(changes)
        in_batch = {rel for _, rel, _ in folded}
        for path, rel, change in folded:
            if change == "deleted":
                self._recent.pop(rel, None)
                await self._submit(rel, change)
                await self._report_gone(rel, in_batch, replaced=False)
                self._know(rel, None)
                continue
            is_dir = os.path.isdir(path) and not os.path.islink(path)
            if change == "created" and not self._first_report(rel, path, now):
                self._know(rel, is_dir)
                continue  # already reported by the scan of its new parent folder
            await self._submit(rel, change)
            if is_dir and change == "modified":  # a folder replaced by another
                await self._report_gone(rel, in_batch, replaced=True)
            self._know(rel, is_dir)
            if is_dir:
                # The OS watch on a new folder is added only after it was created: what
                # was written in it meanwhile raises no event, so report what is there now.
                await self._report_content(path, now, new_only=change == "modified")

    async def _report_gone(self, rel: str, in_batch: set[str], replaced: bool) -> None:
        """After the deletion of ``rel`` (or its replacement by another folder): report
        the deletion of each known path it held that is gone and not in this batch."""
        known = self._known
        if known is None:
            return
        gone = [sub for sub in known.descendants(rel) if sub not in in_batch
                and not (replaced and os.path.lexists(os.path.join(self.root, sub)))]
        if len(gone) > _SCAN_CAP:
            self.ctx.log.warning("file: %s held more than %d entries; reporting the first ones", rel, _SCAN_CAP)
        for sub in gone[:_SCAN_CAP]:
            self._recent.pop(sub, None)
            await self._submit(sub, "deleted")
        if replaced:
            for sub in gone:
                self._know(sub, None)

    async def _report_content(self, folder: str, now: float, new_only: bool) -> None:
        """Report ``created`` for what a new folder already holds (``new_only``: what was
        not known), at most 10 000 entries; all of them join the known set."""
        count = 0
        for path, rel, is_dir in self._walk(folder):
            count += 1
            if count > _SCAN_CAP:
                if count == _SCAN_CAP + 1:
                    self.ctx.log.warning("file: %s holds more than %d entries; reporting the first ones",
                                         folder, _SCAN_CAP)
                if self._known is None:
                    break
                self._know(rel, is_dir)
                continue
            news = not (new_only and self._known is not None and rel in self._known)
            self._know(rel, is_dir)
            if news and self._first_report(rel, path, now):
                await self._submit(rel, "created")

    def _first_report(self, rel: str, path: str, now: float) -> bool:
        """Whether the creation of ``path`` is news (and remember it): not when it was
        reported in the last few seconds and ``path`` is still the same file."""
        try:
            st = os.lstat(path)
            ident: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            ident = None
        seen = self._recent.get(rel)
        if seen is not None and seen[1] == ident:
            return False
        self._recent[rel] = (now, ident)
        return True

    async def _submit(self, rel: str, change: str) -> None:
        self._submitted += 1
        data = complete_file_data({"path": rel}, change, paths=False)  # (the engine adds paths)
        try:
            await self.ctx.submit(Event("file", change, data))
        except asyncio.CancelledError:
            raise
        except Exception:
            self.ctx.log.exception("file: could not submit the change of %s", rel)
