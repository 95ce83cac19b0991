"""Where a review reads the new versions of changed files: a git revision or the work tree.

Apart from ``run.py`` so that ``inputs.py``, which decides the source, runs before the
review without importing it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tandem.review.diff import FileFilter, name_reason
from tandem.review.git import read_blobs


@dataclass(frozen=True)
class ChangeSource:
    """Where the new versions of changed files are read: a git revision or the work tree."""

    root: Path
    revision: str | None = None

    def link_reason(self, path: str, filters: FileFilter) -> str | None:
        """Why a working-tree file reached through a symlink must not be read, or None.

        The deny list and ignore rules hold for what a link points at: ``settings.py ->
        .env`` is ``.env``. Links into ``.git/`` or out of the repository are refused.
        """
        if self.revision is not None:
            return None  # git revisions: a link is a blob holding its target's name
        root = os.path.realpath(self.root)
        full = os.path.realpath(os.path.join(root, path))
        rel = os.path.relpath(full, root).replace(os.sep, "/")
        if rel == path:
            return None
        if rel == ".." or rel.startswith("../") or os.path.isabs(rel):
            return "symbolic link out of the repository"
        if rel == ".git" or rel.startswith(".git/"):
            return "symbolic link into .git/"
        reason = filters.reason(rel) or name_reason(rel)
        return f"symbolic link to {rel}: {reason}" if reason else None

    def read(self, paths: Sequence[str]) -> dict[str, bytes]:
        if self.revision is not None:
            return read_blobs(self.root, self.revision, list(paths))
        found: dict[str, bytes] = {}
        root = os.path.realpath(self.root)
        for path in paths:
            full = os.path.realpath(os.path.join(root, path))
            if not full.startswith(root + os.sep) or not os.path.isfile(full):
                continue  # never read outside the repository, whatever the diff names
            try:
                with open(full, "rb") as handle:
                    found[path] = handle.read()
            except OSError:
                continue
        return found
