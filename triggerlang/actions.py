"""What an action's process gets: argv and ``TRG_INPUT_*`` values, from its inputs (SPEC §5).

Pure functions shared by the executor (which runs the action) and ``triggerc match``
(which shows the argv a run would get), so the two can never disagree.

- An input that is a string is one argv element, as is; a number or boolean is its JSON
  text (``3``, ``true``); ``null`` (a placeholder for a field the event lacks) is ``""``;
  a list is one argv element per item, expanded in place (``exec "pytest" paths``).
- ``TRG_INPUT_<NAME>`` (name upper-cased, ``-`` -> ``_``): strings as they are, anything
  else as JSON text.
"""

from __future__ import annotations

import json
from typing import Any, Mapping


class ActionError(Exception):
    """An action that cannot be started as specified (clear message)."""


def bind_inputs(action: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Parameter defaults overlaid with the values the rule bound."""
    inputs: dict[str, Any] = {}
    for p in action.get("params") or []:
        if isinstance(p, Mapping) and isinstance(p.get("name"), str):
            if p["name"] in given:
                inputs[p["name"]] = given[p["name"]]
            elif "default" in p:
                inputs[p["name"]] = p["default"]
    for k, v in given.items():
        inputs.setdefault(k, v)
    return inputs


def arg_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v is None:
        return ""
    return json.dumps(v, ensure_ascii=False)


def env_text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


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
                argv.extend(arg_text(x) for x in v)
            else:
                argv.append(arg_text(v))
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
