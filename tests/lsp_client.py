"""A small Language Server Protocol client over a subprocess's stdio, for tests and bench/lsp.py.

It frames JSON-RPC messages with ``Content-Length`` headers, reads the server's output on a
thread, matches responses to requests by id, and keeps every notification (diagnostics by
URI, in arrival order), so a test can wait on a condition with a deadline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable


class LspError(Exception):
    def __init__(self, error: dict):
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")
        self.message = error.get("message", "")


def uri(path: Path | str) -> str:
    return Path(path).resolve().as_uri()


class LspClient:
    def __init__(self, cmd: list[str] | None = None, cwd: Path | str | None = None,
                 init_options: dict | None = None, env: dict | None = None, workspace_caps: dict | None = None):
        cmd = cmd or [sys.executable, "-m", "triggerlang.cli", "lsp"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     cwd=cwd, env=env or dict(os.environ))
        self._next = 0
        self._lock = threading.Lock()
        self._responses: dict[Any, dict] = {}
        self._cond = threading.Condition()
        self.notifications: list[dict] = []
        self.server_requests: list[dict] = []
        self.unmatched: list[dict] = []  # responses with an id nobody asked for (id null)
        self._stderr: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self.capabilities = self.request("initialize", {
            "processId": os.getpid(), "rootUri": uri(cwd) if cwd else None,
            "capabilities": {"textDocument": {"completion": {"completionItem": {"snippetSupport": False}}},
                             "workspace": workspace_caps or {}},
            "initializationOptions": init_options or {}})["capabilities"]
        self.notify("initialized", {})

    # ---------------------------------------------------------------- transport
    def send_raw(self, body: bytes) -> None:
        with self._lock:
            self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.proc.stdin.flush()

    def _send(self, msg: dict) -> None:
        self.send_raw(json.dumps(msg).encode())

    def _read(self) -> None:
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    with self._cond:
                        self._cond.notify_all()
                    return
                line = line.strip()
                if not line:
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length is None:
                continue
            msg = json.loads(out.read(length))
            with self._cond:
                if "method" in msg and "id" in msg:
                    self.server_requests.append(msg)
                    self._send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
                elif "method" in msg:
                    self.notifications.append(msg)
                elif msg.get("id") is None:
                    self.unmatched.append(msg)
                else:
                    self._responses[msg["id"]] = msg
                self._cond.notify_all()

    def _drain_stderr(self) -> None:
        for line in self.proc.stderr:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return b"".join(self._stderr).decode("utf-8", "replace")

    # ---------------------------------------------------------------- api
    def request_id(self) -> int:
        with self._lock:
            self._next += 1
            return self._next

    def send_request(self, method: str, params: Any) -> int:
        """Send a request without waiting for its answer: its id (:meth:`wait_response`)."""
        rid = self.request_id()
        self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        return rid

    def answered(self, rid: Any) -> bool:
        with self._cond:
            return rid in self._responses

    def request(self, method: str, params: Any, timeout: float = 30.0) -> Any:
        msg = self.wait_response(self.send_request(method, params), timeout)
        if "error" in msg:
            raise LspError(msg["error"])
        return msg.get("result")

    def wait_response(self, rid: Any, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while rid not in self._responses:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise TimeoutError(f"no answer to request {rid} (server alive: {self.proc.poll() is None})\n"
                                       + self.stderr[-2000:])
                self._cond.wait(min(left, 0.5))
            return self._responses.pop(rid)

    def notify(self, method: str, params: Any) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait_for(self, cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                v = cond()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out waiting for {what}\n" + self.stderr[-2000:])
                self._cond.wait(min(left, 0.5))

    def diagnostics(self, doc_uri: str) -> list[dict]:
        """All publishDiagnostics for a URI, oldest first."""
        return [n["params"] for n in self.notifications
                if n["method"] == "textDocument/publishDiagnostics" and n["params"]["uri"] == doc_uri]

    def wait_diagnostics(self, doc_uri: str, version: int | None = None, after: int = 0,
                         timeout: float = 60.0) -> list[dict]:
        """The diagnostics of the first publication for ``doc_uri`` after the ``after``-th one
        (and of ``version``, when given)."""
        def found():
            pubs = self.diagnostics(doc_uri)[after:]
            for p in pubs:
                if version is None or p.get("version") == version:
                    return p
            return None
        return self.wait_for(found, timeout, f"diagnostics of {doc_uri} v{version}")["diagnostics"]

    # ---------------------------------------------------------------- documents
    def open(self, path: Path | str, text: str | None = None, version: int = 1) -> str:
        u = uri(path)
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": u, "languageId": "triggerlang", "version": version,
            "text": Path(path).read_text("utf-8") if text is None else text}})
        return u

    def change(self, doc_uri: str, version: int, changes: list[dict]) -> None:
        self.notify("textDocument/didChange", {"textDocument": {"uri": doc_uri, "version": version},
                                               "contentChanges": changes})

    def close(self, timeout: float = 20.0) -> int:
        try:
            if self.proc.poll() is None:
                self.request("shutdown", None, timeout)
                self.notify("exit", None)
        except (OSError, TimeoutError, LspError):
            pass
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                try:
                    f.close()
                except OSError:
                    pass


def pos(line: int, character: int) -> dict:
    return {"line": line, "character": character}


def edit(line: int, col: int, end_line: int, end_col: int, text: str) -> dict:
    return {"range": {"start": pos(line, col), "end": pos(end_line, end_col)}, "text": text}
