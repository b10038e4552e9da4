"""A private folder of the user's where triggerc keeps what it can make again: compiled
rules files (:mod:`triggerlang.compile.cache`) and Lark's parser of the grammar
(:func:`triggerlang.syntax.parser.lark_parser`).

Decisions
---------
- **Where**: ``$XDG_CACHE_HOME/triggerlang/compiled`` (default ``~/.cache/...``), not the
  state folder: ``check`` and ``match`` must not create files in a checkout (read-only CI
  workspaces), and the state folder belongs to ``serve``. ``TRIGGERLANG_CACHE_DIR`` names
  another folder; ``TRIGGERLANG_CACHE_DIR=off`` turns caching off.
- **Safety**: never use an entry we did not write. The folder is made ``0700`` and used only
  if it belongs to the current user and nobody else can write to it. Each entry is a header
  line ``{"key", "mac"}`` then the body; ``mac`` is an HMAC-SHA256 of the body under a random
  per-user secret kept in the folder (``0600``). An entry is used only when its key is the
  one asked for and its MAC verifies: a file planted or edited by someone else is ignored
  (that is what makes it safe to keep a pickled Lark parser here, where Lark's own
  ``cache=True`` would read any pickle found under a predictable name in the shared temp
  folder). Writes go to a temporary file renamed into place.
- Any problem (unwritable, corrupt, foreign) reads as a miss: a cache can make a command
  faster, never make it fail.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
from pathlib import Path

SECRET_NAME = "secret.key"


def default_cache_dir(env: dict[str, str] | None = None) -> Path | None:
    """The cache folder from the environment; None when caching is turned off."""
    env = os.environ if env is None else env
    explicit = env.get("TRIGGERLANG_CACHE_DIR")
    if explicit is not None:
        if explicit.strip().lower() in ("", "off", "0", "no", "false"):
            return None
        return Path(explicit)
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "triggerlang" / "compiled"


def private_dir(d: Path, create: bool) -> bool:
    """True when ``d`` exists (or was made), belongs to us and only we can write to it."""
    try:
        if create:
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = d.stat()
    except OSError:
        return False
    return _ours(st, 0o022)


def _ours(st: os.stat_result, forbidden: int) -> bool:
    """``st`` belongs to us and has none of the ``forbidden`` mode bits (where there are
    users: always true elsewhere)."""
    return not hasattr(os, "getuid") or (st.st_uid == os.getuid() and not st.st_mode & forbidden)


def _secret(d: Path, create: bool) -> bytes | None:
    p = d / SECRET_NAME
    try:
        st = p.stat()
        if not _ours(st, 0o077):
            return None
        key = p.read_bytes()
        return key if len(key) == 32 else None
    except FileNotFoundError:
        if not create:
            return None
    except OSError:
        return None
    key = secrets.token_bytes(32)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return _secret(d, create=False)
    except OSError:
        return None
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


def read(d: Path, name: str, key: str) -> bytes | None:
    """The body of entry ``name``, if we wrote it under ``key`` (else None)."""
    if not private_dir(d, create=False):
        return None
    secret = _secret(d, create=False)
    if secret is None:
        return None
    p = d / name
    try:
        st = p.stat()
        if not _ours(st, 0o022):
            return None
        raw = p.read_bytes()
    except OSError:
        return None
    nl = raw.find(b"\n")
    if nl < 0:
        return None
    try:
        head = json.loads(raw[:nl])
    except ValueError:
        return None
    if not isinstance(head, dict) or head.get("key") != key:
        return None
    body = memoryview(raw)[nl + 1:]
    mac = hmac.new(secret, body, hashlib.sha256).hexdigest()
    if not isinstance(head.get("mac"), str) or not hmac.compare_digest(mac, head["mac"]):
        return None
    return bytes(body)


def write(d: Path, name: str, key: str, body: bytes) -> bool:
    """Write entry ``name`` (atomically); False when the folder cannot be used."""
    if not private_dir(d, create=True):
        return False
    secret = _secret(d, create=True)
    if secret is None:
        return False
    head = json.dumps({"key": key, "mac": hmac.new(secret, body, hashlib.sha256).hexdigest()}).encode()
    try:
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=Path(name).suffix)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(head + b"\n" + body)
            os.replace(tmp, d / name)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError:
        return False
    return True


def prune(d: Path, pattern: str, keep: int) -> None:
    """Remove the oldest entries matching ``pattern`` beyond the ``keep`` newest."""
    try:
        entries = [(e.stat().st_mtime, e) for e in d.glob(pattern)]
    except OSError:  # pragma: no cover
        return
    if len(entries) <= keep:
        return
    entries.sort(key=lambda x: x[0])
    for _, e in entries[: len(entries) - keep]:
        try:
            e.unlink()
        except OSError:  # pragma: no cover
            pass
