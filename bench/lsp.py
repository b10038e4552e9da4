#!/usr/bin/env python3
"""``triggerc lsp`` on a large file: diagnostics after an edit, completion and hover latency.

    python bench/lsp.py                     # 10,000 rules (bench/match.py's rule set)
    python bench/lsp.py --rules 1000 --edits 20 --completions 100

The real server process is driven over stdio by the tests' client (tests/lsp_client.py),
so every figure is a round trip as an editor sees it (JSON-RPC framing, pygls, our code):

- **open**: didOpen of the whole file to its first diagnostics (a cold parse and check);
- **diagnostics after an edit**: didChange (one character typed in one rule, at a random
  place in the file) to the publishDiagnostics of that version, with the server's debounce
  set to 0 (an editor adds the default 250 ms debounce on top);
- **completion**: textDocument/completion at typical places (a filter's fields, actions
  after ``run``, parameters and placeholders after ``with``, events after ``on git.``,
  rule names after ``expect``) with the server idle, and again sent right after an edit,
  while the re-check runs on the server's worker thread;
- **hover**: on fields, actions and lets of random rules.

p50/p99 are over all the requests of a kind (nearest-rank).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from lsp_client import LspClient, edit, pos  # noqa: E402
from match import make_rules  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[max(0, min(len(xs) - 1, int(round(p / 100 * len(xs) + 0.5)) - 1))]


def summary(name: str, xs: list[float]) -> dict:
    return {"what": name, "n": len(xs), "p50_ms": round(pct(xs, 50) * 1000, 1),
            "p99_ms": round(pct(xs, 99) * 1000, 1), "max_ms": round(max(xs) * 1000, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=10_000)
    ap.add_argument("--edits", type=int, default=40)
    ap.add_argument("--completions", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    rnd = random.Random(args.seed)

    text, _ = make_rules(args.rules)
    tail = ['let bots = ["bot"]',
            'pr: on github.pull_request action="opened" run notify',
            'test "a push":', '    given git.push branch="team1/feature-1" sha="a"', "    expect b1"]
    text = text.rstrip("\n") + "\n" + "\n".join(tail) + "\n"
    lines = text.split("\n")
    rule_lines = [i for i, ln in enumerate(lines) if ln.startswith("b") and ": on git.push" in ln]
    work = Path(tempfile.mkdtemp(prefix="trg-lsp-bench-"))
    path = work / "rules.trg"
    path.write_text(text)

    client = LspClient(cwd=work, init_options={"debounce_ms": 0})
    out: list[dict] = []
    try:
        t0 = time.perf_counter()
        u = client.open(path, text)
        client.wait_diagnostics(u, version=1, timeout=600)
        opened = time.perf_counter() - t0
        out.append({"what": "open: first diagnostics", "n": 1, "p50_ms": round(opened * 1000, 1),
                    "p99_ms": round(opened * 1000, 1), "max_ms": round(opened * 1000, 1)})
        version = 1

        # the places a user completes at: (line, column) in the current text
        last = len(lines) - 2  # the `expect b1` line
        probes = []
        for _ in range(args.completions):
            i = rnd.choice(rule_lines)
            ln = lines[i]
            kind = rnd.choice(["filter", "action", "with", "event", "expect"])
            if kind == "filter":
                probes.append((i, ln.index(" author")))          # after the trigger: fields
            elif kind == "action":
                probes.append((i, ln.index("run ") + 4))          # actions
            elif kind == "with":
                probes.append((i, ln.index("with ") + 5))         # parameters and placeholders
            elif kind == "event":
                probes.append((i, ln.index("git.") + 4))          # events
            else:
                probes.append((last, len(lines[last])))           # rule names (10,000 of them)

        def completion(line: int, col: int) -> float:
            t = time.perf_counter()
            r = client.request("textDocument/completion", {"textDocument": {"uri": u}, "position": pos(line, col)})
            assert r["items"], (line, col, lines[line])
            return time.perf_counter() - t

        idle = [completion(*p) for p in probes]
        out.append(summary("completion (idle)", idle))

        hovers = []
        for _ in range(args.completions):
            i = rnd.choice(rule_lines)
            col = rnd.choice([lines[i].index("branch") + 1, lines[i].index("deploy") + 1, lines[i].index("<sha>") + 2])
            t = time.perf_counter()
            h = client.request("textDocument/hover", {"textDocument": {"uri": u}, "position": pos(i, col)})
            hovers.append(time.perf_counter() - t)
            assert h is not None
        out.append(summary("hover (idle)", hovers))

        # edits: one character typed in a random rule's branch name; wait for that version's diagnostics
        after_edit, busy_completion = [], []
        for _ in range(args.edits):
            i = rnd.choice(rule_lines)
            col = lines[i].index('"') + 1
            version += 1
            t = time.perf_counter()
            client.change(u, version, [edit(i, col, i, col, "x")])
            lines[i] = lines[i][:col] + "x" + lines[i][col:]
            # a completion typed right after the edit, while the server re-checks the file
            busy_completion.append(completion(*rnd.choice(probes)))
            client.wait_diagnostics(u, version=version, timeout=600)
            after_edit.append(time.perf_counter() - t)
        out.append(summary("diagnostics after an edit (debounce 0)", after_edit))
        out.append(summary("completion during a re-check", busy_completion))
    finally:
        client.close()

    print(f"{args.rules} rules, {len(text.splitlines())} lines, {len(text) / 1e6:.2f} MB")
    print(f"{'what':42} {'n':>5} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    for r in out:
        print(f"{r['what']:42} {r['n']:>5} {r['p50_ms']:>9} {r['p99_ms']:>9} {r['max_ms']:>9}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rules": args.rules, "results": out}, indent=2))


if __name__ == "__main__":
    main()
