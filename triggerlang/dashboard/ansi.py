"""A run log's colours on the dashboard: SGR escapes (``ESC [ ... m``) as classes.

The page's Content-Security-Policy allows no inline style, so a colour is a class: ``a-fN``
for the foreground and ``a-bN`` for the background, N one of the 16 terminal colours (a
256-colour or 24-bit colour is shown as the nearest of them), and ``a-bold``, ``a-dim``,
``a-it``, ``a-ul``. Each line starts plain, as most tools write their colours (a reset at
each line's end): a line's colours do not run on into the next, so the page and its live
stream show the same, whichever line a stream starts at. Everything else a terminal would
act on is taken out as everywhere else (:func:`~triggerlang.runtime.store.terminal_text`).
"""

from __future__ import annotations

import re

from ..runtime.store import terminal_text

_SGR = re.compile(r"\x1b\[([0-9;:]*)m")

# the 16 colours as xterm draws them, for the nearest one to a 256-colour or 24-bit colour
_BASIC = [(0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205),
          (229, 229, 229), (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255),
          (255, 0, 255), (0, 255, 255), (255, 255, 255)]


def _nearest(r: int, g: int, b: int) -> int:
    return min(range(16), key=lambda i: sum((x - y) ** 2 for x, y in zip(_BASIC[i], (r, g, b))))


def _palette(n: int) -> int | None:
    """A 256-colour index as one of the 16."""
    if not 0 <= n <= 255:
        return None
    if n < 16:
        return n
    if n >= 232:  # the grey ramp
        v = 8 + (n - 232) * 10
        return _nearest(v, v, v)
    n -= 16
    steps = (0, 95, 135, 175, 215, 255)
    return _nearest(steps[n // 36], steps[n // 6 % 6], steps[n % 6])


def _extended(codes: list[int], i: int) -> tuple[int | None, int]:
    """The colour of ``38;5;N`` / ``38;2;R;G;B`` at ``codes[i]`` (the 38 or 48), and the
    index after it."""
    if i + 1 < len(codes) and codes[i + 1] == 5 and i + 2 < len(codes):
        return _palette(codes[i + 2]), i + 3
    if i + 1 < len(codes) and codes[i + 1] == 2 and i + 4 < len(codes):
        r, g, b = (min(max(c, 0), 255) for c in codes[i + 2:i + 5])
        return _nearest(r, g, b), i + 5
    return None, len(codes)  # not understood: the rest of the sequence too


def styled(line: str) -> tuple[str, list[list[str]] | None]:
    """A log line (escapes kept) as its text and, when it sets colours, its pieces
    ``[[text, classes], ...]`` (classes "" for plain text)."""
    if "\x1b[" not in line or not _SGR.search(line):
        return terminal_text(line), None
    fg = bg = None
    flags: dict[str, bool] = {"bold": False, "dim": False, "it": False, "ul": False}
    pieces: list[list[str]] = []

    def add(raw: str) -> None:
        text = terminal_text(raw)
        if not text:
            return
        names = ([f"a-f{fg}"] if fg is not None else []) + ([f"a-b{bg}"] if bg is not None else []) \
            + [f"a-{k}" for k, on in flags.items() if on]
        cls = " ".join(names)
        if pieces and pieces[-1][1] == cls:
            pieces[-1][0] += text
        else:
            pieces.append([text, cls])

    at = 0
    for m in _SGR.finditer(line):
        add(line[at:m.start()])
        at = m.end()
        codes = [int(c) if c.isdigit() else 0 for c in re.split(r"[;:]", m.group(1))] if m.group(1) else [0]
        i = 0
        while i < len(codes):
            c = codes[i]
            i += 1
            if c == 0:
                fg = bg = None
                flags = dict.fromkeys(flags, False)
            elif c in (1, 2, 3, 4):
                flags[{1: "bold", 2: "dim", 3: "it", 4: "ul"}[c]] = True
            elif c == 22:
                flags["bold"] = flags["dim"] = False
            elif c == 23:
                flags["it"] = False
            elif c == 24:
                flags["ul"] = False
            elif 30 <= c <= 37 or 90 <= c <= 97:
                fg = c - 30 if c < 90 else c - 82
            elif 40 <= c <= 47 or 100 <= c <= 107:
                bg = c - 40 if c < 100 else c - 92
            elif c == 39:
                fg = None
            elif c == 49:
                bg = None
            elif c in (38, 48):
                color, i = _extended(codes, i - 1)
                if c == 38:
                    fg = color
                else:
                    bg = color
    add(line[at:])
    text = "".join(p[0] for p in pieces)
    return text, (pieces if any(p[1] for p in pieces) else None)


def styled_lines(lines: list[tuple[str, str]]) -> list[list]:
    """:func:`~triggerlang.runtime.store.log_lines_raw`'s lines as the run page and its
    stream show them: ``[stream, text]``, with ``pieces`` third when the line has colours."""
    out: list[list] = []
    for stream, line in lines:
        text, pieces = styled(line)
        out.append([stream, text] if pieces is None else [stream, text, pieces])
    return out
