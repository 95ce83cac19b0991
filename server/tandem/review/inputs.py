"""What a review reads before asking anything: the diff, the settings, the ignore rules.

The diff comes from git (the merge base of base and head, against head) or from a file.
The settings and ``.tandemignore`` come from the working tree, or, with
``--trust-base-config``, from the base revision: a pull request can then not point the
reviewer at another model or endpoint, nor hide its own files from review.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.config import Layer, Settings, load_settings, parse_toml
from tandem.review.diff import FileDiff, FileFilter, parse_diff
from tandem.review.git import GitError, default_base, diff_text, read_blobs, resolve, toplevel
from tandem.review.source import ChangeSource

CONFIG_FILE = ".tandem.toml"
IGNORE_FILE = ".tandemignore"


@dataclass
class ReviewInputs:
    root: Path
    files: list[FileDiff]
    source: ChangeSource
    settings: Settings
    filters: FileFilter
    in_git: bool  # the root is a git repository (the symbol index is worth building)


def gather(
    start: Path,
    *,
    explicit_root: Path | None = None,
    base: str | None = None,
    head: str | None = None,
    diff: str | None = None,
    trust_base_config: bool = False,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    overrides: Mapping[str, Any] | None = None,
) -> ReviewInputs:
    """Everything a review needs from the repository; ``GitError``/``DiffError`` on failure."""
    repo = toplevel(explicit_root or start)
    root = (explicit_root or repo or start).resolve()
    if diff is None:
        if repo is None:
            raise GitError(f"{root} is not in a git repository; pass --diff FILE (or - for stdin)")
        revisions = resolve(root, base, head or "HEAD")
        text = diff_text(root, revisions)
        source = ChangeSource(root, revisions.head_commit)
        base = revisions.base
    else:
        if head is not None:
            raise GitError("--head has no effect with --diff: the diff says what changed")
        text = diff
        source = ChangeSource(root, None)
    files = parse_diff(text)

    workspace: Layer | None = None
    ignore_text: str | None = None
    if trust_base_config:
        if repo is None:
            raise GitError("--trust-base-config reads the base revision: it needs a git repository")
        base = base or default_base(root)
        if base is None:
            raise GitError("--trust-base-config needs a base revision: pass --base REF")
        blobs = read_blobs(root, base, [CONFIG_FILE, IGNORE_FILE])
        config = blobs.get(CONFIG_FILE)
        workspace = {}  # no config in the base: the head's is still not used
        if config is not None:
            workspace = parse_toml(config.decode("utf-8", "replace"), f"{base}:{CONFIG_FILE}")
        ignore = blobs.get(IGNORE_FILE)
        ignore_text = ignore.decode("utf-8", "replace") if ignore is not None else None
    else:
        try:
            ignore_text = (root / IGNORE_FILE).read_text(encoding="utf-8", errors="replace")
        except OSError:
            ignore_text = None
    settings = load_settings(root, overrides=overrides, workspace=workspace)
    filters = FileFilter(tuple(include), tuple(exclude), ignore_text, settings.exclude)
    return ReviewInputs(root, files, source, settings, filters, repo is not None)
