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
- **Included files**: which files a file's ``include`` lines read is known only once it
  is parsed, so they are not in the key: the entry records them (and each glob with the
  files it matched) with a digest of their contents as compiled, and a hit whose files
  differ on disk now (edited, gone, or a glob matching another set) is a miss.
- **Plug-ins**: a compile that used a third-party provider or source kind (an entry
  point, or one registered at run time) is not cached: its code is not in the key, and an
  upgraded plug-in must never meet a manifest its old version produced. A compile that
  used only built-ins cannot depend on a plug-in (a plug-in only adds names), so those
  entries stay valid whatever gets installed.
- **Where and how safely**: in the user's private cache folder, each entry MAC'd with a
  per-user secret (:mod:`triggerlang.usercache`: ``$XDG_CACHE_HOME/triggerlang/compiled``,
  ``TRIGGERLANG_CACHE_DIR`` to move it, ``=off`` to turn it off). An entry is read with
  ``json``, never ``pickle`` or ``marshal``, so even a forged file could at worst give a
  wrong manifest, and it cannot be forged without the secret. At most
  :data:`MAX_ENTRIES` entries are kept, the least recently written are removed.
- Any problem with the cache (unwritable, corrupt, foreign) silently falls back to
  compiling: the cache can make ``match`` faster, never make it fail.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import usercache
from ..usercache import default_cache_dir

CACHE_FORMAT = 2
MAX_ENTRIES = 64

_fingerprint: str | None = None


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
                    pkg / "correlation" / "clock.py", pkg / "cron.py",
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


def load(cache_dir: Path, key: str) -> dict | None:
    """The manifest cached under ``key``, or None (missing, foreign, corrupt, or compiled
    from included files that have changed since)."""
    body = usercache.read(cache_dir, f"{key}.json", key)
    if body is None:
        return None
    enabled = gc.isenabled()
    gc.disable()  # tens of thousands of small dicts: the collector would run for nothing
    try:
        manifest = json.loads(body)
    except ValueError:
        return None
    finally:
        if enabled:
            gc.enable()
    if not isinstance(manifest, dict) or not isinstance(manifest.get("manifest"), dict):
        return None
    inputs = manifest.get("inputs")
    if inputs is not None:
        from ..sourcefile import current_inputs

        try:
            if current_inputs(inputs["files"], inputs["globs"]) != inputs["digest"]:
                return None
        except (KeyError, TypeError):
            return None
    manifest = manifest["manifest"]
    if not isinstance(manifest.get("rules"), list):
        return None
    return manifest


def store(cache_dir: Path, key: str, manifest: dict, inputs: dict | None = None) -> bool:
    """Write an entry (atomically); False when the cache cannot be used. ``inputs``: the
    included files the manifest was compiled from (:func:`included_inputs`)."""
    body = json.dumps({"manifest": manifest, "inputs": inputs}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")
    if not usercache.write(cache_dir, f"{key}.json", key, body):
        return False
    usercache.prune(cache_dir, "*.json", MAX_ENTRIES)
    return True


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


def load_or_compile(path: str | os.PathLike, cache_dir: Path | None, display_name: str | None = None,
                    warnings: bool = True) -> Any:
    """Like :func:`~triggerlang.api.compile_file`, answered from the cache when it can be.

    Returns a ``Compiled``, or on a cache hit a :class:`CachedProgram` (only error-free
    compiles are cached). Raises ``SourceFileError`` as ``compile_file`` does.
    """
    if cache_dir is None:
        return _compile(path, display_name, warnings)
    p = Path(path)
    name = display_name or str(path)
    try:
        if p.is_dir():
            return _compile(path, display_name, warnings)  # the usual error
        raw = p.read_bytes()
        text = raw.decode("utf-8")
        main = _companion(p)
        companion = main.read_bytes() if main is not None else None
        base_dir = str(p.resolve().parent)
    except (OSError, UnicodeDecodeError):
        return _compile(path, display_name, warnings)  # let it report the problem
    key = cache_key(raw, name, base_dir, companion)
    manifest = load(cache_dir, key)
    if manifest is not None:
        return CachedProgram(name, text, manifest, sources={name: text})
    c = _compile(path, display_name, warnings)
    if c.ok and c.manifest is not None and c.text == text and not _plugins_in_use():
        store(cache_dir, key, c.manifest, included_inputs(c))
    return c


def included_inputs(c: Any) -> dict | None:
    """The files the includes of a compile (and of its companion's) read, as compiled:
    ``{"files": [...], "globs": [...], "digest": ...}``; None when there were none."""
    from ..syntax.includes import included_digest

    modules = [m for m in (c.module, c.main.module if c.main is not None else None) if m is not None]
    files = [f.path for m in modules for f in m.included]
    globs = [g for m in modules for g, _ in m.include_globs]
    if not files and not globs:
        return None
    return {"files": files, "globs": globs, "digest": included_digest(modules)}


def _plugins_in_use() -> bool:
    """Did this process use a provider or source kind that is not built in? (The registries
    are imported by the compile that just ran; nothing is imported here.)"""
    for name in ("triggerlang.providers", "triggerlang.sources.kinds"):
        mod = sys.modules.get(name)
        registry = getattr(mod, "REGISTRY", None)
        if registry is not None and registry.plugins_in_use():
            return True
    return False


def _compile(path: str | os.PathLike, display_name: str | None, warnings: bool = True) -> Any:
    from ..api import compile_file

    return compile_file(path, display_name, warnings=warnings)


__all__ = ["CachedProgram", "load_or_compile", "default_cache_dir", "cache_key", "compiler_fingerprint", "load",
           "store"]
