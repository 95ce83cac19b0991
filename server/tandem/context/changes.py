"""What one document event changed, for work that can follow an edit instead of re-reading.

A keystroke in a 5,000-line file changes one character, yet every request used to pass over
the whole file twice: for the import fingerprint and for the top-level names (issue 12,
fifth round). A ``TextChange`` says which span of the previous version's text became which
span of this version's (in ``str`` indices and in UTF-8 bytes) and where tree-sitter found
the syntax changed; ``base`` and ``version`` are generations unique in the process, so a
reader applies a change only to the very version it read last, never to another document's
or a reopened one's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

_generations = itertools.count(1)


def next_generation() -> int:
    """A number never given before in this process (``itertools.count`` is thread-safe)."""
    return next(_generations)


@dataclass(frozen=True, slots=True)
class TextChange:
    """``old[start:old_end]`` became ``new[start:new_end]``; the rest is the same text.

    ``bytes_*`` are the same span in the UTF-8 bytes tree-sitter parsed; ``syntax`` the
    byte ranges (in the new tree) whose structure changed: ``Tree.changed_ranges`` of the
    edited old tree against the new one, asked on first use (~0.3 ms on a 5,000-line
    file: a keystroke answered by type-ahead, or followed by another before any request
    reads it, never pays it).
    """

    base: int  # the generation of the version this change was applied to
    version: int  # the generation it made
    start: int
    old_end: int
    new_end: int
    bytes_start: int
    bytes_old_end: int
    bytes_new_end: int
    edited: Any = field(default=None, repr=False, compare=False)  # the old tree, edited
    tree: Any = field(default=None, repr=False, compare=False)  # the new tree
    _syntax: list[tuple[tuple[int, int], ...]] = field(
        default_factory=list, repr=False, compare=False
    )

    @property
    def syntax(self) -> tuple[tuple[int, int], ...]:
        if not self._syntax:  # (two threads may both ask: the same answer, kept once)
            ranges: tuple[tuple[int, int], ...] = ()
            if self.edited is not None and self.tree is not None:
                found = self.edited.changed_ranges(self.tree)
                ranges = tuple((r.start_byte, r.end_byte) for r in found)
            self._syntax[:] = [ranges]
        return self._syntax[0]


class SpanTracker:
    """The smallest span covering a sequence of edits, in the first and the last text.

    LSP sends a notification's changes in order, each on the text the previous left; the
    union is what stayed the same at both ends (``head`` characters at the start, ``tail``
    at the end).
    """

    def __init__(self, length: int) -> None:
        self.old_length = self.length = self.head = self.tail = length

    def replace(self, start: int, end: int, inserted: int) -> None:
        """``[start, end)`` of the current text replaced by ``inserted`` units."""
        self.head = min(self.head, start)
        self.tail = min(self.tail, self.length - end)
        self.length += inserted - (end - start)
        self.head = min(self.head, self.length - self.tail)

    def span(self) -> tuple[int, int, int]:
        """(start, old end, new end)."""
        return self.head, self.old_length - self.tail, self.length - self.tail
