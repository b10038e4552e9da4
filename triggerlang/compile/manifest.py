"""The listener manifest (SPEC §7): what ``triggerc compile`` writes and ``serve`` reads.

``build_manifest(program)`` turns a checked :class:`~triggerlang.check.checker.Program`
into plain JSON data; :func:`dumps` serialises it deterministically (sorted keys, fixed
indentation, no timestamps), so compiling the same file twice gives identical bytes.

Only the sources some rule needs appear under ``"sources"``: no ``http`` key (so no port)
when no rule listens to HTTP, no ``file`` key when no rule watches files. Webhooks of
every provider and CI routes live under ``http``. Secrets appear only as references
(``{"env": "VAR"}`` / ``{"file": "path"}``), never as values.

Decisions:
- ``base_dir`` is the absolute folder of the rules file: relative program paths, ``cwd``,
  watch roots, repositories and secret files are resolved against it at run time, wherever
  the manifest itself is written.
- Each section is built by its source kind (:mod:`triggerlang.sources.kinds`); the
  ``http`` section holds a route per webhook provider a rule needs
  (:func:`~triggerlang.sources.kinds.active_providers`): a rule on ``ci.completed``
  starts the ``/ci`` route, and a provider's route too when a ``source PROVIDER``
  declaration is present and the provider derives ``ci.completed`` (GitHub's
  workflow_run and check_suite, GitLab's pipeline...).
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..actions import ActionError, action_kind, stop_signal_name
from ..check.checker import Program
from ..check.values import literal_value
from ..sources.kinds import SectionInput, build_sections
from ..syntax import ast as A

FORMAT_VERSION = 1


def _exec_body(b: A.ExecBody) -> dict:
    return {"kind": "exec",
            "argv": [{"param": x.name} if isinstance(x, A.Ref) else {"value": x.value} for x in b.argv]}


def _shell_body(b: A.ShellBody) -> dict:
    return {"kind": "shell", "script": b.script.value}


def _http_body(b: A.HttpBody) -> dict:
    return {"kind": "http", "method": b.method.value.lower(), "url": b.url.value,
            "secret": next((o.value.name for o in b.options if o.name.value == "secret"
                            and isinstance(o.value, A.Ref)), None)}


_BODIES = {A.ExecBody: _exec_body, A.ShellBody: _shell_body, A.HttpBody: _http_body}
"""The manifest entry of each action body: a closed table over the AST's body types."""


def _action_spec(a: A.ActionDecl, program: Program, files: dict[str, str]) -> dict:
    params = []
    for p in a.params:
        entry: dict[str, Any] = {"name": p.name.value}
        if p.default is not None:
            entry["default"] = literal_value(p.default, program.lets)
        params.append(entry)
    write = _BODIES.get(type(a.body))
    if write is None:  # a new body type in the grammar without its entry here: a bug, say so
        raise TypeError(f"no manifest entry for an action body of type {type(a.body).__name__}")
    spec: dict[str, Any] = {"params": params, "cwd": None, "env": {}, "span": _span(a.span, files), **write(a.body)}
    for o in a.options:
        if o.kind == "cwd":
            spec["cwd"] = o.value.value
        elif o.kind == "env" and o.name:
            spec["env"][o.name.value] = o.value.value
        elif o.kind == "stop":  # only when written: other manifests stay as they were
            if o.signal is not None:
                spec["stop_signal"] = stop_signal_name(o.signal.value)
            if o.grace is not None:
                spec["stop_grace"] = float(literal_value(o.grace, program.lets))
    return spec


def _span(s, files: dict[str, str]) -> dict:
    """A span as the manifest writes it; one in a file an include read also names that file
    (``files``: from the name diagnostics give it to its path from ``base_dir``)."""
    out = {"line": s.start.line, "column": s.start.column, "end_line": s.end.line, "end_column": s.end.column}
    if s.file is not None:
        out["file"] = files.get(s.file, s.file)
    return out


def build_manifest(program: Program, base_dir: str, file_name: str) -> dict:
    # sources start for what listens: ordinary rules and correlation members (§11.5)
    sources = build_sections(SectionInput.of(program, lambda v: literal_value(v, program.lets)))

    written = [r for r in program.rules if r.source or r.correlation is not None]
    used_actions = {r.action for r in written}
    files = {f.name: _relative(f.path, base_dir) for f in program.included}
    actions = {n: _action_spec(a, program, files) for n, a in sorted(program.actions.items()) if n in used_actions}
    secrets = {n: {s.kind: s.ref.value} for n, s in sorted(program.secrets.items())}

    manifest = {
        "triggerlang": FORMAT_VERSION,
        "file": file_name,
        "base_dir": base_dir,
        "sources": sources,
        "secrets": secrets,
        "actions": actions,
        "rules": [_rule_entry(r, files) for r in written],
    }
    if program.included:  # (only then: a manifest without includes is as it always was)
        manifest["includes"] = [_relative(f.path, base_dir) for f in program.included]
        if program.include_globs:
            manifest["include_globs"] = [_relative(g, base_dir) for g, _ in program.include_globs]
    return manifest


def _relative(path: str, base_dir: str) -> str:
    """``path`` from ``base_dir``, with '/' (the same manifest on every machine)."""
    return os.path.relpath(path, base_dir).replace(os.sep, "/")


def _rule_entry(r, files: dict[str, str]) -> dict:
    if r.correlation is not None:
        # a correlation rule (§11.5): the ordinary matcher never selects it (no source, no
        # type); its members are matched by the correlation engine through their own index
        return {"name": r.name, "trigger": r.correlation, "source": None,
                "sources": sorted({m.source for m in r.members if m.source}), "types": [], "filter": None,
                "action": r.action, "args": r.args, "policies": r.policies, "span": _span(r.ast.span, files)}
    return {
        "name": r.name,
        "trigger": f"{r.source}.{r.event}",
        "source": r.source,
        "types": r.types,
        "filter": r.filter,
        "action": r.action,
        "args": r.args,
        "policies": r.policies,
        "span": _span(r.ast.span, files),
    }


def dumps(manifest: dict) -> str:
    """Deterministic JSON text of a manifest."""
    return json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class ManifestError(ValueError):
    """A manifest file that is not a triggerlang manifest (clear message, no traceback)."""


def validate_manifest(obj: Any) -> dict:
    if not isinstance(obj, dict) or "triggerlang" not in obj:
        raise ManifestError("not a triggerlang manifest (no \"triggerlang\" version key)")
    if obj["triggerlang"] != FORMAT_VERSION:
        raise ManifestError(f"manifest format {obj['triggerlang']!r} is not supported (this triggerc reads {FORMAT_VERSION})")
    for key, typ in (("sources", dict), ("actions", dict), ("rules", list)):
        if not isinstance(obj.get(key), typ):
            raise ManifestError(f"manifest has no valid {key!r}")
    for name, action in obj["actions"].items():
        try:
            action_kind(action if isinstance(action, dict) else {}, name)
        except ActionError as e:
            raise ManifestError(str(e)) from None
    return obj
