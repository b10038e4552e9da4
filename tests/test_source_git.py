"""The git source against real repositories in tmp_path: commits, merges, branches, tags,
packed refs, and pushes received by a bare repository (no hook installed)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from triggerlang.events import Event
from triggerlang.sources.base import Submitted
from triggerlang.sources.git import GitSource, read_refs

from source_harness import SourceHarness, run_source as _run

ZERO = "0" * 40
DEADLINE = 15.0

GIT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_AUTHOR_NAME": "Alice Example",
    "GIT_AUTHOR_EMAIL": "alice@example.com",
    "GIT_COMMITTER_NAME": "Alice Example",
    "GIT_COMMITTER_EMAIL": "alice@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


def git(cwd: Path, *args: str) -> str:
    res = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
        cwd=cwd, env=GIT_ENV, capture_output=True, text=True,
    )
    assert res.returncode == 0, f"git {' '.join(args)} failed: {res.stderr}"
    return res.stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        p = repo / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    commit(path, {"README.md": "hello\n"}, "initial")
    return path


class Harness(SourceHarness):
    deadline = DEADLINE

    @property
    def handler(self) -> "Harness":  # the harness is the log handler (messages)
        return self

    def describe_events(self):
        return [(e.type, e.data.get("ref")) for e in self.events]

    def of(self, typ: str, ref: str | None = None) -> list[Event]:
        return [e for e in self.events if e.type == typ and (ref is None or e.data["ref"] == ref)]

    async def wait_event(self, typ: str, ref: str, n: int = 1) -> Event:
        await self.wait_for(lambda: len(self.of(typ, ref)) >= n, f"{n}x git.{typ} on {ref}")
        return self.of(typ, ref)[n - 1]


def run_source(base: Path, config: dict[str, Any], body: Callable[[Harness, GitSource], Awaitable[None]]) -> Harness:
    return _run(Harness(base), GitSource, config, body)


CFG = {"repos": [{"path": ".", "repo": "."}], "poll": 0.05}


def test_initial_snapshot_is_silent_and_a_commit_is_a_push(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "work")
    before = git(repo, "rev-parse", "HEAD")

    async def body(h: Harness, src: GitSource) -> None:
        assert src.describe() == f"git: watching refs of {repo}"
        after = commit(repo, {"src/app.py": "print(1)\n", "docs/a.md": "a\n"}, "Add app\n\nWith a body.")
        ev = await h.wait_event("push", "refs/heads/main")
        # the first event is the commit: the existing refs produced nothing at start
        assert h.events[0] is ev
        assert ev.source == "git"
        assert ev.data == {
            "repo": ".", "ref": "refs/heads/main", "branch": "main",
            "before": before, "after": after, "sha": after, "forced": False,
            "author": "Alice Example", "author_email": "alice@example.com",
            "message": "Add app\n\nWith a body.",
            "files": ["docs/a.md", "src/app.py"], "commits": 1,
        }

    run_source(repo, CFG, body)


def test_merge_commit_emits_push_and_merge(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "work")
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, {"feature.txt": "f\n"}, "feature work")
    git(repo, "checkout", "-q", "main")
    base = commit(repo, {"main.txt": "m\n"}, "main work")

    async def body(h: Harness, src: GitSource) -> None:
        git(repo, "merge", "-q", "--no-ff", "feature", "-m", "Merge feature")
        merge = await h.wait_event("merge", "refs/heads/main")
        push = h.of("push", "refs/heads/main")[0]
        assert push.data == merge.data
        assert merge.data["before"] == base
        assert merge.data["message"] == "Merge feature"
        assert merge.data["files"] == ["feature.txt"]
        assert merge.data["commits"] == 2  # the feature commit and the merge commit
        assert merge.data["forced"] is False
        assert len(git(repo, "rev-parse", "HEAD^@").split()) == 2

    run_source(repo, CFG, body)


def test_branch_created_and_deleted(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "work")
    head = commit(repo, {"second.txt": "2\n"}, "second")

    async def body(h: Harness, src: GitSource) -> None:
        # a branch on an existing commit: counts as its head commit alone
        git(repo, "branch", "topic")
        created = await h.wait_event("branch_created", "refs/heads/topic")
        push = await h.wait_event("push", "refs/heads/topic")
        assert h.events.index(created) < h.events.index(push)
        assert created.data["before"] == ZERO and created.data["after"] == head == created.data["sha"]
        assert created.data["branch"] == "topic" and created.data["commits"] == 1
        assert created.data["files"] == ["second.txt"]
        assert created.data["message"] == "second"
        assert push.data == created.data

        # a branch carrying new commits: those commits and the files they touched
        git(repo, "checkout", "-q", "-b", "feat/x")
        commit(repo, {"a.txt": "a\n"}, "one")
        tip = commit(repo, {"b/c.txt": "c\n"}, "two")
        git(repo, "checkout", "-q", "main")
        # the branch and its commits were written while checked out: the source may have
        # seen the creation before the commits, so wait for the final push
        await h.wait_for(lambda: any(e.data["after"] == tip for e in h.of("push", "refs/heads/feat/x")), "feat/x tip")
        assert h.of("branch_created", "refs/heads/feat/x")

        git(repo, "branch", "-q", "-D", "topic")
        deleted = await h.wait_event("branch_deleted", "refs/heads/topic")
        assert deleted.data == {
            "repo": ".", "ref": "refs/heads/topic", "branch": "topic", "before": head,
            "after": ZERO, "sha": ZERO, "forced": False, "files": [], "commits": 0,
        }

    run_source(repo, CFG, body)


def test_new_branch_with_commits_counts_only_its_own(tmp_path: Path) -> None:
    """A branch that appears at once with two new commits (as a push would bring it)."""
    repo = make_repo(tmp_path / "work")
    git(repo, "checkout", "-q", "-b", "scratch")
    commit(repo, {"x/1.txt": "1\n"}, "one")
    tip = commit(repo, {"x/2.txt": "2\n"}, "two")
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "scratch")  # the commits stay in the object store

    async def body(h: Harness, src: GitSource) -> None:
        git(repo, "update-ref", "refs/heads/landed", tip)
        ev = await h.wait_event("branch_created", "refs/heads/landed")
        assert ev.data["commits"] == 2
        assert ev.data["files"] == ["x/1.txt", "x/2.txt"]
        assert ev.data["message"] == "two"

    run_source(repo, CFG, body)


def test_tags_lightweight_and_annotated_are_peeled(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "work")
    head = git(repo, "rev-parse", "HEAD")

    async def body(h: Harness, src: GitSource) -> None:
        git(repo, "tag", "v1")
        light = await h.wait_event("tag", "refs/tags/v1")
        assert light.data["tag"] == "v1" and light.data["sha"] == head == light.data["after"]
        assert light.data["before"] == ZERO and light.data["forced"] is False
        assert "branch" not in light.data

        git(repo, "tag", "-a", "v2", "-m", "release two")
        ann = await h.wait_event("tag", "refs/tags/v2")
        tag_object = git(repo, "rev-parse", "refs/tags/v2")
        assert tag_object != head
        assert ann.data["sha"] == head and ann.data["after"] == head
        assert ann.data["author"] == "Alice Example"

        new = commit(repo, {"n.txt": "n\n"}, "next")
        git(repo, "tag", "-f", "-a", "v2", "-m", "moved")
        moved = await h.wait_event("tag", "refs/tags/v2", n=2)
        assert moved.data["before"] == head and moved.data["sha"] == new
        assert moved.data["forced"] is True and moved.data["files"] == ["n.txt"]

        git(repo, "tag", "-d", "v1")  # no event for a deleted tag; the next commit is next
        commit(repo, {"m.txt": "m\n"}, "sentinel")
        await h.wait_for(lambda: any(e.data.get("message") == "sentinel" for e in h.events), "sentinel push")
        assert [e.type for e in h.events].count("tag") == 3

    run_source(repo, CFG, body)


def bare_with_clone(tmp_path: Path) -> Path:
    """``tmp_path/server.git`` (bare) with one commit on main, pushed from ``tmp_path/clone``
    (returned)."""
    bare = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    commit(clone, {"a.txt": "1\n"}, "first")
    git(clone, "push", "-q", "origin", "main")
    return clone


def test_a_push_of_many_tags_is_described_in_one_git_call(tmp_path: Path) -> None:
    """Before: each new tag cost one `git log` process, one after another (a `git push
    --tags` of 300 tags: 300 processes before the first event). Now the new tags of one
    update are described by one `git cat-file --batch`, with the fields `git log` gave:
    a merge's parents, a latin-1 commit's message, a tag of a tree (no commit: its own sha)."""
    clone = bare_with_clone(tmp_path)
    bare = tmp_path / "server.git"
    first = git(clone, "rev-parse", "HEAD")
    git(clone, "checkout", "-q", "-b", "side")
    side = commit(clone, {"s.txt": "s\n"}, "side work")
    git(clone, "checkout", "-q", "main")
    commit(clone, {"m.txt": "m\n"}, "main work")
    git(clone, "merge", "-q", "--no-ff", "-m", "Merge side", "side")
    merge = git(clone, "rev-parse", "HEAD")
    (clone / "l.txt").write_text("l\n")
    git(clone, "add", "l.txt")
    subprocess.run(["git", "-c", "i18n.commitEncoding=ISO-8859-1", "commit", "-q", "-F", "-"], cwd=clone,
                   env=GIT_ENV, input="Caf\xe9 cr\xe8me\n\nA body.  \n".encode("latin-1"), check=True)
    latin = git(clone, "rev-parse", "HEAD")
    tags = {}
    for i, sha in enumerate([first, side, merge, latin] * 5):
        name = f"v{i}"
        git(clone, "tag", *(["-a", "-m", f"tag {i}"] if i % 2 else []), name, sha)
        tags[name] = sha
    git(clone, "tag", "tree", "HEAD^{tree}")
    tree = git(clone, "rev-parse", "HEAD^{tree}")
    calls: list[str] = []

    async def body(h: Harness, src: GitSource) -> None:
        real = src._git

        async def counted(r: Any, *args: str) -> tuple[int, bytes]:
            calls.append(args[0])
            return await real(r, *args)

        src._git = counted  # type: ignore[method-assign]
        git(clone, "push", "-q", "origin", "--tags")
        await h.wait_for(lambda: len(h.of("tag")) == len(tags) + 1, "every tag's event")
        src._git = real  # type: ignore[method-assign]
        r = src.repos[0]
        for ev in h.of("tag"):
            if ev.data["tag"] == "tree":
                assert ev.data["sha"] == tree and ev.data["author"] is None
                continue
            assert ev.data["sha"] == tags[ev.data["tag"]]
            one = await src._commit_info(r, ev.data["tag"])   # what `git log` says of it
            assert one is not None
            assert (ev.data["author"], ev.data["author_email"], ev.data["message"]) == (
                one["author"], one["author_email"], one["message"])
        by_tag = {e.data["tag"]: e.data for e in h.of("tag")}
        assert by_tag["v3"]["message"] == "Café crème\n\nA body." and by_tag["v2"]["message"] == "Merge side"
        assert by_tag["v1"]["author"] == "Alice Example" and by_tag["v1"]["author_email"] == "alice@example.com"

    run_source(bare, {"repos": [{"path": str(bare), "repo": "server"}], "poll": 0.05}, body)
    assert calls.count("log") <= 1, calls   # (the tree: `git log` of it, which finds no commit)


def test_bare_repository_sees_pushes_and_forced_pushes(tmp_path: Path) -> None:
    clone = bare_with_clone(tmp_path)
    first = git(clone, "rev-parse", "HEAD")
    cfg = {"repos": [{"path": "server.git", "repo": "server.git"}], "poll": 0.05}

    async def body(h: Harness, src: GitSource) -> None:
        commit(clone, {"a.txt": "2\n"}, "second")
        third = commit(clone, {"lib/b.py": "b\n"}, "third")
        git(clone, "push", "-q", "origin", "main")
        push = await h.wait_event("push", "refs/heads/main")
        assert push.data["repo"] == "server.git"
        assert push.data["before"] == first and push.data["after"] == third
        assert push.data["commits"] == 2 and push.data["files"] == ["a.txt", "lib/b.py"]
        assert push.data["forced"] is False and push.data["message"] == "third"

        git(clone, "commit", "-q", "--amend", "-m", "third, rewritten")
        rewritten = git(clone, "rev-parse", "HEAD")
        git(clone, "push", "-q", "-f", "origin", "main")
        forced = await h.wait_event("push", "refs/heads/main", n=2)
        assert forced.data["forced"] is True
        assert forced.data["before"] == third and forced.data["after"] == rewritten
        assert forced.data["message"] == "third, rewritten"
        assert forced.data["commits"] == 1

        git(clone, "push", "-q", "origin", "main:refs/heads/release")
        await h.wait_event("branch_created", "refs/heads/release")
        git(clone, "push", "-q", "origin", "HEAD:refs/tags/v9")
        tag = await h.wait_event("tag", "refs/tags/v9")
        assert tag.data["sha"] == rewritten
        git(clone, "push", "-q", "origin", ":release")
        await h.wait_event("branch_deleted", "refs/heads/release")

    run_source(tmp_path, cfg, body)


def test_packed_refs(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "work")
    git(repo, "branch", "old")
    git(repo, "tag", "v0")

    async def body(h: Harness, src: GitSource) -> None:
        git(repo, "pack-refs", "--all")
        assert not (repo / ".git/refs/heads/main").exists()
        assert "refs/heads/main" in read_refs(repo / ".git")
        # packing changes no ref: the first event must be the commit below
        sha = commit(repo, {"p.txt": "p\n"}, "after packing")
        ev = await h.wait_event("push", "refs/heads/main")
        assert h.events[0] is ev and ev.data["sha"] == sha
        git(repo, "branch", "-D", "old")  # lives only in packed-refs
        await h.wait_event("branch_deleted", "refs/heads/old")
        git(repo, "pack-refs", "--all")
        git(repo, "update-ref", "refs/heads/main", "HEAD~1")  # a reset: forced, moves backward
        back = await h.wait_event("push", "refs/heads/main", n=2)
        assert back.data["forced"] is True and back.data["commits"] == 0
        assert back.data["files"] == ["p.txt"]

    run_source(repo, CFG, body)


def test_missing_repository_is_logged_and_watched_when_it_appears(tmp_path: Path) -> None:
    cfg = {"repos": [{"path": "later", "repo": "later"}], "poll": 0.05}

    async def body(h: Harness, src: GitSource) -> None:
        assert any("no repository" in m for m in h.handler.messages)
        (tmp_path / "later").mkdir()
        git(tmp_path / "later", "init", "-q")
        await h.wait_for(lambda: any("appeared" in m for m in h.handler.messages), "the repository to be found")
        commit(tmp_path / "later", {"x": "x\n"}, "born")
        ev = await h.wait_event("branch_created", "refs/heads/main")
        assert ev.data["repo"] == "later" and ev.data["commits"] == 1 and ev.data["files"] == ["x"]

    run_source(tmp_path, cfg, body)


def test_subdirectory_of_a_working_tree_finds_its_repository(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "work")
    (repo / "ops").mkdir()

    async def body(h: Harness, src: GitSource) -> None:
        commit(repo, {"ops/rules.trg": "# rules\n"}, "rules")
        ev = await h.wait_event("push", "refs/heads/main")
        assert ev.data["files"] == ["ops/rules.trg"]

    run_source(repo / "ops", {"repos": [{"path": ".", "repo": "."}], "poll": 0.05}, body)


def test_submit_failure_does_not_stop_the_watcher(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "work")
    h = Harness(repo)
    calls = {"n": 0}
    orig = h.submit

    async def flaky(event: Event, delivery_key: str | None = None) -> Submitted:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("journal is down")
        return await orig(event, delivery_key)

    h.ctx.submit = flaky

    async def main() -> None:
        src = GitSource(CFG, h.ctx)
        await src.start()
        try:
            commit(repo, {"1": "1\n"}, "lost")
            await h.wait_for(lambda: calls["n"] >= 1, "the failing submit")
            commit(repo, {"2": "2\n"}, "kept")
            ev = await h.wait_event("push", "refs/heads/main")
            assert ev.data["message"] == "kept"
        finally:
            await src.stop()

    asyncio.run(main())


def test_config_accepts_plain_paths(tmp_path: Path) -> None:
    src = GitSource({"repos": ["a", "/abs/b"]}, Harness(tmp_path).ctx)
    assert [(r.repo, r.path) for r in src.repos] == [("a", tmp_path / "a"), ("/abs/b", Path("/abs/b"))]
    assert src.poll == 0.25


def test_in_store_mode_two_watchers_key_each_update_alike(tmp_path: Path) -> None:
    """SPEC §12.2: two ingest nodes watching one repository give one event per update, by
    the delivery key git:<repo>:<ref>:<after> (the store drops the second)."""
    repo = make_repo(tmp_path / "work")
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, {"feature.txt": "f\n"}, "feature work")
    git(repo, "checkout", "-q", "main")
    commit(repo, {"main.txt": "m\n"}, "main work")

    class Keyed(Harness):
        def __init__(self, base: Path) -> None:
            super().__init__(base)
            self.ctx.options = {"shared_store": True}
            self.keys: list[tuple[str, str | None]] = []

        async def submit(self, event: Event, delivery_key: str | None = None) -> Submitted:
            self.keys.append((event.type, delivery_key))
            return await super().submit(event, delivery_key)

    async def main() -> tuple[Keyed, Keyed]:
        a, b = Keyed(repo), Keyed(repo)
        srcs = [GitSource(CFG, a.ctx), GitSource(CFG, b.ctx)]
        for s in srcs:
            await s.start()
        try:
            git(repo, "merge", "-q", "--no-ff", "feature", "-m", "Merge feature")
            git(repo, "branch", "-q", "-D", "feature")
            for h in (a, b):
                await h.wait_event("merge", "refs/heads/main")
                await h.wait_event("branch_deleted", "refs/heads/feature")
        finally:
            for s in srcs:
                await asyncio.wait_for(s.stop(), 5)
        return a, b

    a, b = asyncio.run(main())
    head = git(repo, "rev-parse", "HEAD")
    feature = [e for e in a.events if e.type == "branch_deleted"][0].data["before"]
    assert sorted(a.keys) == sorted(b.keys) == sorted([
        ("push", f"git:.:refs/heads/main:{head}"),
        ("merge", f"git:.:refs/heads/main:{head}/git.merge"),
        ("branch_deleted", f"git:.:refs/heads/feature:deleted:{feature}"),
    ])


def test_a_change_under_refs_wakes_the_watcher_long_before_the_poll(tmp_path: Path) -> None:
    """With a poll of ten minutes, a push to a bare repository is still seen at once: the
    OS reports the change under refs/ and the source polls then (and stops promptly)."""
    clone = bare_with_clone(tmp_path)
    cfg = {"repos": [{"path": "server.git", "repo": "server.git"}], "poll": 600}

    async def body(h: Harness, src: GitSource) -> None:
        for i in range(2, 4):  # twice: the watch goes on after a change
            sha = commit(clone, {"a.txt": f"{i}\n"}, f"change {i}")
            await h.wait_for(src._flag.live.is_set, "the refs watcher to be in place")
            git(clone, "push", "-q", "origin", "main")
            push = await h.wait_event("push", "refs/heads/main", n=i - 1)
            assert push.data["after"] == sha

    t0 = time.monotonic()
    run_source(tmp_path, cfg, body)
    assert time.monotonic() - t0 < 60  # far under one poll: the watcher woke it, and it stopped


def count_git_calls(src: GitSource) -> list[str]:
    """Record the subcommand of every git call the source makes from now on."""
    calls: list[str] = []
    orig = src._git

    async def counted(r: Any, *args: str) -> tuple[int, bytes]:
        calls.append(args[0])
        return await orig(r, *args)

    src._git = counted  # type: ignore[method-assign]
    return calls


def test_a_branch_move_costs_three_git_calls(tmp_path: Path) -> None:
    """A push is described by the head commit (log), the diff and one `rev-list
    --left-right --count before...after` that gives both `commits` and `forced` (a separate
    `merge-base --is-ancestor` made it four); both kinds of move keep their fields."""
    repo = make_repo(tmp_path / "work")
    base = git(repo, "rev-parse", "HEAD")

    async def body(h: Harness, src: GitSource) -> None:
        calls = count_git_calls(src)
        commit(repo, {"a.txt": "a\n"}, "one")
        tip = commit(repo, {"b.txt": "b\n"}, "two")
        ev = await h.wait_for(lambda: [e for e in h.of("push", "refs/heads/main") if e.data["after"] == tip],
                              "the push of two")
        moves = len(h.of("push", "refs/heads/main"))
        assert len(calls) == 3 * moves, calls
        assert ev[-1].data["forced"] is False and ev[-1].data["files"] in (["a.txt", "b.txt"], ["b.txt"])
        calls.clear()
        git(repo, "reset", "-q", "--hard", base)  # backwards: forced, no new commits
        back = await h.wait_event("push", "refs/heads/main", n=moves + 1)
        assert sorted(calls) == ["diff", "log", "rev-list"]
        assert back.data["forced"] is True and back.data["commits"] == 0
        assert back.data["files"] == ["a.txt", "b.txt"]

    run_source(repo, CFG, body)


def test_a_move_from_a_pruned_head_is_forced_with_the_head_commits_files(tmp_path: Path) -> None:
    """A forced push, then a gc that pruned the old head before the source described the
    move: `before` is unknown to git. The push is still reported: forced, no commit count,
    and the new head commit's own files."""
    clone = bare_with_clone(tmp_path)
    bare = tmp_path / "server.git"
    first = git(clone, "rev-parse", "HEAD")
    cfg = {"repos": [{"path": "server.git", "repo": "server.git"}], "poll": 0.05}

    async def body(h: Harness, src: GitSource) -> None:
        gone = commit(clone, {"gone.txt": "g\n"}, "will be pruned")
        git(clone, "push", "-q", "origin", "main")
        await h.wait_event("push", "refs/heads/main")
        git(clone, "reset", "-q", "--hard", first)
        new = commit(clone, {"new.txt": "n\n"}, "rewritten")
        git(clone, "push", "-q", "origin", "main:refs/heads/other")  # the new objects, on another ref
        await h.wait_event("branch_created", "refs/heads/other")
        (bare / "objects" / gone[:2] / gone[2:]).unlink()  # what a prune does to the old head
        git(bare, "update-ref", "refs/heads/main", new)
        ev = await h.wait_event("push", "refs/heads/main", n=2)
        assert ev.data["before"] == gone and ev.data["after"] == new
        assert ev.data["forced"] is True and ev.data["commits"] == 0
        assert ev.data["files"] == ["new.txt"] and ev.data["message"] == "rewritten"

    run_source(tmp_path, cfg, body)


