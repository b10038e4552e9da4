"""Reading a rules file: its text, or why it cannot be read (one layer below the parser's
callers and the include reader, :mod:`triggerlang.syntax.includes`, which reads the files
an ``include`` names the same way)."""

from __future__ import annotations

import glob
import hashlib
import os
from typing import Iterable

from .diagnostics import Diagnostics, Pos, Span


class SourceFileError(Exception):
    """A rules file that cannot be read at all (missing, a folder, no permission)."""


MAX_SOURCE_BYTES = 64 * 2**20
"""The largest rules file read (64 MiB; 10,000 rules take about 0.6 MiB): past it, a file is
not a rules file (``/dev/zero`` would be read until memory runs out)."""


def read_source(path: str | os.PathLike) -> tuple[str | None, Diagnostics]:
    """The text of a rules file, or None with a TRG004 diagnostic if it is not UTF-8.

    Raises SourceFileError when the file cannot be opened, or is over :data:`MAX_SOURCE_BYTES`.
    """
    diags = Diagnostics(str(path))
    try:
        if os.path.isdir(path):
            raise SourceFileError(f"{path} is a folder, not a rules file")
        with open(path, "rb") as fh:
            data = fh.read(MAX_SOURCE_BYTES + 1)
        if len(data) > MAX_SOURCE_BYTES:
            raise SourceFileError(f"{path}: over {MAX_SOURCE_BYTES // 2**20} MiB, too large for a rules file")
    except FileNotFoundError:
        raise SourceFileError(f"{path}: no such file") from None
    except PermissionError:
        raise SourceFileError(f"{path}: permission denied") from None
    except OSError as e:
        raise SourceFileError(f"{path}: {e.strerror or e}") from None
    return decode_source(data, diags)


def decode_source(data: bytes, diags: Diagnostics) -> tuple[str | None, Diagnostics]:
    """The text of a rules file's bytes, or None with a TRG004 diagnostic in ``diags`` if
    they are not UTF-8."""
    try:
        return data.decode("utf-8"), diags
    except UnicodeDecodeError as e:
        # the bytes before the first bad one are UTF-8: columns and offsets count their
        # characters, as every other diagnostic's do (they counted bytes: 'é' made two)
        before = data[: e.start].decode("utf-8")
        line = before.count("\n") + 1
        col = len(before) - (before.rfind("\n") + 1) + 1
        diags.error("TRG004", f"the file is not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})",
                    Span(Pos(line, col, len(before)), Pos(line, col + 1, len(before) + 1)),
                    "save the file as UTF-8")
        return None, diags


# --------------------------------------------------------------------------- what includes read

def inputs_digest(files: Iterable[tuple[str, bytes | None]], globs: Iterable[tuple[str, Iterable[str]]]) -> str:
    """A digest of what an expansion read: each included file's path and bytes (None: it
    cannot be read), each glob with the files it matched. Equal digests, same program: what
    the compile cache keys on and what ``serve`` watches."""
    h = hashlib.sha256()
    for path, data in files:
        h.update(b"F" + path.encode("utf-8", "surrogateescape") + b"\0")
        h.update(b"-" if data is None else hashlib.sha256(data).digest())
    for pattern, matched in globs:
        h.update(b"G" + pattern.encode("utf-8", "surrogateescape") + b"\0")
        for m in matched:
            h.update(m.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()


def current_inputs(paths: Iterable[str], patterns: Iterable[str]) -> str:
    """:func:`inputs_digest` of the files and globs as they are on disk now."""
    def read(p: str) -> bytes | None:
        try:
            with open(p, "rb") as fh:
                return fh.read()
        except OSError:
            return None

    return inputs_digest(((p, read(p)) for p in paths), ((g, glob_files(g)) for g in patterns))


def glob_files(pattern: str) -> list[str]:
    """The rules files an absolute glob matches, sorted: files, not test files (hidden files
    are never matched by ``*``)."""
    return sorted(m for m in glob.glob(pattern, recursive=True) if os.path.isfile(m) and not m.endswith("_test.trg"))
