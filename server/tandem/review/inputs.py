"""What a review reads before asking anything: the diff, the settings, the ignore rules.

The diff comes from git (the merge base of base and head, against head) or from a file.
Everything the change under review can write is data, never configuration: by default
``.tandem.toml`` and ``.tandemignore`` come from the base revision (``git show
BASE:...``), so a pull request can neither point the reviewer (and its key) at another
endpoint nor hide its own files from review. Without a base (``--diff`` outside git, or
no base to be found) no repository configuration is read at all: only the user's own
config file, the environment and the flags. ``--trust-checkout-config`` reads them from
the working tree instead, for repositories whose every writer is trusted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.config import Layer, Settings, load_settings, parse_toml, read_toml
from tandem.review.diff import FileDiff, FileFilter, parse_diff
from tandem.review.git import GitError, default_base, diff_text, read_blobs, resolve, toplevel
from tandem.review.source import ChangeSource
from tandem.review.trust import check_key_binding

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
    config_source: str | None  # where .tandem.toml was read (None: nowhere), for the log
    from_checkout: bool = False  # --trust-checkout-config

    def settings_note(self) -> str:
        """One log line: where the repository's settings came from, if anywhere."""
        if self.config_source is None:
            return "no repository settings read: no base revision to read them from"
        if self.from_checkout:
            return f"settings from the checkout's {self.config_source} (--trust-checkout-config)"
        return f"repository settings from {self.config_source} (not from the change)"


def gather(
    start: Path,
    *,
    explicit_root: Path | None = None,
    base: str | None = None,
    head: str | None = None,
    diff: str | None = None,
    trust_checkout_config: bool = False,
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

    workspace: Layer = {}  # no repository config unless a trusted one is found
    ignore_text: str | None = None
    config_source: str | None = None
    if trust_checkout_config:
        config_source = str(root / CONFIG_FILE)
        workspace = read_toml(root / CONFIG_FILE)
        try:
            ignore_text = (root / IGNORE_FILE).read_text(encoding="utf-8", errors="replace")
        except OSError:
            ignore_text = None
    elif repo is not None:
        base = base or default_base(root)
        if base is not None:
            blobs = read_blobs(root, base, [CONFIG_FILE, IGNORE_FILE])
            config_source = f"{base}:{CONFIG_FILE}"
            config = blobs.get(CONFIG_FILE)
            if config is not None:
                workspace = parse_toml(config.decode("utf-8", "replace"), config_source)
            ignore = blobs.get(IGNORE_FILE)
            ignore_text = ignore.decode("utf-8", "replace") if ignore is not None else None
    settings = load_settings(root, overrides=overrides, workspace=workspace)
    if config_source is not None:
        check_key_binding(settings, config_source)
    filters = FileFilter(tuple(include), tuple(exclude), ignore_text, settings.exclude)
    return ReviewInputs(
        root, files, source, settings, filters, repo is not None, config_source,
        from_checkout=trust_checkout_config,
    )  # fmt: skip
