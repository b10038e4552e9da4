"""Run logs as people see them: the secret values the rules declare are masked on the way out.

Threat model
------------
A run's log file (its ``trg_logs`` row in store mode) holds what the action printed, as
printed, secrets included: the files are 0600 in a 0700 folder, readable only by serve's
user, who can read the secrets anyway (from serve's environment or their files). The leak
is through the *views* people share: the dashboard (the run page, its live tail, the
download), the JSON API (``/api/runs/ID``'s ``log``, ``/api/runs/ID/log``), ``triggerc
logs`` pasted into a chat or a CI log, and the PostgreSQL store's copy of a log shown by
those same views. So every view replaces each declared secret's value by ``[secret NAME]``
(:mod:`triggerlang.masking`: where the value stands as a token of its own, whatever its
length), as GitHub Actions shows ``***``. The run itself pays nothing for it: its output
goes to its file as before (nothing is piped through serve, no file is scanned after a run),
and the masking is done by the reader.

Where a view gets the values (:class:`LogMasks`): ``serve --dashboard`` has them loaded.
``triggerc dashboard`` and ``triggerc logs`` run in another process: they read the
secrets' *declarations* (names, environment variables, file paths; never values) from
``<state>/secret-names.json``, which ``serve`` writes at its start and on each reload
(:func:`write_secret_names`: the secrets of earlier rules too, while a run that may have
printed them is kept), and from ``--rules`` when given; with the PostgreSQL store,
from the manifest the run was created under, which the store keeps. The values are then
read from the view's own environment and files, as ``serve`` reads them. A view whose
process cannot read a secret shows its value as printed, and says so once, naming the
secret (never a value).

Not masked (as GitHub says of its own masking): a secret the action transformed (its base64,
its URL encoding, a part of it), or one the rules do not declare.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from ..masking import Masker, read_secrets, stand_in
from .store import LOG_META, LOG_STDERR, LOG_TAIL, LogChunk, strip_log_markers

SECRET_NAMES = "secret-names.json"
"""The state folder's file naming the rules' secrets: ``{"base_dir", "secrets": {name:
{"env": VAR} | {"file": path}}, "earlier": [{"name", "ref", "base_dir", "dropped"}]}``, the
manifests' references, never a value (``earlier``: :func:`write_secret_names`)."""

EARLIER_MAX = 64
"""How many declarations of earlier rules :data:`SECRET_NAMES` keeps at most (the most
recently dropped): a bound for a folder whose rules change secrets all the time."""


def write_secret_names(state_dir: Path, manifest: dict,
                       oldest_run: float | Callable[[], float | None] | None = None, now: float | None = None) -> None:
    """Write (atomically, 0600) the declarations of ``manifest``'s secrets for the views
    run in other processes, with those of earlier rules of this state folder that these
    rules dropped (``earlier``: a reload that drops a secret leaves run logs that may have
    printed its value, and the views must still mask them). An earlier declaration is kept
    while the journal holds a run queued before it was dropped (``oldest_run``: when its
    oldest run was queued, epoch s; None: it holds none; or the journal's function that says
    it, called only when there is an earlier declaration to keep or drop: the query reads the
    whole runs table, which a start or reload that dropped no secret need not), at most :data:`EARLIER_MAX` of
    them, the most recently dropped: a run queued later was never given the secret by these
    rules, and ``triggerc store prune`` deleting the older runs ends the need. OSError when
    it cannot write."""
    now = time.time() if now is None else now
    base = manifest.get("base_dir")
    current = {n: r for n, r in (manifest.get("secrets") or {}).items() if isinstance(r, dict)}
    previous = read_secret_names(state_dir) or {}
    dropped_now = [{"name": n, "ref": r, "base_dir": previous.get("base_dir"), "dropped": now}
                   for n, r in previous.get("secrets", {}).items() if isinstance(r, dict)]
    earlier: dict[str, dict] = {}
    for e in [*_earlier_entries(previous), *dropped_now]:   # (a later entry of the same declaration wins)
        earlier[_declaration_key(e)] = e
    for n, r in current.items():
        earlier.pop(_declaration_key({"name": n, "ref": r, "base_dir": base}), None)
    if callable(oldest_run):
        oldest_run = oldest_run() if earlier else None
    kept = sorted((e for e in earlier.values() if oldest_run is not None and oldest_run <= e["dropped"]),
                  key=lambda e: (-e["dropped"], _declaration_key(e)))[:EARLIER_MAX]
    body = json.dumps({"base_dir": base, "secrets": current, "earlier": kept}, sort_keys=True, indent=1) + "\n"
    path = state_dir / SECRET_NAMES
    tmp = path.with_name(f".{SECRET_NAMES}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, body.encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _declaration_key(e: Mapping[str, Any]) -> str:
    return json.dumps([e["name"], e["ref"], e.get("base_dir")], sort_keys=True)


def _earlier_entries(data: Mapping[str, Any] | None) -> list[dict]:
    """The well-formed ``earlier`` declarations of a :data:`SECRET_NAMES` content."""
    entries = (data or {}).get("earlier")
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)
            and isinstance(e.get("ref"), dict) and isinstance(e.get("dropped"), (int, float))] \
        if isinstance(entries, list) else []


