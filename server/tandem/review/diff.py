"""A unified diff as files and hunks, with the new-file lines a finding may point at.

``parse_diff`` reads any unified diff (git's or another tool's) with ``unidiff`` and keeps
what a review needs: renames, deletions, binary files, mode changes, the missing newline at
the end. ``skip_reason`` says why a file is not sent to the model (lock, generated,
minified, vendored, binary, deleted, filtered out), so every skipped file can be listed.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import pathspec
import unidiff
from unidiff.constants import LINE_TYPE_NO_NEWLINE

from tandem.context.workspace import GENERATED, LOCK_FILES, MAX_BYTES, MINIFIED, secret_file_reason

Status = Literal["added", "modified", "deleted", "renamed"]

VENDOR_DIRS = frozenset({
    "vendor", "vendored", "_vendor", "third_party", "third-party", "thirdparty",
    "node_modules", "bower_components", "Pods", "Carthage",
})  # fmt: skip
MORE_GENERATED = ("*.snap", "*_generated.*", "*.designer.cs", "*.lock.json")
_MINIFIED = re.compile("|".join(fnmatch.translate(p) for p in MINIFIED))
_GENERATED = re.compile("|".join(fnmatch.translate(p) for p in (*GENERATED, *MORE_GENERATED)))
# Marker comments that code generators put near the top of what they write.
_GENERATED_MARK = re.compile(
    rb"@generated\b|Code generated .{0,100}DO NOT EDIT|(?i:this file (?:is|was) "
    rb"(?:auto-?)?generated|auto-?generated file)"
)
MARK_LINES = 10  # how far from the top a generated marker counts
MINIFIED_LINE = 500  # average characters per line above which text counts as minified


class DiffError(ValueError):
    """The input is not a unified diff."""

    exit_code = 2


@dataclass(frozen=True)
class DiffLine:
    kind: Literal["+", "-", " "]
    text: str  # without its line ending
    old: int | None  # 1-based line numbers; None on the side the line is not in
    new: int | None


@dataclass(frozen=True)
class DiffHunk:
    """One ``@@`` block of a file's diff."""

    path: str
    old_start: int
    old_length: int
    new_start: int
    new_length: int
    section: str  # what follows the second ``@@`` (git puts the enclosing function there)
    lines: tuple[DiffLine, ...]
    no_newline_at_end: bool = False  # the new side of this hunk ends the file without one

    @cached_property
    def added(self) -> tuple[int, ...]:
        return tuple(line.new for line in self.lines if line.kind == "+" and line.new)

    @cached_property
    def changed(self) -> tuple[int, ...]:
        """New-file lines a finding may point at.

        The added lines; a hunk that only removes lines has one: the line after the
        removal (the line before it when the removal ends the file).
        """
        if self.added:
            return self.added
        for i, line in enumerate(self.lines):
            if line.kind == "-":
                after = next((n.new for n in self.lines[i:] if n.new), None)
                before = next((n.new for n in reversed(self.lines[:i]) if n.new), None)
                anchor = after or before or max(1, self.new_start)
                return (anchor,)
        return ()

    @property
    def span(self) -> tuple[int, int]:
        """The first and last new-file line this hunk shows (its context included)."""
        numbers = [line.new for line in self.lines if line.new] + list(self.changed)
        return (min(numbers), max(numbers)) if numbers else (1, 1)


@dataclass(frozen=True)
class FileDiff:
    """One file's change."""

    path: str  # the new path (the old one for a deleted file), repo-relative
    status: Status
    hunks: tuple[DiffHunk, ...] = ()
    old_path: str | None = None  # set for renames
    binary: bool = False
    old_mode: str | None = None
    new_mode: str | None = None

    @cached_property
    def changed_lines(self) -> frozenset[int]:
        return frozenset(n for hunk in self.hunks for n in hunk.changed)

    @property
    def no_newline_at_end(self) -> bool:
        return any(h.no_newline_at_end for h in self.hunks)


# ---- parsing ----------------------------------------------------------------------------------

_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def unquote(name: str) -> str:
    """A path as git prints it, quoted C-style when it holds unusual bytes, made plain."""
    if not (len(name) >= 2 and name[0] == name[-1] == '"'):
        return name
    body, out, i = name[1:-1], bytearray(), 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "01234567" and re.match(r"[0-7]{3}", body[i + 1 : i + 4]):
                out.append(int(body[i + 1 : i + 4], 8))
                i += 4
                continue
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
        out.extend(ch.encode("utf-8"))
        i += 1
    return out.decode("utf-8", "replace")


def _paths(patch: unidiff.PatchedFile) -> tuple[str | None, str | None]:
    """Old and new path, unquoted, without git's ``a/`` and ``b/`` (None for /dev/null)."""
    source, target = unquote(patch.source_file or ""), unquote(patch.target_file or "")
    if not source and not target:  # a binary or mode-only change: only the `diff --git` line
        header = str(patch.patch_info).split("\n", 1)[0]
        match = re.match(r'diff --git ("(?:[^"\\]|\\.)*"|\S+) ("(?:[^"\\]|\\.)*"|\S+)$', header)
        if match:
            source, target = unquote(match.group(1)), unquote(match.group(2))
    both = [p for p in (source, target) if p and p != "/dev/null"]
    prefixed = all(p.startswith(("a/", "b/")) for p in both)
    out: list[str | None] = []
    for p in (source, target):
        if not p or p == "/dev/null":
            out.append(None)
        else:
            out.append(p[2:] if prefixed else p)
    return out[0], out[1]


def _modes(patch: unidiff.PatchedFile) -> tuple[str | None, str | None]:
    info = str(patch.patch_info)
    old = re.search(r"^(?:old|deleted file) mode (\d+)", info, re.M)
    new = re.search(r"^(?:new|new file) mode (\d+)", info, re.M)
    return (old.group(1) if old else None, new.group(1) if new else None)


