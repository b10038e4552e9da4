"""``triggerc``: the click group. Argument handling only; the work happens in the phases.

Exit codes (SPEC §8): 0 success, 1 problems found (diagnostics, a bad event, a failed
check), 2 usage errors (a missing or unreadable file, a bad option).

Start-up matters (``triggerc check`` runs in CI on every commit), so server, watcher and
journal libraries are imported inside the commands that need them, never here. The group
is lazy, too: each command lives in a module of this package with the commands it shares
most with (:data:`COMMANDS`), imported when the command is run or its help is shown, so
``triggerc check`` builds check's options only, not the other commands' hundred and more,
and imports neither their modules nor what those import at the top.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import MutableMapping

import click

from .. import __version__

COMMANDS = {
    "cancel": "operate:cancel",
    "check": "check:check",
    "compile": "build:compile_cmd",
    "convert": "build:convert_group",
    "dashboard": "tools:dashboard",
    "emit": "operate:emit",
    "events": "history:events",
    "explain": "check:explain",
    "fmt": "build:fmt_cmd",
    "groups": "history:groups",
    "logs": "history:logs",
    "lsp": "tools:lsp_cmd",
    "match": "build:match",
    "mcp": "tools:mcp_cmd",
    "rerun": "operate:rerun",
    "resume": "operate:resume",
    "runs": "history:runs",
    "serve": "serve:serve",
    "store": "serve:store_group",
    "test": "build:test_cmd",
    "worker": "serve:worker",
}
"""Every command of ``triggerc``: its name, and ``module:attribute`` of its click command
(the module in this package)."""


class LazyGroup(click.Group):
    """A click group whose commands are imported when first asked for (click's "Lazily
    Loading Subcommands"), given ``lazy_subcommands``: name -> ``module:attribute``.

    click's recipe overrides ``get_command`` and ``list_commands``; here the lazy part is
    the group's ``commands`` mapping itself (:class:`_LazyCommands`), which click reads
    every command through: ``get_command``, ``list_commands`` (sorted, as always), and
    the "Did you mean" of an unknown command, which the recipe loses (click draws it from
    ``commands``, where the recipe has only the commands already loaded). Code that reads
    ``main.commands`` gets every command, each imported as it is read.
    """

    def __init__(self, *args, lazy_subcommands: dict[str, str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _LazyCommands(lazy_subcommands, self.commands)


class _LazyCommands(MutableMapping):
    """Command name -> click command; a lazy one's module is imported on its first read.
    Its names are known without any import (``in``, iteration, ``len``)."""

    def __init__(self, lazy: dict[str, str], loaded: dict[str, click.Command]) -> None:
        self._lazy = dict(lazy)
        self._loaded = dict(loaded)

    def __getitem__(self, name: str) -> click.Command:
        if name in self._loaded:
            return self._loaded[name]
        module, _, attribute = self._lazy[name].partition(":")  # (KeyError: no such command)
        command = self._loaded[name] = getattr(importlib.import_module(f".{module}", __name__), attribute)
        return command

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._lazy.pop(name, None)
        self._loaded.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._lazy or name in self._loaded

    def __iter__(self):
        return iter(sorted(self._lazy.keys() | self._loaded.keys()))

    def __len__(self) -> int:
        return len(self._lazy.keys() | self._loaded.keys())


@click.group(cls=LazyGroup, lazy_subcommands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="triggerc")
def main() -> None:
    """triggerc: compile, check and run triggerlang rules (.trg files)."""
    _tolerant_output()


def _tolerant_output() -> None:
    """Print a lone surrogate (an event's JSON may say ``"\\ud800"``) as ``\\ud800``.

    In JSON output that is the very escape JSON uses; without it, ``match``, ``runs`` and
    ``events`` would die of a UnicodeEncodeError on such an event.
    """
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) in ("strict", "surrogateescape") and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # pragma: no cover - a detached or odd stream
                pass


# --------------------------------------------------------------------------- the program

QUICK_EXIT = frozenset({"check", "compile", "fmt", "match", "test"})
"""Commands that read files and print, and leave no thread, server or open file behind."""


def entry() -> None:
    """The ``triggerc`` program: :func:`main`, then, for the commands in :data:`QUICK_EXIT`,
    a quick end: the output flushed and the process ended at once (``os._exit``), without
    the interpreter tearing down every module and object first, which costs a short
    command like ``check`` a tenth of its run. Every other command ends the usual way."""
    try:
        main()
    except SystemExit as e:
        code = e.code
        if (code is None or isinstance(code, int)) and _command(sys.argv[1:]) in QUICK_EXIT:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except Exception:  # (a closed pipe...: the usual end reports it)
                raise e from None
            os._exit(code or 0)
        raise


def _command(args: list[str]) -> str | None:
    """The command named on a command line (the group takes no option with a value)."""
    return next((a for a in args if not a.startswith("-")), None)