def earlier_declared(data: Mapping[str, Any] | None) -> list[tuple[str, dict, Path]]:
    """(name, reference, base folder) of each ``earlier`` declaration of a
    :data:`SECRET_NAMES` content (:func:`write_secret_names`)."""
    return [(e["name"], dict(e["ref"]), Path(e.get("base_dir") or ".")) for e in _earlier_entries(data)]


def read_secret_names(state_dir: Path) -> dict | None:
    """The state folder's :data:`SECRET_NAMES` (``{"base_dir", "secrets"}``), or None when
    there is none (a serve older than it) or it does not read."""
    try:
        data = json.loads((state_dir / SECRET_NAMES).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("secrets"), dict) else None


def _declared(manifest: Mapping[str, Any] | None) -> list[tuple[str, dict, Path]]:
    if not manifest:
        return []
    base = Path(manifest.get("base_dir") or ".")
    secrets = manifest.get("secrets")
    return [(n, dict(r), base) for n, r in sorted(secrets.items()) if isinstance(r, dict)] \
        if isinstance(secrets, dict) else []


class LogMasks:
    """The masker for a run's log: the values of the secrets declared by ``manifest()``
    (serve's current rules, the dashboard's ``--rules``), by ``state_dir``'s
    :data:`SECRET_NAMES`, and, with the PostgreSQL store, by the manifest the run was created
    under. ``loaded``: values serve already holds, by name. ``note`` is told once about
    each secret this process cannot read (a line naming it, never a value)."""

    def __init__(self, *, state_dir: Path | None = None, manifest: Callable[[], Mapping | None] | None = None,
                 loaded: Mapping[str, str] | None = None, environ: Mapping[str, str] = os.environ,
                 note: Callable[[str], None] | None = None) -> None:
        self.state_dir = state_dir
        self.manifest = manifest
        self.loaded = loaded
        self.environ = environ
        self.note = note
        self._noted: set[str] = set()
        self._manifests: dict[str, dict | None] = {}   # a store's manifests by sha256
        self._maskers: dict[frozenset, Masker] = {}
        self._names: tuple[tuple[int, int, int] | None, dict | None] = (None, None)  # (the file's stamp, its content)

    def _run_manifest(self, j: Any, run_id: int) -> dict | None:
        if getattr(j, "kind", None) != "postgresql":
            return None
        row = j.run_row(run_id)
        sha = getattr(row, "manifest", None)
        if not sha:
            return None
        if sha not in self._manifests:
            self._manifests[sha] = j.manifest(sha)
        return self._manifests[sha]

    def _secret_names(self) -> dict | None:
        """``state_dir``'s :data:`SECRET_NAMES`, read again only when the file changed (a live
        tail asks at every poll; serve replaces the file, so a new one has a new inode)."""
        if self.state_dir is None:
            return None
        try:
            st = (self.state_dir / SECRET_NAMES).stat()
        except OSError:
            return None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._names[0] != stamp:
            self._names = (stamp, read_secret_names(self.state_dir))
        return self._names[1]

    def masker(self, j: Any, run_id: int) -> Masker | None:
        names = self._secret_names()
        declared = [*_declared(self.manifest() if self.manifest else None), *_declared(names),
                    *_declared(self._run_manifest(j, run_id))]
        values: dict[str, str] = {}
        problems: dict[str, str] = {}
        loaded = self.loaded or {}
        for name, ref, base in declared:
            if loaded.get(name):
                values[loaded[name]] = name
                continue
            got, why = read_secrets({name: ref}, base, self.environ)
            values.update({v: n for n, v in got.items()})
            if name not in got:
                problems.setdefault(name, why[name])
        # the secrets earlier rules declared: masked where this process can read them, and
        # not noted where it cannot (the rules no longer use them: their variable is often gone)
        for name, ref, base in earlier_declared(names):
            got, _ = read_secrets({name: ref}, base, self.environ)
            values.update({v: n for n, v in got.items() if v not in values})
        new = [problems[n] for n in sorted(problems) if n not in self._noted and n not in values.values()]
        self._noted.update(problems)
        if new and self.note is not None:
            self.note("run logs show these secrets as printed, as this process cannot read them: " + "; ".join(new))
        if not values:
            return None
        key = frozenset(values.items())
        if key not in self._maskers:
            self._maskers = {key: Masker({v: stand_in(n) for v, n in values.items()})}  # (one kept: values change rarely)
        return self._maskers[key]