def _hunk(path: str, hunk: unidiff.Hunk) -> DiffHunk:
    lines: list[DiffLine] = []
    no_newline = False
    for line in hunk:
        if line.line_type == LINE_TYPE_NO_NEWLINE:
            # The marker follows the line it is about; only the new side matters here.
            no_newline = bool(lines) and lines[-1].kind != "-"
            continue
        if line.line_type not in ("+", "-", " "):
            continue
        text = line.value.rstrip("\n").rstrip("\r")
        lines.append(DiffLine(line.line_type, text, line.source_line_no, line.target_line_no))
    return DiffHunk(
        path,
        hunk.source_start,
        hunk.source_length,
        hunk.target_start,
        hunk.target_length,
        (hunk.section_header or "").strip(),
        tuple(lines),
        no_newline,
    )


def parse_diff(text: str) -> list[FileDiff]:
    """Every file in a unified diff, in the order the diff lists them."""
    try:
        patches = unidiff.PatchSet(text)
    except unidiff.UnidiffParseError as exc:
        raise DiffError(f"not a valid unified diff: {exc}") from None
    if not patches and text.strip():
        raise DiffError("no file changes found in the diff (is it a unified diff?)")
    files: list[FileDiff] = []
    for patch in patches:
        old, new = _paths(patch)
        old_mode, new_mode = _modes(patch)
        if patch.is_removed_file or new is None:
            status: Status = "deleted"
            path = old or new or "?"
        elif patch.is_added_file or old is None:
            status, path = "added", new
        elif patch.is_rename or old != new:
            status, path = "renamed", new
        else:
            status, path = "modified", new
        hunks = tuple(_hunk(path, h) for h in patch) if status != "deleted" else ()
        files.append(
            FileDiff(
                path=path,
                status=status,
                hunks=hunks,
                old_path=old if status == "renamed" else None,
                binary=patch.is_binary_file,
                old_mode=old_mode,
                new_mode=new_mode,
            )
        )
    return files


# ---- what is not reviewed, and why ------------------------------------------------------------


@dataclass(frozen=True)
class FileFilter:
    """``--include``/``--exclude`` globs (gitignore syntax) and the ``.tandemignore`` rules."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    tandemignore: str | None = None  # the root .tandemignore's text
    setting: tuple[str, ...] = ()  # the ``exclude`` setting: files never read into a prompt

    @cached_property
    def _ignore(self) -> pathspec.GitIgnoreSpec | None:
        if not self.tandemignore:
            return None
        return pathspec.GitIgnoreSpec.from_lines(self.tandemignore.splitlines())

    def reason(self, path: str) -> str | None:
        for pattern in self.exclude:
            if _glob(pattern).match_file(path):
                return f"excluded by --exclude {pattern}"
        if self.include and not any(_glob(p).match_file(path) for p in self.include):
            return "not matched by --include"
        readmitted = self._ignore is not None and self._ignore.check_file(path).include is False
        if self._ignore is not None and self._ignore.match_file(path):
            return "ignored by .tandemignore"
        secret = secret_file_reason(path)
        if secret and not readmitted:  # only a .tandemignore "!" line re-admits it
            return secret
        for pattern in self.setting:
            if _glob(pattern).match_file(path):
                return f"excluded by the exclude setting ({pattern})"
        return None


def _glob(pattern: str) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines([pattern])


def name_reason(path: str) -> str | None:
    """Files skipped by their name alone: lock files, minified, generated, vendored."""
    parts = path.split("/")
    name = parts[-1]
    if name in LOCK_FILES or name.endswith(".lock"):
        return "lock file"
    if _MINIFIED.match(name):
        return "minified file"
    if _GENERATED.match(name):
        return "generated file"
    vendored = next((p for p in parts[:-1] if p in VENDOR_DIRS), None)
    if vendored:
        return f"vendored code in {vendored}/"
    return None


def skip_reason(diff: FileDiff, filters: FileFilter) -> str | None:
    """Why ``diff`` is not reviewed, or None when it is."""
    if diff.path.startswith("/") or ".." in diff.path.split("/"):
        return "path outside the repository"
    if diff.status == "deleted":
        return "deleted"
    if diff.binary:
        return "binary file"
    if diff.new_mode == "120000":
        return "symbolic link"
    if diff.new_mode == "160000":
        return "submodule"
    if not diff.hunks:
        if diff.old_mode and diff.new_mode and diff.old_mode != diff.new_mode:
            return f"mode change only ({diff.old_mode} -> {diff.new_mode})"
        if diff.status == "renamed":
            return f"renamed from {diff.old_path} without changes"
        return "no changed lines"
    return filters.reason(diff.path) or name_reason(diff.path)


def content_reason(data: bytes, added: frozenset[int] = frozenset()) -> str | None:
    """Files skipped for what is in them: binary, too large, generated, minified.

    A generated marker counts only when it was there before: one that the change itself
    adds (every line of a new file is added) is ignored, so a pull request cannot hide a
    hand-written file from review by calling it generated.
    """
    if b"\0" in data[:8192]:
        return "binary file"
    if len(data) > MAX_BYTES:
        return f"too large ({len(data):,} bytes, limit {MAX_BYTES:,})"
    for number, line in enumerate(data.split(b"\n", MARK_LINES)[:MARK_LINES], start=1):
        if _GENERATED_MARK.search(line) and number not in added:
            return "generated file (marked as generated near its top)"
    sample = data[:8192]
    lines = sample.count(b"\n") + 1
    if len(sample) > 2000 and len(sample) / lines > MINIFIED_LINE:
        return "minified file (very long lines)"
    return None
