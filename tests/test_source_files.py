"""The file source with real writes under watchfiles, plus its glob and ignore rules."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from triggerlang.events import Event
from triggerlang.sources.files import FileSource, IgnoreRules

from source_harness import SourceHarness, run_source as _run

DEADLINE = 15.0


class Harness(SourceHarness):
    deadline = DEADLINE

    def describe_events(self):
        return [(e.type, e.data["path"]) for e in self.events]

    def seen(self, path: str, change: str | None = None) -> list[Event]:
        return [e for e in self.events if e.data["path"] == path and (change is None or e.type == change)]

    async def wait_seen(self, path: str, change: str | None = None) -> Event:
        return (await self.wait_for(lambda: self.seen(path, change), f"{change or 'an event'} for {path}"))[0]

    def paths(self) -> set[str]:
        return {e.data["path"] for e in self.events}


def run_source(base: Path, config: dict[str, Any], body: Callable[[Harness, FileSource], Awaitable[None]],
               state_dir: Path | None = None) -> Harness:
    return _run(Harness(base, state_dir), FileSource, config, body)


def test_created_modified_deleted(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()

    async def body(h: Harness, src: FileSource) -> None:
        assert src.describe() == f"file: watching . under {tmp_path.resolve()}"
        f = tmp_path / "src" / "app.py"
        f.write_text("one\n")
        created = await h.wait_seen("src/app.py", "created")
        assert created.source == "file"
        assert created.data == {"path": "src/app.py", "name": "app.py", "ext": "py", "change": "created"}
        with f.open("a") as fh:
            fh.write("two\n")
        modified = await h.wait_seen("src/app.py", "modified")
        assert modified.data["change"] == "modified"
        f.unlink()
        deleted = await h.wait_seen("src/app.py", "deleted")
        assert deleted.data["change"] == "deleted"
        # one event per path per change
        assert [e.type for e in h.seen("src/app.py")] == ["created", "modified", "deleted"]

    run_source(tmp_path, {"root": ".", "roots": ["."]}, body)


def test_always_ignored_and_configured_ignores(tmp_path: Path) -> None:
    (tmp_path / ".git" / "refs").mkdir(parents=True)
    (tmp_path / "state").mkdir()
    (tmp_path / "build" / "out").mkdir(parents=True)
    (tmp_path / "src" / "__pycache__").mkdir(parents=True)

    async def body(h: Harness, src: FileSource) -> None:
        (tmp_path / ".git" / "refs" / "main").write_text("x")
        (tmp_path / ".git" / "index").write_text("x")
        (tmp_path / "state" / "run-1.log").write_text("rule output")  # the state dir
        (tmp_path / "state" / "journal.db").write_text("db")
        (tmp_path / ".triggerlang").mkdir()                        # the manifest's state_dir
        (tmp_path / ".triggerlang" / "x").write_text("x")
        for name in (".app.py.swp", ".app.py.swx", "app.py~", ".#app.py", "4913", "a.tmp", ".DS_Store"):
            (tmp_path / "src" / name).write_text("t")
        (tmp_path / "src" / "__pycache__" / "app.cpython-311.pyc").write_text("c")
        (tmp_path / "src" / "debug.log").write_text("l")           # ignore "*.log"
        (tmp_path / "build" / "out" / "bin").write_text("b")       # ignore "build/**"
        (tmp_path / "sentinel.txt").write_text("s")
        await h.wait_seen("sentinel.txt", "created")
        assert h.paths() == {"sentinel.txt"}

    cfg = {"root": ".", "roots": ["."], "ignore": ["*.log", "build/**"], "state_dir": ".triggerlang"}
    run_source(tmp_path, cfg, body, state_dir=tmp_path / "state")


def test_symlink_out_of_root_is_ignored(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)

    async def body(h: Harness, src: FileSource) -> None:
        (root / "link" / "secret.txt").write_text("through the link")
        (outside / "direct.txt").write_text("not watched at all")
        (root / "inside.txt").write_text("s")
        await h.wait_seen("inside.txt", "created")
        assert h.paths() == {"inside.txt"}

    run_source(tmp_path, {"root": "root", "roots": ["."]}, body)


def test_missing_root_is_watched_through_its_parent(tmp_path: Path) -> None:
    async def body(h: Harness, src: FileSource) -> None:
        assert src.watch_paths() == [str(tmp_path.resolve())]
        (tmp_path / "notes.txt").write_text("outside the roots")
        (tmp_path / "src" / "pkg").mkdir(parents=True)
        (tmp_path / "src" / "pkg" / "mod.py").write_text("x = 1\n")
        ev = await h.wait_seen("src/pkg/mod.py", "created")
        assert ev.data["name"] == "mod.py" and ev.data["ext"] == "py"
        assert "notes.txt" not in h.paths()
        assert h.paths() <= {"src", "src/pkg", "src/pkg/mod.py"}

    run_source(tmp_path, {"root": ".", "roots": ["src"]}, body)


def test_nested_roots_give_one_event_per_change(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()

    async def body(h: Harness, src: FileSource) -> None:
        assert src.watch_paths() == [str(tmp_path.resolve())]
        (tmp_path / "src" / "a.c").write_text("int x;\n")
        await h.wait_seen("src/a.c", "created")
        (tmp_path / "sentinel").write_text("s")
        await h.wait_seen("sentinel")
        assert len(h.seen("src/a.c")) == 1

    run_source(tmp_path, {"root": ".", "roots": ["src", "."]}, body)


def test_a_replaced_file_is_modified_and_a_transient_file_is_dropped(tmp_path: Path) -> None:
    src_ = FileSource({"root": "."}, Harness(tmp_path).ctx)
    (tmp_path / "kept.txt").write_text("x")
    base = str(tmp_path.resolve())
    batch = {
        (1, f"{base}/kept.txt"), (3, f"{base}/kept.txt"),      # deleted and written again
        (1, f"{base}/gone.txt"), (3, f"{base}/gone.txt"),      # came and went
        (1, f"{base}/kept.txt"), (2, f"{base}/kept.txt"),
    }
    assert src_.fold(batch) == [("kept.txt", "modified")]
    assert src_.fold({(1, base)}) == []  # the root itself is not an event


def test_stop_is_prompt(tmp_path: Path) -> None:
    async def main() -> float:
        h = Harness(tmp_path)
        src = FileSource({"root": "."}, h.ctx)
        await src.start()
        t0 = time.monotonic()
        await src.stop()
        return time.monotonic() - t0

    assert asyncio.run(main()) < 1.5


def test_ext_and_name(tmp_path: Path) -> None:
    async def body(h: Harness, src: FileSource) -> None:
        for name in ("archive.tar.gz", ".bashrc", "Makefile"):
            (tmp_path / name).write_text("x")
        for name in ("archive.tar.gz", ".bashrc", "Makefile"):
            await h.wait_seen(name, "created")
        ext = {e.data["name"]: e.data["ext"] for e in h.events}
        assert ext == {"archive.tar.gz": "gz", ".bashrc": "", "Makefile": ""}

    run_source(tmp_path, {"root": "."}, body)


def test_ignore_rules() -> None:
    rules = IgnoreRules(["*.log", "build/**", "node_modules", "/dist/", "docs/gen", "**/tmp-*", "[bad"])
    assert rules.match("x.log") and rules.match("deep/er/x.log")
    assert rules.match("build/out/bin") and not rules.match("src/build/out")
    assert rules.match("node_modules") and rules.match("web/node_modules/a/index.js")
    assert rules.match("dist/app.js") and not rules.match("src/dist/app.js")
    assert rules.match("docs/gen/api.md") and not rules.match("docs/general.md")
    assert rules.match("tmp-1") and rules.match("a/b/tmp-2/c.txt")
    assert not rules.match("src/app.py") and not rules.match("[bad")  # an invalid glob is skipped
    assert not IgnoreRules([]).match("anything")


def test_root_outside_is_dropped(tmp_path: Path) -> None:
    h = Harness(tmp_path / "proj")
    (tmp_path / "proj").mkdir()
    src = FileSource({"root": ".", "roots": ["../elsewhere", "src"]}, h.ctx)
    assert src.roots == [os.path.join(str((tmp_path / "proj").resolve()), "src")]


def test_files_written_into_a_new_folder_at_once_are_reported_once(tmp_path: Path) -> None:
    async def body(h: Harness, src: FileSource) -> None:
        deep = tmp_path / "pkg" / "sub" / "deeper"
        deep.mkdir(parents=True)
        for d in (tmp_path / "pkg", tmp_path / "pkg" / "sub", deep):
            (d / "f.txt").write_text("x")
        (deep / "skip.log").write_text("ignored")
        (deep / ".git").mkdir()
        (deep / ".git" / "HEAD").write_text("ignored")
        for rel in ("pkg/f.txt", "pkg/sub/f.txt", "pkg/sub/deeper/f.txt"):
            await h.wait_seen(rel, "created")
        (tmp_path / "sentinel").write_text("s")
        await h.wait_seen("sentinel")
        created = sorted(e.data["path"] for e in h.events if e.type == "created")
        assert created == sorted([
            "pkg", "pkg/f.txt", "pkg/sub", "pkg/sub/f.txt", "pkg/sub/deeper", "pkg/sub/deeper/f.txt", "sentinel",
        ])

    run_source(tmp_path, {"root": ".", "ignore": ["*.log"]}, body)


def test_a_watched_root_that_is_removed_and_recreated_is_watched_again(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "old.txt").write_text("x")

    async def body(h: Harness, src: FileSource) -> None:
        import shutil

        assert src.watch_paths() == [str((tmp_path / "src").resolve())]
        assert src._stop is not None
        first_watcher = src._stop.live
        shutil.rmtree(tmp_path / "src")
        await h.wait_seen("src/old.txt", "deleted")
        # the source notices its folder is gone and starts a watcher on the parent
        loop = asyncio.get_running_loop()
        end = loop.time() + DEADLINE
        while src._stop.live is first_watcher or not await src.ready(0.1):
            assert loop.time() < end, "no new watcher"
        assert src.watch_paths() == [str(tmp_path.resolve())]
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "new.txt").write_text("y")
        await h.wait_seen("src/new.txt", "created")

    run_source(tmp_path, {"root": ".", "roots": ["src"]}, body)


def test_an_atomic_save_right_after_a_creation_is_reported(tmp_path: Path) -> None:
    # An editor saves a file it has just created by writing a temporary file and renaming
    # it over the original: a new file at the path, to be reported even within the few
    # seconds in which a repeated creation of the same file is not.
    (tmp_path / "src").mkdir()

    async def body(h: Harness, src: FileSource) -> None:
        target = tmp_path / "src" / "new.py"
        target.write_text("one\n")
        await h.wait_seen("src/new.py", "created")
        tmp = tmp_path / "src" / ".new.py.part"
        tmp.write_text("two\n")
        os.replace(tmp, target)
        await h.wait_for(lambda: len(h.seen("src/new.py")) >= 2, "a second event for src/new.py")
        assert [e.type for e in h.seen("src/new.py")] == ["created", "created"]

    run_source(tmp_path, {"root": ".", "roots": ["src"]}, body)
