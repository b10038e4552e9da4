"""Ignore files, as git reads them: ``source file gitignore=true`` (README, "Coming from
watchexec").

What is read
------------
The *top* is the nearest folder at or above the file source's root that holds ``.git``
(the work tree's top; the root itself when there is none). Patterns come from, lowest
precedence first: ``.git/info/exclude`` of the top, then in each folder from the top down
to the changed path's folder its ``.gitignore``, then its ``.ignore`` (the file ripgrep and
watchexec read besides git's). A folder's files are read the first time a path under it
is checked and kept until :meth:`GitIgnore.forget` says one changed (the file source calls
it on every event for a ``.gitignore`` or ``.ignore``). git's global excludes file
(``core.excludesFile``) is not read: what a team shares is in the repository.

How a pattern matches (gitignore(5))
------------------------------------
Blank lines and ``#`` comments are skipped; trailing spaces are dropped unless escaped
(``\\ ``); ``\\#`` and ``\\!`` start a pattern with that character. ``!`` negates (the
path is not ignored after all). A trailing ``/`` matches folders only. A pattern with a
``/`` at its start or in its middle is anchored to its file's folder; one without matches
a name at any depth below it. ``*`` and ``?`` stay within a segment, ``[a-z]`` and
``[!a-z]`` are classes, ``**/`` at the start, ``/**`` at the end and ``/**/`` inside match
any number of folders (the language's own globs, :mod:`triggerlang.compile.patterns`;
unlike git, a ``**`` elsewhere, ``a**b``, spans folders too, and a pattern with an
unclosed ``[`` is skipped). The last pattern that matches decides; a path whose folder is
ignored is ignored, whatever a later ``!`` says (git does not look inside an ignored
folder either).
"""

from __future__ import annotations

import os
import re
from typing import Any

from ..compile.patterns import PatternError, compile_glob

__all__ = ["IGNORE_FILES", "GitIgnore", "parse_lines"]

IGNORE_FILES = (".gitignore", ".ignore")


class _Pattern:
    __slots__ = ("regex", "negated", "dir_only", "anchored")

    def __init__(self, regex: re.Pattern[str], negated: bool, dir_only: bool, anchored: bool) -> None:
        self.regex, self.negated, self.dir_only, self.anchored = regex, negated, dir_only, anchored


def parse_lines(lines: list[str]) -> list[_Pattern]:
    """The patterns of an ignore file's lines (a line that is no valid pattern is skipped)."""
    out: list[_Pattern] = []
    for line in lines:
        line = line.rstrip("\n").rstrip("\r")
        while line.endswith(" ") and not line.endswith("\\ "):
            line = line[:-1]
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        if negated:
            line = line[1:]
        elif line.startswith(("\\#", "\\!")):
            line = line[1:]
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        try:  # the language's globs (one translator): gitignore's *, ?, [...], **/, /**, /**/
            out.append(_Pattern(compile_glob(line.lstrip("/")), negated, dir_only, anchored))
        except PatternError:
            continue
    return out


class GitIgnore:
    """Whether a path under ``root`` is ignored by the ignore files (module docstring)."""

    def __init__(self, root: str, log: Any = None) -> None:
        self.root = root
        self.log = log
        top = root
        while not os.path.exists(os.path.join(top, ".git")):
            parent = os.path.dirname(top)
            if parent == top:
                top = root
                break
            top = parent
        self.top = top
        self.prefix = os.path.relpath(root, top).replace(os.sep, "/") if top != root else ""
        self._exclude = self._read([os.path.join(top, ".git", "info", "exclude")])
        self._folders: dict[str, list[_Pattern]] = {}  # folder relative to top ("" the top) -> patterns

    def _read(self, files: list[str]) -> list[_Pattern]:
        patterns: list[_Pattern] = []
        for f in files:
            try:
                with open(f, encoding="utf-8", errors="replace") as fh:
                    patterns.extend(parse_lines(fh.readlines()))
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue
            except OSError as e:
                if self.log is not None:
                    self.log.warning("file: cannot read %s (%s); its patterns are not applied", f, e.strerror or e)
        return patterns

    def _patterns(self, folder: str) -> list[_Pattern]:
        got = self._folders.get(folder)
        if got is None:
            base = os.path.join(self.top, *folder.split("/")) if folder else self.top
            got = self._folders[folder] = self._read([os.path.join(base, name) for name in IGNORE_FILES])
        return got

    def forget(self, path: str) -> None:
        """The file at ``path`` (absolute) changed: if it is an ignore file, its folder's
        patterns are read anew when next needed."""
        folder, name = os.path.split(path)
        if name in IGNORE_FILES:
            rel = os.path.relpath(folder, self.top).replace(os.sep, "/")
            self._folders.pop("" if rel == "." else rel, None)

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether ``rel`` (relative to root, ``/`` separators) is ignored."""
        path = "/".join(p for p in (self.prefix, rel) if p)
        parts = path.split("/")
        for k in range(1, len(parts) + 1):  # each folder on the way, then the path itself
            if self._decide(parts[:k], is_dir or k < len(parts)):
                return True
        return False

    def _decide(self, parts: list[str], is_dir: bool) -> bool:
        levels: list[tuple[str, list[_Pattern]]] = [("", self._exclude)]
        for d in range(len(parts)):  # the folders that hold the path, top first
            folder = "/".join(parts[:d])
            levels.append((folder, self._patterns(folder)))
        decision = False
        for folder, patterns in levels:
            sub = parts[len(folder.split("/")) if folder else 0:]
            rel, name = "/".join(sub), sub[-1]
            for p in patterns:
                if p.dir_only and not is_dir:
                    continue
                if p.regex.match(rel if p.anchored else name):
                    decision = not p.negated
        return decision
