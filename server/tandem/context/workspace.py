"""Which files of a workspace Tandem may read: walking it, and asking about one path.

Whatever Tandem reads can end up in a prompt, so the rules err on the side of leaving
things out: everything git ignores (``.gitignore`` files at any depth, with git's
semantics relative to their own folder, and ``.git/info/exclude``), everything a
``.tandemignore`` (same syntax, read after ``.gitignore`` so it can override it)
names, and a default deny list of folders and files that are never worth a prompt's
space (dependencies, virtualenvs, build outputs, minified, generated and lock files,
binaries, huge files). An explicit ``!pattern`` in an ignore file re-admits a path
the default deny list would drop (but never a binary or oversized file).

Files that may hold secrets (``.env*``, keys, credential and kube config files,
``secrets.*``) are denied too; only a ``!pattern`` in ``.tandemignore`` re-admits one,
since ``!.env.example`` in a ``.gitignore`` is about git, not about prompts. The
``exclude`` setting (gitignore patterns) drops more, and nothing re-admits what it drops.

``walk`` prunes an ignored folder without listing what is in it, and never follows a
symlinked folder (so a link loop cannot hang it); a symlinked file is read only when
its target lies inside the workspace, outside ``.git/``, and the target itself passes
every rule (``settings.py -> .env`` is ``.env``; no ``!`` line re-admits a secret file
reached through a link). ``is_ignored`` applies the same rules to one
path and says why it is ignored, so a file open in the editor can be marked inactive.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pathspec

from tandem.context.reasons import Reason, Why

MAX_BYTES = 1_000_000
SNIFF_BYTES = 8192
IGNORE_FILES = (".gitignore", ".tandemignore")

DENY_DIRS = frozenset({
    ".git", ".hg", ".svn", "node_modules", "bower_components", ".venv", "venv",
    "__pycache__", "build", "dist", "target", "out", ".next", ".nuxt", ".tox", ".nox",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".eggs", ".gradle",
})  # fmt: skip
LOCK_FILES = frozenset({
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb",
    "Cargo.lock", "poetry.lock", "Pipfile.lock", "uv.lock", "pdm.lock", "composer.lock",
    "Gemfile.lock", "go.sum", "flake.lock", "packages.lock.json", "mix.lock", "pubspec.lock",
})  # fmt: skip
MINIFIED = ("*.min.js", "*.min.mjs", "*.min.css", "*.js.map", "*.css.map")
GENERATED = ("*.generated.*", "*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py", "*.pb.go", "*.g.dart")
# Known binary formats, denied without opening them (the NUL sniff catches the rest).
BINARY_SUFFIXES = frozenset({
    ".pyc", ".pyo", ".so", ".dylib", ".dll", ".exe", ".o", ".a", ".lib", ".class", ".jar",
    ".whl", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".tar", ".png", ".jpg",
    ".jpeg", ".gif", ".bmp", ".ico", ".webp", ".pdf", ".woff", ".woff2", ".ttf", ".otf",
    ".mp3", ".mp4", ".wav", ".mov", ".sqlite", ".db", ".bin", ".npy", ".pt", ".onnx",
})  # fmt: skip


# Files that may hold secrets: never read, wherever they are (gitignore syntax).
SECRET_FILES = (
    ".env", ".env.*", "*.env", ".envrc", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks",
    "*.keystore", "*.ppk", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".ssh/",
    ".gnupg/", ".aws/", ".netrc", "_netrc", ".pgpass", ".npmrc", ".pypirc", ".git-credentials",
    ".htpasswd", ".vault-token", "credentials", "credentials.json", "credentials.yml",
    "credentials.yaml", "credentials.xml", "credentials.ini", "credentials.toml",
    "service-account*.json", "service_account*.json", "**/.kube/config", "kubeconfig",
    "kubeconfig.*", "*.kubeconfig", "**/.docker/config.json", "secrets.*", "*.tfstate",
    "*.tfstate.*", "*.tfvars",
)  # fmt: skip
_SECRETS = pathspec.GitIgnoreSpec.from_lines(SECRET_FILES)


@lru_cache(maxsize=32)
def _exclude_spec(patterns: tuple[str, ...]) -> pathspec.GitIgnoreSpec | None:
    spec = pathspec.GitIgnoreSpec.from_lines(patterns)
    return spec if spec.patterns else None


def _compile(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(fnmatch.translate(p) for p in patterns))


_MINIFIED = _compile(MINIFIED)
_GENERATED = _compile(GENERATED)
_LOCKISH = _compile(("*.lock",))


@dataclass(frozen=True, slots=True)
class _IgnoreFile:
    """One ignore file: its patterns apply to paths relative to ``base`` (its folder)."""

    base: str  # "" for the root, else "sub/dir/"
    source: str  # "sub/dir/.gitignore", for the reason shown to the user
    spec: pathspec.GitIgnoreSpec


Chain = tuple[_IgnoreFile, ...]


def _read_ignore(path: Path, base: str, source: str) -> _IgnoreFile | None:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    return _IgnoreFile(base, source, spec) if spec.patterns else None


def _folder_ignores(folder: Path, base: str, names: set[str] | None) -> Chain:
    """The ignore files in one folder (``names``: its listing, when already known)."""
    found = []
    for name in IGNORE_FILES:
        if names is not None and name not in names:
            continue
        ignore = _read_ignore(folder / name, base, base + name)
        if ignore is not None:
            found.append(ignore)
    return tuple(found)


def _root_chain(root: Path) -> Chain:
    exclude = _read_ignore(root / ".git" / "info" / "exclude", "", ".git/info/exclude")
    return (exclude,) if exclude else ()


def _verdict(chain: Chain, rel: str, is_dir: bool) -> tuple[bool | None, str]:
    """Git's answer for ``rel``: True ignored, False re-admitted by ``!``, None unmentioned.

    Deeper files override shallower ones, and within a file the last match wins.
    """
    verdict: bool | None = None
    source = ""
    for ignore in chain:
        sub = rel[len(ignore.base) :] + ("/" if is_dir else "")
        include = ignore.spec.check_file(sub).include
        if include is not None:
            verdict, source = include, ignore.source
    return verdict, source


def _denied_name(name: str, is_dir: bool) -> Reason | None:
    if is_dir:
        if name in DENY_DIRS or name.endswith(".egg-info"):
            return Reason(Why.DENIED, f"denied folder {name}")
        return None
    if name == ".git":
        return Reason(Why.DENIED, "git metadata")
    if name in LOCK_FILES or _LOCKISH.match(name):
        return Reason(Why.DENIED, "lock file")
    if _MINIFIED.match(name):
        return Reason(Why.DENIED, "minified file")
    if _GENERATED.match(name):
        return Reason(Why.DENIED, "generated file")
    return None


def _secret_reason(rel: str, is_dir: bool) -> Reason | None:
    result = _SECRETS.check_file(rel + ("/" if is_dir else ""))
    if result.include and result.index is not None:
        return Reason(Why.SECRET, f"may hold secrets ({SECRET_FILES[result.index]})")
    return None


def secret_file_reason(rel: str) -> Reason | None:
    """Why the file at ``rel`` (relative, "/"-separated) may hold secrets, or None.

    By path alone, for callers that read files from somewhere other than the disk (the
    reviewer reads git revisions); ``walk`` and ``is_ignored`` apply it themselves.
    """
    return _secret_reason(rel, False)


def exclude_setting_reason(rel: str, exclude: Sequence[str]) -> Reason | None:
    """Why the exclude setting drops the file at ``rel``, or None (by path alone)."""
    spec = _exclude_spec(tuple(exclude))
    return Reason(Why.SETTING) if spec and spec.match_file(rel) else None


def _name_reason(
    chain: Chain, rel: str, name: str, is_dir: bool, exclude: pathspec.GitIgnoreSpec | None
) -> Reason | None:
    if exclude is not None and exclude.match_file(rel + ("/" if is_dir else "")):
        return Reason(Why.SETTING)
    verdict, source = _verdict(chain, rel, is_dir)
    if verdict:
        return Reason(Why.IGNORED, f"ignored by {source}")
    secret = _secret_reason(rel, is_dir)
    if secret and not (verdict is False and source.endswith(".tandemignore")):
        return secret
    if verdict is None:
        return _denied_name(name, is_dir)
    return None


def _content_reason(path: str, name: str, size: int, max_bytes: int) -> Reason | None:
    if os.path.splitext(name)[1].lower() in BINARY_SUFFIXES:
        return Reason(Why.BINARY, "binary file")
    if size > max_bytes:
        return Reason(Why.TOO_LARGE, f"too large ({size:,} bytes, limit {max_bytes:,})")
    try:
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError:
        return Reason(Why.UNREADABLE)
    return Reason(Why.BINARY, "binary file") if b"\0" in head else None


def _inside(target: str, root: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def link_target_reason(root: Path, target: str) -> Reason | None:
    """Why the resolved target of a symlink inside ``root`` must not be read, or None."""
    rel = os.path.relpath(target, root).replace(os.sep, "/")
    if rel == ".." or rel.startswith("../") or os.path.isabs(rel):
        return Reason(Why.OUTSIDE, "symlink out of the workspace")
    if ".git" in rel.split("/"):
        return Reason(Why.OUTSIDE, "symlink into .git/")
    reason = _secret_reason(rel, False) or is_ignored(root, rel)
    return Reason(reason.why, f"symlink to {rel}: {reason}") if reason else None


def walk(root: Path, *, max_bytes: int = MAX_BYTES, exclude: Sequence[str] = ()) -> Iterator[Path]:
    """The files under ``root`` that Tandem may read, folder by folder in name order.

    ``exclude``: the exclude setting's patterns, relative to ``root``.
    """
    root = Path(root).resolve()
    spec = _exclude_spec(tuple(exclude))
    root_text = str(root)
    stack: list[tuple[str, str, Chain]] = [(root_text, "", _root_chain(root))]
    while stack:
        folder, base, chain = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError:
            continue
        names = {entry.name for entry in entries}
        if base and "pyvenv.cfg" in names:
            continue  # a virtualenv, whatever its name
        chain = chain + _folder_ignores(Path(folder), base, names)
        subfolders = []
        for entry in entries:
            rel = base + entry.name
            try:
                if entry.is_symlink():
                    target = os.path.realpath(entry.path)
                    if not _inside(target, root_text) or not os.path.isfile(target):
                        continue  # symlinked folders and links out of the workspace
                    if link_target_reason(root, target):
                        continue  # the rules hold for what a link points at
                    is_dir = False
                else:
                    is_dir = entry.is_dir()
                    if not is_dir and not entry.is_file():
                        continue  # sockets, fifos, devices
                if _name_reason(chain, rel, entry.name, is_dir, spec):
                    continue
                if is_dir:
                    subfolders.append((entry.path, rel + "/", chain))
                    continue
                size = entry.stat().st_size
            except OSError:
                continue
            if _content_reason(entry.path, entry.name, size, max_bytes) is None:
                yield root / rel
        stack.extend(reversed(subfolders))


def is_ignored(
    root: Path, path: Path | str, *, max_bytes: int = MAX_BYTES, exclude: Sequence[str] = ()
) -> Reason | None:
    """Why Tandem must not read ``path`` (relative to ``root`` or absolute), or None.

    A path that does not exist is judged by its name alone.
    """
    root = Path(root).resolve()
    spec = _exclude_spec(tuple(exclude))
    target = Path(path)
    if not target.is_absolute():
        target = root / target
    target = Path(os.path.abspath(target))
    try:
        parts = target.relative_to(root).parts
    except ValueError:
        try:
            parts = target.resolve().relative_to(root).parts
        except ValueError:
            return Reason(Why.OUTSIDE)
    if not parts:
        return None
    chain = _root_chain(root)
    folder = root
    for depth, part in enumerate(parts):
        if depth and (folder / "pyvenv.cfg").exists():
            return Reason(Why.DENIED, "virtualenv")
        chain = chain + _folder_ignores(folder, "/".join(parts[:depth]) + "/" * bool(depth), None)
        child = folder / part
        last = depth == len(parts) - 1
        if child.is_symlink():
            real = os.path.realpath(child)
            if not _inside(real, str(root)):
                return Reason(Why.OUTSIDE, "symlink out of the workspace")
            if os.path.isdir(real):
                return Reason(Why.OUTSIDE, "symlinked folder")
            reason = link_target_reason(root, real)
            if reason:
                return reason
        is_dir = not last or child.is_dir()
        reason = _name_reason(chain, "/".join(parts[: depth + 1]), part, is_dir, spec)
        if reason:
            return reason
        folder = child
    if folder.is_file():
        return _content_reason(str(folder), folder.name, folder.stat().st_size, max_bytes)
    return None


def excluded(
    root: Path, path: Path | str, *, max_bytes: int = MAX_BYTES, exclude: Sequence[str] = ()
) -> Reason | None:
    """``is_ignored`` for any file: one outside ``root`` is judged by its own folder's rules.

    Editors open files from anywhere, and a ``.env`` beside the workspace is no safer.
    """
    root = Path(root).resolve()
    target = Path(os.path.abspath(root / path))
    if target.is_relative_to(root):
        return is_ignored(root, target, max_bytes=max_bytes, exclude=exclude)
    return is_ignored(target.parent, target, max_bytes=max_bytes)


class Exclusions:
    """One workspace's exclusion rules, with each file's verdict remembered.

    Every road a file takes into a prompt asks here: the file being completed or chatted
    about, the editor's other tabs, definitions followed through imports or the index.
    ``root`` None (an editor with no folder open): each file is judged by its own folder.
    Verdicts are kept until ``forget`` (an ignore file or the exclude setting changed).
    """

    def __init__(self, root: Path | None, exclude: Sequence[str] = ()) -> None:
        self.root = Path(root).resolve() if root is not None else None
        self.exclude = tuple(exclude)
        self._verdicts: dict[tuple[Path, int], Reason | None] = {}
        # Bumped whenever verdicts are forgotten: what was derived from them is stale.
        self.version = 0

    def reason(self, path: Path, *, max_bytes: int = MAX_BYTES) -> Reason | None:
        """Why ``path`` must not be read into a prompt, or None."""
        full = Path(os.path.abspath(path if path.is_absolute() or self.root is None
                                    else self.root / path))  # fmt: skip
        key = (full, max_bytes)
        if key not in self._verdicts:
            if len(self._verdicts) > 4096:
                self._verdicts.clear()
                self.version += 1
            root = self.root or full.parent
            self._verdicts[key] = excluded(root, full, max_bytes=max_bytes, exclude=self.exclude)
        return self._verdicts[key]

    def forget(self, exclude: Sequence[str] | None = None) -> None:
        """Judge every file again, with new exclude patterns when given."""
        if exclude is not None:
            self.exclude = tuple(exclude)
        self._verdicts = {}
        self.version += 1
