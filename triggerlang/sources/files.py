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
   ``stop()`` sets the stop flag, which the watcher checks every step.
3. **Filtering.** A change is dropped when its path is outside ``root`` once symlinks are
   resolved (``os.path.realpath``), is not under one of the configured roots, has a
   ``.git`` segment, is (or is under) the state directory (the context's and the
   manifest's), is an editor or OS temporary file (``*.swp`` ``*.swo`` ``*.swx`` ``*~``
   ``.#*`` ``4913`` ``*.tmp`` ``.DS_Store``, JetBrains' ``*___jb_tmp___``, anything under
   ``__pycache__/``), or matches an ``ignore`` glob. Globs are the language's own
   (:mod:`triggerlang.compile.patterns`: ``*`` and ``?`` within a segment, ``**`` across
   segments, ``[abc]``); a glob without ``/`` is tried against every segment (``*.log``
   anywhere, ``node_modules`` and all below it), one with ``/`` is anchored at ``root``
   and also covers everything below what it matches (``docs/gen`` ignores its content).
4. **One event per path.** watchfiles reports a *set* of ``(change, path)`` per batch; the
   changes of one path are folded into one event: ``added`` → ``created``, ``modified`` →
   ``modified``, ``deleted`` → ``deleted``; ``added`` with ``modified`` → ``created``;
   ``deleted`` of a path that exists again → ``modified`` (it was replaced); a path added
   and deleted within the batch and gone now was transient and is dropped. ``modified``
   of a directory (a metadata change) is dropped; directories are created and deleted
   like files. Events go out sorted by path.

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
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..compile.patterns import PatternError, compile_glob
from ..events import Event
from .base import Source, SourceContext, StopFlag

__all__ = ["FileSource", "IgnoreRules"]

_TEMP_NAMES = re.compile(
    r"""^(?:
        .*\.sw[a-p]$ | .*\.swx$ | .*~$ | \.\#.* | 4913 | .*\.tmp$ | \.DS_Store$
      | .*___jb_(?:tmp|old|bak)___$ | \.goutputstream-.* | .*\.kate-swp$
    )$""",
    re.X,
)
_ALWAYS_SKIP_DIRS = frozenset({".git", "__pycache__"})
_CHANGE = {1: "created", 2: "modified", 3: "deleted"}  # watchfiles.Change values
_SCAN_CAP = 10_000        # entries reported from one newly created folder
_RECENT_WINDOW = 5.0      # seconds during which a reported creation is not reported again


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


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class FileSource(Source):
    """Watches folders with watchfiles and emits ``file.created|modified|deleted``.

    See the module docstring for the watch set, the filters and the folding of changes.
    """

    kind = "file"

    def __init__(self, config: Mapping[str, Any], ctx: SourceContext) -> None:
        super().__init__(config, ctx)
        base = Path(ctx.base_dir)
        self.root_text = str(config.get("root", ".") or ".")
        root = Path(self.root_text)
        self.root = os.path.realpath(root if root.is_absolute() else base / root)
        self.roots_text = [str(r) for r in (config.get("roots") or ["."])]
        self.ignore = IgnoreRules(config.get("ignore") or [], ctx.log)
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

    def describe(self) -> str:
        return f"file: watching {', '.join(self.roots_text)} under {self.root}"

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

    def relative(self, path: str) -> str | None:
        """``path`` relative to root with ``/`` separators, or None if it is to be ignored."""
        real = os.path.realpath(path)
        if not _under(real, self.root):
            return None
        if not any(_under(path, r) or _under(real, r) for r in self.roots):
            return None
        for sd in self.state_dirs:
            if _under(real, sd) or _under(path, sd):
                return None
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
        return rel

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop = StopFlag(loop)
        self._task = asyncio.create_task(self._run(self._stop), name="file-source")
        if not await self.ready(10):
            if self._task.done():
                self.ctx.log.error("file: the watcher did not start")
            else:
                self.ctx.log.warning("file: the watcher is slow to start; continuing")

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
            self._stop.set()
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
        while not flag.stopped:
            if not first:
                flag.rearm()
            first = False
            paths = self.watch_paths()
            try:
                gen = awatch(*paths, watch_filter=None, step=5, debounce=50, stop_event=flag,
                             recursive=True, ignore_permission_denied=True)
                async with contextlib.aclosing(gen):
                    async for changes in gen:
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
                self.ctx.log.error("file: watcher on %s failed (%s); restarting in 1s", ", ".join(paths), exc)
                for _ in range(20):
                    if flag.stopped:
                        return
                    await asyncio.sleep(0.05)

    def fold(self, changes: Iterable[tuple[Any, str]]) -> list[tuple[str, str]]:
        """``[(rel_path, change)]`` for one watchfiles batch: one entry per path, sorted."""
        return [(rel, change) for _, rel, change in self._fold(changes)]

    def _fold(self, changes: Iterable[tuple[Any, str]]) -> list[tuple[str, str, str]]:
        by_path: dict[str, set[str]] = {}
        for change, path in changes:
            kind = _CHANGE.get(int(change))
            if kind is not None:
                by_path.setdefault(path, set()).add(kind)
        out: list[tuple[str, str, str]] = []
        for path, kinds in by_path.items():
            rel = self.relative(path)
            if rel is None:
                continue
            if "deleted" in kinds:
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
            out.append((path, rel, change))
        out.sort(key=lambda t: t[1])
        return out

    def _scan_new_folder(self, folder: str) -> list[tuple[str, str]]:
        """``[(path, rel)]`` of what a just-created folder already holds (filtered, capped)."""
        found: list[tuple[str, str]] = []
        for dirpath, dirnames, filenames in os.walk(folder):
            keep = []
            for d in sorted(dirnames):
                p = os.path.join(dirpath, d)
                rel = self.relative(p)
                if rel is not None and not os.path.islink(p):
                    found.append((p, rel))
                    keep.append(d)
            dirnames[:] = keep
            for f in sorted(filenames):
                p = os.path.join(dirpath, f)
                rel = self.relative(p)
                if rel is not None:
                    found.append((p, rel))
            if len(found) >= _SCAN_CAP:
                self.ctx.log.warning("file: %s holds more than %d entries; reporting the first ones", folder, _SCAN_CAP)
                break
        return found[:_SCAN_CAP]

    async def _emit(self, changes: Iterable[tuple[Any, str]]) -> None:
        now = time.monotonic()
        for p, (t, _) in list(self._recent.items()):
            if now - t > _RECENT_WINDOW:
                del self._recent[p]
        for path, rel, change in self._fold(changes):
            if change == "created":
                if not self._first_report(rel, path, now):
                    continue  # already reported by the scan of its new parent folder
            elif change == "deleted":
                self._recent.pop(rel, None)
            await self._submit(rel, change)
            if change == "created" and os.path.isdir(path) and not os.path.islink(path):
                # The OS watch on a new folder is added only after it was created: what
                # was written in it meanwhile raises no event, so report what is there now.
                for sub, sub_rel in self._scan_new_folder(path):
                    if self._first_report(sub_rel, sub, now):
                        await self._submit(sub_rel, "created")

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
        name = rel.rsplit("/", 1)[-1]
        stem, dot, ext = name.rpartition(".")
        data = {"path": rel, "name": name, "ext": ext if dot and stem else "", "change": change}
        try:
            await self.ctx.submit(Event("file", change, data))
        except asyncio.CancelledError:
            raise
        except Exception:
            self.ctx.log.exception("file: could not submit the change of %s", rel)
