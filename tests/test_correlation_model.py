"""The correlation engine against a small, independent reference model of SPEC §11.3.

Random sequences of events (a type, a key or none) arriving at random times, with waits
between them, go through the engine (:class:`~triggerlang.correlation.sim.Simulation`)
and through :class:`Model` below, written from the spec's text alone: a dictionary of
groups per rule, re-scanned for deadlines before every step. After every step the two
must agree on what fired and what expired (rule, key, time, members present) and on the
groups left open (rule, key, members present, deadline).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triggerlang.api import compile_text
from triggerlang.correlation.clock import TEST_EPOCH as T0
from triggerlang.correlation.sim import Simulation
from triggerlang.events import Event

D = 600.0   # every rule's window: 10 minutes
TYPES = ["push", "tag", "merge"]   # git event types; each member of a rule listens to one of them

RULES = '''\
action d = shell "true"
r_all: on all(git.push as a, git.tag as b, git.merge as c) same <sha> within 10m run d
r_any: on any(git.push as a, git.tag as b) same <sha> within 10m run d
r_nof: on 2 of (git.push as a, git.tag as b, git.merge as c) same <sha> within 10m run d
r_seq: on seq(git.push as a, git.tag as b, git.merge as c) same <sha> within 10m run d
r_cnt: on 3 of git.push as a same <sha> within 10m run d
r_aft: on absent(git.tag as m) after git.push as a same <sha> within 10m run d
r_for: on absent(git.merge as m) same <sha> for 10m run d
r_one: on all(git.push as a, git.tag as b) within 10m run d
'''

KIND = {"r_all": ("all", ["a", "b", "c"]), "r_any": ("any", ["a", "b"]), "r_nof": ("nof", ["a", "b", "c"]),
        "r_seq": ("seq", ["a", "b", "c"]), "r_cnt": ("cnt", ["a"]), "r_aft": ("aft", ["m", "a"]),
        "r_for": ("for", ["m"]), "r_one": ("all", ["a", "b"])}
TYPE_OF = {"r_all": TYPES, "r_any": TYPES[:2], "r_nof": TYPES, "r_seq": TYPES, "r_cnt": ["push"],
           "r_aft": ["tag", "push"], "r_for": ["merge"], "r_one": TYPES[:2]}


class Model:
    """§11.3 for the rules above, as plainly as it can be written."""

    def __init__(self):
        self.groups: dict[str, dict] = {name: {} for name in KIND}   # rule -> key -> group
        self.effects: list[tuple] = []

    # -- time
    def tick(self, now: float) -> None:
        """Every deadline <= now, in deadline order (ties: the order the groups were made)."""
        while True:
            due = [(g["deadline"], g["n"], rule, key) for rule, gs in self.groups.items()
                   for key, g in gs.items() if g["deadline"] <= now]
            if not due:
                return
            t, _, rule, key = min(due)
            g = self.groups[rule][key]
            kind = KIND[rule][0]
            if kind in ("aft", "for"):
                self.effects.append((t, rule, key, "fire", tuple(g["present"])))
                del self.groups[rule][key]
            elif kind == "any" and g["fired"]:
                del self.groups[rule][key]
            elif kind == "cnt":
                g["times"] = [x for x in g["times"] if x + D > t]
                if g["times"]:
                    g["deadline"] = g["times"][0] + D
                else:
                    self.effects.append((t, rule, key, "expire", ("a",)))
                    del self.groups[rule][key]
            else:
                self.effects.append((t, rule, key, "expire", tuple(a for a in KIND[rule][1] if a in g["slots"])))
                del self.groups[rule][key]

    # -- events
    def event(self, now: float, typ: str, sha: str | None, n: int) -> None:
        self.tick(now)
        for rule, (kind, aliases) in KIND.items():
            if typ not in TYPE_OF[rule]:
                continue
            alias = aliases[TYPE_OF[rule].index(typ)]
            key = "" if rule == "r_one" else sha
            if key is None:
                continue            # key <sha> missing: not admitted
            gs = self.groups[rule]
            g = gs.get(key)
            if kind == "aft":
                if alias == "m":
                    if g is not None:
                        del gs[key]     # satisfied
                else:
                    gs[key] = {"deadline": now + D, "n": n, "present": ["a"]}
                continue
            if kind == "for":
                gs[key] = {"deadline": now + D, "n": g["n"] if g else n, "present": []}
                continue
            if kind == "cnt":
                if g is None:
                    g = gs[key] = {"times": [], "n": n, "deadline": 0.0}
                g["times"].append(now)
                if len(g["times"]) >= 3:
                    self.effects.append((now, rule, key, "fire", ("a",)))
                    del gs[key]
                else:
                    g["deadline"] = g["times"][0] + D
                continue
            if kind == "any" and g is not None and g["fired"]:
                continue            # absorbed
            if kind == "seq":
                pos = aliases.index(alias)
                filled = len(g["slots"]) if g else 0
                if g is None:
                    if pos != 0:
                        continue
                elif pos == filled:
                    pass
                elif pos == filled - 1:
                    if pos == 0:    # only the first step: the window restarts
                        g["deadline"] = now + D
                else:
                    continue        # out of order
            if g is None:
                g = gs[key] = {"deadline": now + D, "n": n, "slots": {}, "fired": False}
            g["slots"][alias] = now
            need = {"all": len(aliases), "any": 1, "nof": 2, "seq": 3}[kind]
            if len(g["slots"]) >= need:
                self.effects.append((now, rule, key, "fire", tuple(a for a in aliases if a in g["slots"])))
                if kind == "any":
                    g["fired"] = True
                else:
                    del gs[key]

    def open_groups(self) -> set[tuple]:
        out = set()
        for rule, gs in self.groups.items():
            kind, aliases = KIND[rule]
            for key, g in gs.items():
                if kind in ("aft", "for"):
                    present = tuple(g["present"])
                elif kind == "cnt":
                    present = ("a",) * len(g["times"])
                else:
                    present = tuple(a for a in aliases if a in g["slots"])
                out.add((rule, key, present, g["deadline"]))
        return out


def engine_open_groups(sim: Simulation) -> set[tuple]:
    import json

    out = set()
    for r in sim.engine.rules:
        for g in sim.state.live_groups(r.name):
            key = json.loads(g.key[0]) if g.key else ""
            if r.kind == "count":
                present = ("a",) * len(g.slots[0])
            else:
                present = tuple(m.alias for m in r.members if r._has(g.slots, m.index))
            out.add((r.name, key, present, g.deadline))
    return out


MANIFEST = compile_text(RULES, "rules.trg", "/tmp").manifest

steps = st.lists(st.one_of(
    st.tuples(st.just("event"), st.integers(0, 400), st.sampled_from(TYPES), st.sampled_from(["a", "b", None])),
    st.tuples(st.just("wait"), st.integers(1, 900), st.none(), st.none()),
), max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_the_engine_agrees_with_the_reference_model(seq) -> None:
    sim = Simulation(MANIFEST["rules"], MANIFEST["actions"], T0)
    model = Model()
    now = T0
    for n, (kind, dt, typ, sha) in enumerate(seq):
        now += dt
        model.effects.clear()
        if kind == "wait":
            step = sim.advance(now)
            model.tick(now)
        else:
            data = {"branch": "main"} if sha is None else {"branch": "main", "sha": sha}
            step = sim.deliver([Event("git", typ, data)], now)
            model.event(now, typ, sha, n)
        got = sorted((o.time, o.rule, o.keys[0] if o.keys else "", o.action,
                      tuple(o.have) if o.rule != "r_cnt" else ("a",))
                     for o in step.outcomes if o.action in ("fire", "expire"))
        assert got == sorted(model.effects), (seq[:n + 1], got, model.effects)
        assert engine_open_groups(sim) == model.open_groups(), seq[:n + 1]