def read_view(j: Any, run_id: int, masker: Masker | None, offset: int | None = None, *, more: bool,
              lines: bool = False, line_start: bool = False, limit: int = LOG_TAIL) -> LogChunk:
    """A run's log from byte ``offset`` (None: its last ``limit`` bytes; a reader further
    behind skips ahead to them), masked: ``data`` is the masked text of the log's bytes
    ``start`` to ``end``, and ``end`` is where the next read starts (:meth:`Masker.mask_bytes`
    holds back the tail that could begin a value while ``more`` may be written).
    ``line_start``: start at a line (an offset inside a line, or a tail or a skip ahead that
    cuts one, moves on to the next line: a cut line has lost its stream's marker). ``lines``
    (with ``more``): complete lines only."""
    context = masker.context if masker is not None else 0
    back = context + (1 if line_start else 0)  # (the byte before the start tells a line's start)
    chunk = j.read_log_chunk(run_id, None if offset is None else max(offset - back, 0), limit=limit + back)
    data = chunk.data
    nominal = min(max(chunk.end - limit, 0 if offset is None else offset, chunk.start), chunk.end)
    a = nominal - chunk.start
    if line_start and nominal > 0:
        # data[a - 1] is the byte before the start: a line starts after a newline, and at a
        # stream marker (a stderr line that came while a stdout line was unfinished)
        starts = [i for i in (data.find(b"\n", max(a - 1, 0)) + 1, data.find(LOG_META, a), data.find(LOG_STDERR, a))
                  if i > max(a - 1, 0)]
        a = min(starts) if starts else len(data)
    end = len(data)
    if lines and more:
        end = max(a, data.rfind(b"\n", a) + 1)
    resume = offset is not None and chunk.start + a == offset
    if masker is None:
        return LogChunk(data[a:end], chunk.start + a, chunk.start + end, chunk.exists)
    masked, cut = masker.mask_bytes(data, a, end, more=more, resume=resume, lines=lines)
    return LogChunk(masked, chunk.start + a, chunk.start + cut, chunk.exists)


class LogFollower:
    """A run's whole log from where the last read stopped, masked, stream markers taken out
    (``triggerc logs [-f]``, the dashboard's download): the SQLite journal's log file read
    in blocks, or the part the store keeps. ``skipped``: bytes at the log's start that the
    store no longer holds (said once by the caller)."""

    BLOCK = 1 << 20

    def __init__(self, j: Any, run_id: int, masker: Masker | None) -> None:
        self.j, self.run_id, self.masker = j, run_id, masker
        self.path: Path | None = j.run_log_path(run_id) if hasattr(j, "run_log_path") else None
        self.offset, self.at_start, self.exists = 0, True, False
        self.skipped = 0

    def _out(self, masked: bytes) -> bytes:
        if not masked:
            return b""
        out = strip_log_markers(masked, self.at_start)
        self.at_start = masked.endswith(b"\n")
        return out

    def read(self, final: bool) -> Iterator[bytes]:
        """What was written since the last read; ``final``: the run was over before this
        read began (its log is whole: nothing is held back)."""
        context = self.masker.context if self.masker is not None else 0
        if self.path is None:
            start = max(self.offset - context, 0)
            chunk = self.j.read_log_chunk(self.run_id, start, limit=1 << 40)
            self.exists = self.exists or chunk.exists
            resume = True
            if chunk.start > self.offset:
                self.skipped, self.offset, self.at_start, resume = chunk.start, chunk.start, False, False
            yield from self._masked(chunk.data, self.offset - chunk.start, more=not final, resume=resume)
            return
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return
        self.exists = True
        with f:
            while True:
                start = max(self.offset - context, 0)
                f.seek(start)
                data = f.read(self.offset - start + self.BLOCK)
                whole = len(data) < self.offset - start + self.BLOCK
                before = self.offset
                yield from self._masked(data, self.offset - start, more=not (final and whole))
                if whole or self.offset == before:
                    return

    def _masked(self, data: bytes, a: int, *, more: bool, resume: bool = True) -> Iterator[bytes]:
        if self.masker is None:
            masked, cut = data[a:], len(data)
        else:
            masked, cut = self.masker.mask_bytes(data, a, more=more, resume=resume)
        self.offset += cut - a
        out = self._out(masked)
        if out:
            yield out


__all__ = ["LogMasks", "LogFollower", "SECRET_NAMES", "earlier_declared", "read_secret_names", "read_view",
           "write_secret_names"]
