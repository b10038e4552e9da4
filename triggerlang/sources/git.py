"""The git source: turns ref updates of local repositories into ``git.*`` events (SPEC §4).

It needs no hook: it watches the refs of each repository, so it sees local commits,
merges, resets and pushes *received* by a bare repository alike.

Algorithm
---------
For each watched repository (manifest ``{"repos": [{"path": ..., "repo": ...}], "poll": s}``):

1. **Locate the git dir.** ``path`` is resolved against the rules file's folder. A working
   tree has ``.git/`` (or a ``.git`` file ``gitdir: ...``, as in linked worktrees and
   submodules; its ``commondir`` holds the shared refs); a bare repository *is* its git dir.
   An existing folder inside a working tree finds the enclosing repository, as git does
   (at start only: afterwards a repository is looked for where it was found, see
   ``GitSource._locate``). A path that does not exist (yet), or a repository that went away,
   is logged once (a WARNING, then DEBUG after a reload until it appeared: a wait is not an
   error) and looked for again at every poll; when it is back, its refs then are the new
   baseline (no events for what changed meanwhile).

2. **Snapshot the refs without a subprocess.** Every ``poll`` seconds (default 0.25 s),
   and at once when the OS reports a change under the repository's ``refs/`` (watchfiles
   on that folder: a push is seen in ~10 ms instead of up to ``poll``; an update that only
   rewrites ``packed-refs``, such as deleting a packed ref, waits for the poll), the
   source lists the loose refs under ``refs/heads`` and ``refs/tags`` and stats them and
   ``packed-refs``. Only when that stat signature changes (or every couple of seconds as a
   safety net against a same-size, same-mtime rewrite that reused an inode) does it read
   them: ``packed-refs`` lines ``<sha> <ref>`` first, then loose files, which win. Git
   writes refs by renaming a lock file over them, so each file read is whole. To ride over
   a multi-step update in flight (``git pack-refs``, a multi-ref push), a changed snapshot
   is read again until two consecutive reads agree.

3. **Diff and describe.** The first snapshot is the baseline and yields no events; later
   snapshots are diffed against the previous one, ref by ref in sorted order, and only then
   is ``git`` run (``asyncio.create_subprocess_exec``, argv only, ``GIT_TERMINAL_PROMPT=0``,
   ``GIT_OPTIONAL_LOCKS=0``) to describe each change:

   * a branch that moved → ``git.push``; ``forced`` when ``before`` is not an ancestor of
     ``after`` (an unknown ``before`` counts as forced);
     if the new head has two or more parents, ``git.merge`` too, with the same fields;
   * a new branch → ``git.branch_created`` and, like GitHub, ``git.push`` with ``before``
     = forty zeros;
   * a branch that disappeared → ``git.branch_deleted`` (``after`` = ``sha`` = zeros,
     ``commits`` 0, ``files`` empty, no author or message);
   * a new or moved tag → ``git.tag``; annotated tags are peeled to their commit, and
     ``before``/``after``/``sha`` are commits. A deleted tag yields no event (the catalogue
     has none). The new tags of one update are described by one ``git cat-file --batch``
     (a ``git push --tags`` of 300 tags was 300 ``git log`` processes in a row).

   Fields: ``repo`` (as the rules wrote it), ``ref``, ``branch`` or ``tag``, ``before``,
   ``after``, ``sha`` (= ``after``), ``forced``, ``author``, ``author_email``, ``message``
   (the new head's full message, stripped), ``files`` and ``commits``:

   * moved branch or tag: ``files`` = ``git diff --name-only --no-renames before after``
     (sorted; a rename lists both the old and the new path), ``commits`` = the number of
     commits in ``before..after``; ``git rev-list --left-right --count before...after``
     gives that and ``forced`` in one call, so a move costs three git calls, run at once
     (the head commit's ``git log -1``, that, and the diff);
   * new branch: the commits reachable from it and from no other branch head (old or new
     snapshot), i.e. what the branch brought; ``files`` = every path those commits touched.
     When that set is empty (``git branch topic`` on an existing commit), the head commit
     alone: ``commits`` = 1 and ``files`` = the head commit's changes against its first
     parent. So ``commits`` is always 1 or more for a new branch;
   * new tag: ``files`` = [] and ``commits`` = 0 (there is no ``before`` to compare with).

   A failing git call degrades the event's fields (empty ``files``, missing author...)
   rather than dropping the event, and nothing here ever raises into the runtime.

A snapshot in which a ref disappeared is held for half a second and read again, and taken
only if the repository is still there: ``rm -rf`` of a watched repository empties
``refs/heads`` before it removes ``refs/``, and must not read as every branch deleted. So a
``git.branch_deleted`` comes about half a second after the deletion.

Limits: only the ``files`` ref backend is read (not ``reftable``); updates that come and
go between two snapshots (a branch created and deleted within ~10 ms, or within a poll
when the OS watch is unavailable) are not seen; a
repository that appears while the source runs takes its first snapshot as the baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..events import Event
from .base import Source, SourceContext, StopFlag

__all__ = ["GitSource", "read_refs", "find_git_dir"]

_HEX = frozenset(string.hexdigits.lower())
_WATCHED = ("refs/heads", "refs/tags")
_GIT_TIMEOUT = 60.0        # seconds for one git call
_FULL_READ_EVERY = 2.0     # seconds between reads that ignore the stat signature
_DELETE_SETTLE = 0.5       # seconds a snapshot with a deleted ref is held before it is believed
_GIT_ENV_DROP = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_NAMESPACE")


def _is_sha(s: str) -> bool:
    return len(s) in (40, 64) and all(c in _HEX for c in s)


def find_git_dir(path: Path) -> tuple[Path, Path] | None:
    """``(git_dir, common_dir)`` of the repository at or above ``path``, or None.

    ``path`` must exist: a missing path is never looked for in its parents (that could find
    an unrelated enclosing repository).
    """
    found = _find_repo(path, parents=True)
    return None if found is None else found[1:]


def _find_repo(path: Path, parents: bool) -> tuple[Path, Path, Path] | None:
    """``(root, git_dir, common_dir)``: the folder the repository was found at (``path`` or,
    with ``parents``, the nearest parent with one), its git dir and its common dir."""
    if not path.is_dir():
        return None
    for p in (path, *path.parents) if parents else (path,):
        dot = p / ".git"
        gd: Path | None = None
        if dot.is_dir():
            gd = dot
        elif dot.is_file():
            try:
                line = dot.read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                line = ""
            if line.startswith("gitdir:"):
                cand = Path(line[len("gitdir:"):].strip())
                gd = cand if cand.is_absolute() else (p / cand)
        elif (p / "HEAD").is_file() and (p / "refs").is_dir() and (p / "objects").is_dir():
            gd = p  # a bare repository
        if gd is not None:
            gd = Path(os.path.realpath(gd))
            common = gd
            try:
                rel = (gd / "commondir").read_text(encoding="utf-8").strip()
                if rel:
                    common = Path(os.path.realpath(gd / rel))
            except OSError:
                pass
            return p, gd, common
    return None


def _stat_signature(common: Path) -> tuple[Any, ...]:
    """Cheap signature of the ref storage: names and stats of loose refs and packed-refs."""
    out: list[tuple[Any, ...]] = []
    stack = [(common / sub, sub) for sub in _WATCHED]
    while stack:
        d, rel = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                name = f"{rel}/{e.name}"
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append((Path(e.path), name))
                        continue
                    if e.name.endswith(".lock"):
                        continue
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                out.append((name, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size))
    out.sort()
    try:
        st = os.stat(common / "packed-refs")
        packed: tuple[Any, ...] | None = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
    except OSError:
        packed = None
    return (packed, tuple(out))


def read_refs(common: Path, names: tuple[tuple[Any, ...], ...] | None = None) -> dict[str, str]:
    """``{ref: sha}`` for every branch and tag, read straight from the git dir.

    ``packed-refs`` first, then loose refs, which take precedence. Symbolic refs and
    malformed files are skipped. ``names`` (from the stat signature) saves a second walk.
    """
    refs: dict[str, str] = {}
    try:
        with open(common / "packed-refs", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line or line[0] in "#^":
                    continue
                parts = line.split()
                if len(parts) == 2 and _is_sha(parts[0]) and parts[1].startswith(("refs/heads/", "refs/tags/")):
                    refs[parts[1]] = parts[0]
    except OSError:
        pass
    if names is None:
        names = _stat_signature(common)[1]
    for entry in names:
        name = entry[0]
        try:
            with open(common / name, encoding="utf-8", errors="replace") as fh:
                val = fh.read(200).strip()
        except OSError:
            continue  # deleted since the listing: packed-refs (if any) holds the truth
        if _is_sha(val):
            refs[name] = val
    return refs


@dataclass
class _Repo:
    """One watched repository and what the source last saw of it."""

    repo: str                       # as the rules wrote it
    path: Path                      # resolved
    root: Path | None = None        # where the repository was first found (path, or a parent of it)
    git_dir: Path | None = None
    common: Path | None = None
    sig: tuple[Any, ...] | None = None
    refs: dict[str, str] | None = None  # None until a baseline is taken
    last_full: float = 0.0
    missing_logged: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)


_SAID_MISSING: set[Path] = set()
"""The paths this process has said have no repository (:meth:`GitSource._say_missing`):
a reload makes a new source, and must not say it again at WARNING."""


class GitSource(Source):
    """Watches the refs of one or more repositories and emits ``git.*`` events.

    See the module docstring for the snapshot/diff algorithm and the exact fields.
    """

    kind = "git"

    def __init__(self, config: Mapping[str, Any], ctx: SourceContext) -> None:
        super().__init__(config, ctx)
        self.poll = float(config.get("poll", 0.25) or 0.25)
        self.repos: list[_Repo] = []
        entries = config.get("repos") or [{"path": ".", "repo": "."}]
        for ent in entries:
            if isinstance(ent, str):
                ent = {"path": ent, "repo": ent}
            repo = str(ent.get("repo", ent.get("path", ".")))
            raw = Path(str(ent.get("path", repo)))
            path = raw if raw.is_absolute() else Path(ctx.base_dir) / raw
            self.repos.append(_Repo(repo=repo, path=Path(os.path.abspath(path))))
        self._env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV_DROP}
        self._env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"})
        self._stopping = False
        self._flag: StopFlag | None = None  # the refs watchers' (start makes it)

    def describe(self) -> str:
        return "git: watching refs of " + ", ".join(str(r.path) for r in self.repos)

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping = False
        self._flag = StopFlag(asyncio.get_running_loop())
        for r in self.repos:
            self._baseline(r, walk_up=True)
            r.task = asyncio.create_task(self._watch(r), name=f"git-source:{r.repo}")

    async def stop(self) -> None:
        self._stopping = True
        if self._flag is not None:
            self._flag.set()  # the native watchers return within a step
        tasks = [r.task for r in self.repos if r.task is not None]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for r in self.repos:
            r.task = None

    # ---- snapshots -------------------------------------------------------------------

    def _locate(self, r: _Repo, walk_up: bool = False) -> bool:
        """Find (or re-check) the repository's git dir; log once while it is missing.

        Only the first look, at start, may find the repository in a parent of ``path`` (a
        folder inside a working tree, as git does). Afterwards the repository is looked for
        where it was found, or at ``path`` itself: while a nested clone is re-cloned (its
        ``.git`` gone for a moment), or a repository that was missing at start is being
        created, a look up the tree would find the enclosing project's repository and
        report its commits under this ``repo``."""
        if r.common is not None and (r.common / "refs").is_dir():
            return True
        found = _find_repo(r.root or r.path, parents=walk_up and r.root is None)
        if found is None:
            r.git_dir = r.common = None
            r.refs = r.sig = None
            if not r.missing_logged:
                self._say_missing(r)
                r.missing_logged = True
            return False
        r.root, r.git_dir, r.common = found
        if r.missing_logged:
            self.ctx.log.info("git: repository %s appeared; watching its refs", r.path)
            r.missing_logged = False
        _SAID_MISSING.discard(r.path)
        return True

    def _say_missing(self, r: _Repo) -> None:
        """Log that ``r`` has no repository (yet, or any more): a WARNING the first time in
        this process, then DEBUG ("[again]") until it has appeared. A wait is not an error:
        rules may watch a repository a deploy will clone, and the source finds it when it
        comes; a reload or a new source for the same path, which sees nothing new, says it
        at DEBUG (as the file source says a name it cannot report once). A repository that
        appeared and went away again is news: a WARNING again."""
        again = r.path in _SAID_MISSING
        if not again and len(_SAID_MISSING) < 1000:   # (each path once, within reason)
            _SAID_MISSING.add(r.path)
        (self.ctx.log.debug if again else self.ctx.log.warning)(
            "git: no repository at %s (repo=%r); waiting for one to appear there (git init or clone it: "
            "its refs then are the baseline, no events for what it already holds)%s",
            r.path, r.repo, " [again]" if again else "")

    def _read(self, r: _Repo) -> tuple[tuple[Any, ...], dict[str, str]]:
        assert r.common is not None
        sig = _stat_signature(r.common)
        return sig, read_refs(r.common, sig[1])

    def _baseline(self, r: _Repo, walk_up: bool = False) -> None:
        try:
            if self._locate(r, walk_up):
                r.sig, r.refs = self._read(r)
                r.last_full = time.monotonic()
        except Exception:  # never let a strange repository break start-up
            self.ctx.log.exception("git: could not read the refs of %s", r.path)

    async def _watch(self, r: _Repo) -> None:
        wake = asyncio.Event()
        notifier = asyncio.create_task(self._notify(r, wake), name=f"git-notify:{r.repo}")
        try:
            while not self._stopping:
                wake.clear()  # before the poll: a change reported during it polls again at once
                try:
                    await self._poll_once(r)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self.ctx.log.exception("git: error while watching %s", r.path)
                if not wake.is_set():
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(wake.wait(), self.poll)
        finally:
            notifier.cancel()
            await asyncio.gather(notifier, return_exceptions=True)

    async def _notify(self, r: _Repo, wake: asyncio.Event) -> None:
        """Set ``wake`` whenever the OS reports a change under the repository's ``refs/``
        (git renames a lock file over a ref). Best effort: while the repository is missing,
        or if the OS watch fails (no inotify watches left), the poll alone finds changes."""
        from watchfiles import awatch  # imported here: `triggerc check` must not load it

        while not self._stopping:
            refs = r.common / "refs" if r.common is not None else None
            if refs is None or not refs.is_dir():
                await asyncio.sleep(max(self.poll, 1.0))
                continue
            try:
                async for _ in awatch(refs, watch_filter=None, step=5, debounce=50, stop_event=self._flag,
                                      recursive=True, ignore_permission_denied=True):
                    wake.set()
                    if r.common is None or r.common / "refs" != refs:
                        break  # the repository moved or went away: watch where it is now
                else:
                    return  # stopped
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.ctx.log.debug("git: cannot watch %s for changes (%s); polling every %.2fs", refs, exc,
                                   self.poll)
                await asyncio.sleep(max(self.poll, 5.0))

    async def _poll_once(self, r: _Repo) -> None:
        if not self._locate(r):
            return
        assert r.common is not None
        if r.refs is None:  # the repository just appeared: its current refs are the baseline
            self._baseline(r)
            return
        now = time.monotonic()
        sig = _stat_signature(r.common)
        if sig == r.sig and now - r.last_full < _FULL_READ_EVERY:
            return
        r.last_full = now
        refs = read_refs(r.common, sig[1])
        if refs == r.refs:
            r.sig = sig
            return
        # Something changed: wait until two consecutive reads agree, so that a multi-step
        # update in flight is not reported half-done.
        for _ in range(5):
            await asyncio.sleep(0.02)
            sig2, refs2 = self._read(r)
            if refs2 == refs:
                sig = sig2
                break
            sig, refs = sig2, refs2
        if set(r.refs) - set(refs):
            # A ref went away. `rm -rf` of the repository empties refs/heads before it removes
            # refs/ (for as long as the rest of refs/ takes): believe a deletion only if the
            # repository is still there a moment later, else every branch would be reported
            # deleted. The deletion events come _DELETE_SETTLE later; nothing else waits.
            await asyncio.sleep(_DELETE_SETTLE)
            if not self._locate(r):
                return
            sig, refs = self._read(r)
        old = r.refs
        r.sig, r.refs = sig, refs
        keys: set[str] = set()
        for ev in await self._events(r, old, refs):
            try:
                await self.ctx.submit(ev, delivery_key=self._delivery_key(ev, keys))
            except asyncio.CancelledError:
                raise
            except Exception:
                self.ctx.log.exception("git: could not submit %s for %s", ev.trigger, r.path)

    def _delivery_key(self, ev: Event, seen: set[str]) -> str | None:
        """In store mode (several nodes may watch one repository, SPEC §12.2) the key
        ``git:<repo>:<ref>:<after>`` makes their events one; the second event of the same
        update (the ``merge`` after a ``push``) gets ``/<source.type>`` appended. A deleted
        ref is keyed by the commit it pointed to. None on one machine (nothing to share)."""
        if not self.ctx.options.get("shared_store"):
            return None
        d = ev.data
        after = d.get("after")
        if ev.type == "branch_deleted":
            after = f"deleted:{d.get('before')}"
        key = f"git:{d.get('repo')}:{d.get('ref')}:{after}"
        if key in seen:
            return f"{key}/{ev.trigger}"
        seen.add(key)
        return key

    # ---- describing a change ---------------------------------------------------------

    async def _git(self, r: _Repo, *args: str) -> tuple[int, bytes]:
        """Run ``git --git-dir=<dir> args...``; ``(returncode, stdout)``, rc -1 if it could not run."""
        assert r.git_dir is not None
        try:
            proc = await asyncio.create_subprocess_exec(
                "git", f"--git-dir={r.git_dir}", *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env,
            )
        except OSError as exc:
            self.ctx.log.error("git: cannot run git: %s", exc)
            return -1, b""
        try:
            out, err = await asyncio.wait_for(proc.communicate(), _GIT_TIMEOUT)
        except (asyncio.CancelledError, asyncio.TimeoutError):
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
            raise
        rc = proc.returncode if proc.returncode is not None else -1
        if rc >= 128:  # fatal: worth a line
            first = err.decode("utf-8", "replace").strip().splitlines()[:1]
            self.ctx.log.warning("git: `git %s` failed in %s: %s", args[0], r.path, first[0] if first else rc)
        return rc, out

    async def _commit_info(self, r: _Repo, obj: str) -> dict[str, Any] | None:
        """Peeled commit sha, parents, author and message of ``obj`` (a commit or a tag)."""
        rc, out = await self._git(r, "log", "-1", "--no-show-signature",
                                  "--format=%H%x00%P%x00%an%x00%ae%x00%B", obj, "--")
        if rc != 0 or not out:
            return None
        parts = out.decode("utf-8", "replace").split("\x00", 4)
        if len(parts) < 5:
            return None
        return {
            "sha": parts[0].strip(),
            "parents": parts[1].split(),
            "author": parts[2],
            "author_email": parts[3],
            "message": parts[4].strip(),
        }

    async def _commit_infos(self, r: _Repo, objs: list[str]) -> dict[str, dict[str, Any]]:
        """:meth:`_commit_info` of many objects in one git call (a push of 300 tags was 300
        ``git log`` processes, one after another): ``git cat-file --batch`` answers each
        input line ``<obj>^{commit}`` in order, with the peeled commit's raw text or
        ``missing``; an object it cannot describe is left out (the caller falls back to
        :meth:`_commit_info`). The fields are those of ``log --format=%H%x00%P%x00%an%x00%ae%x00%B``:
        the author's name and email as written, the message after the headers (a signature
        is a header), decoded from the commit's ``encoding`` header, else UTF-8."""
        if not objs:
            return {}
        assert r.git_dir is not None
        try:
            proc = await asyncio.create_subprocess_exec(
                "git", f"--git-dir={r.git_dir}", "cat-file", "--batch",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=self._env)
        except OSError as exc:
            self.ctx.log.error("git: cannot run git: %s", exc)
            return {}
        request = "".join(f"{o}^{{commit}}\n" for o in objs).encode()
        try:
            out, _ = await asyncio.wait_for(proc.communicate(request), _GIT_TIMEOUT)
        except (asyncio.CancelledError, asyncio.TimeoutError):
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
            raise
        infos: dict[str, dict[str, Any]] = {}
        pos = 0
        for obj in objs:
            end = out.find(b"\n", pos)
            if end < 0:
                break
            head = out[pos:end].split()
            pos = end + 1
            if len(head) != 3 or head[1] != b"commit" or not head[2].isdigit():
                continue   # "<obj>^{commit} missing" (or ambiguous): nothing follows
            size = int(head[2])
            if pos + size > len(out):
                break   # cut short (git died): the rest falls back to one call each
            body, pos = out[pos:pos + size], pos + size + 1   # (each object ends with a newline)
            info = _parse_commit(head[0].decode("ascii", "replace"), body)
            if info is not None:
                infos[obj] = info
        return infos

    async def _names(self, r: _Repo, *args: str) -> list[str] | None:
        rc, out = await self._git(r, *args)
        if rc != 0:
            return None
        return sorted({p for p in out.decode("utf-8", "surrogateescape").split("\x00") if p})

    async def _count(self, r: _Repo, *args: str) -> int | None:
        rc, out = await self._git(r, "rev-list", "--count", *args)
        if rc != 0:
            return None
        try:
            return int(out.strip() or b"0")
        except ValueError:
            return None

    async def _range(self, r: _Repo, before: str, after: str) -> tuple[list[str], int, bool]:
        """``(files, commits, forced)`` of a move from ``before`` to ``after``, in two git calls
        run at once: the diff, and ``rev-list --left-right --count before...after``, whose left
        count (commits of ``before`` that ``after`` lacks) is 0 exactly when ``before`` is an
        ancestor of ``after`` and whose right count is ``before..after``. An unknown ``before``
        (gc after a forced push) is forced, with 0 commits and the head commit's files."""
        files, (rc, out) = await asyncio.gather(
            self._names(r, "diff", "--name-only", "--no-renames", "-z", before, after, "--"),
            self._git(r, "rev-list", "--left-right", "--count", f"{before}...{after}"))
        if files is None:  # before is gone (gc after a forced push): the head commit alone
            files = await self._head_files(r, after) or []
        counts = out.split() if rc == 0 else []
        if len(counts) != 2 or not all(c.isdigit() for c in counts):
            return files, 0, True
        return files, int(counts[1]), int(counts[0]) > 0

    async def _head_files(self, r: _Repo, sha: str) -> list[str] | None:
        return await self._names(r, "diff-tree", "-r", "-z", "--no-commit-id", "--name-only", "--no-renames",
                                 "--root", "-m", "--first-parent", sha)

    async def _events(self, r: _Repo, old: dict[str, str], new: dict[str, str]) -> list[Event]:
        events: list[Event] = []
        tags = sorted({a for ref, a in new.items() if ref.startswith("refs/tags/") and old.get(ref) != a})
        described = await self._commit_infos(r, tags) if len(tags) > 1 else {}
        for ref in sorted(set(old) | set(new)):
            b, a = old.get(ref), new.get(ref)
            if b == a:
                continue
            try:
                if ref.startswith("refs/heads/"):
                    events.extend(await self._branch_events(r, ref, b, a, old, new))
                elif ref.startswith("refs/tags/") and a is not None:
                    events.append(await self._tag_event(r, ref, b, a, described.get(a)))
            except asyncio.CancelledError:
                raise
            except Exception:
                self.ctx.log.exception("git: could not describe the update of %s in %s", ref, r.path)
        return events

    def _base(self, r: _Repo, ref: str) -> dict[str, Any]:
        return {"repo": r.repo, "ref": ref}

    async def _branch_events(self, r: _Repo, ref: str, before: str | None, after: str | None,
                             old: dict[str, str], new: dict[str, str]) -> list[Event]:
        branch = ref[len("refs/heads/"):]
        data = self._base(r, ref)
        data["branch"] = branch
        if after is None:
            assert before is not None
            zero = "0" * len(before)
            data.update(before=before, after=zero, sha=zero, forced=False, files=[], commits=0)
            return [Event("git", "branch_deleted", data)]
        if before is None:
            zero = "0" * len(after)
            others = sorted({s for m in (old, new) for k, s in m.items()
                             if k.startswith("refs/heads/") and k != ref})
            rest = [after, "--not", *others] if others else [after]
            info, commits = await asyncio.gather(self._commit_info(r, after), self._count(r, *rest))
            data.update(_author_fields(info))
            files: list[str] | None
            if commits:
                files = await self._names(r, "log", "-z", "--format=", "--name-only", "--no-renames", *rest, "--")
            else:  # created on a commit already on another branch: the head commit alone
                commits = 1
                files = await self._head_files(r, after)
            data.update(before=zero, after=after, sha=after, forced=False, files=files or [], commits=commits)
            return [Event("git", "branch_created", dict(data)), Event("git", "push", data)]
        # the three git calls that describe a move, at once (each is a process)
        info, (files, commits, forced) = await asyncio.gather(
            self._commit_info(r, after), self._range(r, before, after))
        data.update(_author_fields(info))
        data.update(before=before, after=after, sha=after, forced=forced, files=files, commits=commits)
        events = [Event("git", "push", data)]
        if info is not None and len(info["parents"]) >= 2:
            events.append(Event("git", "merge", dict(data)))
        return events

    async def _tag_event(self, r: _Repo, ref: str, before: str | None, after: str,
                         info: dict[str, Any] | None = None) -> Event:
        """The ``tag`` event of a tag set or moved to ``after``; ``info``: ``after`` already
        described (:meth:`_commit_infos`, for a push of many tags)."""
        data = self._base(r, ref)
        data["tag"] = ref[len("refs/tags/"):]
        if info is None:
            info = await self._commit_info(r, after)
        peeled = info["sha"] if info else after
        data.update(_author_fields(info))
        if before is None:
            zero = "0" * len(peeled)
            data.update(before=zero, after=peeled, sha=peeled, forced=False, files=[], commits=0)
        else:
            binfo = await self._commit_info(r, before)
            b = binfo["sha"] if binfo else before
            files, commits, _ = await self._range(r, b, peeled) if b != peeled else ([], 0, False)
            data.update(before=b, after=peeled, sha=peeled, forced=True, files=files, commits=commits)
        return Event("git", "tag", data)


