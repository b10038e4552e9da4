"""Project configuration for ``triggerc check`` (ruff's ``[tool.ruff]``).

A team writes the decisions it made about its rules once, in the repository, so that CI,
a developer's terminal, ``serve``'s start-up warnings and the editor agree without
repeating flags::

    # triggerc.toml (or .triggerc.toml), or [tool.triggerc] in pyproject.toml
    ignore = ["TRG209", "TRG1"]                       # codes or prefixes, as --ignore
    per-file-ignores = {"legacy/*.trg" = ["TRG307"]}  # globs from the config's folder
    exclude = ["vendor/**", "generated/*.trg"]        # not rules: skipped in folders
    strict = true                                     # as --strict

Discovery, ruff's rule: for each file, the nearest folder, from the file's own folder up
to the filesystem root, that holds ``triggerc.toml``, ``.triggerc.toml`` or a
``pyproject.toml`` with a ``[tool.triggerc]`` table (in that order when one folder holds
several) gives the file's whole configuration. Levels are not merged: a closer file
replaces a farther one, so what applies to a file is always one file to read. A
``pyproject.toml`` without the table is passed over (it is some other tool's).

Globs (``per-file-ignores``, ``exclude``) are matched against a path relative to the
config's folder, written with ``/``: ``*`` and ``?`` stay inside one folder, ``**``
crosses folders (``vendor/**``, ``**/generated/*.trg``), as in check's own patterns and
``.gitignore``. A glob without a ``/`` also matches a file or folder of that name at any
depth (``"*_legacy.trg"``, ``"vendor"``), as ruff and ``.gitignore`` do. Unlike ruff,
which resolves a ``--config`` file's globs from the current folder, they are always
resolved from the config's own folder: the same file means the same thing however it is
found.

A problem in a config file (TOML syntax, an unknown key, a wrong type, a code that does
not exist or is an error) is a :class:`ConfigError` whose message names the file (and its
line where it can): the CLI prints it and exits 2.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from .compile.patterns import PatternError, compile_glob

CONFIG_FILES = ("triggerc.toml", ".triggerc.toml", "pyproject.toml")
KEYS = ("exclude", "ignore", "per-file-ignores", "strict")
TABLE = "[tool.triggerc]"


class ConfigError(Exception):
    """A config file that cannot be used; ``str()`` is the whole message, naming the file."""


@dataclass(frozen=True)
class Config:
    """One config file's settings (``path`` None: no file, the defaults). ``root`` is the
    folder its globs start from."""

    root: str
    path: str | None = None
    ignore: frozenset[str] = frozenset()
    per_file_ignores: tuple[tuple[str, frozenset[str]], ...] = ()
    exclude: tuple[str, ...] = ()
    strict: bool = False
    _left_out: dict = field(default_factory=dict, compare=False, repr=False)

    def ignored_for(self, file: str) -> frozenset[str]:
        """The codes left out in ``file``: ``ignore`` and each matching ``per-file-ignores``."""
        out = self._left_out.get(file)
        if out is None:
            out = self.ignore
            for pattern, codes in self.per_file_ignores:
                if self._matches(pattern, file):
                    out = out | codes
            self._left_out[file] = out
        return out

    def keeps(self, d, also: frozenset[str] = frozenset()) -> bool:
        """Whether diagnostic ``d`` is shown: an error always; a warning unless this config
        (``ignore``, a ``per-file-ignores`` glob matching the file it is in) or ``also``
        (``--ignore``) leaves its code out."""
        return d.is_error or (d.code not in also and d.code not in self.ignored_for(d.file))

    def excludes(self, path: str) -> bool:
        """Whether ``exclude`` leaves out ``path`` (a file or a folder)."""
        return any(self._matches(p, path) for p in self.exclude)

    def _matches(self, pattern: str, path: str) -> bool:
        rx = compile_glob(config_glob(pattern))  # (cached there)
        full = os.path.abspath(path)
        rel = os.path.relpath(full, self.root).replace(os.sep, "/")
        if "/" not in pattern.strip("/"):
            return bool(rx.fullmatch(os.path.basename(full)))
        return not rel.startswith("../") and bool(rx.fullmatch(rel))


def config_glob(pattern: str) -> str:
    """A config glob as the rules' glob translator (:func:`~triggerlang.compile.patterns.compile_glob`,
    the one translator: ``*``/``?`` within a folder, ``**`` across) reads it: ``/``
    separators, no leading ``./``, no leading or trailing ``/``."""
    return pattern.replace("\\", "/").removeprefix("./").strip("/")


def parse_codes(values, label: str = "--ignore") -> tuple[frozenset[str], str | None]:
    """``(codes, problem)`` for ``--ignore``-style values; the one rule for what can be left
    out (a code or prefix that exists, never an error code)."""
    from .check.checker import CODES
    from .check.codedocs import CODE_DOCS
    from .check.noqa import parse_ignore

    def severity(code: str) -> str:
        doc = CODE_DOCS.get(code)
        return "error" if doc is not None and doc.severity == "error" and not doc.warning_cases else "warning"

    return parse_ignore(values, CODES, severity, label)


def load(path: str, text: str | None = None, data: dict | None = None) -> Config:
    """The config in ``path`` (a ``pyproject.toml``: its ``[tool.triggerc]`` table, which
    must be there); :class:`ConfigError` when it cannot be used. ``text`` and ``data``:
    the file's text and TOML, when the caller has read them already."""
    if text is None:
        text = _read(path)
    if data is None:
        data = _toml(path, text)
    if os.path.basename(path) == "pyproject.toml":
        table = data.get("tool", {}).get("triggerc") if isinstance(data.get("tool"), dict) else None
        if table is None:
            raise ConfigError(f"{path}: no {TABLE} table in this pyproject.toml")
        if not isinstance(table, dict):
            raise ConfigError(f"{_at(path, text, 'triggerc')}: tool.triggerc must be a table")
        return _settings(path, text, table)
    return _settings(path, text, data)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config: {e.strerror or e}") from None


