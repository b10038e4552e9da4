"""Correlation triggers at run time (SPEC §11.3.9): admission cost, memory, journal growth.

    .venv/bin/python bench/correlation.py [--events 3000] [--groups 10000] [--rules 1000] [--cpu]

(``--cpu``: the process's CPU time instead of the wall clock; on a shared machine the
other jobs change it far less.)

Everything runs in this process against a fresh SQLite journal (WAL, synchronous=NORMAL,
as ``serve`` opens it) and the real :class:`~triggerlang.runtime.engine.Engine`:
``submit(event)`` is the path of every delivery (match, plan, the journal transaction with
the correlation admission in it, commit). Only the fires create runs (of ``exec "true"``).

1. **The admission logic alone**: the pure engine on its in-memory state, replacing a
   slot of one of N open groups (no journal).
2. **Durable admission with N open groups.** A correlation rule ``all(http.post
   path="/a" as a, http.post path="/b" as b) same <query.k> within 1d`` with N groups
   already open (N distinct keys). Measured, per event: ``/a`` events for existing keys
   (each replaces the ``a`` slot of its group: the mirror, one entry appended to the
   correlation log, and its share of the log's batched application to the group and
   history rows), against the *same* events with no correlation rule (the journal
   alone); also events that open a group, events that fire one (its run and
   ``correlation.fired`` event journaled), and events of no member.
3. **Admission with R correlation rules.** R rules, each on its own ``query.svc`` value;
   every event matches one rule's member (the member index answers with one candidate):
   per-event cost at R = 1 and R = 1,000, same stream.
4. **Memory per open group.** ``tracemalloc`` around opening N groups in the journal
   engine (the mirror: key, slots, deadline, heap entry) and in the pure engine's
   in-memory state, divided by N.
5. **Journal growth per group.** File size (after a checkpoint) of N groups opened and
   fired (two member events each) minus the same events with no correlation rule:
   group row, history rows, the ``correlation.fired`` event and its run row, per group.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from triggerlang.api import compile_text  # noqa: E402
from triggerlang.events import Event  # noqa: E402
from triggerlang.runtime.engine import Engine  # noqa: E402
from triggerlang.runtime.journal import Journal  # noqa: E402

ACTION = 'action note(k) = exec "true"\n'
PAIR = ('gate: on all(http.post path="/a" as a, http.post path="/b" as b) same <query.k> within 1d max 1000000\n'
        '    run note with <query.k>\n')
NONE = 'other: on http.post path="/never" run note with "x"\n'


def manifest(text: str) -> dict:
    c = compile_text(ACTION + text, "rules.trg", "/tmp")
    assert c.ok, [(d.code, d.message) for d in c.diagnostics]
    return c.manifest


def ev(path: str, **query: str) -> Event:
    return Event("http", "post", {"method": "POST", "path": path, "query": query, "headers": {}, "payload": None,
                                  "text": "", "remote": "127.0.0.1"})


class Bench:
    def __init__(self, text: str, group: int = 0):
        self.dir = tempfile.mkdtemp(prefix="trg-corr-bench-")
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.journal = Journal(Path(self.dir) / "state")
        self.group = group  # > 0: serve's group commit, this many events submitted together

        async def start() -> Engine:
            if group:
                self.journal.start_group_commit()
            e = Engine(manifest(text), self.journal, {}, Path(self.dir))
            e.recover()
            e.start_correlations()
            return e

        self.engine = self.loop.run_until_complete(start())

    def submit_all(self, events: list[Event]) -> float:
        """Seconds per event, submitting them one after the other (the process's CPU time
        with ``--cpu``: on a shared machine, what the other jobs do changes it less)."""
        async def go() -> float:
            t = CLOCK()
            if self.group:  # as `serve` under load: the events of a loop pass share one commit
                for i in range(0, len(events), self.group):
                    await asyncio.gather(*(self.engine.submit(e) for e in events[i:i + self.group]))
            else:
                for e in events:
                    await self.engine.submit(e)
            return (CLOCK() - t) / len(events)
        return self.loop.run_until_complete(go())

    def size(self) -> int:
        self.journal.materialize_groups()   # (the correlation log applied: its rows are the lasting cost)
        db = Path(self.dir) / "state" / "journal.sqlite3"
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        return db.stat().st_size

    def close(self) -> None:
        self.loop.run_until_complete(self.engine.drain(1))
        self.journal.close()
        self.loop.close()


CLOCK = time.perf_counter


def best(f, repeat: int) -> float:
    return min(f() for _ in range(repeat))


def paired(benches: dict[str, "Bench"], streams: dict[str, list], rounds: int) -> dict[str, float]:
    """Seconds per event of each bench on its stream, the best of ``rounds`` rounds taken in
    turn (so that a noisy neighbour slows every configuration alike)."""
    best = {k: float("inf") for k in benches}
    for _ in range(rounds):
        for k, b in benches.items():
            best[k] = min(best[k], b.submit_all([ev(*x[0], **x[1]) for x in streams[k]]))
    return best


def admission(n_groups: int, n_events: int, rounds: int) -> dict:
    """Durable admission (the journal transaction) at ``n_groups`` open groups, paired with
    the same events on a journal without a correlation rule."""
    keys = [f"k{i}" for i in range(n_groups)]
    with_corr, plain = Bench(PAIR), Bench(NONE)
    for b in (with_corr, plain):
        b.submit_all([ev("/a", k=k) for k in keys])
    assert with_corr.engine.correlations.state.open_total() == n_groups
    stream = [(("/a",), {"k": keys[(i * 7919) % n_groups]}) for i in range(n_events)]
    t = paired({"replace": with_corr, "plain": plain}, {"replace": stream, "plain": stream}, rounds)
    other = [(("/z",), {"k": keys[(i * 7919) % n_groups]}) for i in range(n_events)]   # no rule's member
    t.update({k + "_other": v for k, v in paired({"corr": with_corr, "plain": plain},
                                                 {"corr": other, "plain": other}, rounds).items()})
    # the same, split: the request's path (the log not applied) and the log's application
    from triggerlang.runtime import correlate
    batch, correlate.MATERIALIZE_BATCH = correlate.MATERIALIZE_BATCH, 10 ** 9
    with_corr.journal.materialize_groups()
    t["request"] = with_corr.submit_all([ev(*x[0], **x[1]) for x in stream])
    c0 = CLOCK()
    with_corr.journal.materialize_groups()
    t["apply"] = (CLOCK() - c0) / len(stream)
    correlate.MATERIALIZE_BATCH = batch
    fresh = [(("/a",), {"k": f"new{i}"}) for i in range(n_events)]
    t["open"] = with_corr.submit_all([ev(*x[0], **x[1]) for x in fresh])            # the count grows a little
    t["fire"] = with_corr.submit_all([ev("/b", k=f"new{i}") for i in range(n_events)])  # ... and shrinks
    t["plain_b"] = plain.submit_all([ev("/b", k=f"new{i}") for i in range(n_events)])
    with_corr.close()
    plain.close()
    return t


def admission_grouped(n_groups: int, n_events: int, rounds: int, group: int) -> dict:
    """Durable admission as ``serve`` does it under load: group commit, ``group`` events
    submitted together (one commit for them all), paired with the same on a plain journal."""
    keys = [f"k{i}" for i in range(n_groups)]
    with_corr, plain = Bench(PAIR, group), Bench(NONE, group)
    for b in (with_corr, plain):
        b.submit_all([ev("/a", k=k) for k in keys])
    stream = [(("/a",), {"k": keys[(i * 7919) % n_groups]}) for i in range(n_events)]
    t = paired({"replace": with_corr, "plain": plain}, {"replace": stream, "plain": stream}, rounds)
    with_corr.close()
    plain.close()
    return t


def engine_only(n_groups: int, n_events: int, rounds: int) -> float:
    """The admission logic alone (the engine on its in-memory state, no journal)."""
    from triggerlang.correlation.engine import Correlator
    from triggerlang.correlation.state import MemoryState

    corr = Correlator(manifest(PAIR)["rules"], MemoryState(keep_closed=0, track=False))
    keys = [f"k{i}" for i in range(n_groups)]
    for k in keys:
        corr.submit(ev("/a", k=k), 1.0)
    events = [ev("/a", k=keys[(i * 7919) % n_groups]) for i in range(n_events)]
    best = float("inf")
    for _ in range(rounds):
        t = CLOCK()
        for e in events:
            corr.submit(e, 2.0)
        best = min(best, (CLOCK() - t) / n_events)
    return best


def many_rules(n_rules: int, n_events: int, repeat: int) -> float:
    text = "".join(f'r{i}: on all(http.post path="/a" query.svc="s{i}" as a, http.post path="/b" query.svc="s{i}" '
                   f'as b) same <query.k> within 1d run note with <query.k>\n' for i in range(n_rules))
    b = Bench(text)
    keys = [f"k{i}" for i in range(1000)]
    b.submit_all([ev("/a", svc=f"s{i % n_rules}", k=k) for i, k in enumerate(keys)])
    stream = [(f"s{(i * 31) % n_rules}", keys[(i * 7919) % len(keys)]) for i in range(n_events)]
    t = best(lambda: b.submit_all([ev("/a", svc=s, k=k) for s, k in stream]), repeat)
    b.close()
    return t


def memory(n_groups: int) -> dict:
    from triggerlang.correlation.clock import TEST_EPOCH
    from triggerlang.correlation.engine import Correlator
    from triggerlang.correlation.state import MemoryState

    out = {}
    b = Bench(PAIR)
    events = [ev("/a", k=f"k{i}") for i in range(n_groups)]
    state = b.engine.correlations.state
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for e in events:   # the mirror's share only: the admission, without the journal
        b.engine.correlations.corr.submit(e, time.time())
    state.discard_buffer()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    out["journal mirror"] = sum(s.size_diff for s in after.compare_to(before, "filename")) / n_groups
    b.close()
    corr = Correlator(manifest(PAIR)["rules"], MemoryState(keep_closed=0))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for e in events:
        corr.submit(e, TEST_EPOCH)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    # the in-memory state also keeps every event it admitted (match and tests read them back)
    out["in-memory state (with its events)"] = sum(s.size_diff for s in after.compare_to(before, "filename")) / n_groups
    return out


def growth(n_groups: int) -> dict:
    res = {}
    for name, text in (("correlation", PAIR), ("plain", NONE)):
        b = Bench(text)
        start = b.size()
        b.submit_all([ev("/a", k=f"k{i}") for i in range(n_groups)])
        opened = b.size()
        b.submit_all([ev("/b", k=f"k{i}") for i in range(n_groups)])
        b.loop.run_until_complete(b.engine.wait_idle(60))
        res[name] = (opened - start, b.size() - start)
        b.close()
    return {"open": (res["correlation"][0] - res["plain"][0]) / n_groups,
            "opened and fired": (res["correlation"][1] - res["plain"][1]) / n_groups}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=3000)
    ap.add_argument("--groups", type=int, default=10000)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cpu", action="store_true", help="the process's CPU time, not the wall clock")
    args = ap.parse_args()
    global CLOCK
    if args.cpu:
        CLOCK = time.process_time
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {open('/proc/loadavg').read().split()[:3]}, "
          f"{'CPU time' if args.cpu else 'wall clock'}")
    print(f"\n1. admission logic, the engine alone (µs per event, best of {args.repeat})")
    for n in (100, args.groups):
        print(f"   replace a slot, {n:>7,} open groups    {engine_only(n, args.events * 3, args.repeat) * 1e6:8.1f}")
    print(f"\n2. durable admission, in the journal transaction (µs per event, paired best of {args.repeat})")
    for n in (100, args.groups):
        a = admission(n, args.events, args.repeat)
        print(f"   {n:>7,} open groups: journal only {a['plain'] * 1e6:6.1f}, replace {a['replace'] * 1e6:6.1f} "
              f"(added {(a['replace'] - a['plain']) * 1e6:5.1f}: the request {(a['request'] - a['plain']) * 1e6:5.1f}, "
              f"applying the log {a['apply'] * 1e6:5.1f} in one batch), open {a['open'] * 1e6:6.1f}, "
              f"fire {a['fire'] * 1e6:6.1f} (vs {a['plain_b'] * 1e6:.1f}); "
              f"an event of no member: added {(a['corr_other'] - a['plain_other']) * 1e6:4.1f}")
    print(f"\n2b. the same in serve's group commit, 16 events a commit as at 16 connections (µs per event)")
    for n in (100, args.groups):
        a = admission_grouped(n, args.events, args.repeat, 16)
        print(f"   {n:>7,} open groups: journal only {a['plain'] * 1e6:6.1f}, replace {a['replace'] * 1e6:6.1f} "
              f"(added {(a['replace'] - a['plain']) * 1e6:5.1f})")
    one = many_rules(1, args.events, args.repeat)
    many = many_rules(args.rules, args.events, args.repeat)
    print(f"\n3. durable admission (replace) with 1 and {args.rules:,} correlation rules (µs per event)")
    print(f"   1 rule {one * 1e6:8.1f}    {args.rules:,} rules {many * 1e6:8.1f}    ratio {many / one:.2f}")
    m = memory(args.groups)
    print(f"\n4. memory per open group ({args.groups:,} groups, tracemalloc)")
    for k, v in m.items():
        print(f"   {k:36s} {v:7.0f} bytes")
    g = growth(min(args.groups, 5000))
    print("\n5. journal growth per group (bytes, beyond the member events themselves)")
    for k, v in g.items():
        print(f"   {k:36s} {v:7.0f}")


if __name__ == "__main__":
    main()
