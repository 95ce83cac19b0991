"""Where a review reads the new versions of changed files: a git revision or the work tree.

Apart from ``run.py`` so that ``inputs.py``, which decides the source, runs before the
review without importing it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tandem.review.git import read_blobs


@dataclass(frozen=True)
class ChangeSource:
    """Where the new versions of changed files are read: a git revision or the work tree."""

    root: Path
    revision: str | None = None

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
