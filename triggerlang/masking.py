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
"""

from __future__ import annotations

import re
from typing import Mapping

__all__ = ["Masker"]


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

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self.stand_ins[m.group(0)], text)
