"""The workspace index: definitions across files, the disk cache, updates, threads, ranking."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections import Counter
from pathlib import Path

import pytest

from tandem.context import index as index_module
from tandem.context.index import WorkspaceIndex

A = """\
def helper(x):
    return x


class Point:
    def norm(self):
        return 0

    def scale(self, k):
        return helper(k)
"""
B = """\
from a import helper


def use():
    return helper(1) + helper(2)
"""
C = """\
class Point:
    pass
"""


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def touch_later(path: Path, text: str) -> None:
    """Rewrite a file with an mtime surely different from before."""
    old = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(old + 10**9, old + 10**9))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    write(folder, "a.py", A)
    write(folder, "pkg/b.py", B)
    write(folder, "pkg/c.py", C)
    write(folder, "notes.txt", "Point helper\n")  # no known language: not indexed
    write(folder, "node_modules/dep/index.py", "def helper():\n    pass\n")  # denied
    return folder


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def where(tags: list) -> list[tuple[str, int]]:
    return [(t.rel, t.tag.line) for t in tags]


def test_definitions_across_files(root, cache):
    index = WorkspaceIndex(root, cache)
    stats = index.build()
    assert index.ready
    assert stats.files == 3 and stats.parsed == 3 and stats.reused == 0
    assert [p.relative_to(root).as_posix() for p in index.files()] == [
        "a.py", "pkg/b.py", "pkg/c.py",
    ]  # fmt: skip
    assert where(index.definitions("helper")) == [("a.py", 0)]
    assert where(index.definitions("Point")) == [("a.py", 4), ("pkg/c.py", 0)]
    assert index.definitions("Point")[0].path == root / "a.py"
    assert index.definitions("nothing") == []
    tags = index.file_tags(root / "pkg/b.py")
    assert [t.name for t in tags.definitions] == ["use"]
    assert "helper" in {t.name for t in tags.references}
    assert len(tags.imports) == 1
    assert index.file_tags("notes.txt") is None


def test_restart_reuses_the_cache(root, cache):
    first = WorkspaceIndex(root, cache)
    first.build()
    first.close()
    again = WorkspaceIndex(root, cache)
    stats = again.build()
    assert (stats.files, stats.parsed, stats.reused) == (3, 0, 3)
    assert where(again.definitions("Point")) == [("a.py", 4), ("pkg/c.py", 0)]


def test_a_changed_file_alone_is_parsed_again(root, cache):
    WorkspaceIndex(root, cache).build()
    touch_later(root / "pkg/c.py", "class Segment:\n    pass\n")
    index = WorkspaceIndex(root, cache)
    stats = index.build()
    assert (stats.parsed, stats.reused) == (1, 2)
    assert where(index.definitions("Point")) == [("a.py", 4)]
    assert where(index.definitions("Segment")) == [("pkg/c.py", 0)]


def test_a_changed_query_parses_everything_again(root, cache, monkeypatch):
    WorkspaceIndex(root, cache).build()
    monkeypatch.setattr(index_module, "_query_hash", lambda spec: "edited")
    stats = WorkspaceIndex(root, cache).build()
    assert (stats.parsed, stats.reused) == (3, 0)


def test_update_after_save_create_and_delete(root, cache):
    index = WorkspaceIndex(root, cache)
    index.build()
    touch_later(root / "pkg/c.py", "class Point:\n    pass\n\n\ndef extra():\n    pass\n")
    index.update(root / "pkg/c.py")
    assert where(index.definitions("extra")) == [("pkg/c.py", 4)]
    write(root, "pkg/new.py", "def fresh():\n    pass\n")
    index.update("pkg/new.py")  # a relative path works too
    assert where(index.definitions("fresh")) == [("pkg/new.py", 0)]
    (root / "a.py").unlink()
    index.update(root / "a.py")
    assert index.definitions("helper") == []
    assert where(index.definitions("Point")) == [("pkg/c.py", 0)]
    index.remove(root / "pkg/new.py")
    assert index.definitions("fresh") == []
    write(root, "build/gen.py", "def built():\n    pass\n")
    index.update(root / "build/gen.py")  # ignored files are never indexed
    assert index.definitions("built") == []
    index.update(root.parent / "elsewhere.py")  # outside the workspace: nothing happens
    assert len(index.files()) == 2


def test_a_rebuild_drops_deleted_files(root, cache):
    index = WorkspaceIndex(root, cache)
    index.build()
    (root / "pkg/c.py").unlink()
    stats = index.build()
    assert stats.files == 2
    assert where(index.definitions("Point")) == [("a.py", 4)]


def test_no_cache_dir_works(root):
    index = WorkspaceIndex(root, None)
    assert index.build().parsed == 3
    assert index.build().parsed == 3  # nothing to reuse


def test_cache_path_that_is_a_file_warns_once_and_works(root, tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("in the way")
    with caplog.at_level(logging.WARNING, logger="tandem.context.tag_cache"):
        index = WorkspaceIndex(root, blocker)
        stats = index.build()
        index.update(root / "a.py")
    assert stats.parsed == 3
    assert where(index.definitions("helper")) == [("a.py", 0)]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "indexing without it" in warnings[0].getMessage()


def test_garbage_in_the_cache_database_warns_once_and_works(root, cache, caplog):
    first = WorkspaceIndex(root, cache)
    first.build()
    first.close()
    db = cache / "tags" / "cache.db"
    assert db.exists()
    db.write_bytes(b"this is not sqlite" * 1000)
    for name in ("cache.db-wal", "cache.db-shm"):
        (cache / "tags" / name).unlink(missing_ok=True)
    with caplog.at_level(logging.WARNING, logger="tandem.context.tag_cache"):
        index = WorkspaceIndex(root, cache)
        stats = index.build()
    assert (stats.files, stats.parsed) == (3, 3)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_a_cache_failing_mid_build_is_dropped(root, cache, caplog, monkeypatch):
    index = WorkspaceIndex(root, cache)

    def broken(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(index.tag_cache.disk, "get", broken)
    with caplog.at_level(logging.WARNING, logger="tandem.context.tag_cache"):
        stats = index.build()
        index.build()
    assert stats.parsed == 3
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_background_build_while_querying(tmp_path, cache):
    root = tmp_path / "big"
    for i in range(300):
        write(
            root,
            f"m{i % 10}/f{i}.py",
            f"def func{i}(x):\n    return helper(x)\n\n\nclass C{i}:\n    pass\n",
        )
    write(root, "helpers.py", "def helper(x):\n    return x\n")
    index = WorkspaceIndex(root, cache)
    index.start()
    index.start()  # a second call while running does nothing
    errors: list[BaseException] = []

    def query() -> None:
        try:
            while not index.ready:
                index.definitions("helper")
                index.rank(["helper", "func3", "C7"], near=root / "m3/f3.py")
                index.files()
            index.update(root / "helpers.py")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=query) for _ in range(3)]
    for thread in threads:
        thread.start()
    assert index.wait(30)
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert index.stats.files == 301
    assert where(index.definitions("helper")) == [("helpers.py", 0)]
    assert where(index.definitions("func299")) == [("m9/f299.py", 0)]


# ---- ranking -------------------------------------------------------------------------------


@pytest.fixture
def ranked(tmp_path: Path) -> WorkspaceIndex:
    root = tmp_path / "rank"
    write(root, "geo/shapes.py", A)  # Point with norm and scale
    write(root, "geo/other.py", C)  # a bare Point
    write(root, "app/views/widget.py", "class Widget:\n    pass\n")
    write(root, "lib/widget.py", "class Widget:\n    pass\n")
    write(root, "lib/names.py", "def alpha():\n    pass\n\n\ndef beta():\n    pass\n")
    for i in range(3):
        write(root, f"users/u{i}.py", "from lib.names import alpha\n\nalpha()\n")
    write(root, "users/b.py", "from lib.names import beta\n\nbeta()\n")
    index = WorkspaceIndex(root, None)
    index.build()
    return index


def test_rank_prefers_definitions_matching_more_of_the_names(ranked):
    names = Counter({"Point": 2, "norm": 1, "scale": 1})
    top = ranked.rank(names)
    assert (top[0].rel, top[0].tag.name) == ("geo/shapes.py", "Point")  # 2 + 1 + 1
    assert (top[1].rel, top[1].tag.name) == ("geo/other.py", "Point")  # 2
    assert {t.tag.name for t in top[2:]} == {"norm", "scale"}


def test_rank_weights_by_use_count(ranked):
    assert [t.tag.name for t in ranked.rank(["beta", "beta", "alpha"])] == ["beta", "alpha"]
    assert [t.tag.name for t in ranked.rank({"alpha": 0.5, "beta": 2.0})] == ["beta", "alpha"]


def test_rank_prefers_the_same_file_then_nearby_folders(ranked):
    near_views = ranked.rank(["Widget"], near=ranked.root / "app/views/page.py")
    assert [t.rel for t in near_views] == ["app/views/widget.py", "lib/widget.py"]
    near_lib = ranked.rank(["Widget"], near=ranked.root / "lib/other.py")
    assert [t.rel for t in near_lib] == ["lib/widget.py", "app/views/widget.py"]
    same_file = ranked.rank(["Point"], near=ranked.root / "geo/other.py")
    assert [t.rel for t in same_file] == ["geo/other.py", "geo/shapes.py"]


def test_rank_then_prefers_names_more_files_use(ranked):
    assert [t.tag.name for t in ranked.rank(["beta", "alpha"])] == ["alpha", "beta"]


def test_rank_limit_and_unknown_names(ranked):
    assert ranked.rank([]) == []
    assert ranked.rank(["no_such_name"]) == []
    assert len(ranked.rank(["Point", "Widget", "alpha"], limit=2)) == 2
