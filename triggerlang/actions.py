"""What an action's process gets: argv and ``TRG_INPUT_*`` values, from its inputs (SPEC §5).

Pure functions shared by the executor (which runs the action) and ``triggerc match``
(which shows the argv a run would get), so the two can never disagree.

- An input that is a string is one argv element, as is; a number or boolean is its JSON
  text (``3``, ``true``); ``null`` (a placeholder for a field the event lacks) is ``""``;
  a list is one argv element per item, expanded in place (``exec "pytest" paths``).
- ``TRG_INPUT_<NAME>`` (name upper-cased, ``-`` -> ``_``): strings as they are, anything
  else as JSON text in the form of the event on stdin (:func:`env_text`).
- A NUL byte in an input's string (JSON ``\\u0000`` in a payload: a commit message, an
  issue body) is dropped from its argv elements and its ``TRG_INPUT_*`` value, which end
  at a NUL byte and so cannot hold one (:func:`without_nul`); the run's stdin, the event
  as JSON, has the value as sent. Decided so because refusing the run (what ``execve``
  would make of it) fails every run of a rule for a byte the action most often never
  looks at, and bash does the same with a NUL it reads ("ignored null byte in input").
  JSON text (a list or object input) writes it ``\\u0000``: nothing to drop.
"""

from __future__ import annotations

import json
import signal
from typing import Any, Mapping

from .runtime.store import dumps as _dumps


class ActionError(Exception):
    """An action that cannot be started as specified (clear message)."""


def bind_inputs(action: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Parameter defaults overlaid with the values the rule bound.

    A parameter bound to a field the event does not have (``None``: missing, or JSON
    ``null``) gets its default when it has one: ``action a(x, stage="dev")`` run ``with
    <sha>, <payload.stage>`` runs with ``stage="dev"`` for an event without a stage, as
    GitHub Actions fills an input the caller left out; no default, and it stays ``None``
    (``""`` in argv). Unlike shell's ``${stage:-dev}``, an empty string is a value the
    event carries and is kept: ``has``/``!=`` also tell a missing field from ``""``."""
    inputs: dict[str, Any] = {}
    for p in action.get("params") or []:
        if isinstance(p, Mapping) and isinstance(p.get("name"), str):
            if p["name"] in given and not (given[p["name"]] is None and "default" in p):
                inputs[p["name"]] = given[p["name"]]
            elif "default" in p:
                inputs[p["name"]] = p["default"]
    for k, v in given.items():
        inputs.setdefault(k, v)
    return inputs


def without_nul(text: str) -> str:
    """An input's text with its NUL bytes dropped (see the module's docstring)."""
    return text.replace("\0", "") if "\0" in text else text


def holds_nul(v: Any) -> bool:
    """Whether an input's value is, or lists, a string with a NUL byte."""
    return (isinstance(v, str) and "\0" in v) or (isinstance(v, list) and any(holds_nul(x) for x in v))


def arg_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v is None:
        return ""
    return json.dumps(v, ensure_ascii=False)


def env_text(v: Any) -> str:
    """A value as a run's environment has it (``TRG_INPUT_<NAME>``): a string as it is,
    anything else as JSON text in the form of the event on the run's stdin (and of an http
    action's body): compact, ASCII only, keys in the event's order, so a script parses
    ``$TRG_INPUT_FILES`` and its stdin alike, and compares either byte for byte."""
    return v if isinstance(v, str) else _dumps(v)


def input_env_name(name: str) -> str:
    """``TRG_INPUT_<NAME>`` for a parameter name (upper-cased, ``-`` -> ``_``)."""
    return "TRG_INPUT_" + name.upper().replace("-", "_")


def exec_argv(action: Mapping[str, Any], inputs: Mapping[str, Any], action_name: str = "?") -> list[str]:
    """The argv of an ``exec`` action (program path not yet resolved). Never a shell."""
    argv: list[str] = []
    for item in action.get("argv") or []:
        if "value" in item:
            argv.append(arg_text(item["value"]))
        elif "param" in item:
            name = item["param"]
            if name not in inputs:
                raise ActionError(f"the action {action_name} has no value for its parameter {name!r}")
            v = inputs[name]
            if isinstance(v, list):
                argv.extend(without_nul(arg_text(x)) for x in v)
            else:
                argv.append(without_nul(arg_text(v)))
        else:
            raise ActionError(f"bad argv item {item!r} in the action {action_name}")
    if not argv or not argv[0]:
        raise ActionError(f"the action {action_name} has no program to run")
    return argv


ACTION_KINDS = ("exec", "shell", "http")
"""Every action kind (SPEC §5): the manifest writer, the manifest validator, dry runs and
the executor each dispatch on this closed set and fail loudly on anything else."""


def action_kind(action: Mapping[str, Any], action_name: str = "?") -> str:
    """The action's kind; ActionError when it is not one of :data:`ACTION_KINDS`."""
    kind = action.get("kind")
    if kind not in ACTION_KINDS:
        raise ActionError(f"the action {action_name} has an unknown kind {kind!r} (one of {', '.join(ACTION_KINDS)})")
    return kind


