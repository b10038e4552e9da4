"""triggerc in process, for the tests of its commands (click's CliRunner)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from triggerlang.cli import main


def invoke(*args: str, input: str | None = None) -> Result:
    """``triggerc ARGS`` in this process, ``input`` on its stdin."""
    return CliRunner().invoke(main, list(args), input=input)


@pytest.fixture
def in_tmp_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The test's own folder as the working folder, and no colour in the output."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