def _toml(path: str, text: str) -> dict:
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)$", msg)
        where = f"{path}:{m[1]}:{m[2]}" if m and m[1] else path
        end = " at the end of the file" if m and not m[1] else ""
        return _raise(f"{where}: not valid TOML: {msg[:m.start()] if m else msg}{end}")


def _raise(msg: str):
    raise ConfigError(msg)


def _at(path: str, text: str, key: str) -> str:
    """``path:LINE`` for the first line that sets ``key`` (after ``[tool.triggerc]`` in a
    pyproject.toml), or ``path`` when none does: tomllib gives no lines for values."""
    start = 0
    if os.path.basename(path) == "pyproject.toml":
        start = max(text.find(TABLE), 0)
    rx = re.compile(r'^[ \t]*(?:[\w.-]*\.)?["\']?' + re.escape(key) + r'["\']?[ \t]*=', re.M)
    m = rx.search(text, start) or re.search(r'["\']' + re.escape(key) + r'["\'][ \t]*=', text[start:])
    if m is None:
        return path
    at = m.start() if m.re is rx else start + m.start()
    return f"{path}:{text.count(chr(10), 0, at) + 1}"


def _settings(path: str, text: str, table: dict) -> Config:
    from .diagnostics import did_you_mean

    where = "[tool.triggerc]" if os.path.basename(path) == "pyproject.toml" else "the config"
    for key in table:
        if key not in KEYS:
            hint = did_you_mean(key, KEYS)
            raise ConfigError(f"{_at(path, text, key)}: unknown key {key!r} in {where}"
                              + (f" ({hint})" if hint else "") + f"; the keys are {', '.join(KEYS)}")

    def strings(key: str, value) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{_at(path, text, key)}: {key} must be a list of strings, "
                              f'like {key} = ["{"TRG209" if key != "exclude" else "vendor/**"}"]')
        return value

    def codes(key: str, value, label: str = "ignore") -> frozenset[str]:
        out, problem = parse_codes(strings(key, value), label)
        if problem:
            raise ConfigError(f"{_at(path, text, key)}: {problem}")
        return out

    ignore = codes("ignore", table.get("ignore", []))
    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise ConfigError(f'{_at(path, text, "per-file-ignores")}: per-file-ignores must be a table of globs '
                          f'to codes, like per-file-ignores = {{"legacy/*.trg" = ["TRG307"]}}')
    pairs = tuple((g, codes(g, v, f"per-file-ignores {g!r}:")) for g, v in per_file.items())
    exclude = tuple(strings("exclude", table.get("exclude", [])))
    for key, glob in [*(("per-file-ignores", g) for g, _ in pairs), *(("exclude", g) for g in exclude)]:
        try:
            compile_glob(config_glob(glob))
        except PatternError as e:  # as check reports such a glob in rules (TRG302)
            raise ConfigError(f"{_at(path, text, key)}: {key} {glob!r} is not a glob: {e}") from None
    strict = table.get("strict", False)
    if not isinstance(strict, bool):
        raise ConfigError(f"{_at(path, text, 'strict')}: strict must be true or false")
    return Config(root=os.path.dirname(os.path.abspath(path)), path=path, ignore=ignore,
                  per_file_ignores=pairs, exclude=exclude, strict=strict)


