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
- A rule on ``ci.completed`` starts the ``/ci`` route, and the ``/github`` and ``/gitlab``
  routes too when a ``source github`` / ``source gitlab`` declaration is present (their
  workflow_run, check_suite and pipeline deliveries are normalised into ci.completed).
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from ..check.checker import DEFAULT_ROUTES, Program, literal_value
from ..compile.patterns import compile_glob, literal_prefix
from ..syntax import ast as A

FORMAT_VERSION = 1
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_MAX_BODY = 10 * 1024 * 1024
DEFAULT_GIT_POLL = 0.25
ALWAYS_IGNORED = [".git/**", "**/.git/**", "*.swp", "*.swx", "*~", ".#*", "4913", "*.tmp"]


def _opt(decl: A.SourceDecl, name: str, program: Program) -> Any:
    for o in decl.options:
        if o.name.value == name:
            v = o.value
            if isinstance(v, A.Ref) and v.name in program.secrets:
                return v.name  # a secret option holds the secret's name, never its value
            return literal_value(v, program.lets)
    return None


def _action_spec(a: A.ActionDecl, program: Program) -> dict:
    params = []
    for p in a.params:
        entry: dict[str, Any] = {"name": p.name.value}
        if p.default is not None:
            entry["default"] = literal_value(p.default, program.lets)
        params.append(entry)
    spec: dict[str, Any] = {"params": params, "cwd": None, "env": {},
                            "span": _span(a.span)}
    b = a.body
    if isinstance(b, A.ExecBody):
        spec["kind"] = "exec"
        spec["argv"] = [{"param": x.name} if isinstance(x, A.Ref) else {"value": x.value} for x in b.argv]
    elif isinstance(b, A.ShellBody):
        spec["kind"] = "shell"
        spec["script"] = b.script.value
    else:
        spec["kind"] = "http"
        spec["method"] = b.method.value.lower()
        spec["url"] = b.url.value
        spec["secret"] = next((o.value.name for o in b.options if o.name.value == "secret"
                               and isinstance(o.value, A.Ref)), None)
    for o in a.options:
        if o.kind == "cwd":
            spec["cwd"] = o.value.value
        elif o.kind == "env" and o.name:
            spec["env"][o.name.value] = o.value.value
    return spec


def _span(s) -> dict:
    return {"line": s.start.line, "column": s.start.column, "end_line": s.end.line, "end_column": s.end.column}


def _watch_roots(globs: list[str]) -> list[str]:
    roots = set()
    for g in globs or ["**"]:
        pre = literal_prefix(g)
        if pre == g:  # a literal path: watch its folder
            d = posixpath.dirname(g)
        elif pre.endswith("/"):
            d = pre.rstrip("/")
        else:
            d = posixpath.dirname(pre)
        d = posixpath.normpath(d) if d else "."
        if d.startswith("/") or d.startswith(".."):
            d = "." if not d.startswith("/") else d
        roots.add(d)
    if "." in roots:
        return ["."]
    out = []
    for r in sorted(roots):
        if not any(r.startswith(o + "/") for o in out):
            out.append(r)
    return out


def build_manifest(program: Program, base_dir: str, file_name: str) -> dict:
    rules = [r for r in program.rules if r.source]
    sources: dict[str, Any] = {}
    decls_by_kind: dict[str, list[A.SourceDecl]] = {}
    for s in program.sources:
        decls_by_kind.setdefault(s.kind.value, []).append(s)

    # file
    file_rules = [r for r in rules if r.source == "file"]
    if file_rules:
        decl = (decls_by_kind.get("file") or [None])[0]
        root = (_opt(decl, "root", program) if decl else None) or "."
        globs: list[str] = []
        any_path = False
        for r in file_rules:
            if r.path_globs:
                globs.extend(r.path_globs)
            else:
                any_path = True
        roots = ["."] if any_path else _watch_roots(globs)
        ignore = list((_opt(decl, "ignore", program) if decl else None) or [])
        sources["file"] = {"root": root, "roots": roots, "ignore": ignore,
                           "always_ignored": ALWAYS_IGNORED, "state_dir": ".triggerlang"}

    # git
    git_rules = [r for r in rules if r.source == "git"]
    if git_rules:
        repos = sorted({repo for r in git_rules for repo in (r.repos or ["."])})
        decl = (decls_by_kind.get("git") or [None])[0]
        poll = (_opt(decl, "poll", program) if decl else None) or DEFAULT_GIT_POLL
        sources["git"] = {"repos": [{"repo": r, "path": r} for r in repos], "poll": poll}

    # http: webhooks, CI and generic routes
    routes: dict[str, dict] = {}
    used = {r.source for r in rules}

    def webhook(kind: str) -> None:
        for decl in decls_by_kind.get(kind) or [None]:
            path = (_opt(decl, "path", program) if decl else None) or DEFAULT_ROUTES[kind]
            verify = None
            if decl is not None:
                if kind == "github" and _opt(decl, "secret", program):
                    verify = {"scheme": "github", "secret": _opt(decl, "secret", program)}
                elif _opt(decl, "token", program):
                    header = "X-Gitlab-Token" if kind == "gitlab" else "Authorization"
                    verify = {"scheme": "token" if kind == "gitlab" else "bearer", "secret": _opt(decl, "token", program),
                              "header": header}
                elif _opt(decl, "hmac", program):
                    verify = {"scheme": "hmac", "secret": _opt(decl, "hmac", program),
                              "header": _opt(decl, "header", program) or "X-Signature-256"}
            routes[path] = {"path": path, "kind": kind, "methods": ["POST"], "verify": verify}

    for kind in ("github", "gitlab"):
        if kind in used or ("ci" in used and decls_by_kind.get(kind)):
            webhook(kind)
    if "ci" in used:
        webhook("ci")
    http_decls = decls_by_kind.get("http", [])
    for r in rules:
        if r.source != "http" or not r.route:
            continue
        verify = None
        for d in http_decls:
            p = _opt(d, "path", program)
            if p is None or p == r.route or (("*" in p or "?" in p) and compile_glob(p).match(r.route)) \
                    or (("*" in p) and literal_prefix(r.route).startswith(literal_prefix(p))):
                if _opt(d, "token", program):
                    verify = {"scheme": "bearer", "secret": _opt(d, "token", program), "header": "Authorization"}
                elif _opt(d, "hmac", program):
                    verify = {"scheme": "hmac", "secret": _opt(d, "hmac", program),
                              "header": _opt(d, "header", program) or "X-Signature-256"}
                if verify:
                    break
        entry = routes.setdefault(r.route, {"path": r.route, "kind": "http", "methods": [], "verify": verify})
        if entry["kind"] != "http":
            continue
        if r.methods is None or entry["methods"] is None:
            entry["methods"] = None
        else:
            entry["methods"] = sorted(set(entry["methods"]) | set(r.methods))
        if entry["verify"] is None and verify is not None:
            entry["verify"] = verify
    if routes:
        host, port = DEFAULT_HOST, DEFAULT_PORT
        for d in program.sources:
            h, p = _opt(d, "host", program), _opt(d, "port", program)
            host = h if h else host
            port = p if p is not None else port
        sources["http"] = {"host": host, "port": port, "max_body": DEFAULT_MAX_BODY,
                           "routes": [routes[k] for k in sorted(routes)]}

    # schedule
    sched = [dict(rule=r.name, **r.schedule) for r in rules if r.source == "schedule" and r.schedule]
    if sched:
        sources["schedule"] = {"schedules": sched}

    used_actions = {r.action for r in rules}
    actions = {n: _action_spec(a, program) for n, a in sorted(program.actions.items()) if n in used_actions}
    secrets = {n: {s.kind: s.ref.value} for n, s in sorted(program.secrets.items())}

    return {
        "triggerlang": FORMAT_VERSION,
        "file": file_name,
        "base_dir": base_dir,
        "sources": sources,
        "secrets": secrets,
        "actions": actions,
        "rules": [{
            "name": r.name,
            "trigger": f"{r.source}.{r.event}",
            "source": r.source,
            "types": r.types,
            "filter": r.filter,
            "action": r.action,
            "args": r.args,
            "policies": r.policies,
            "span": _span(r.ast.span),
        } for r in rules],
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
    return obj