def test_a_nested_repository_that_is_recloned_is_not_mistaken_for_its_parent(tmp_path: Path) -> None:
    """`repo="vendor/lib"`, a clone inside the project's own repository. While it is
    re-cloned (its .git gone for a moment) the source looked for a repository at or above
    the folder, found the project's, and from then on reported the project's commits as
    vendor/lib's. A repository that was found once is looked for where it was found."""
    outer = make_repo(tmp_path / "proj")
    inner = make_repo(outer / "vendor" / "lib")
    cfg = {"repos": [{"path": "vendor/lib", "repo": "vendor/lib"}], "poll": 0.05}

    async def body(h: Harness, src: GitSource) -> None:
        import shutil

        shutil.rmtree(inner / ".git")
        await h.wait_for(lambda: any("no repository" in m for m in h.messages), "the repository to be missed")
        await asyncio.sleep(0.3)  # several polls while only the outer repository is there
        commit(outer, {"outer.txt": "o\n"}, "a commit of the outer repository")
        git(inner, "init", "-q")
        await h.wait_for(lambda: any("appeared" in m for m in h.messages), "the new clone to be found")
        mine = commit(inner, {"lib.txt": "l\n"}, "the library's first commit")
        ev = await h.wait_event("branch_created", "refs/heads/main")
        assert ev.data["repo"] == "vendor/lib" and ev.data["sha"] == mine
        assert not [e for e in h.events if e.data.get("message") == "a commit of the outer repository"], \
            h.describe_events()

    run_source(outer, cfg, body)