def _parse_commit(sha: str, raw: bytes) -> dict[str, Any] | None:
    """The fields of :meth:`GitSource._commit_info` from a commit object's raw text; None if
    it has no author line."""
    header, _, message = raw.partition(b"\n\n")
    parents: list[str] = []
    author: bytes | None = None
    encoding = "utf-8"
    for line in header.split(b"\n"):
        if line.startswith(b" "):
            continue   # the continuation of a multi-line header (gpgsig, mergetag)
        name, _, value = line.partition(b" ")
        if name == b"parent":
            parents.append(value.decode("ascii", "replace"))
        elif name == b"author" and author is None:
            author = value
        elif name == b"encoding":
            encoding = value.decode("ascii", "replace").strip() or "utf-8"
    if author is None:
        return None

    def text(b: bytes) -> str:
        try:
            return b.decode(encoding, "replace")
        except LookupError:   # an encoding Python does not know
            return b.decode("utf-8", "replace")

    # "Name <email> 1700000000 +0100": the name is what precedes the last " <"
    lt, gt = author.rfind(b"<"), author.rfind(b">")
    if lt < 0 or gt < lt:
        name_b, email_b = author, b""
    else:
        name_b, email_b = author[:lt].rstrip(b" "), author[lt + 1:gt]
    return {"sha": sha, "parents": parents, "author": text(name_b), "author_email": text(email_b),
            "message": text(message).strip()}


def _author_fields(info: dict[str, Any] | None) -> dict[str, Any]:
    if info is None:
        return {"author": None, "author_email": None, "message": None}
    return {"author": info["author"], "author_email": info["author_email"], "message": info["message"]}
