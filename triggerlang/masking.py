"""Masking secret values in free text: the one rule for every place that does it.

Where a secret sits at a known position (a store URL's password, a signature header) it is
replaced by position (:func:`triggerlang.runtime.store.redact_url`, the HTTP source's
``<redacted>``) and nothing here is needed. This module is for text whose shape we do not
control: a database driver's error message, an action's log shown to a coding agent.

Decision: a secret's value is replaced wherever it stands as a token of its own, whatever
its length, and nowhere else: an occurrence is masked unless the value starts with a
letter, digit or underscore and a word character comes right before it, or ends with one
and a word character comes right after it. So the password ``a`` masks the ``a`` of
``password=a`` and of ``'a'``, but not the ``a`` in ``failed`` or ``that``, and the
password ``postgres`` does not eat the ``postgres`` of ``postgresql://``.

Why: replacing every substring garbles the message as soon as the value is short or an
ordinary word (``connection f***iled``), and skipping short values, as a minimum length
would, prints them. Text that runs into a longer word reveals nothing: ``failed`` is there
whether the password is ``a`` or not, and a value always shows on its own where a program
prints it (after ``=`` or ``:``, in quotes, alone on a line). A value that is itself an
ordinary word is still masked where that word stands alone; that is the price of never
printing it. Longer values are tried first, so one that holds another is masked whole.

Run logs are masked as bytes (:meth:`Masker.mask_bytes`): a log need not be UTF-8, and what
is not stays as written. There a word character is an ASCII letter, digit or underscore (a
byte of a letter outside ASCII is a boundary, so such a value is masked in more places,
never fewer), and a terminal escape sequence right before a value is a boundary too
(``\x1b[1m`` then the value: the bold value is masked, though ``m`` is a letter).

Reading a log in pieces (a follow, a page by offset): a value split between two reads must
still be masked, and an offset must keep meaning a byte of the file. So a piece is masked
with what comes before it as context, and its end is held back from the first place where
what remains could be the start of a value (at most the longest value's length: a whole
value at the very end waits for the next byte too, to know whether a word goes on) until
more is written or the log is over; the next read starts there. Every piece ends at a point
where the whole log's masking has no match across it, so the pieces put together are the
whole log masked (``tests/test_masking.py`` checks every split position).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Collection, Mapping

__all__ = ["Masker", "read_secrets", "stand_in"]

_WORD = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_ESCAPE_END = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]\Z|\x1b[@-Z\\-_]\Z")
_ESCAPE_WINDOW = 64  # bytes before a value in which a terminal escape is looked for


def stand_in(name: str) -> str:
    """What a view shows for the value of secret ``name``."""
    return f"[secret {name}]"


def read_secrets(secrets: Mapping[str, Mapping[str, str]], base_dir: Path, environ: Mapping[str, str],
                 only: Collection[str | None] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """(values by name, why not by name): the values of a manifest's ``secrets``
    (``{name: {"env": VAR} | {"file": path}}``, a relative path from ``base_dir``), read as
    ``serve`` reads them; a secret that cannot be read gets a message that names the
    variable or the file, never a value. ``only``: just these names (None: all)."""
    out: dict[str, str] = {}
    problems: dict[str, str] = {}
    for name, ref in sorted(secrets.items()):
        if only is not None and name not in only:
            continue
        if "env" in ref:
            var = ref["env"]
            val = environ.get(var)
            if val is None or val == "":
                problems[name] = f"secret {name}: the environment variable {var} is not set"
                continue
            out[name] = val
        elif "file" in ref:
            p = Path(ref["file"])
            p = p if p.is_absolute() else base_dir / p
            try:
                val = p.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as e:
                problems[name] = f"secret {name}: cannot read {p}: {e.strerror or e}"
                continue
            except UnicodeDecodeError:
                problems[name] = f"secret {name}: {p} is not UTF-8 text"
                continue
            except ValueError:  # (a NUL character in the path: "x\u{0}")
                problems[name] = f"secret {name}: cannot read {str(p)!r}: a file name holds no NUL character"
                continue
            if not val:
                problems[name] = f"secret {name}: {p} is empty"
                continue
            out[name] = val
    return out, problems


class Masker:
    """Replaces secret values in text by their stand-ins (``{value: stand_in}``); see the
    module docstring for where. Empty values are ignored."""

    def __init__(self, stand_ins: Mapping[str, str]) -> None:
        self.stand_ins = {value: shown for value, shown in stand_ins.items() if value}
        alternatives = []
        for value in sorted(self.stand_ins, key=lambda v: (-len(v), v)):
            before = r"(?<!\w)" if re.match(r"\w", value[0]) else ""
            after = r"(?!\w)" if re.match(r"\w", value[-1]) else ""
            alternatives.append(before + re.escape(value) + after)
        self._pattern = re.compile("|".join(alternatives)) if alternatives else None
        # the same for bytes: the values as UTF-8 (an environment's undecodable bytes as they were)
        self._bytes = {value.encode("utf-8", "surrogateescape"): shown.encode("utf-8", "surrogateescape")
                       for value, shown in self.stand_ins.items()}
        self._bytes_pattern = re.compile(b"|".join(
            re.escape(v) + (rb"(?![0-9A-Za-z_])" if v[-1] in _WORD else b"")
            for v in sorted(self._bytes, key=lambda v: (-len(v), v)))) if self._bytes else None
        self._longest = max(map(len, self._bytes), default=0)
        self._prefixes = {v[:i] for v in self._bytes for i in range(1, len(v) + 1)}

    @property
    def context(self) -> int:
        """How many bytes before a piece :meth:`mask_bytes` wants to see (0 without values)."""
        return self._longest + _ESCAPE_WINDOW if self._bytes else 0

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self.stand_ins[m.group(0)], text)

    def mask_bytes(self, data: bytes, start: int = 0, end: int | None = None, *, more: bool = False,
                   resume: bool = True, lines: bool = False) -> tuple[bytes, int]:
        """``(masked, cut)``: ``data[start:cut]`` masked, ``cut <= end`` (default ``len(data)``).

        ``data[:start]`` is context (give :attr:`context` bytes of it), ``data[end:]`` too.
        ``more``: the log may go on past ``data`` (a run still writing, a read in blocks),
        so ``cut`` stops before a tail that could begin a value, or a value whose end is
        undecided (see the module docstring); read again from ``cut``. ``resume``:
        ``start`` is a ``cut`` this method gave before (a follow, a page by offset); else
        (a tail, a skip ahead) a value that began before ``start`` is masked whole, its
        stand-in shown for the part after ``start``. ``lines``: ``cut`` is also the start
        of a line (after a newline) when it is not ``end``, for readers of whole lines.
        """
        end = len(data) if end is None else end
        pattern = self._bytes_pattern
        if pattern is None:
            return data[start:end], end
        cut = end
        if more:   # the first tail that could begin a value
            for p in range(max(start, len(data) - self._longest), len(data)):
                if data[p:] in self._prefixes:
                    cut = min(cut, p)
                    break
        found: list[tuple[int, int]] = []
        i = start if resume else max(0, start - self._longest + 1)
        while (m := pattern.search(data, i, cut + self._longest + 1)) is not None and m.start() < cut:
            s, e = m.span()
            i = s + 1
            if data[s] in _WORD and s > 0 and data[s - 1] in _WORD \
                    and not _ESCAPE_END.search(data, max(0, s - _ESCAPE_WINDOW), s):
                continue   # inside a word (a word character before it, not an escape sequence's end)
            if e > start:
                found.append((s, e))
            i = e
        while True:   # no match across the cut; readers of lines cut at a line's start
            if found and found[-1][1] > cut:
                cut = max(start, found.pop()[0])
            if lines and cut < end:
                line = data.rfind(b"\n", start, cut) + 1
                cut = line if line > 0 else start
                while found and found[-1][0] >= cut:
                    found.pop()
                if found and found[-1][1] > cut:
                    continue
            break
        out, at = [], start
        for s, e in found:
            out.append(data[at:max(s, at)])
            out.append(self._bytes[data[s:e]])
            at = e
        out.append(data[at:cut])
        return b"".join(out), cut
