"""Packaging: the sdist and the wheel, built the way a release would build them.

``python -m build`` (isolated: it installs the build backend pyproject.toml names, so this
needs the package index, as ``pip install .`` does) must build both with no warning from
setuptools; the sdist carries what the tests need (tests/, examples/, docs/, the grammar,
LICENSE) and no bytecode; the wheel carries the grammar and the dashboard's files, and
declares its licence the PEP 639 way. That a non-editable install works end to end is
shown by ``.ci/run``, which installs the project that way and runs this suite on it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from triggerlang import PROJECT_URL, __version__

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> tuple[Path, Path, str]:
    out = tmp_path_factory.mktemp("dist")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # (its own notice)
    r = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel, r.stdout + r.stderr


def test_build_has_no_warnings(dists) -> None:
    log = dists[2]
    noisy = [line for line in log.splitlines() if re.search(r"warn|deprecat", line, re.I)]
    assert not noisy, "\n".join(noisy)


def test_sdist_carries_what_the_tests_need(dists) -> None:
    sdist = dists[0]
    with tarfile.open(sdist) as tar:
        top = f"triggerlang-{__version__}/"
        names = {m.name.removeprefix(top) for m in tar.getmembers() if m.isfile()}
    for needed in ("LICENSE", "README.md", "SECURITY.md", "pyproject.toml", "grammar/triggerlang.lark",
                   "grammar/triggerlang.tables.json",
                   "tests/conftest.py", "tests/cases/TRG203_unknown_field.trg", "tests/golden/project.json",
                   "examples/deploy.trg", "examples/events/push-main.json", "examples/scripts/deploy.sh",
                   "docs/diagnostics.md", "editors/vscode/syntaxes/triggerlang.tmLanguage.json"):
        assert needed in names, needed
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    if (ROOT / ".git").exists():  # every tracked file of these folders (a new kind of file would be left out)
        tracked = subprocess.run(["git", "ls-files", "tests", "examples", "docs", "grammar", "triggerlang", "editors"],
                                 cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
        missing = sorted(set(tracked) - names)
        assert not missing, f"MANIFEST.in leaves out {missing}"


def test_wheel_carries_the_grammar_and_declares_its_licence(dists) -> None:
    wheel = dists[1]
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = Parser().parsestr(z.read(f"triggerlang-{__version__}.dist-info/METADATA").decode())
    assert "triggerlang/grammar/triggerlang.lark" in names
    assert "triggerlang/grammar/triggerlang.tables.json" in names  # parsing needs no Lark at start-up
    assert "triggerlang/dashboard/templates/index.html" in names
    assert f"triggerlang-{__version__}.dist-info/licenses/LICENSE" in names
    assert not [n for n in names if n.startswith(("tests/", "examples/", "docs/"))]
    assert meta["License-Expression"] == "MIT"
    assert meta["License-File"] == "LICENSE"
    assert f"Homepage, {PROJECT_URL}" in meta.get_all("Project-URL")
    assert any(c.startswith("Programming Language :: Python :: 3.11") for c in meta.get_all("Classifier"))
    assert not [c for c in meta.get_all("Classifier") if c.startswith("License ::")]  # PEP 639: the expression says it
    assert meta["Description-Content-Type"] == "text/markdown"


def test_pre_commit_hooks_run_triggerc_on_trg_files(tmp_path: Path) -> None:
    """The hooks of .pre-commit-hooks.yaml, run as pre-commit runs them (entry + args +
    the staged file names): check fails on a warning (--strict), fmt rewrites in place.
    (`pre-commit try-repo` with both hooks was run by hand: README, "Using triggerlang in CI".)"""
    import yaml
    from click.testing import CliRunner

    from triggerlang.cli import main

    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"triggerc-check", "triggerc-fmt"}
    rules = tmp_path / "rules.trg"
    rules.write_text('action a = shell "true"\non   git.push run a\nlet unused = 1\n')
    for hook in hooks.values():
        assert hook["language"] == "python" and re.search(hook["files"], "ci/rules.trg")
        assert not re.search(hook["files"], "rules.trg.bak")
        assert hook["entry"].split()[0] == "triggerc"  # the console script the package installs

    def run(hook_id: str):
        hook = hooks[hook_id]
        return CliRunner().invoke(main, hook["entry"].split()[1:] + hook.get("args", []) + [str(rules)])

    r = run("triggerc-check")
    assert r.exit_code == 1 and "warning[TRG105]" in r.output  # a warning fails the hook
    r = run("triggerc-fmt")
    assert r.exit_code == 0 and rules.read_text().startswith('action a = shell "true"\non git.push run a\n')


def test_grammar_found_from_a_source_tree_without_the_mapped_package(monkeypatch):
    """`python -m pytest` in a checkout puts the source tree first on sys.path, where
    `triggerlang.grammar` (a wheel-only mapping of grammar/) does not exist: the grammar
    and its tables are still found, in ../grammar."""
    from triggerlang.syntax import tables

    monkeypatch.setitem(sys.modules, "triggerlang.grammar", None)  # import raises ImportError
    folder = tables._grammar_folder()
    assert os.path.isfile(os.path.join(folder, tables.GRAMMAR_NAME))
    assert os.path.isfile(os.path.join(folder, tables.TABLES_NAME))
