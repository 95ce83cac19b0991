"""The git side of a review: which revisions to compare, the diff, files at a revision.

Everything runs the real ``git`` with the user's diff settings overridden (prefixes,
colour, external diff tools, quoted paths), so the text handed to the diff parser has
one shape whatever the user's ``~/.gitconfig`` says.

The diff is made with attributes off: a ``.gitattributes`` in the change under review
(``*.py -diff``, ``binary``, a textconv or external driver) would otherwise decide how
the change is shown, or turn it into "binary file". git 2.39 has no switch for that, so
the diff runs in an empty folder as its work tree, with an empty index: git then finds
no ``.gitattributes`` to read, and decides "binary" by content alone.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

GIT_TIMEOUT = 120.0
# Options that make `git diff` output independent of the user's configuration.
DIFF_FLAGS = (
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--find-renames",
    "--unified=3",
    "--src-prefix=a/",
    "--dst-prefix=b/",
)


class GitError(Exception):
    """A git command failed in a way the user can fix (bad ref, not a repository, ...)."""

    exit_code = 2


def git(
    root: Path,
    *args: str,
    input: bytes | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> bytes:
    """Run git in ``root`` and return its stdout; a failure raises ``GitError``."""
    cmd = ["git", "-c", "core.quotePath=false", *args]
    full_env = {**os.environ, **env} if env else None
    try:
        done = subprocess.run(
            cmd,
            cwd=root,
            input=input,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
            env=full_env,
        )
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH)") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"`git {' '.join(args)}` took longer than {GIT_TIMEOUT:g}s") from None
    if check and done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = message[-1] if message else f"exit status {done.returncode}"
        raise GitError(f"`git {' '.join(args[:3])}` failed: {reason}")
    return done.stdout


def toplevel(start: Path) -> Path | None:
    """The repository holding ``start``, or None outside one."""
    try:
        out = git(start, "rev-parse", "--show-toplevel", check=True)
    except GitError:
        return None
    return Path(out.decode("utf-8", "surrogateescape").strip()).resolve()


def verify(root: Path, ref: str) -> str | None:
    """The commit ``ref`` names, or None when it names none."""
    spec = f"{ref}^{{commit}}"
    out = git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", spec, check=False)
    text = out.decode().strip()
    return text or None


def default_base(root: Path) -> str | None:
    """The upstream of the current branch, else ``origin/HEAD``; None when neither exists."""
    upstream = git(
        root, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}", check=False
    )
    name = upstream.decode().strip()
    if name and verify(root, name):
        return name
    if verify(root, "origin/HEAD"):
        return "origin/HEAD"
    return None


@dataclass(frozen=True)
class Revisions:
    """What is compared: the merge base of ``base`` and ``head``, against ``head``."""

    base: str  # as the user named it
    head: str
    merge_base: str  # commit ids
    head_commit: str


def resolve(root: Path, base: str | None, head: str) -> Revisions:
    """Resolve the refs a review compares; every failure says which flag to change."""
    if base is None:
        base = default_base(root)
        if base is None:
            raise GitError(
                "no base to compare with: the branch has no upstream and origin/HEAD does not "
                "exist; pass --base REF (e.g. --base origin/main) or --diff FILE"
            )
    base_commit = verify(root, base)
    if base_commit is None:
        raise GitError(f"--base {base!r} is not a commit in {root}")
    head_commit = verify(root, head)
    if head_commit is None:
        raise GitError(f"--head {head!r} is not a commit in {root}")
    out = git(root, "merge-base", base_commit, head_commit, check=False).decode().strip()
    if not out:
        raise GitError(
            f"{base} and {head} have no common ancestor (a shallow clone? fetch with "
            "fetch-depth: 0, or pass --diff FILE)"
        )
    return Revisions(base, head, out, head_commit)


def diff_text(root: Path, revisions: Revisions) -> str:
    """The unified diff from the merge base to head, as text, with attributes off."""
    git_dir = git(root, "rev-parse", "--absolute-git-dir").decode("utf-8", "surrogateescape")
    with tempfile.TemporaryDirectory(prefix="tandem-diff-") as empty:
        env = {
            "GIT_DIR": git_dir.strip(),
            "GIT_WORK_TREE": empty,  # no .gitattributes here
            "GIT_INDEX_FILE": os.path.join(empty, "index"),  # nor in an (empty) index
            "GIT_ATTR_NOSYSTEM": "1",
        }
        args = ("-c", f"core.attributesFile={os.devnull}", "diff", *DIFF_FLAGS)
        raw = git(Path(empty), *args, revisions.merge_base, revisions.head_commit, "--", env=env)
    return raw.decode("utf-8", "replace")


def read_blobs(root: Path, rev: str, paths: list[str]) -> dict[str, bytes]:
    """Many files at one revision through one ``git cat-file --batch`` (absent ones left out)."""
    if not paths:
        return {}
    wanted = [p for p in paths if "\n" not in p]
    request = "".join(f"{rev}:{p}\n" for p in wanted).encode("utf-8", "surrogateescape")
    out = git(root, "cat-file", "--batch", input=request)
    found: dict[str, bytes] = {}
    pos = 0
    for path in wanted:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[1] != b"blob":
            continue  # "<ref> missing", a submodule, ...
        size = int(header[2])
        found[path] = out[pos : pos + size]
        pos += size + 1  # the blob, then a newline
    return found
