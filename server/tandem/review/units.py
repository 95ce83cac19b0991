"""Review units: the pieces of a changed file that the model reads, as numbered rows.

A unit is a range of the new file with the lines removed from it put back where they
were, each row marked ``+`` (added), ``-`` (removed, no number) or blank (unchanged).
The model reports new-file line numbers, so every row that exists in the new file
carries its number. ``split_rows`` cuts a range that is too large for one request at
function boundaries first and between lines only when it must.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from tandem.review.sanitize import printable

RowKind = Literal["+", "-", " "]


@dataclass(frozen=True, slots=True)
class Row:
    kind: RowKind
    new: int | None  # the new-file line number (None for a removed line)
    text: str
    tokens: int = 0  # of the rendered row, newline included

    def render(self) -> str:
        number = f"{self.new:>5}" if self.new is not None else " " * 5
        return f"{number} {self.kind} {self.text}"


@dataclass(frozen=True, slots=True)
class HunkLines:
    """One hunk's part of a unit: findings may move only to a changed line of their hunk."""

    first: int  # new-file lines the hunk shows, its diff context included
    last: int
    changed: tuple[int, ...]

    def distance(self, line: int) -> int:
        return (
            0
            if self.first <= line <= self.last
            else min(abs(line - self.first), abs(line - self.last))
        )

    def nearest(self, line: int) -> int:
        return min(self.changed, key=lambda n: (abs(n - line), n))


@dataclass(frozen=True)
class ReviewUnit:
    """A piece of one file for the model: changed rows, enclosing code, definitions used."""

    path: str
    language: str | None
    rows: tuple[Row, ...]
    hunks: tuple[HunkLines, ...]
    scopes: tuple[str, ...] = ()  # headers of the scopes enclosing the rows, outermost first
    definitions: tuple[tuple[str, str, int], ...] = ()  # (path, text, tokens)
    note: str = ""  # "part 2 of 3", "no newline at end of file", ...
    header_tokens: int = 0
    # (first, last) new lines of each statement of several lines holding a changed row
    # (tree-sitter): a quote of its unchanged rows is about the change all the same.
    statements: tuple[tuple[int, int], ...] = ()

    @cached_property
    def changed(self) -> frozenset[int]:
        return frozenset(n for h in self.hunks for n in h.changed)

    @property
    def first(self) -> int:
        return min((r.new for r in self.rows if r.new is not None), default=1)

    @property
    def last(self) -> int:
        return max((r.new for r in self.rows if r.new is not None), default=1)

    @property
    def code_tokens(self) -> int:
        return self.header_tokens + sum(r.tokens for r in self.rows)

    @property
    def definition_tokens(self) -> int:
        return sum(t for _, _, t in self.definitions)

    @property
    def tokens(self) -> int:
        return self.code_tokens + self.definition_tokens

    def header(self) -> str:
        language = f" ({self.language})" if self.language else ""
        note = f", {self.note}" if self.note else ""
        shown = f"{printable(self.path)}{language}, new lines {self.first}-{self.last}{note}"
        lines = [f"File: {shown}"]
        if self.scopes:
            lines.append("Inside: " + " > ".join(self.scopes))
        return "\n".join(lines)

    def render(self) -> str:
        return "\n".join([self.header(), *(r.render() for r in self.rows)])

    def statement_change(self, line: int) -> Row | None:
        """The added row nearest ``line`` in a statement of several lines holding both."""
        found = [
            (abs(row.new - line), row.new, row)
            for first, last in self.statements
            if first <= line <= last
            for row in self.rows
            if row.kind == "+" and row.new is not None and first <= row.new <= last
        ]
        return min(found)[2] if found else None

    def hunk_for(self, line: int) -> HunkLines | None:
        """The hunk a line of this unit belongs to (the nearest), or None outside the unit."""
        if not self.hunks or not self.first <= line <= self.last:
            return None
        return min(self.hunks, key=lambda h: (h.distance(line), h.first))


@dataclass
class RowSplit:
    """The outcome of cutting rows to a budget: the pieces, and rows that fit nowhere."""

    pieces: list[list[Row]] = field(default_factory=list)
    too_large: list[Row] = field(default_factory=list)


def split_rows(
    rows: Sequence[Row], budget: int, boundaries: set[int], has_change: Callable[[Row], bool]
) -> RowSplit:
    """Cut ``rows`` into pieces of at most ``budget`` tokens.

    Cuts go before a row whose line starts a definition (``boundaries``) where that is
    enough, else between any two rows. Pieces without a changed row are left out: there
    is nothing in them to review. A single row over the budget cannot be sent at all
    and is returned in ``too_large`` so the caller can say so.
    """
    segments: list[list[Row]] = []
    for row in rows:
        if not segments or (row.new is not None and row.new in boundaries):
            segments.append([])
        segments[-1].append(row)
    out = RowSplit()
    piece: list[Row] = []
    used = 0

    def flush() -> None:
        nonlocal piece, used
        if any(has_change(r) for r in piece):
            out.pieces.append(piece)
        piece, used = [], 0

    for segment in segments:
        size = sum(r.tokens for r in segment)
        if size <= budget:
            if used + size > budget:
                flush()
            piece.extend(segment)
            used += size
            continue
        flush()  # a segment larger than the budget: cut it between rows
        for row in segment:
            if row.tokens > budget:
                flush()
                if has_change(row):
                    out.too_large.append(row)
                continue
            if used + row.tokens > budget:
                flush()
            piece.append(row)
            used += row.tokens
        flush()
    flush()
    return out
