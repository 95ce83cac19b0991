"""Walking a workspace: ignore files, the default deny list, binaries, sizes, symlinks."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tandem.context import workspace
from tandem.context.workspace import is_ignored, walk


def write(root: Path, rel: str, text: str | bytes = "x = 1\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def walked(root: Path, **kwargs: int) -> set[str]:
    return {p.relative_to(root.resolve()).as_posix() for p in walk(root, **kwargs)}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    folder.mkdir()
    return folder


def test_plain_files_are_walked_in_name_order(root):
    for rel in ("b.py", "a.py", "src/z.ts", "src/m/deep.go", "README.md"):
        write(root, rel)
    paths = list(walk(root))
    assert [p.relative_to(root).as_posix() for p in paths] == [
        "README.md", "a.py", "b.py", "src/z.ts", "src/m/deep.go",
    ]  # fmt: skip
    assert all(p.is_absolute() for p in paths)
    assert is_ignored(root, "a.py") is None
    assert is_ignored(root, root / "src/m/deep.go") is None


def test_root_gitignore(root):
    write(root, ".gitignore", "*.log\nsecret/\n/only_at_root.py\n# comment\n\n")
    write(root, "app.log")
    write(root, "secret/key.py")
    write(root, "only_at_root.py")
    write(root, "sub/only_at_root.py")
    write(root, "sub/debug.log")
    write(root, "keep.py")
    assert walked(root) == {".gitignore", "keep.py", "sub/only_at_root.py"}
    assert is_ignored(root, "app.log") == "ignored by .gitignore"
    assert is_ignored(root, "secret/key.py") == "ignored by .gitignore"
    assert is_ignored(root, "sub/debug.log") == "ignored by .gitignore"
    assert is_ignored(root, "sub/only_at_root.py") is None


def test_a_folder_pattern_does_not_match_a_file(root):
    write(root, ".gitignore", "logs/\n")
    write(root, "logs")  # a file named like the folder pattern
    write(root, "deep/logs/x.py")
    assert walked(root) == {".gitignore", "logs"}


def test_nested_gitignore_is_relative_to_its_folder(root):
    write(root, "pkg/.gitignore", "/local.py\ndata/\n")
    write(root, "pkg/local.py")
    write(root, "pkg/inner/local.py")  # "/local.py" is anchored to pkg/
    write(root, "local.py")  # outside pkg: untouched
    write(root, "pkg/data/x.py")
    write(root, "data/x.py")
    assert walked(root) == {"pkg/.gitignore", "pkg/inner/local.py", "local.py", "data/x.py"}
    assert is_ignored(root, "pkg/local.py") == "ignored by pkg/.gitignore"
    assert is_ignored(root, "pkg/data/x.py") == "ignored by pkg/.gitignore"
    assert is_ignored(root, "local.py") is None


def test_negation_within_a_file_and_across_files(root):
    write(root, ".gitignore", "*.txt\n!keep.txt\nignored/\n!ignored/back.py\n")
    write(root, "a.txt")
    write(root, "keep.txt")
    write(root, "sub/.gitignore", "!notes.txt\n")
    write(root, "sub/notes.txt")  # the deeper file re-admits it
    write(root, "notes.txt")
    write(root, "ignored/back.py")  # git cannot re-admit a file of an ignored folder
    assert walked(root) == {".gitignore", "keep.txt", "sub/.gitignore", "sub/notes.txt"}
    assert is_ignored(root, "sub/notes.txt") is None
    assert is_ignored(root, "notes.txt") == "ignored by .gitignore"
    assert is_ignored(root, "ignored/back.py") == "ignored by .gitignore"


def test_tandemignore_same_syntax_and_overrides_gitignore(root):
    write(root, ".gitignore", "*.gen\n")
    write(root, ".tandemignore", "private/\n*.secret.py\n!wanted.gen\n")
    write(root, "private/plan.py")
    write(root, "db.secret.py")
    write(root, "wanted.gen")
    write(root, "other.gen")
    write(root, "sub/.tandemignore", "drafts/\n")
    write(root, "sub/drafts/a.py")
    write(root, "drafts/a.py")
    write(root, "ok.py")
    assert walked(root) == {
        ".gitignore", ".tandemignore", "wanted.gen", "sub/.tandemignore", "drafts/a.py", "ok.py",
    }  # fmt: skip
    assert is_ignored(root, "db.secret.py") == "ignored by .tandemignore"
    assert is_ignored(root, "sub/drafts/a.py") == "ignored by sub/.tandemignore"
    assert is_ignored(root, "other.gen") == "ignored by .gitignore"


def test_git_info_exclude(root):
    write(root, ".git/info/exclude", "scratch.py\n")
    write(root, "scratch.py")
    write(root, "main.py")
    assert walked(root) == {"main.py"}
    assert is_ignored(root, "scratch.py") == "ignored by .git/info/exclude"


DENIED = [
    (".git/config", "denied folder .git"),
    ("node_modules/left-pad/index.js", "denied folder node_modules"),
    ("web/node_modules/x/index.js", "denied folder node_modules"),
    (".venv/lib/site.py", "denied folder .venv"),
    ("venv/lib/site.py", "denied folder venv"),
    ("__pycache__/mod.py", "denied folder __pycache__"),
    ("pkg/__pycache__/mod.py", "denied folder __pycache__"),
    ("build/lib/mod.py", "denied folder build"),
    ("dist/bundle.js", "denied folder dist"),
    ("target/debug/main.rs", "denied folder target"),
    ("out/main.js", "denied folder out"),
    (".next/server.js", "denied folder .next"),
    (".tox/py311/x.py", "denied folder .tox"),
    (".mypy_cache/3.11/x.py", "denied folder .mypy_cache"),
    (".pytest_cache/v/x.py", "denied folder .pytest_cache"),
    ("static/app.min.js", "minified file"),
    ("static/site.min.css", "minified file"),
    ("src/api.generated.ts", "generated file"),
    ("proto/msg_pb2.py", "generated file"),
    ("proto/msg.pb.go", "generated file"),
    ("package-lock.json", "lock file"),
    ("web/yarn.lock", "lock file"),
    ("Cargo.lock", "lock file"),
    ("poetry.lock", "lock file"),
]


@pytest.mark.parametrize(("rel", "reason"), DENIED)
def test_default_deny_list(root, rel, reason):
    write(root, rel)
    write(root, "main.py")
    assert walked(root) == {"main.py"}
    assert is_ignored(root, rel) == reason


def test_any_folder_holding_pyvenv_cfg_is_a_virtualenv(root):
    write(root, "py311env/pyvenv.cfg", "home = /usr/bin\n")
    write(root, "py311env/lib/python3.11/site-packages/x.py")
    write(root, "main.py")
    assert walked(root) == {"main.py"}
    assert is_ignored(root, "py311env/lib/python3.11/site-packages/x.py") == "virtualenv"


def test_an_explicit_negation_readmits_a_denied_folder(root):
    write(root, ".tandemignore", "!build/\n")
    write(root, "build/recipe.py")  # a real source folder that happens to be named build
    assert walked(root) == {".tandemignore", "build/recipe.py"}
    assert is_ignored(root, "build/recipe.py") is None


def test_binary_files(root):
    write(root, "blob.dat", b"abc\0def")
    write(root, "late_nul.txt", b"a" * 9000 + b"\0")  # only the first 8 KiB are sniffed
    write(root, "image.png", b"not really a png")  # known binary suffix, never opened
    write(root, "text.py")
    assert walked(root) == {"late_nul.txt", "text.py"}
    assert is_ignored(root, "blob.dat") == "binary file"
    assert is_ignored(root, "image.png") == "binary file"


def test_size_limit(root):
    write(root, "small.py", "x" * 200)
    write(root, "huge.py", "x" * (1_000_000 + 1))
    write(root, "exact.py", "x" * 1_000_000)
    assert walked(root) == {"small.py", "exact.py"}
    assert walked(root, max_bytes=100) == set()
    assert is_ignored(root, "huge.py").startswith("too large")
    assert is_ignored(root, "small.py", max_bytes=100).startswith("too large")


def test_symlink_loops_do_not_hang_and_links_stay_inside(root, tmp_path):
    write(root, "a/mod.py")
    os.symlink("..", root / "a" / "up")  # a loop back to the root
    os.symlink(".", root / "self")
    os.symlink(root / "a" / "mod.py", root / "alias.py")  # a file link inside: fine
    outside = write(tmp_path, "outside/secret.py")
    os.symlink(outside, root / "leak.py")  # a file link out of the workspace: never read
    os.symlink(outside.parent, root / "leakdir")
    started = time.perf_counter()
    assert walked(root) == {"a/mod.py", "alias.py"}
    assert time.perf_counter() - started < 1
    assert is_ignored(root, "leak.py") == "symlink out of the workspace"
    assert is_ignored(root, "leakdir/secret.py") == "symlink out of the workspace"
    assert is_ignored(root, "a/up/a/mod.py") == "symlinked folder"
    assert is_ignored(root, "alias.py") is None


def test_is_ignored_judges_missing_files_by_name_and_rejects_outside_paths(root, tmp_path):
    assert is_ignored(root, "node_modules/x/index.js") == "denied folder node_modules"
    assert is_ignored(root, "src/new_file.py") is None
    assert is_ignored(root, tmp_path / "elsewhere.py") == "outside the workspace"
    assert is_ignored(root, "../elsewhere.py") == "outside the workspace"
    assert is_ignored(root, root) is None


def test_walk_prunes_ignored_folders(root, monkeypatch):
    """Ignored folders are never listed (their speed is bench/context.py's to measure)."""
    for d in range(60):
        for f in range(20):
            write(root, f"pkg{d}/mod{f}.py", f"def f{f}():\n    return {d}\n")
    for f in range(2000):
        write(root, f"node_modules/dep{f % 50}/f{f}.js")
    write(root, ".gitignore", "generated_stuff/\n")
    write(root, "generated_stuff/deep/x.py")
    scanned: list[str] = []
    real_scandir = os.scandir

    def spy(path: str) -> os.ScandirIterator:
        scanned.append(str(path))
        return real_scandir(path)

    monkeypatch.setattr(workspace.os, "scandir", spy)
    files = list(walk(root))
    assert len(files) == 1201
    assert not [p for p in scanned if "node_modules" in p or "generated_stuff" in p]
