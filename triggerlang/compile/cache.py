"""A cache of compiled programs, so that loading 10,000 rules a second time is fast.

Parsing and checking a rules file costs about 0.8 ms per rule (Lark parses each
declaration, the checker compiles each glob): 8 s for 10,000 rules. The result, the
listener manifest, is a pure function of the inputs, so :func:`load_or_compile` keeps it.

Decisions
---------
- **What**: the manifest of a file that compiled without errors, as JSON. A file with
  errors is never cached (its diagnostics are the point of running the compiler). A hit
  returns a :class:`~triggerlang.api.Compiled` with the manifest and no AST, program or
  warnings: it serves ``triggerc match`` and the runtime, not ``triggerc check``.
- **Key**: sha256 over the cache format, the triggerlang version, the Python version, the
  versions of lark and croniter, a fingerprint of the compiler itself (the grammar and the
  sources of ``syntax/``, ``check/``, ``compile/manifest.py``, ``compile/patterns.py``,
  the parse tables beside the grammar,
  ``api.py``, ``diagnostics.py``, so an edited checker never reads an old entry), the
  rules text, the display name, the absolute folder (both are in the manifest), and the
  text of the companion ``X.trg`` of an ``X_test.trg``. Any change makes a new key.
- **Plug-ins**: a compile that used a third-party provider or source kind (an entry
  point, or one registered at run time) is not cached: its code is not in the key, and an
  upgraded plug-in must never meet a manifest its old version produced. A compile that
  used only built-ins cannot depend on a plug-in (a plug-in only adds names), so those
  entries stay valid whatever gets installed.
- **Where**: the user's cache directory, ``$XDG_CACHE_HOME/triggerlang/compiled`` (default
  ``~/.cache/triggerlang/compiled``), not the state directory: ``match`` must not create
  files in a checkout (read-only CI workspaces), and the state directory belongs to
  ``serve``. The CLI passes the directory explicitly (``TRIGGERLANG_CACHE_DIR`` overrides
  it; ``TRIGGERLANG_CACHE_DIR=off`` turns the cache off).
- **Safety**: never load an entry we did not write. The directory is created ``0700``
  and used only if it belongs to the current user and nobody else can write to it. Each
  entry is one file named by its key, holding a header line ``{"key", "mac"}`` and the
  manifest; ``mac`` is an HMAC-SHA256 of the body under a random per-user secret kept in
  the directory (``0600``). An entry is used only when its key matches and its MAC
  verifies, and even then it is read with ``json``, never ``pickle`` or ``marshal``, so
  a forged file could at worst give a wrong manifest, and it cannot be forged without
  the secret. Writes go to a temporary file and are renamed into place (atomic); at most
  :data:`MAX_ENTRIES` entries are kept, the least recently written are removed.
- Any problem with the cache (unwritable, corrupt, foreign) silently falls back to
  compiling: the cache can make ``match`` faster, never make it fail.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import json
import os
import secrets
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CACHE_FORMAT = 1
MAX_ENTRIES = 64
_SECRET_NAME = "secret.key"

_fingerprint: str | None = None


def default_cache_dir(env: dict[str, str] | None = None) -> Path | None:
    """The cache directory from the environment; None when the cache is turned off."""
    env = os.environ if env is None else env
    explicit = env.get("TRIGGERLANG_CACHE_DIR")
    if explicit is not None:
        if explicit.strip().lower() in ("", "off", "0", "no", "false"):
            return None
        return Path(explicit)
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "triggerlang" / "compiled"


def compiler_fingerprint() -> str:
    """A digest of everything that decides what the compiler produces (computed once)."""
    global _fingerprint
    if _fingerprint is not None:
        return _fingerprint
    from .. import __version__

    h = hashlib.sha256()
    h.update(f"cache={CACHE_FORMAT};triggerlang={__version__};python={sys.version}\n".encode())
    for dist in ("lark", "croniter"):
        h.update(f"{dist}={_installed(dist)}\n".encode())
    pkg = Path(__file__).resolve().parents[1]
    files = sorted([*pkg.joinpath("syntax").glob("*.py"), *pkg.joinpath("check").glob("*.py"),
                    *pkg.joinpath("providers").glob("*.py"), pkg / "sources" / "kinds.py",
                    pkg / "compile" / "manifest.py", pkg / "compile" / "patterns.py",
                    pkg / "correlation" / "clock.py",
                    pkg / "api.py", pkg / "diagnostics.py", pkg / "spec.py", pkg / "defaults.py"])
    from ..syntax.tables import GRAMMAR_NAME, TABLES_NAME, grammar_dir

    for name in (GRAMMAR_NAME, TABLES_NAME):  # the grammar, and the parse tables made from it
        files.append(grammar_dir() / name)
    for f in files:
        try:
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
        except OSError:  # pragma: no cover - an unreadable source: no cache at all
            h.update(f"{f.name}:unreadable:{secrets.token_hex(8)}".encode())
    _fingerprint = h.hexdigest()
    return _fingerprint


def _installed(dist: str) -> str:
    """Which release of a library is installed, without importing it (or importlib.metadata,
    which costs tens of milliseconds): the names of its ``*.dist-info`` folders beside it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(dist)
    except (ImportError, ValueError):  # pragma: no cover
        return "?"
    if spec is None or not spec.origin:
        return "?"
    where = Path(spec.origin).parent
    if spec.submodule_search_locations:
        where = where.parent
    try:
        return ",".join(sorted(n for n in os.listdir(where) if n.lower().startswith(dist + "-")
                               and n.endswith((".dist-info", ".egg-info"))))
    except OSError:  # pragma: no cover
        return "?"