def test_deleting_a_watched_repository_reports_no_deleted_branches(tmp_path: Path) -> None:
    """`rm -rf .git` empties refs/heads before it removes refs/ (seen with a few thousand
    loose tags: refs/tags took the rm long enough): a poll in between read "every branch
    deleted" and fired git.branch_deleted for each, which rules that tear things down act
    on. A deletion is now reported only once the repository is still there a moment later.
    Here the rm is played in two steps, 0.3 s apart, on the source's own event loop."""
    repo = make_repo(tmp_path / "work")
    for i in range(5):
        git(repo, "branch", f"b{i}")

    async def body(h: Harness, src: GitSource) -> None:
        import shutil

        for ref in (repo / ".git" / "refs" / "heads").iterdir():
            ref.unlink()  # rm -rf on its way through refs/
        await asyncio.sleep(0.3)
        shutil.rmtree(repo / ".git")  # ... and done
        await h.wait_for(lambda: any("no repository" in m for m in h.messages), "the repository to be missed")
        assert h.events == [], h.describe_events()

        git(repo, "init", "-q")  # back (a re-clone): its refs are the new baseline
        await h.wait_for(lambda: any("appeared" in m for m in h.messages), "the repository to be found again")
        commit(repo, {"n.txt": "n\n"}, "after the re-clone")
        git(repo, "branch", "topic")
        await h.wait_event("branch_created", "refs/heads/topic")
        git(repo, "branch", "-D", "topic")  # a real deletion is still reported
        await h.wait_event("branch_deleted", "refs/heads/topic")
        assert all(e.type != "branch_deleted" or e.data["branch"] == "topic" for e in h.events)

    run_source(repo, CFG, body)


