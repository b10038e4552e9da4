"""Chunked case files (the starlark-go way): every diagnostic code has a ``.trg`` input in
``tests/cases/`` that produces it, with the expected code written as a comment on the
offending line::

    on git.push brnch="main" run deploy  # expect: TRG203

``# expect: TRG203 TRG104`` expects two diagnostics on that line; ``TRG203@13`` also pins
the start column. The diagnostics a file produces must be exactly the markers: none
missing, none extra (warnings included).

A TRG004 case (a file that is not UTF-8) is generated here rather than committed as
binary. Codes in PENDING_CODES (rule tests, SPEC §10, being implemented) are exempt from
"every code has a case" only while no part of triggerlang emits them yet.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest

from triggerlang.api import compile_file
from triggerlang.check.checker import CODES

CASES = Path(__file__).resolve().parent / "cases"
PACKAGE = Path(__file__).resolve().parents[1] / "triggerlang"

PENDING_CODES: set[str] = set()
"""Codes whose feature is still being built: exempt while nothing emits them."""

INTERNAL_CODES = {"TRG000"}
"""Internal errors (a bug in triggerc): no input should produce them."""

MARKER = re.compile(r"#\s*expect:\s*(?P<codes>(?:TRG\d{3}(?:@\d+)?[ \t]*)+)$")
TOKEN = re.compile(r"(TRG\d{3})(?:@(\d+))?")

# Generated cases: name -> bytes (markers inside, like the committed files).
GENERATED = {
    "TRG004_not_utf8.trg": (
        b"# TRG004: a rules file that is not UTF-8 (Latin-1 here) is one clear diagnostic.\n"
        b'action deploy = shell "./deploy.sh"\n'
        b'on git.push branch="caf\xe9" run deploy  # expect: TRG004@24\n'
    ),
    "TRG004_not_utf8_first_byte.trg": b"\xff\xfe o  # expect: TRG004@1\n",
    # the column counts characters, as every other one does: three 'é' before it (six bytes)
    # put it at 27, found by fuzzing
    "TRG004_not_utf8_after_accents.trg": (
        b'action deploy = shell "./deploy.sh"\n'
        b'on git.push branch="\xc3\xa9\xc3\xa9\xc3\xa9\xff" run deploy  # expect: TRG004@24\n'
    ),
}


def case_files() -> list[Path]:
    return sorted(CASES.glob("*.trg"))


def expected_markers(data: bytes) -> tuple[Counter, dict[tuple[str, int], int]]:
    """(Counter of (code, line), {(code, line): column} for pinned columns)."""
    want: Counter = Counter()
    cols: dict[tuple[str, int], int] = {}
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        line = raw.decode("utf-8", errors="replace").rstrip()
        m = MARKER.search(line)
        if not m:
            assert "expect:" not in line, f"line {lineno}: malformed expect marker: {line!r}"
            continue
        for code, col in TOKEN.findall(m.group("codes")):
            want[(code, lineno)] += 1
            if col:
                cols[(code, lineno)] = int(col)
    return want, cols


def run_case(path: Path) -> tuple[Counter, Counter, dict, list]:
    want, cols = expected_markers(path.read_bytes())
    compiled = compile_file(path)
    got = Counter((d.code, d.span.start.line) for d in compiled.diagnostics)
    return want, got, cols, compiled.diagnostics


def _check(path: Path) -> set[str]:
    want, got, cols, diags = run_case(path)
    assert want, f"{path.name} has no '# expect:' marker"
    shown = "\n".join(f"  {d.span.start.line}:{d.span.start.column} {d.code} {d.message}" for d in diags)
    missing, extra = want - got, got - want
    assert not missing and not extra, (
        f"{path.name}: missing {sorted(missing.elements())}, extra {sorted(extra.elements())}\n"
        f"produced:\n{shown}")
    for (code, line), col in cols.items():
        at = [d.span.start.column for d in diags if (d.code, d.span.start.line) == (code, line)]
        assert col in at, f"{path.name}:{line}: {code} expected at column {col}, found at {at}"
    for d in diags:
        assert d.message and "\n" not in d.message, d
        assert (d.span.end.line, d.span.end.column) > (d.span.start.line, d.span.start.column), d
        assert d.code in CODES, d
    return {code for code, _ in got}


@pytest.mark.parametrize("path", case_files(), ids=lambda p: p.name)
def test_case_file(path: Path) -> None:
    _check(path)


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_case(name: str, tmp_path: Path) -> None:
    p = tmp_path / name
    p.write_bytes(GENERATED[name])
    _check(p)


@lru_cache(maxsize=1)
def produced_codes() -> frozenset[str]:
    """Every code some case (committed or generated) produces."""
    import tempfile

    out: set[str] = set()
    for p in case_files():
        out |= {d.code for d in compile_file(p).diagnostics}
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in GENERATED.items():
            p = Path(tmp) / name
            p.write_bytes(data)
            out |= {d.code for d in compile_file(p).diagnostics}
    return frozenset(out)


@lru_cache(maxsize=1)
def emitted_codes() -> frozenset[str]:
    """``"TRGnnn"`` string literals anywhere in triggerlang, except as keys of CODES itself."""
    out: set[str] = set()
    for py in PACKAGE.rglob("*.py"):
        tree = ast.parse(py.read_text("utf-8"), str(py))
        table_keys: set[int] = set()
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            elif isinstance(node, ast.Assign):
                targets = node.targets
            if any(isinstance(t, ast.Name) and t.id == "CODES" for t in targets) and isinstance(node.value, ast.Dict):
                table_keys |= {id(k) for k in node.value.keys}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in table_keys \
                    and re.fullmatch(r"TRG\d{3}", node.value):
                out.add(node.value)
    return frozenset(out)


def test_every_code_has_a_case() -> None:
    required = set(CODES) - INTERNAL_CODES - PENDING_CODES
    missing = sorted(required - produced_codes())
    assert not missing, f"codes no case file produces: {missing} (add tests/cases/<CODE>_*.trg)"


def test_every_case_file_is_named_after_a_code_it_produces() -> None:
    for p in case_files():
        code = p.name[:6]
        assert code in CODES, f"{p.name}: case files are named <CODE>_description.trg"
        want, _ = expected_markers(p.read_bytes())
        assert code in {c for c, _ in want}, f"{p.name} has no marker for {code}"


def test_pending_codes_are_not_emitted_yet_or_have_a_case() -> None:
    assert PENDING_CODES <= set(CODES)
    for code in sorted(PENDING_CODES):
        assert code in produced_codes() or code not in emitted_codes(), (
            f"{code} is emitted by triggerlang now: add tests/cases/{code}_*.trg and remove it from PENDING_CODES")


def test_every_emitted_code_is_in_the_codes_table() -> None:
    unknown = sorted(emitted_codes() - set(CODES))
    assert not unknown, f"codes used in triggerlang but missing from checker.CODES: {unknown}"
    assert "TRG203" in emitted_codes()  # the scan itself works


def test_no_case_produces_an_internal_error() -> None:
    assert not (produced_codes() & INTERNAL_CODES)


def test_marker_parser() -> None:
    want, cols = expected_markers(b'x  # expect: TRG203 TRG104@7\ny\nz # expect: TRG203 TRG203\n')
    assert want == Counter({("TRG203", 1): 1, ("TRG104", 1): 1, ("TRG203", 3): 2})
    assert cols == {("TRG104", 1): 7}