_DISPLAY = {
    "exec": lambda action, inputs, name: exec_argv(action, bind_inputs(action, inputs), name),
    "shell": lambda action, inputs, name: ["/bin/sh", "-c", action.get("script", "")],
    "http": lambda action, inputs, name: None,
}


def display_argv(action: Mapping[str, Any], inputs: Mapping[str, Any], action_name: str = "?") -> list[str] | None:
    """The command line a run would get, for dry runs: exec argv, the shell's argv, or None
    (http). ActionError for an unknown kind."""
    return _DISPLAY[action_kind(action, action_name)](action, inputs, action_name)


# -- how a run's processes are stopped -------------------------------------------------

STOP_SIGNALS = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGABRT", "SIGKILL", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGTERM")
"""The signals ``stop SIGNAL`` may name: those that end a process by default or that a
program traps to shut down (nginx SIGQUIT, a dev server SIGINT, a reload-and-exit SIGHUP).
SIGSTOP, SIGTSTP and SIGCONT would leave the group suspended or running, SIGCHLD and
SIGWINCH are ignored by default: none of them stops anything."""

DEFAULT_STOP_SIGNAL = "SIGTERM"


def signal_name(text: str) -> str:
    """``SIGINT`` for ``SIGINT``, ``INT`` or ``sigint``, as watchexec's ``--stop-signal``
    reads them (whether or not that names a signal)."""
    name = text.upper()
    return name if name.startswith("SIG") else "SIG" + name


def stop_signal_name(text: str) -> str | None:
    """:func:`signal_name` when it is one of :data:`STOP_SIGNALS`, else None."""
    name = signal_name(text)
    return name if name in STOP_SIGNALS else None


BUSY_SIGNALS = ("SIGHUP", "SIGUSR1", "SIGUSR2", "SIGINT", "SIGQUIT", "SIGTERM", "SIGWINCH", "SIGALRM")
"""The signals ``busy signal SIGNAL`` may send a running run (watchexec's
``--on-busy-update=signal``): those programs trap to reload (nginx, gunicorn and haproxy
SIGHUP or SIGUSR2, a dev server SIGUSR1), reopen their logs, shed workers (nginx and
Apache SIGWINCH) or shut down on their own terms. SIGKILL and SIGSTOP cannot be trapped
(they would kill or freeze the run, which ``busy restart`` does properly); SIGSEGV and the
other fault signals, SIGCHLD and SIGCONT, are not a message a program listens for."""

BUSY_UNTRAPPABLE = ("SIGKILL", "SIGSTOP")
"""Signals ``busy signal`` refuses with a pointer to ``busy restart``."""


def busy_signal_name(text: str) -> str | None:
    """:func:`signal_name` when it is one of :data:`BUSY_SIGNALS`, else None."""
    name = signal_name(text)
    return name if name in BUSY_SIGNALS else None


def busy_signal_of(policies: Mapping[str, Any]) -> str:
    """The signal a ``busy signal`` rule sends (manifest policy ``busy_signal``); SIGHUP for
    a hand-written manifest that names none or another."""
    sig = policies.get("busy_signal")
    return sig if isinstance(sig, str) and sig in BUSY_SIGNALS else "SIGHUP"


def stop_of(action: Mapping[str, Any], default_grace: float) -> tuple[str, float]:
    """The signal that stops an action's process group, and the seconds it gets after it
    before SIGKILL: the action's ``stop`` option (manifest ``stop_signal``,
    ``stop_grace``), else SIGTERM and ``default_grace``."""
    sig = action.get("stop_signal")
    grace = action.get("stop_grace")
    return (sig if isinstance(sig, str) and sig in STOP_SIGNALS else DEFAULT_STOP_SIGNAL,
            float(grace) if isinstance(grace, (int, float)) and grace >= 0 else default_grace)


def _ignore(signum: int, frame: Any) -> None:  # noqa: ARG001 - signal handler signature
    """A handler that does nothing (see :func:`unignore_stop_signals`)."""


def unignore_stop_signals() -> None:
    """Let the runs this process starts be stopped by every signal ``stop SIGNAL`` may name.

    An ignored signal stays ignored across exec: ``triggerc serve &`` in a script starts
    serve with SIGINT and SIGQUIT ignored, so its runs would ignore them too, and an
    ``action web = shell "nginx ..." stop SIGQUIT`` would wait out its grace and be killed.
    A signal with a handler is reset to its default at exec: each ignored one gets a handler
    that does nothing, so this process still ignores it and its children do not. Call it
    from the main thread, before the first run starts (serve, a worker, the spawner)."""
    for name in STOP_SIGNALS:
        sig = getattr(signal, name)
        if sig != signal.SIGKILL and signal.getsignal(sig) is signal.SIG_IGN:
            signal.signal(sig, _ignore)
