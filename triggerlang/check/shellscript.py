"""What a ``shell`` action's script reads that a run never gives it: its positional
parameters (``$1``, ``${2}``, ``$@``, ``$*``), and a parameter or a ``let`` read by its
bare name (``$sha``, ``${sha:-x}``). The script runs as ``/bin/sh -c SCRIPT`` with no
arguments after it (runtime/executor.py), so the first are empty; its inputs are the
``TRG_INPUT_<NAME>`` variables, so ``$sha`` is whatever serve's environment has under that
name (nothing, mostly), and no ``let`` reaches it. Imported by the checker only for a
script with a ``$``.

The scan reads the script as a POSIX shell would quote it, so that only what the shell
expands is reported: not a single-quoted ``'$1'`` (an awk program, an ``sh -c '...' _ x``
that gives its own arguments), an escaped ``\\$1``, a ``$$`` (the process id), ``$'...'``,
a comment, or a quoted here-document's text; a ``$( )`` inside double quotes is quoted
afresh. A script that gives itself positional parameters (a function, whose ``$1`` is its
caller's argument, or ``set`` with operands: ``set -- a b``; ``set -euo pipefail`` has
none) is not reported at all: where its ``$1`` is read is more than this scan follows.
Likewise a name the script gives a value anywhere (``sha=...``, ``read sha``, ``for sha
in``, ``local``/``export``/``declare``/``readonly sha``, ``getopts ... sha``, ``${sha:=x}``)
is not reported: which of its reads come first is more than the scan follows."""

from __future__ import annotations

import re
from collections.abc import Collection

_POSITIONAL = re.compile(r"\$(?:([1-9])|([@*])|\{([1-9][0-9]*|[@*])(?=[}:\-=+?#%])[^}]*\})")
"""``$1`` (``$10`` is ``$1`` then ``0``, as sh reads it), ``$@``, ``$*``, ``${1}``,
``${10}``, ``${1:-dev}``; not ``$0`` (the shell's name), ``$#`` or ``${#}``."""
_NAMED = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{(#?)([A-Za-z_][A-Za-z0-9_]*)(?=[}:\-=+?#%/^,\[@])[^}]*\})")
"""``$sha``, ``${sha}``, ``${sha:-x}``, ``${sha#v}``, ``${sha:0:7}``, ``${#sha}`` (the name
is all the letters, digits and underscores after the ``$``: ``$shas`` is another name)."""
_SETTERS = re.compile(r"(?:^|[\s;&|(`{])(read|mapfile|readarray|getopts|local|export|declare|typeset|readonly|for|"
                      r"select|printf[ \t]+-v)[ \t]+([^;&|\n<>)]*)")
"""A command that gives a value to a name among its words (``read -r sha``, ``for sha in``)."""
_FUNCTION = re.compile(r"(?:^|[\s;&|(])(?:function[ \t]+[A-Za-z_]|[A-Za-z_][A-Za-z0-9_]*[ \t]*\([ \t]*\))")
_SET = re.compile(r"(?:^|[\s;&|(])set[ \t]+([^;&|\n#)]*)")
_HEREDOC = re.compile(r"<<-?[ \t]*(['\"])([A-Za-z_][A-Za-z0-9_]*)\1")


def _own_arguments(script: str) -> bool:
    """Whether the script gives itself positional parameters: a function, or ``set`` with
    an operand (``set -- "$x"``, ``set a b``; ``-o NAME`` is an option's name)."""
    if _FUNCTION.search(script):
        return True
    for m in _SET.finditer(script):
        words = iter(m.group(1).split())
        for w in words:
            if w == "--" or w[0] not in "-+":
                return True
            if "o" in w[1:]:
                next(words, None)
    return False


def positional_parameters(script: str) -> list[re.Match]:
    """Each positional parameter the shell would expand in ``script``, in order (a match:
    ``group()`` is its text, ``group(1)``/``group(3)`` its number, ``group(2)``/``group(3)``
    ``@`` or ``*``); [] for a script that gives itself some."""
    if "$" not in script or _own_arguments(script):
        return []
    return _expanded(script, _POSITIONAL)


def named_parameters(script: str, names: Collection[str]) -> list[re.Match]:
    """Each ``$NAME``, ``${NAME}``, ``${NAME:-x}`` (any operator) or ``${#NAME}`` the
    shell would expand in ``script`` whose name is one of ``names``, matched exactly (case
    and all), in order, leaving out a name the script gives a value (a match: ``group()`` is
    its text, ``group(1)``/``group(3)`` the name, ``group(2)`` a ``#``)."""
    if "$" not in script:
        return []
    found = [m for m in _expanded(script, _NAMED) if (m.group(1) or m.group(3)) in names]
    given = {name for name in {m.group(1) or m.group(3) for m in found} if _given(script, name)}
    return [m for m in found if (m.group(1) or m.group(3)) not in given]


def _given(script: str, name: str) -> bool:
    """Whether ``script`` gives the variable ``name`` a value somewhere: an assignment
    (``name=``, ``name+=``, ``name[0]=``, also after ``local``, ``export``...), a word of a
    command that sets its operands (``read -r name``, ``for name in``, ``getopts "ab:" name``,
    ``export name``, ``printf -v name``), or ``${name:=x}``/``${name=x}``."""
    if re.search(rf"(?:^|[\s;&|(`{{]){name}(?:\[[^\]]*\])?\+?=|\$\{{{name}:?=", script):
        return True
    return any(name in m.group(2).split() for m in _SETTERS.finditer(script))


def _expanded(script: str, pattern: re.Pattern) -> list[re.Match]:
    """``pattern``'s match at each ``$`` the shell would expand in ``script`` (where it
    matches), in order: the scan of the script's quoting."""
    found: list[re.Match] = []
    frames = [[None, 0]]  # [quote, open parentheses] of the script and of each $( ) in it
    i, n = 0, len(script)
    while i < n:
        c = script[i]
        frame = frames[-1]
        if c == "\\":
            i += 2
            continue
        if frame[0] is None:
            if c == "'":
                j = script.find("'", i + 1)
                i = n if j == -1 else j + 1
                continue
            if c == "#" and (i == 0 or script[i - 1] in " \t\n;&|("):
                j = script.find("\n", i)
                i = n if j == -1 else j
                continue
            heredoc = _HEREDOC.match(script, i) if c == "<" else None
            if heredoc is not None:  # a quoted here-document's text is literal
                end = re.compile(rf"^[ \t]*{heredoc.group(2)}[ \t]*$", re.M).search(script, heredoc.end())
                i = n if end is None else end.end()
                continue
            if c == '"':
                frame[0] = '"'
            elif c == "(":
                frame[1] += 1
            elif c == ")":
                frame[1] -= 1
                if frame[1] < 0 and len(frames) > 1:
                    frames.pop()
        elif c == '"':
            frame[0] = None
        if c == "$":
            nxt = script[i + 1:i + 2]
            if nxt == "'" and frame[0] is None:  # $'...': bash's quoting, literal
                j = i + 2
                while j < n and script[j] != "'":
                    j += 2 if script[j] == "\\" else 1
                i = j + 1
                continue
            if nxt == "(":
                frames.append([None, 0])
                i += 2
                continue
            m = pattern.match(script, i) if nxt != "$" else None
            if m is not None:
                found.append(m)
            i = m.end() if m is not None else i + 1 + (nxt == "$")
            continue
        i += 1
    return found