def cache_key(text: bytes, display_name: str, base_dir: str, companion: bytes | None) -> str:
    h = hashlib.sha256()
    h.update(compiler_fingerprint().encode())
    for part in (display_name.encode(), base_dir.encode(), text,
                 b"-" if companion is None else b"+" + companion):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def _private_dir(d: Path, create: bool) -> bool:
    """True when ``d`` exists (or was made), belongs to us and only we can write to it."""
    try:
        if create:
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = d.stat()
    except OSError:
        return False
    if hasattr(os, "getuid"):
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            return False
    return True


def _secret(d: Path, create: bool) -> bytes | None:
    p = d / _SECRET_NAME
    try:
        st = p.stat()
        if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o077):
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


def load(cache_dir: Path, key: str) -> dict | None:
    """The manifest cached under ``key``, or None (missing, foreign, corrupt)."""
    if not _private_dir(cache_dir, create=False):
        return None
    secret = _secret(cache_dir, create=False)
    if secret is None:
        return None
    p = cache_dir / f"{key}.json"
    try:
        st = p.stat()
        if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
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
    body = memoryview(raw)[nl + 1:]
    if not isinstance(head, dict) or head.get("key") != key:
        return None
    mac = hmac.new(secret, body, hashlib.sha256).hexdigest()
    if not isinstance(head.get("mac"), str) or not hmac.compare_digest(mac, head["mac"]):
        return None
    enabled = gc.isenabled()
    gc.disable()  # tens of thousands of small dicts: the collector would run for nothing
    try:
        manifest = json.loads(bytes(body))
    except ValueError:
        return None
    finally:
        if enabled:
            gc.enable()
    if not isinstance(manifest, dict) or not isinstance(manifest.get("rules"), list):
        return None
    return manifest


def store(cache_dir: Path, key: str, manifest: dict) -> bool:
    """Write an entry (atomically); False when the cache cannot be used."""
    if not _private_dir(cache_dir, create=True):
        return False
    secret = _secret(cache_dir, create=True)
    if secret is None:
        return False
    body = json.dumps(manifest, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    head = json.dumps({"key": key, "mac": hmac.new(secret, body, hashlib.sha256).hexdigest()}).encode()
    try:
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(head + b"\n" + body)
            os.replace(tmp, cache_dir / f"{key}.json")
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError:
        return False
    _prune(cache_dir)
    return True


def _prune(cache_dir: Path) -> None:
    try:
        entries = [(e.stat().st_mtime, e) for e in cache_dir.glob("*.json")]
    except OSError:  # pragma: no cover
        return
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda x: x[0])
    for _, e in entries[: len(entries) - MAX_ENTRIES]:
        try:
            e.unlink()
        except OSError:  # pragma: no cover
            pass


@dataclass
class CachedProgram:
    """A compiled program read from the cache: what ``Compiled`` has, less the AST and the
    checked program (and the parser and checker are not even imported)."""

    file: str
    text: str
    manifest: dict
    module: None = None
    program: None = None
    diagnostics: list = field(default_factory=list)
    sources: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return True


def _companion(p: Path) -> Path | None:
    """``X.trg`` beside ``X_test.trg`` (the rule of ``api.companion_of``, without importing api)."""
    if p.name.endswith("_test.trg"):
        main = p.with_name(p.name[: -len("_test.trg")] + ".trg")
        if main.is_file():
            return main
    return None


def load_or_compile(path: str | os.PathLike, cache_dir: Path | None, display_name: str | None = None) -> Any:
    """Like :func:`~triggerlang.api.compile_file`, answered from the cache when it can be.

    Returns a ``Compiled``, or on a cache hit a :class:`CachedProgram` (only error-free
    compiles are cached). Raises ``SourceFileError`` as ``compile_file`` does.
    """
    if cache_dir is None:
        return _compile(path, display_name)
    p = Path(path)
    name = display_name or str(path)
    try:
        if p.is_dir():
            return _compile(path, display_name)  # the usual error
        raw = p.read_bytes()
        text = raw.decode("utf-8")
        main = _companion(p)
        companion = main.read_bytes() if main is not None else None
        base_dir = str(p.resolve().parent)
    except (OSError, UnicodeDecodeError):
        return _compile(path, display_name)  # let it report the problem
    key = cache_key(raw, name, base_dir, companion)
    manifest = load(cache_dir, key)
    if manifest is not None:
        return CachedProgram(name, text, manifest, sources={name: text})
    c = _compile(path, display_name)
    if c.ok and c.manifest is not None and c.text == text and not _plugins_in_use():
        store(cache_dir, key, c.manifest)
    return c


def _plugins_in_use() -> bool:
    """Did this process use a provider or source kind that is not built in? (The registries
    are imported by the compile that just ran; nothing is imported here.)"""
    for name in ("triggerlang.providers", "triggerlang.sources.kinds"):
        mod = sys.modules.get(name)
        registry = getattr(mod, "REGISTRY", None)
        if registry is not None and registry.plugins_in_use():
            return True
    return False


def _compile(path: str | os.PathLike, display_name: str | None) -> Any:
    from ..api import compile_file

    return compile_file(path, display_name)


__all__ = ["CachedProgram", "load_or_compile", "default_cache_dir", "cache_key", "compiler_fingerprint", "load",
           "store"]