def test_a_missing_repository_is_a_warning_once_not_an_error_each_time(tmp_path: Path) -> None:
    """Before: 'git: no repository at ... waiting' was an ERROR, at each start of the source
    (each reload that made a new one). A wait is not an error: a WARNING the first time,
    DEBUG while nothing new happened (a reload), a WARNING again once it appeared and went away."""
    import logging
    import shutil

    cfg = {"repos": [{"path": "later", "repo": "later"}], "poll": 0.05}
    h = Harness(tmp_path)
    said: list[tuple[int, str]] = []
    h.emit = lambda record: (h.messages.append(record.getMessage()),  # type: ignore[method-assign]
                             said.append((record.levelno, record.getMessage())))

    def missing() -> list[int]:
        return [level for level, m in said if m.startswith("git: no repository at")]

    async def main() -> None:
        for _ in range(2):   # a start, then a reload's new source
            src = GitSource(cfg, h.ctx)
            await src.start()
            await asyncio.sleep(0.15)   # polls, which say nothing more
            await src.stop()
        src = GitSource(cfg, h.ctx)
        await src.start()
        try:
            (tmp_path / "later").mkdir()
            git(tmp_path / "later", "init", "-q")
            await h.wait_for(lambda: any("appeared" in m for m in h.messages), "the repository to be found")
            shutil.rmtree(tmp_path / "later")
            await h.wait_for(lambda: len(missing()) == 4, "the repository to be missed again")
        finally:
            await src.stop()

    asyncio.run(main())
    assert missing() == [logging.WARNING, logging.DEBUG, logging.DEBUG, logging.WARNING], said
    first = next(m for _, m in said if m.startswith("git: no repository at"))
    assert first == (f"git: no repository at {tmp_path / 'later'} (repo='later'); waiting for one to appear there "
                     f"(git init or clone it: its refs then are the baseline, no events for what it already holds)")
    assert not [m for level, m in said if level >= logging.ERROR], said
