"""The documentation of the diagnostic codes (check/codedocs.py, docs/diagnostics.md) and
the SARIF output built from it, validated against the OASIS SARIF 2.1.0 schema."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from triggerlang import PROJECT_URL
from triggerlang.api import compile_file, compile_text
from triggerlang.check.checker import CODES
from triggerlang.check.codedocs import CODE_DOCS, DOCS_PAGE, DOCS_URL, docs_page
from triggerlang.cli import main

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "cases"


def test_every_code_is_documented() -> None:
    missing = sorted(set(CODES) - set(CODE_DOCS))
    assert not missing, (f"no entry in triggerlang/check/codedocs.py for {missing}: add one, then "
                         f"python -m triggerlang.check.codedocs > {DOCS_PAGE}")
    assert not set(CODE_DOCS) - set(CODES), "an entry for a code that CODES does not have"
    for code, doc in CODE_DOCS.items():
        assert doc.severity in ("error", "warning"), code
        assert doc.explanation.endswith("."), code


@pytest.mark.parametrize("code", [c for c, d in CODE_DOCS.items() if d.example])
def test_each_example_produces_its_code_alone_with_its_severity(code: str) -> None:
    c = compile_text(CODE_DOCS[code].example, "rules.trg", base_dir="/nonexistent")
    got = {(d.code, d.severity) for d in c.diagnostics}
    assert got == {(code, CODE_DOCS[code].severity)}


def test_case_files_report_each_code_with_its_documented_severity() -> None:
    # the severity a code is emitted with is written where it is emitted; the table must agree
    seen = set()
    for path in sorted(CASES.glob("*.trg")):
        for d in compile_file(path).diagnostics:
            doc = CODE_DOCS[d.code]
            assert d.severity == doc.severity or (d.severity == "warning" and doc.warning_cases), (path.name, d.code)
            seen.add(d.code)
    assert seen == set(CODES) - {"TRG000", "TRG004"}  # (TRG004: a generated case in test_cases.py)


def test_docs_page_is_up_to_date() -> None:
    committed = (ROOT / DOCS_PAGE).read_text(encoding="utf-8")
    assert committed == docs_page(), f"regenerate it: python -m triggerlang.check.codedocs > {DOCS_PAGE}"
    for code in CODES:  # one heading per code: its anchor is what helpUri points at
        assert f"\n## {code}\n" in committed


def test_readme_table_lists_every_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [c for c in CODES if c != "TRG000" and f"| {c} |" not in readme]
    assert not missing, f"README.md's table of diagnostic codes lacks {missing}"


def test_project_urls_agree() -> None:
    import tomllib

    urls = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]
    assert urls["Homepage"] == PROJECT_URL
    assert urls["Diagnostic codes"] == DOCS_URL


# --------------------------------------------------------------------------- SARIF

def git_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


def sarif(*args: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.chdir(cwd)
    r = CliRunner().invoke(main, ["check", "--format", "sarif", *args])
    assert r.exit_code in (0, 1), r.output
    return json.loads(r.stdout)


BROKEN = ('action deploy(sha) = exec "./deploy.sh" sha\n'
          'on git.push brnch="main" run deploy with <sha>\n'
          'let unused = 1\n')


def test_sarif_is_valid_and_repository_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               sarif_validator) -> None:
    repo = git_repo(tmp_path / "repo")
    (repo / "ci" / "rules dir").mkdir(parents=True)
    (repo / "ci" / "rules dir" / "a.trg").write_text(BROKEN)
    (repo / "b.trg").write_text('on git.push run nope\n')
    doc = sarif("rules dir/a.trg", str(repo / "b.trg"), cwd=repo / "ci", monkeypatch=monkeypatch)
    sarif_validator.validate(doc)
    (run,) = doc["runs"]
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": repo.resolve().as_uri() + "/"}}
    locations = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in run["results"]]
    # relative to the repository's root, whatever the working folder; percent-encoded
    assert locations == [{"uri": "ci/rules%20dir/a.trg", "uriBaseId": "%SRCROOT%"}] * 2 + \
        [{"uri": "b.trg", "uriBaseId": "%SRCROOT%"}]
    driver = run["tool"]["driver"]
    assert driver["informationUri"] == PROJECT_URL
    by_id = {r["id"]: r for r in driver["rules"]}
    assert sorted(by_id) == ["TRG104", "TRG105", "TRG203"]
    assert [driver["rules"][r["ruleIndex"]]["id"] for r in run["results"]] == [r["ruleId"] for r in run["results"]]
    assert by_id["TRG105"]["defaultConfiguration"] == {"level": "warning"}
    assert by_id["TRG203"]["defaultConfiguration"] == {"level": "error"}
    assert by_id["TRG203"]["helpUri"] == f"{DOCS_URL}#trg203"
    assert by_id["TRG203"]["shortDescription"]["text"] == "unknown field"
    assert "field" in by_id["TRG203"]["help"]["text"] and "brnch" in by_id["TRG203"]["help"]["markdown"]
    assert run["columnKind"] == "unicodeCodePoints"


def test_sarif_outside_a_repository_and_outside_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         sarif_validator) -> None:
    here = tmp_path / "work"
    here.mkdir()
    other = tmp_path / "elsewhere.trg"
    other.write_text(BROKEN)
    (here / "r.trg").write_text(BROKEN)
    doc = sarif("r.trg", str(other), cwd=here, monkeypatch=monkeypatch)
    sarif_validator.validate(doc)
    (run,) = doc["runs"]
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in run["results"]]
    # no repository: the working folder is the root; a file outside it gets an absolute URI
    assert uris[0] == {"uri": "r.trg", "uriBaseId": "%SRCROOT%"}
    assert uris[-1] == {"uri": other.resolve().as_uri()}


def test_sarif_of_a_clean_file_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sarif_validator) -> None:
    (tmp_path / "ok.trg").write_text('action a = shell "true"\non git.push run a\n')
    doc = sarif("ok.trg", cwd=tmp_path, monkeypatch=monkeypatch)
    sarif_validator.validate(doc)
    assert doc["runs"][0]["results"] == [] and doc["runs"][0]["tool"]["driver"]["rules"] == []


def test_sarif_of_every_case_file_is_valid(monkeypatch: pytest.MonkeyPatch, sarif_validator) -> None:
    doc = sarif(*sorted(str(p) for p in CASES.glob("*.trg")), cwd=ROOT, monkeypatch=monkeypatch)
    sarif_validator.validate(doc)
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert len(rules) >= 40 and all(r["helpUri"].startswith(DOCS_URL + "#trg") for r in rules)


# --------------------------------------------------------------------------- triggerc explain

def test_explain_prints_the_docs_page_entry_of_each_code() -> None:
    page = (ROOT / DOCS_PAGE).read_text(encoding="utf-8")
    r = CliRunner().invoke(main, ["explain", "trg307", "209"])
    assert r.exit_code == 0, r.output
    entries = r.stdout.split("\n\n# ")
    assert entries[0].startswith("# TRG307\n") and entries[1].startswith("TRG209\n")
    # the same text as the page (prose re-wrapped for a terminal), the example's output included
    section = page.split("\n## TRG307\n", 1)[1].split("\n## ", 1)[0]
    assert " ".join(entries[0].split("\n", 1)[1].split()) == " ".join(section.split())
    assert "warning[TRG307]: '=' compares exactly" in entries[0]
    assert max(len(line) for line in entries[0].splitlines() if not line.startswith(("rules.trg", " "))) <= 88


def test_explain_json_and_usage_errors() -> None:
    r = CliRunner().invoke(main, ["explain", "--all", "--format", "json"])
    assert r.exit_code == 0
    got = json.loads(r.stdout)
    assert [e["code"] for e in got] == list(CODES)
    e = next(x for x in got if x["code"] == "TRG707")
    assert e["severity"] == "error" and e["warning_cases"] and e["url"] == f"{DOCS_URL}#trg707"
    assert "error[TRG707]" in e["output"] or "warning[TRG707]" in e["output"]
    r = CliRunner().invoke(main, ["explain", "TRG3O7"])
    assert r.exit_code == 2 and "TRG3O7: no such code (did you mean TRG307?)" in r.stderr
    for args in ([], ["--all", "TRG101"]):
        r = CliRunner().invoke(main, ["explain", *args])
        assert r.exit_code == 2 and "give one or more codes" in r.stderr


# --------------------------------------------------------------------------- GitLab Code Quality

def gitlab(*args: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    monkeypatch.chdir(cwd)
    r = CliRunner().invoke(main, ["check", "--format", "gitlab", *args])
    assert r.exit_code in (0, 1), r.output
    return json.loads(r.stdout)


def test_gitlab_code_quality_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = git_repo(tmp_path / "repo")
    (repo / "ci" / "rules dir").mkdir(parents=True)
    a = repo / "ci" / "rules dir" / "a.trg"
    a.write_text(BROKEN + 'on git.push branch="x/*" run deploy with <sha>\n'
                 'on git.push branch="x/*" forced=true run deploy with <sha>\n')
    report = gitlab("rules dir/a.trg", cwd=repo / "ci", monkeypatch=monkeypatch)
    # what GitLab requires of each finding, paths relative to the repository's root
    for f in report:
        assert set(f) >= {"description", "check_name", "fingerprint", "severity", "location"}
        assert f["location"]["path"] == "ci/rules dir/a.trg"
        assert f["severity"] in ("major", "minor") and len(f["fingerprint"]) == 64
    assert [(f["check_name"], f["severity"], f["location"]["lines"]["begin"]) for f in report] == [
        ("TRG203", "major", 2), ("TRG105", "minor", 3), ("TRG307", "minor", 4), ("TRG307", "minor", 5)]
    assert "did you mean 'branch'?" in report[0]["description"]
    # two identical findings get two fingerprints; moving the lines keeps them all
    prints = [f["fingerprint"] for f in report]
    assert len(set(prints)) == 4
    a.write_text("# a comment\n\n" + a.read_text())
    moved = gitlab("rules dir/a.trg", cwd=repo / "ci", monkeypatch=monkeypatch)
    assert [f["fingerprint"] for f in moved] == prints
    assert [f["location"]["lines"]["begin"] for f in moved] == [4, 5, 6, 7]
    # a clean file: an empty report, which GitLab reads as no findings
    (repo / "ok.trg").write_text('action a = exec "true"\non git.push run a\n')
    assert gitlab("ok.trg", cwd=repo, monkeypatch=monkeypatch) == []