RECENT_NS = 2_000_000_000
"""A config file modified less than this many nanoseconds ago is read again at every look
(:func:`config_of`): an edit that keeps its size within the file system's timestamp
granularity (up to 2 s) would not change its key."""

_SEEN: dict[str, tuple[tuple, "Config | str"]] = {}
""":func:`config_of`'s cache: folder -> (key, its config or the ConfigError's message)."""


def config_of(checked: str) -> Config:
    """The nearest config of the rules file ``checked`` (serve's start-up and reload
    warnings, the language server at every analysis, the MCP server: what ``check`` would
    leave out of that file, they leave out too); :class:`ConfigError` when it cannot be used.

    The editor asks at every keystroke, so a folder's config is read and parsed once, then
    kept under a key of the look-up's folder chain (:func:`_chain`): the (path, mtime_ns,
    size) of each config file found from the folder up to the one that decides. A look is a
    few ``stat`` calls; a config edited, created nearer or deleted changes the key and is
    read at that look, as a build tool's cache keys on its inputs' stat. A file modified
    in the last :data:`RECENT_NS` is read at every look (git's racy-clean rule), so an edit
    that keeps the size within one timestamp tick is never missed."""
    folder = os.path.dirname(os.path.abspath(checked))
    key = _chain(folder)
    seen = _SEEN.get(folder)
    if seen is None or key is None or seen[0] != key:
        try:
            found: Config | str = Configs().for_folder(folder)
        except ConfigError as e:
            found = str(e)
        seen = (key, found)
        if key is None:
            _SEEN.pop(folder, None)
        else:
            _SEEN[folder] = seen
    if isinstance(seen[1], str):
        raise ConfigError(seen[1])
    return seen[1]


def _chain(folder: str) -> tuple | None:
    """:func:`config_of`'s key for ``folder``: ``(path, mtime_ns, size)`` of every config
    file :meth:`Configs.for_folder` may read, up to the first ``triggerc.toml`` or
    ``.triggerc.toml`` (a ``pyproject.toml`` may be passed over: the look goes on); None
    when one of them was modified in the last :data:`RECENT_NS`."""
    import stat
    import time

    recent = time.time_ns() - RECENT_NS
    key = []
    here = folder
    while True:
        for name in CONFIG_FILES:
            path = os.path.join(here, name)
            try:
                st = os.stat(path)
            except (OSError, ValueError):
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if st.st_mtime_ns > recent:
                return None
            key.append((path, st.st_mtime_ns, st.st_size))
            if name != "pyproject.toml":
                return tuple(key)
        parent = os.path.dirname(here)
        if parent == here:
            return tuple(key)
        here = parent


class Configs:
    """Each file's config: the nearest one (cached per folder), or the one ``--config``
    names (``fixed``), or none at all (``isolated``, ``--isolated``)."""

    def __init__(self, fixed: str | None = None, isolated: bool = False):
        self.isolated = isolated
        self.fixed = load(fixed) if fixed is not None else None
        self._by_folder: dict[str, Config] = {}

    def for_file(self, path: str) -> Config:
        """The config of the file at ``path`` (which need not exist: stdin's name)."""
        return self.for_folder(os.path.dirname(os.path.abspath(path)))

    def for_folder(self, folder: str) -> Config:
        """The config of the files in ``folder``."""
        if self.fixed is not None:
            return self.fixed
        folder = os.path.abspath(folder)
        if self.isolated:
            return Config(root=folder)
        seen: list[str] = []
        found: Config | None = None
        here = folder
        while True:
            if here in self._by_folder:
                found = self._by_folder[here]
                break
            seen.append(here)
            found = self._in(here)
            if found is not None:
                break
            parent = os.path.dirname(here)
            if parent == here:
                found = Config(root=folder)
                break
            here = parent
        for f in seen:
            self._by_folder[f] = found
        return found

    @staticmethod
    def _in(folder: str) -> Config | None:
        for name in CONFIG_FILES:
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                continue
            text = data = None
            if name == "pyproject.toml":
                text = _read(path)
                if "triggerc" not in text:  # cheap: most pyproject.toml are some other tool's
                    continue
                data = _toml(path, text)
                tool = data.get("tool")
                if not isinstance(tool, dict) or "triggerc" not in tool:
                    continue
            return load(_display(path), text, data)
        return None


def _display(path: str) -> str:
    """``path`` relative to the current folder when under it (how messages name files)."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel
