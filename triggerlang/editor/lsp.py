"""``triggerc lsp``: the Language Server Protocol over stdio (SPEC §14), built on pygls.

Features: diagnostics on open and change (the compiler's own, as ``triggerc check`` gives
them; a ``X_test.trg`` is checked with ``X.trg``'s declarations, and a change to ``X.trg``
re-checks an open ``X_test.trg``), hover, completion, go to definition (on an ``include``'s
string: the files it reads), find references,
the occurrences under the cursor highlighted, rename (:func:`document.rename` says what is refused), document symbols, formatting (``triggerc fmt``), quick fixes (the fixes the
diagnostics carry, as ``check --fix`` applies them) and the ``source.fixAll.triggerc`` code
action, which applies every safe one (ruff-lsp's ``source.fixAll.ruff``; offered when the
editor asks for that kind, as on save). Documents sync incrementally; the open documents
that read a file changed on disk are checked again (``workspace/didChangeWatchedFiles``,
for the watchers the server registers: :func:`did_change_watched_files`).

How it stays responsive on a large file
---------------------------------------
Diagnostics are *debounced*: an edit schedules an analysis ``debounce_ms`` later (250 ms by
default; ``initializationOptions: {"debounce_ms": N}``), and a newer edit replaces it. The
analysis runs on one worker thread, so the event loop keeps answering completion and hover
meanwhile; it re-parses only the declarations whose text changed
(:class:`~triggerlang.syntax.parser.ParseCache`), and its result is published only if the
document has not changed since (otherwise the newer analysis publishes). Completion and
hover read the declaration under the cursor and the names of the latest analysis: their
cost does not grow with the file. ``bench/lsp.py`` measures both on 10,000 rules.

Two workers, so that neither waits for the other: the analyses (and the re-checks of
``source.fixAll``) run one at a time, in the order they were asked for, on
``trg-analysis``; find references' and rename's search of the workspace for the files that
include the document (up to :data:`MAX_WORKSPACE_FILES` files,
:meth:`~TriggerLanguageServer.workspace_files`) runs on ``trg-search``, and so does the
parse of the files they, go to definition, the highlight of a name's uses and
prepare-rename look through that are not open (the includers found, the files they
include: :meth:`~TriggerLanguageServer.parse_on_disk`), which the event loop only reads.
A first search in a large workspace so never holds up a diagnostic or a hover, nor an
analysis of a large file a search.
What the two threads could share is kept apart rather than locked:

* the open documents (their texts, versions and real paths) and the workspace's folders,
  which the event loop changes as messages come in: an analysis reads the overlay taken
  on the loop when it starts, a search the :class:`WorkspaceNow` taken there when it starts;
* the search's include-line cache (``_include_lines``): only the search worker reads or
  writes it (one thread: no lock needed), analyses never look at it;
* the Analyzer's caches (each document's parses, the included files' parses): only
  analyses and the loop use them, under the Analyzer's lock; the search never does;
* the parser itself, which both call: a parse keeps its state in its own frame, and the
  tables' scanners made on first use are the same whichever thread makes them.

Malformed messages get a JSON-RPC error and the server keeps going: a body that is not
JSON gets ``-32700`` (parse error, ``id: null``), a request whose params do not fit the
method ``-32602`` naming the bad field, an unknown method ``-32601``. pygls logs the first
two without answering; :class:`_Protocol` and :meth:`TriggerLanguageServer.report_server_error`
answer them.

Everything here is imported only by ``triggerc lsp``: ``triggerc check`` never loads pygls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

from lsprotocol import types as T
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.uris import from_fs_path, to_fs_path

from .. import __version__
from ..diagnostics import Diagnostic, Span
from ..sourcefile import MAX_SOURCE_BYTES
from ..syntax import ast as A
from ..syntax.includes import include_targets
from ..syntax.parser import parse
from . import document as D
from .complete import complete
from .hover import hover

log = logging.getLogger("triggerlang.lsp")

DEFAULT_DEBOUNCE_MS = 250
MAX_WORKSPACE_FILES = 5000
"""How many of the workspace's .trg files find references and rename look through for the
files that include a document (:meth:`TriggerLanguageServer.workspace_includers`)."""
WATCHED = ("**/*.trg", "**/triggerc.toml")
"""What the server asks the editor to watch on disk (:func:`did_change_watched_files`)."""
_INCLUDE_LINE = re.compile(r'include\s*r?"')
UNUSED_CODES = {"TRG105", "TRG106", "TRG107", "TRG108", "TRG110"}
FIX_ALL = "source.fixAll.triggerc"

_ITEM_KINDS = {
    "keyword": T.CompletionItemKind.Keyword, "source": T.CompletionItemKind.Module,
    "event": T.CompletionItemKind.Event, "field": T.CompletionItemKind.Field,
    "placeholder": T.CompletionItemKind.Variable, "action": T.CompletionItemKind.Function,
    "param": T.CompletionItemKind.Property, "let": T.CompletionItemKind.Constant,
    "secret": T.CompletionItemKind.Reference, "rule": T.CompletionItemKind.Class,
    "policy": T.CompletionItemKind.Keyword, "value": T.CompletionItemKind.Value,
    "option": T.CompletionItemKind.Property,
}
_SYMBOL_KINDS = {
    "let": T.SymbolKind.Constant, "secret": T.SymbolKind.Key, "source": T.SymbolKind.Module,
    "action": T.SymbolKind.Function, "rule": T.SymbolKind.Event, "test": T.SymbolKind.Method,
    "param": T.SymbolKind.Variable,
}


# --------------------------------------------------------------------------- malformed messages

class _Protocol(LanguageServerProtocol):
    """Answers a request whose params cannot be read (pygls only logs it)."""

    def structure_message(self, data: dict[str, Any]):
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if isinstance(data, dict) and "id" in data and "method" in data and "error" not in data:
                detail = _cause(exc)
                code = JsonRpcInvalidParams.CODE if isinstance(exc, JsonRpcInvalidParams) else exc.code
                self._send_data({"jsonrpc": "2.0", "id": data["id"], "error": {
                    "code": code, "message": f"invalid params for {data.get('method')}: {detail}"}})
                exc.answered = True  # type: ignore[attr-defined]
            raise


class RequestFailed(JsonRpcException):
    """LSP's RequestFailed (-32803): a well-formed request the server declines, with the reason
    the editor shows (a rename that cannot be done). An answer, not a server error: not logged."""

    CODE = -32803
    answered = True


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__
    if cause is None:
        return str(exc) or type(exc).__name__
    try:
        from cattrs import transform_error

        msgs = transform_error(cause)
        return "; ".join(msgs[:3]) if msgs else str(cause)
    except Exception:  # noqa: BLE001 - any cattrs shape: fall back to its text
        return str(cause).splitlines()[0]


# --------------------------------------------------------------------------- the server

class WorkspaceNow(NamedTuple):
    """The workspace as the event loop saw it when a workspace search started."""

    roots: tuple[str, ...]                    # its folders (:meth:`TriggerLanguageServer.roots`)
    texts: dict[str, tuple[str, int | None]]  # open document's uri -> (text, version)
    reals: frozenset[str]                     # the open documents' real paths


class TriggerLanguageServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("triggerc", __version__, text_document_sync_kind=T.TextDocumentSyncKind.Incremental,
                         protocol_cls=_Protocol)
        self.analyzer = D.Analyzer()
        self.analyses: dict[str, D.Analysis] = {}      # uri -> latest analysis (any version)
        self.debounce = DEFAULT_DEBOUNCE_MS / 1000
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="trg-analysis")
        self._search = ThreadPoolExecutor(1, thread_name_prefix="trg-search")  # the workspace's includers
        self._occ: dict[tuple, list[D.Occurrence]] = {}
        self.reads: dict[str, tuple[A.IncludedFile, ...]] = {}  # document seen open -> what its includes read
        self.real: dict[str, str] = {}  # open document's uri -> its file's real path (the overlay's key)
        # file -> (its stat, its includes): the search worker's alone (see the module's docstring)
        self._include_lines: dict[str, tuple[tuple, A.Module | None]] = {}
        self._warned_bound = False

    def report_server_error(self, error: Exception, source: Any) -> None:
        if getattr(error, "answered", False):
            return
        if isinstance(error, (json.JSONDecodeError, UnicodeDecodeError)):
            self.protocol._send_data({"jsonrpc": "2.0", "id": None, "error": {
                "code": -32700, "message": f"parse error: the message is not JSON ({error})"}})
            return
        if isinstance(error, (AttributeError, TypeError)) and source is JsonRpcException:
            self.protocol._send_data({"jsonrpc": "2.0", "id": None, "error": {
                "code": -32600, "message": "invalid request: a JSON-RPC message is an object with "
                                           "\"jsonrpc\": \"2.0\" and a method or a result"}})
            return
        log.error("server error: %s", error)

    async def fix_all(self, uri: str) -> T.CodeAction | None:
        """``source.fixAll.triggerc``: the document with every safe fix applied, fixed and
        re-checked until stable as ``check --fix`` does (on the analysis thread), as one
        edit of the whole document; None when there is nothing to fix."""
        from ..check.fixes import fix_until_stable

        snap = self.text_of(uri)
        if snap is None:
            return None
        text, version = snap
        path = self.path_of(uri)
        done = self.analyses.get(uri)
        companion = done.companion if done is not None else None
        overlay = self.overlay()
        loop = asyncio.get_running_loop()
        new, n, _ = await loop.run_in_executor(self._worker, lambda: fix_until_stable(
            text, lambda t: self.analyzer.analyse(path, t, version, companion, overlay=overlay).diagnostics, path))
        if n == 0 or new == text or self.text_of(uri) != snap:
            return None
        lines = D.split_lines(text)
        end = T.Position(line=len(lines) - 1, character=_units(lines[-1], len(lines[-1]), self.encoding()))
        return T.CodeAction(title=f"Fix all safely fixable problems ({n})", kind=FIX_ALL, edit=T.WorkspaceEdit(
            changes={uri: [T.TextEdit(range=T.Range(start=T.Position(line=0, character=0), end=end), new_text=new)]}))

    # ---------------------------------------------------------------- documents
    def path_of(self, uri: str) -> str:
        return to_fs_path(uri) or uri

    def uri_of(self, path: str) -> str:
        return from_fs_path(path) or path

    def text_of(self, uri: str) -> tuple[str, int | None] | None:
        doc = self.workspace.text_documents.get(uri)
        if doc is None:
            return None
        return doc.source, doc.version

    def overlay(self) -> dict[str, str]:
        """The open documents' texts by real path, what the includes of an analysis read
        instead of the files (:meth:`Analyzer.analyse <triggerlang.editor.document.Analyzer.analyse>`);
        taken on the event loop when the analysis starts."""
        docs = self.workspace.text_documents
        return {real: docs[uri].source for uri, real in self.real.items() if uri in docs}

    def workspace_now(self) -> WorkspaceNow:
        """What the workspace search reads of the workspace and its open documents, taken
        on the event loop when it starts: the search runs on its own worker while the loop
        applies edits."""
        docs = self.workspace.text_documents
        return WorkspaceNow(tuple(self.roots()), {uri: (doc.source, doc.version) for uri, doc in docs.items()},
                            frozenset(self.real.values()))

    def still_read(self) -> set[str]:
        """The real paths of the files the open documents' includes read, directly or not,
        as their latest analyses read them (and, for an open ``X_test.trg``, those of
        ``X.trg``'s, which its analyses read with it)."""
        return {f.path for uri in self.real for f in self._read_by(uri)}

    def readers(self, real: str) -> list[str]:
        """The open documents whose includes read the file ``real`` (a real path), as
        :meth:`still_read` counts them."""
        return [uri for uri in self.real if any(f.path == real for f in self._read_by(uri))]

    def _read_by(self, uri: str) -> list[A.IncludedFile]:
        path = self.path_of(uri)
        return [f for p in (path, D.companion_path(path)) for f in self.reads.get(p or "", ())]

    def needed(self, path: str) -> bool:
        """Whether an open document reads the file ``path`` as a document: it is open, or
        its ``X_test.trg`` is (whose checks analyse ``X.trg`` with it,
        :meth:`_companion`). What is not needed has its parses and analysis dropped at a
        close (:func:`did_close`), as the included files' are."""
        docs = self.workspace.text_documents
        tests = D.tests_path(path)
        return self.uri_of(path) in docs or (tests is not None and self.uri_of(tests) in docs)

    def includers(self, uri: str, text: str | None = None) -> list[str]:
        """The open documents whose includes read ``uri``'s file, directly or not, as their
        latest analyses read it; with ``text``: only those that read another text of it
        (the ones a check would now tell something new)."""
        real = self.real.get(uri) or os.path.realpath(self.path_of(uri))
        docs = self.workspace.text_documents
        return [self.uri_of(other) for other, files in list(self.reads.items())
                if self.uri_of(other) in docs and self.uri_of(other) != uri
                and any(f.path == real and (text is None or f.text != text) for f in files)]

    def schedule(self, uri: str, delay: float) -> None:
        old = self._timers.pop(uri, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[uri] = loop.call_later(delay, lambda: asyncio.ensure_future(self.analyse(uri)))

    async def analyse(self, uri: str) -> None:
        self._timers.pop(uri, None)
        snap = self.text_of(uri)
        if snap is None:
            return
        text, version = snap
        path = self.path_of(uri)
        loop = asyncio.get_running_loop()
        overlay = self.overlay()
        companion = None
        main_path = D.companion_path(path)
        if main_path is not None:
            companion = await loop.run_in_executor(self._worker, self._companion, main_path, overlay)
        current = lambda: (self.text_of(uri) or (None, None))[1] == version  # noqa: E731
        if not current():
            return  # edited meanwhile: the newer analysis is scheduled
        try:
            result = await loop.run_in_executor(
                self._worker, lambda: self.analyzer.analyse(path, text, version, companion, overlay=overlay)
                if current() else None)
        except Exception:  # pragma: no cover - a compiler bug: log it, keep serving
            log.exception("analysis of %s failed", uri)
            return
        if result is None:
            return
        self.analyses[uri] = result
        self.note_reads(path, result)
        if current():
            self.publish(uri, result)
            tests = D.tests_path(path)
            if tests is not None:
                turi = self.uri_of(tests)
                if turi in self.workspace.text_documents:
                    self.schedule(turi, 0)

    def _companion(self, main_path: str, overlay: dict[str, str]) -> D.Analysis | None:
        """X.trg's analysis for X_test.trg: the open document's text, else the file's."""
        muri = self.uri_of(main_path)
        snap = self.text_of(muri)
        have = self.analyses.get(muri)
        if snap is not None:
            if have is not None and have.version == snap[1] and have.text == snap[0]:
                return have
            return self.analyzer.analyse(main_path, snap[0], snap[1], overlay=overlay)
        try:
            text = Path(main_path).read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        if have is not None and have.text == text:
            return have
        result = self.analyzer.analyse(main_path, text, overlay=overlay)
        self.analyses[muri] = result
        self.note_reads(main_path, result)
        return result

    def note_reads(self, path: str, a: D.Analysis) -> None:
        """Remember the files the document ``path`` reads through its includes (kept once it
        is closed: the server has seen it include them, see :meth:`scope`)."""
        if a.reads:
            self.reads[path] = a.reads
        else:
            self.reads.pop(path, None)

    def publish(self, uri: str, a: D.Analysis) -> None:
        # plain JSON, not lsprotocol objects: a 10,000-rule file may carry a thousand warnings,
        # and this runs on the event loop, where completion requests wait
        lines = D.split_lines(a.text)
        enc = self.encoding()
        diags = []
        texts: dict[str, list[str]] = {a.file: lines}
        read = {f.name: f.text for f in a.reads}  # the texts the analysis's spans were made from
        for d in a.diagnostics:
            if d.file != a.file:
                continue
            out = diagnostic_json(d, lines, enc)
            if d.related:  # where the clashing name was first declared, the error an include line sums up
                out["relatedInformation"] = [self._related(d.related_file(sp), sp, msg, texts, read, enc)
                                             for sp, msg in d.related]
            diags.append(out)
        params = {"uri": uri, "diagnostics": diags}
        if a.version is not None:
            params["version"] = a.version
        self.protocol._send_data({"jsonrpc": "2.0", "method": T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, "params": params})

    def _related(self, file: str, span: Span, message: str, texts: dict[str, list[str]], read: dict[str, str],
                 enc: str) -> dict:
        """An LSP DiagnosticRelatedInformation: ``span`` in ``file``, whose lines are split
        once, from the text the analysis read (``read``: its included files), else from the
        editor or the disk."""
        if file not in texts:
            snap = self.text_of(self.uri_of(file)) if file not in read else None
            try:
                texts[file] = D.split_lines(read[file] if file in read else
                                            snap[0] if snap is not None else Path(file).read_text("utf-8"))
            except (OSError, UnicodeDecodeError):
                texts[file] = []
        return {"location": {"uri": self.uri_of(file), "range": _range_json(to_range(span, texts[file], enc))},
                "message": message}

    def encoding(self) -> str:
        try:
            return str(self.workspace.position_encoding or "utf-16")
        except RuntimeError:  # before initialize
            return "utf-16"

    def module_now(self, uri: str) -> tuple[D.Analysis | None, A.Module | None]:
        """The latest analysis and the module of the document's current text."""
        snap = self.text_of(uri)
        a = self.analyses.get(uri)
        if snap is None:
            return a, a.module if a else None
        if a is not None and a.version == snap[1] and a.text == snap[0]:
            return a, a.module
        return a, self.analyzer.parse(self.path_of(uri), snap[0])

    def names(self, uri: str) -> D.Names:
        a = self.analyses.get(uri)
        if a is not None:
            return a.names
        path = self.path_of(uri)
        main = D.companion_path(path)
        comp = self.analyses.get(self.uri_of(main)) if main else None
        return comp.names if comp is not None else D.Names()

    def occurrences(self, uri: str, workspace: Sequence[str] = (),
                    parsed: dict[str, tuple[tuple, A.Module | None]] | None = None) -> list[D.Occurrence]:
        """Every name's declarations and uses in the files that share the document's names
        (:meth:`scope`; ``workspace``: with the workspace's files that include it, as
        :meth:`workspace_files` found them; ``parsed``: the modules of files not open, as
        :meth:`parse_on_disk` parsed them, used while their files are unchanged)."""
        a, module = self.module_now(uri)
        if module is None:
            return []
        key = self.occurrences_key(uri, workspace)
        if key in self._occ:
            return self._occ[key]
        modules = [(module, key[1][0])]
        for other, version in key[2:]:
            have = (parsed or {}).get(other)
            m = have[1] if have is not None and have[0] == version else self._module_of_path(other)
            if m is not None:
                modules.append((m, other))
        names = D.Names()
        for m, p in modules:
            names._add(m, p)
        occs = [o for m, p in modules for o in D.occurrences(m, p, names)]
        self._occ = {k: v for k, v in self._occ.items() if k[0] != uri}
        self._occ[key] = occs
        return occs

    def occurrences_key(self, uri: str, workspace: Sequence[str] = ()) -> tuple:
        """What :meth:`occurrences` are kept by: the document and each file of its
        :meth:`scope` with its version, when open, else its file's (mtime, size): a file is
        read again once it is edited or changes on disk."""
        return (uri, *((p, _version_or_file(self, p)) for p in self.scope(uri, workspace)))

    def scope(self, uri: str, workspace: Sequence[str] = ()) -> list[str]:
        """The files whose names find references, go to definition and rename see from the
        document (itself first): its companion files (``X.trg`` / ``X_test.trg``), the files
        its includes read (directly or not), and the documents seen open whose includes read
        it, with the files those read: every program the document is part of, as far as the
        editor knows. ``workspace`` (find references, rename): also the workspace's files
        whose includes read it, open or not, with the files those read
        (:meth:`workspace_files`, found on the analysis worker)."""
        path = self.path_of(uri)
        out = [path]
        seen = {os.path.realpath(path)}

        def add(p: str | None) -> None:
            if p is not None and os.path.realpath(p) not in seen:
                seen.add(os.path.realpath(p))
                out.append(p)

        main, tests = D.companion_path(path), D.tests_path(path)
        add(main)
        add(tests)
        real = os.path.realpath(path)
        readers = sorted(p for p, files in self.reads.items() if any(f.path == real for f in files))
        for top in (path, main, *readers):
            add(top)
            for f in self.reads.get(top or "", ()):
                add(f.name)
        for p in workspace:
            add(p)
        return out

    def workspace_files(self, path: str, now: WorkspaceNow,
                        tell: Callable[[T.ShowMessageParams], None] | None = None) -> list[str]:
        """The workspace's files whose includes read ``path`` (:meth:`workspace_includers`),
        each followed by the files its includes read: what :meth:`scope` adds for find
        references and rename. It walks up to :data:`MAX_WORKSPACE_FILES` files, so those
        requests run it on the search worker, neither on the event loop nor behind the
        analyses (see the module's docstring); ``now``: the workspace and its open
        documents as :meth:`workspace_now` took them on the loop; ``tell`` sends its
        warning (from there: through the loop)."""
        out = []
        for top in self.workspace_includers(path, now, tell):
            out.append(top)
            out.extend(self._reads_on_disk(top, now))
        return out

    def roots(self) -> list[str]:
        """The workspace's folders, as the client gave them at initialize (its
        workspaceFolders, else its rootUri; none: no workspace to look through)."""
        try:
            ws = self.workspace
        except RuntimeError:  # before initialize
            return []
        out = [self.path_of(f.uri) for f in ws.folders.values()] or ([ws.root_path] if ws.root_path else [])
        return [p for p in out if os.path.isdir(p)]

    def workspace_includers(self, path: str, now: WorkspaceNow,
                            tell: Callable[[T.ShowMessageParams], None] | None = None) -> list[str]:
        """The workspace's .trg files whose includes read ``path``, directly or not: what a
        rename of a name ``path`` declares must reach, open or not. The files are found as
        ``triggerc check FOLDER`` finds them (hidden folders such as ``.git``, ``.venv`` and
        ``.triggerlang``, virtualenvs, ``node_modules`` and ``__pycache__`` skipped, the
        project config's ``exclude`` honoured), at most :data:`MAX_WORKSPACE_FILES` of them
        (past that, a warning says the rest was not looked at); only the ``include`` lines
        of a file that mentions ``include`` are parsed, and kept until the file changes."""
        from ..cli.common import walk_rules
        from ..config import ConfigError, Configs

        files: list[str] = []
        for root in now.roots:
            room = MAX_WORKSPACE_FILES - len(files)
            try:  # (one more than there is room for: whether some were left out)
                found = list(islice((p for p in walk_rules(root, Configs()) if p is not None), room + 1))
            except ConfigError:  # a config check refuses: every file (check says why)
                found = list(islice((p for p in walk_rules(root, Configs(isolated=True)) if p is not None), room + 1))
            files.extend(found[:room])
            if len(found) > room and not self._warned_bound:
                self._warned_bound = True
                (tell or self.window_show_message)(T.ShowMessageParams(type=T.MessageType.Warning, message=(
                    f"triggerc: the workspace has over {MAX_WORKSPACE_FILES} .trg files: find references and rename "
                    f"looked for includes in the first {MAX_WORKSPACE_FILES} only")))
        readers: dict[str, list[str]] = {}
        for p in files:
            for target in self._includes_of(p, now):
                readers.setdefault(target, []).append(p)
        start = os.path.realpath(path)
        seen, todo, out = {start}, [start], []
        while todo:
            for p in readers.get(todo.pop(), ()):
                real = os.path.realpath(p)
                if real not in seen:
                    seen.add(real)
                    out.append(p)
                    todo.append(real)
        return sorted(out)

    def _reads_on_disk(self, top: str, now: WorkspaceNow) -> list[str]:
        """The files the includes of ``top`` read, directly or not (real paths), from their
        include lines (the open documents' texts for those open)."""
        seen, todo, out = {os.path.realpath(top)}, [top], []
        while todo:
            for real in self._includes_of(todo.pop(), now):
                if real not in seen:
                    seen.add(real)
                    out.append(real)
                    todo.append(real)
        return out

    def _includes_of(self, path: str, now: WorkspaceNow) -> list[str]:
        """The real paths the includes of the file ``path`` name (the open document's text
        if it is open). Its include lines are parsed once per version or (mtime, size); a
        file modified in the last 2 s is read each time (a same-size save in one tick)."""
        snap = now.texts.get(self.uri_of(path))
        text = None
        if snap is not None:
            key: tuple | None = ("open", snap[1])
            text = snap[0]
        else:
            try:
                st = os.stat(path)
            except OSError:
                return []
            key = (st.st_mtime_ns, st.st_size) if time.time_ns() - st.st_mtime_ns > 2_000_000_000 else None
        have = self._include_lines.get(path)
        if have is None or key is None or have[0] != key:
            if text is None:
                try:
                    with open(path, "rb") as fh:
                        data = fh.read(MAX_SOURCE_BYTES + 1)
                except OSError:
                    return []
                text = data.decode("utf-8", "replace") if b"include" in data else ""
            lines = [ln for ln in D.split_lines(text) if _INCLUDE_LINE.match(ln)] if "include" in text else []
            have = (key, parse("\n".join(lines), path)[0] if lines else None)
            if key is not None:
                self._include_lines[path] = have
        return include_targets(have[1], path, now.reals) if have[1] is not None else []

    def _module_of_path(self, path: str) -> A.Module | None:
        uri = self.uri_of(path)
        if uri in self.workspace.text_documents:
            return self.module_now(uri)[1]
        return self.module_on_disk(path)

    def parse_on_disk(self, files: Sequence[tuple[str, tuple]]) -> dict[str, tuple[tuple, A.Module | None]]:
        """The modules of files not open, ``(path, its (mtime, size) seen on the loop)``
        each, by path with that key: what :meth:`occurrences` reads for them while the
        file stays as it was. Find references, rename, go to definition, document highlight
        and prepare-rename run it on the search worker (a workspace's includers or an
        included file, perhaps large, are parsed off the event loop); it reads no state of
        the loop's."""
        return {path: (version, self.module_on_disk(path)) for path, version in files}

    @staticmethod
    def module_on_disk(path: str) -> A.Module | None:
        """The module of a file as it is on disk (no check, no cache kept: a workspace's
        thousands of files would each keep one); None if it cannot be read."""
        try:
            text = Path(path).read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        return parse(text, path)[0]


def _version_or_file(ls: TriggerLanguageServer, path: str) -> tuple:
    """What identifies a document's text: its version when it is open, else its file's
    modification time and size (None when there is no such file)."""
    snap = ls.text_of(ls.uri_of(path))
    if snap is not None:
        return ("open", snap[1])
    try:
        st = os.stat(path)
    except OSError:
        return ("file", None)
    return ("file", st.st_mtime_ns, st.st_size)


# --------------------------------------------------------------------------- positions

def _units(line: str, col: int, enc: str) -> int:
    """A 0-based character column as the client counts it."""
    if line.isascii() or enc == "utf-32":
        return col
    head = line[:col]
    if enc == "utf-8":
        return len(head.encode("utf-8"))
    return len(head.encode("utf-16-le")) // 2


def _chars(line: str, units: int, enc: str) -> int:
    """The client's column (in its units) as a 0-based character column."""
    if line.isascii() or enc == "utf-32":
        return min(units, len(line))
    n = 0
    for i, ch in enumerate(line):
        if n >= units:
            return i
        n += len(ch.encode("utf-8")) if enc == "utf-8" else (2 if ord(ch) > 0xFFFF else 1)
    return len(line)


def to_range(span: Span, lines: list[str], enc: str) -> T.Range:
    def pos(line1: int, col1: int) -> T.Position:
        i = max(0, line1 - 1)
        text = lines[i] if i < len(lines) else ""
        return T.Position(line=i, character=_units(text, max(0, col1 - 1), enc))
    return T.Range(start=pos(span.start.line, span.start.column), end=pos(span.end.line, span.end.column))


def diagnostic_json(d: Diagnostic, lines: list[str], enc: str) -> dict:
    """A compiler diagnostic as an LSP Diagnostic (JSON). The message is check's message,
    then the hint on a second line; ``data`` holds the hint and the diagnostic's fix, if
    it has one in this document: ``{title, safe, edits: [{range, newText}]}``, what its
    quick fix does."""
    data: dict[str, Any] = {"hint": d.hint}
    if d.fix is not None and all(e.span.file is None for e in d.fix.edits):
        data["fix"] = {"title": d.fix.title, "safe": d.fix.safe,
                       "edits": [{"range": _range_json(to_range(e.span, lines, enc)), "newText": e.text}
                                 for e in d.fix.edits]}
    out = {"range": _range_json(to_range(d.span, lines, enc)),
           "message": d.message + (f"\n{d.hint}" if d.hint else ""),
           "severity": 1 if d.is_error else 2, "code": d.code, "source": "triggerc", "data": data}
    if d.code in UNUSED_CODES:
        out["tags"] = [1]  # Unnecessary: editors grey the unused declaration out
    return out


def _asked(only: list[str], kind: str) -> bool:
    """Whether a code action request's ``only`` asks for ``kind`` (a kind asks for the
    kinds below it: ``source`` for ``source.fixAll.triggerc``)."""
    return any(kind == k or kind.startswith(k + ".") for k in only)


def _range_json(r: T.Range) -> dict:
    return {"start": {"line": r.start.line, "character": r.start.character},
            "end": {"line": r.end.line, "character": r.end.character}}


# --------------------------------------------------------------------------- features

def build_server() -> TriggerLanguageServer:
    server = TriggerLanguageServer()

    @server.feature(T.INITIALIZE)
    def initialize(ls: TriggerLanguageServer, params: T.InitializeParams) -> None:
        opts = params.initialization_options
        if isinstance(opts, dict) and isinstance(opts.get("debounce_ms"), (int, float)) \
                and 0 <= opts["debounce_ms"] <= 10_000:
            ls.debounce = opts["debounce_ms"] / 1000

    @server.feature(T.INITIALIZED)
    def initialized(ls: TriggerLanguageServer, params: T.InitializedParams) -> None:
        """Ask the editor to tell of the ``.trg`` files and configs that change on disk
        (:func:`did_change_watched_files`), if it can watch them for a server: the protocol
        has no other way to ask for it, and ``**/*.trg`` is what every editor can match."""
        caps = ls.client_capabilities.workspace
        watched = caps.did_change_watched_files if caps is not None else None
        if watched is None or not watched.dynamic_registration:
            return
        ls.client_register_capability(T.RegistrationParams(registrations=[T.Registration(
            id="triggerc-watched-files", method=T.WORKSPACE_DID_CHANGE_WATCHED_FILES,
            register_options=T.DidChangeWatchedFilesRegistrationOptions(watchers=[
                T.FileSystemWatcher(glob_pattern=g) for g in WATCHED]))]))

    @server.feature(T.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(ls: TriggerLanguageServer, params: T.DidChangeWatchedFilesParams) -> None:
        """Files changed on disk outside the editor (a ``git checkout``, a script, another
        editor): re-check, as debounced, the open documents that read them, as a change
        of an open document re-checks its includers (an open document's own change is the
        editor's business: its text stands for the file). A ``.trg`` changed: the open
        documents whose includes read it, and its open ``X_test.trg``; created or deleted:
        also those with an include (a glob may now match it, a missing include find it);
        a ``triggerc.toml``: every open document (what check leaves out may have changed)."""
        docs = ls.workspace.text_documents
        again: set[str] = set()
        for change in params.changes:
            uri = change.uri
            path = ls.path_of(uri)
            if os.path.basename(path) == "triggerc.toml":
                again.update(docs)
                continue
            if uri in docs or not path.endswith(".trg"):
                continue
            again.update(ls.readers(os.path.realpath(path)))
            tests = D.tests_path(path)
            if tests is not None and ls.uri_of(tests) in docs:
                again.add(ls.uri_of(tests))
            if change.type != T.FileChangeType.Changed:
                again.update(u for u, a in ls.analyses.items() if u in docs and
                             any(d.__class__ is A.Include for d in a.module.decls))
        for u in sorted(again):
            ls.schedule(u, ls.debounce)

    @server.feature(T.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: TriggerLanguageServer, params: T.DidOpenTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.real[uri] = os.path.realpath(ls.path_of(uri))
        ls.schedule(uri, 0)
        for other in ls.includers(uri, params.text_document.text):  # (its text now stands for the file's)
            ls.schedule(other, ls.debounce)
        if not os.path.exists(ls.real[uri]):  # never saved: an include that missed it may now read it
            for other, a in list(ls.analyses.items()):
                if other != uri and other in ls.workspace.text_documents and \
                        any(d.code == "TRG005" for d in a.diagnostics):
                    ls.schedule(other, ls.debounce)

    @server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: TriggerLanguageServer, params: T.DidChangeTextDocumentParams) -> None:
        """Re-check the document and, as debounced, the open documents whose includes read
        it: they read its unsaved text (:meth:`TriggerLanguageServer.overlay`)."""
        uri = params.text_document.uri
        ls.schedule(uri, ls.debounce)
        for other in ls.includers(uri):
            ls.schedule(other, ls.debounce)

    @server.feature(T.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: TriggerLanguageServer, params: T.DidSaveTextDocumentParams) -> None:
        """Re-check the open files that read the saved one: its tests, and the files whose
        includes read another text of it (they read its text at each change already)."""
        uri = params.text_document.uri
        tests = D.tests_path(ls.path_of(uri))
        if tests is not None and ls.uri_of(tests) in ls.workspace.text_documents:
            ls.schedule(ls.uri_of(tests), 0)
        snap = ls.text_of(uri)
        for other in ls.includers(uri, snap[0] if snap is not None else None):
            ls.schedule(other, 0)

    @server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: TriggerLanguageServer, params: T.DidCloseTextDocumentParams) -> None:
        """Forget the document (its parses kept while its ``X_test.trg`` is open; for an
        ``X_test.trg``, ``X.trg``'s analysis and parses unless ``X.trg`` is open:
        :meth:`~TriggerLanguageServer.needed`), and the parses of the included files no open
        document reads any more (:meth:`Analyzer.forget <triggerlang.editor.document.Analyzer.forget>`);
        the open documents whose includes read it are checked again with the file's text
        (its unsaved edits are gone with it)."""
        uri = params.text_document.uri
        timer = ls._timers.pop(uri, None)
        if timer is not None:
            timer.cancel()
        ls.analyses.pop(uri, None)
        ls.real.pop(uri, None)
        path = ls.path_of(uri)
        if not ls.needed(path):
            ls.analyzer.forget(path)
        main = D.companion_path(path)
        if main is not None and not ls.needed(main):  # X.trg's, made for X_test.trg's checks
            ls.analyses.pop(ls.uri_of(main), None)
            ls.analyzer.forget(main)
        ls.analyzer.forget(None, ls.still_read())
        ls.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
        try:
            disk: str | None = Path(ls.path_of(uri)).read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            disk = None
        for other in ls.includers(uri, disk):
            ls.schedule(other, 0)

    @server.feature(T.TEXT_DOCUMENT_COMPLETION, T.CompletionOptions(trigger_characters=[".", "<", "="]))
    def completion(ls: TriggerLanguageServer, params: T.CompletionParams) -> T.CompletionList:
        snap = ls.text_of(params.text_document.uri)
        if snap is None:
            return T.CompletionList(is_incomplete=False, items=[])
        lines = D.split_lines(snap[0])
        enc = ls.encoding()
        ln = params.position.line
        text = lines[ln] if 0 <= ln < len(lines) else ""
        col = _chars(text, params.position.character, enc)
        result = complete(lines, ln, col, ls.names(params.text_document.uri))
        rng = T.Range(start=T.Position(line=ln, character=_units(text, result.start, enc)),
                      end=T.Position(line=ln, character=_units(text, col, enc)))
        items = []
        for n, it in enumerate(result.items):
            items.append(T.CompletionItem(
                label=it.label, kind=_ITEM_KINDS.get(it.kind), detail=it.detail or None,
                documentation=T.MarkupContent(kind=T.MarkupKind.Markdown, value=it.doc) if it.doc else None,
                sort_text=f"{it.sort or '1'}{n:05d}", filter_text=it.label,
                text_edit=T.TextEdit(range=rng, new_text=it.insert or it.label)))
        return T.CompletionList(is_incomplete=result.incomplete, items=items)

    @server.feature(T.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: TriggerLanguageServer, params: T.HoverParams) -> T.Hover | None:
        uri = params.text_document.uri
        snap = ls.text_of(uri)
        if snap is None:
            return None
        lines = D.split_lines(snap[0])
        ln = params.position.line
        if not 0 <= ln < len(lines):
            return None
        enc = ls.encoding()
        col = _chars(lines[ln], params.position.character, enc)
        bounds = D.declaration_at(lines, ln)
        if bounds is None or not bounds[0] <= ln <= bounds[1]:
            return None
        decl = D.parse_declaration(lines, bounds[0], bounds[1], ls.path_of(uri))
        if decl is None:
            return None
        h = hover(decl, ln, col, ls.names(uri))
        if h is None or not h.markdown:
            return None
        return T.Hover(contents=T.MarkupContent(kind=T.MarkupKind.Markdown, value=h.markdown),
                       range=to_range(h.span, lines, enc) if h.span is not None else None)

    def _at(ls: TriggerLanguageServer, uri: str, position: T.Position, workspace: Sequence[str] = (),
            parsed: dict[str, tuple[tuple, A.Module | None]] | None = None,
            ) -> tuple[list[D.Occurrence], D.Occurrence | None]:
        snap = ls.text_of(uri)
        if snap is None:
            return [], None
        lines = D.split_lines(snap[0])
        ln = position.line
        text = lines[ln] if 0 <= ln < len(lines) else ""
        col = _chars(text, position.character, ls.encoding())
        occs = ls.occurrences(uri, workspace, parsed)
        return occs, D.occurrence_at(occs, ls.path_of(uri), ln, col)

    async def _workspace_at(ls: TriggerLanguageServer, uri: str,
                            position: T.Position) -> tuple[list[D.Occurrence], D.Occurrence | None]:
        """:func:`_at` with the workspace's files that include the document, looked for on
        the search worker (:meth:`TriggerLanguageServer.workspace_files`)."""
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(ls._search, ls.workspace_files, ls.path_of(uri), ls.workspace_now(),
                                           lambda m: loop.call_soon_threadsafe(ls.window_show_message, m))
        return _at(ls, uri, position, found, await _parsed_off_loop(ls, uri, found))

    async def _parsed_off_loop(ls: TriggerLanguageServer, uri: str,
                               workspace: Sequence[str] = ()) -> dict[str, tuple[tuple, A.Module | None]] | None:
        """The files of the document's :meth:`~TriggerLanguageServer.scope` that are not
        open, parsed on the search worker (one may be large: on the event loop, its parse
        would hold up every diagnostic and hover), unless :meth:`occurrences` has them."""
        key = ls.occurrences_key(uri, workspace)
        if key in ls._occ:
            return None
        on_disk = [(p, v) for p, v in key[2:] if v[0] == "file" and v[1] is not None]
        if not on_disk:
            return None
        return await asyncio.get_running_loop().run_in_executor(ls._search, ls.parse_on_disk, on_disk)

    def _included_at(ls: TriggerLanguageServer, uri: str, position: T.Position) -> list[T.Location] | None:
        """The files the ``include`` whose string is under the cursor reads, as an analysis
        would read them now (the open documents never saved included)."""
        snap = ls.text_of(uri)
        _, module = ls.module_now(uri)
        if snap is None or module is None:
            return None
        lines = D.split_lines(snap[0])
        ln = position.line
        col = _chars(lines[ln], position.character, ls.encoding()) + 1 if 0 <= ln < len(lines) else 0
        for d in module.decls:
            sp = d.path.span if d.__class__ is A.Include else None
            if sp is not None and sp.start.line == sp.end.line == ln + 1 and sp.start.column <= col <= sp.end.column:
                found = include_targets(A.Module(decls=(d,), file=module.file), ls.path_of(uri), set(ls.real.values()))
                start = T.Position(line=0, character=0)
                return [T.Location(uri=ls.uri_of(p), range=T.Range(start=start, end=start)) for p in found] or None
        return None

    def _location(ls: TriggerLanguageServer, o: D.Occurrence) -> T.Location:
        uri = ls.uri_of(o.file)
        snap = ls.text_of(uri)
        if snap is not None:
            lines = D.split_lines(snap[0])
        else:
            try:
                lines = D.split_lines(Path(o.file).read_text("utf-8"))
            except (OSError, UnicodeDecodeError):
                lines = []
        return T.Location(uri=uri, range=to_range(o.span, lines, ls.encoding()))

    @server.feature(T.TEXT_DOCUMENT_DEFINITION)
    async def definition(ls: TriggerLanguageServer, params: T.DefinitionParams) -> list[T.Location] | None:
        """A name's declarations; on an ``include``'s string, the files it reads (each a
        glob matches), as an editor opens the header of an ``#include`` or an import's module.
        The included files not open are parsed on the search worker, as for find references."""
        uri = params.text_document.uri
        occs, at = _at(ls, uri, params.position, (), await _parsed_off_loop(ls, uri))
        if at is None:
            return _included_at(ls, uri, params.position)
        defs = [o for o in occs if o.is_def and D.same_symbol(o, at)]
        return [_location(ls, o) for o in defs] or None

    @server.feature(T.TEXT_DOCUMENT_REFERENCES)
    async def references(ls: TriggerLanguageServer, params: T.ReferenceParams) -> list[T.Location] | None:
        occs, at = await _workspace_at(ls, params.text_document.uri, params.position)
        if at is None:
            return None
        include = params.context.include_declaration if params.context else True
        refs = [o for o in occs if D.same_symbol(o, at) and (include or not o.is_def)]
        return [_location(ls, o) for o in refs]

    @server.feature(T.TEXT_DOCUMENT_DOCUMENT_HIGHLIGHT)
    async def highlight(ls: TriggerLanguageServer,
                        params: T.DocumentHighlightParams) -> list[T.DocumentHighlight] | None:
        """The name under the cursor and its other uses in this document (declarations as
        writes, uses as reads), as an editor marks them while the cursor rests on one. The
        included files not open are parsed on the search worker, as for go to definition."""
        uri = params.text_document.uri
        occs, at = _at(ls, uri, params.position, (), await _parsed_off_loop(ls, uri))
        if at is None:
            return None
        path = ls.path_of(uri)
        return [T.DocumentHighlight(range=_location(ls, o).range,
                                    kind=T.DocumentHighlightKind.Write if o.is_def else T.DocumentHighlightKind.Read)
                for o in occs if o.file == path and D.same_symbol(o, at)]

    @server.feature(T.TEXT_DOCUMENT_PREPARE_RENAME)
    async def prepare_rename(ls: TriggerLanguageServer, params: T.PrepareRenameParams) -> T.Range | None:
        """The name under the cursor, if it is a name (else the client says nothing can be
        renamed there); a source kind is refused with the reason. The included files not
        open are parsed on the search worker, as for go to definition."""
        uri = params.text_document.uri
        occs, at = _at(ls, uri, params.position, (), await _parsed_off_loop(ls, uri))
        if at is None:
            return None
        if at.kind == "source":
            raise RequestFailed(f"`{at.name}` is a source of the catalogue: it cannot be renamed")
        return _location(ls, at).range

    @server.feature(T.TEXT_DOCUMENT_RENAME)
    async def rename(ls: TriggerLanguageServer, params: T.RenameParams) -> T.WorkspaceEdit | None:
        """Every declaration and use of the name in the files that share the document's names
        (:meth:`TriggerLanguageServer.scope`: its companions, the files it includes and the
        files that include it, open or only in the workspace), one WorkspaceEdit over them
        all, from whichever file the rename starts; or an error that says why not
        (:func:`document.rename`: a new name any of those files declares, say)."""
        uri = params.text_document.uri
        occs, at = await _workspace_at(ls, uri, params.position)
        if at is None:
            return None

        def text_of(path: str) -> str | None:
            snap = ls.text_of(ls.uri_of(path))
            if snap is not None:
                return snap[0]
            try:
                return Path(path).read_text("utf-8")
            except (OSError, UnicodeDecodeError):
                return None

        edits = D.rename(occs, at, params.new_name, ls.names(uri), text_of)
        if isinstance(edits, str):
            raise RequestFailed(edits)
        changes: dict[str, list[T.TextEdit]] = {}
        for o in edits:
            loc = _location(ls, o)
            changes.setdefault(loc.uri, []).append(T.TextEdit(range=loc.range, new_text=params.new_name))
        return T.WorkspaceEdit(changes=changes)

    @server.feature(T.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def document_symbols(ls: TriggerLanguageServer, params: T.DocumentSymbolParams) -> list[T.DocumentSymbol]:
        uri = params.text_document.uri
        snap = ls.text_of(uri)
        _, module = ls.module_now(uri)
        if snap is None or module is None:
            return []
        lines = D.split_lines(snap[0])
        enc = ls.encoding()

        def conv(s: D.Symbol) -> T.DocumentSymbol:
            return T.DocumentSymbol(name=s.name, detail=s.detail or None,
                                    kind=_SYMBOL_KINDS.get(s.kind, T.SymbolKind.Object),
                                    range=to_range(s.span, lines, enc), selection_range=to_range(s.selection, lines, enc),
                                    children=[conv(c) for c in s.children] or None)
        return [conv(s) for s in D.symbols(module)]

    @server.feature(T.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: TriggerLanguageServer, params: T.DocumentFormattingParams) -> list[T.TextEdit] | None:
        from ..fmt import format_text

        uri = params.text_document.uri
        snap = ls.text_of(uri)
        if snap is None:
            return None
        text = snap[0]
        new, _diags = format_text(text, ls.path_of(uri))
        if new is None:  # syntax errors: fmt does not format such a file; the diagnostics say why
            ls.window_show_message(T.ShowMessageParams(type=T.MessageType.Warning,
                                                       message="triggerc fmt: fix the syntax errors first"))
            return None
        if new == text:
            return []
        lines = D.split_lines(text)
        end = T.Position(line=len(lines) - 1, character=_units(lines[-1], len(lines[-1]), ls.encoding()))
        return [T.TextEdit(range=T.Range(start=T.Position(line=0, character=0), end=end), new_text=new)]

    @server.feature(T.TEXT_DOCUMENT_CODE_ACTION,
                    T.CodeActionOptions(code_action_kinds=[T.CodeActionKind.QuickFix, FIX_ALL]))
    async def code_actions(ls: TriggerLanguageServer, params: T.CodeActionParams) -> list[T.CodeAction]:
        uri = params.text_document.uri
        only = params.context.only
        out = []
        for d in params.context.diagnostics if only is None or _asked(only, T.CodeActionKind.QuickFix) else ():
            fix = d.data.get("fix") if isinstance(d.data, dict) else None
            if not isinstance(fix, dict) or d.source != "triggerc":
                continue
            try:
                edits = [T.TextEdit(range=T.Range(start=T.Position(**e["range"]["start"]),
                                                  end=T.Position(**e["range"]["end"])), new_text=str(e["newText"]))
                         for e in fix["edits"]]
                title = str(fix["title"])
            except (KeyError, TypeError):
                continue
            out.append(T.CodeAction(title=title, kind=T.CodeActionKind.QuickFix, diagnostics=[d],
                                    is_preferred=bool(fix.get("safe")),
                                    edit=T.WorkspaceEdit(changes={uri: edits})))
        if only is not None and _asked(only, FIX_ALL):
            action = await ls.fix_all(uri)
            if action is not None:
                out.append(action)
        return out

    return server


class _OneLine(logging.Filter):
    """pygls logs a client's malformed message with a traceback; the client already got a
    JSON-RPC error for it, so one line on stderr says enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], RequestFailed):
            return False  # a declined request: the client has the reason
        if str(record.msg).startswith(("Unable to handle message", "Unable to deserialize message",
                                       "Exception occurred for message")):
            if record.exc_info and record.exc_info[1] is not None:
                record.msg = f"{record.msg}: {_cause(record.exc_info[1]) if record.exc_info[1].__cause__ else record.exc_info[1]}"
            if str(record.msg).startswith("Unable to deserialize message"):
                record.msg, record.args = "Unable to deserialize a message: answered with a JSON-RPC error", ()
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def main() -> None:
    """Serve on stdin/stdout until the client says exit (or closes the pipe)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("triggerc lsp: %(levelname)s %(message)s"))
    handler.addFilter(_OneLine())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    # The analysis thread is CPU-bound; every message the loop reads or writes hands the GIL
    # back and forth, and each hand-off may wait a whole switch interval (5 ms by default).
    # 1 ms keeps completion quick while a large file is being re-checked (bench/lsp.py).
    sys.setswitchinterval(0.001)
    build_server().start_io()
