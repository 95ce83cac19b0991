"""Position conversions between LSP, tree-sitter and Python strings.

Three ways to say where a character is:

- LSP: ``(line, character)``, the character counted in the negotiated position encoding
  (UTF-16 code units unless client and server agreed on "utf-8" or "utf-32", LSP 3.17);
- tree-sitter: UTF-8 byte offsets, and ``(row, byte column)`` points;
- Python: an index into the ``str``, counted in code points.

LSP lines end at "\\n", "\\r\\n" or "\\r". Tree-sitter rows end at "\\n" alone, so a text with a
lone "\\r" has fewer tree-sitter rows than LSP lines: ``point`` follows tree-sitter, because the
points we hand to ``Tree.edit`` must agree with the ones the parser computes itself.

Text is encoded with ``surrogatepass`` everywhere: JSON may carry a lone surrogate, and a
document that contains one must still work rather than crash the server.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from itertools import accumulate
from typing import Literal

PositionEncoding = Literal["utf-8", "utf-16", "utf-32"]
ENCODINGS: tuple[str, ...] = ("utf-8", "utf-16", "utf-32")


class InvalidPosition(ValueError):
    """A position or offset that names no place in the text: negative, or past its end."""


def encode(text: str) -> bytes:
    """The UTF-8 bytes tree-sitter sees; a lone surrogate becomes 3 bytes instead of an error."""
    return text.encode("utf-8", "surrogatepass")


def units(text: str, encoding: str) -> int:
    """How long ``text`` is in the code units of a position encoding."""
    if encoding == "utf-32" or text.isascii():
        return len(text)
    if encoding == "utf-16":
        return len(text.encode("utf-16-le", "surrogatepass")) // 2
    return len(encode(text))


def _code_points(text: str, count: int, encoding: str) -> int:
    """How many leading code points of ``text`` fit in ``count`` units.

    Rounds down when ``count`` ends inside a character (half a surrogate pair, part of a UTF-8
    sequence), and stops at the end of ``text`` (the clamping LSP asks for).
    """
    head = text[:count]  # every code point is at least one unit
    if encoding == "utf-32" or head.isascii():
        return len(head)
    if encoding == "utf-16":
        raw = head.encode("utf-16-le", "surrogatepass")
        if len(raw) <= 2 * count:
            return len(head)
        k = len(raw[: 2 * count].decode("utf-16-le", "ignore"))
    else:
        raw = encode(head)
        if len(raw) <= count:
            return len(head)
        k = len(raw[:count].decode("utf-8", "ignore"))
    # "ignore" drops the cut character (the rounding down we want) but also lone surrogates,
    # and joins a lone high + lone low pair: settle on the exact answer (no-ops for valid text).
    while k > 0 and units(head[:k], encoding) > count:
        k -= 1
    while k < len(head) and units(head[: k + 1], encoding) <= count:
        k += 1
    return k


def _line_starts(buf: str | bytes) -> list[int]:
    """Where each LSP line starts, as indices into ``buf`` (a str or its UTF-8 bytes)."""
    if isinstance(buf, str):
        if "\r" in buf:
            # Same length, and every line break now ends with exactly one "\n" where it ended.
            buf = buf.replace("\r\n", " \n").replace("\r", "\n")
        parts: list[str] | list[bytes] = buf.split("\n")
    else:
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b" \n").replace(b"\r", b"\n")
        parts = buf.split(b"\n")
    return _starts_of(parts)


def _row_starts(data: bytes) -> list[int]:
    """Where each tree-sitter row starts, as byte offsets."""
    return _starts_of(data.split(b"\n"))


def _starts_of(parts: list[str] | list[bytes]) -> list[int]:
    lengths = [len(part) + 1 for part in parts]
    lengths.pop()
    return list(accumulate(lengths, initial=0))


def _splice(
    starts: list[int],
    buf: str | bytes,
    start: int,
    end: int,
    new_end: int,
    find: Callable[[str | bytes], list[int]],
) -> list[int]:
    """Line starts after [start, end) of the old text became [start, new_end) of ``buf``.

    Whether s starts a line depends only on the characters at s - 1 and s, so starts before
    ``start`` stay, starts after ``end`` move by the change in length, and only those in
    [start, new_end] need looking for, in ``buf`` from one character before ``start``.
    """
    low = max(start - 1, 0)
    found = [low + s for s in find(buf[low : new_end + 1]) if start <= low + s <= new_end]
    spliced = starts[: bisect_left(starts, start)]
    spliced += found
    tail = starts[bisect_right(starts, end) :]
    spliced += map((new_end - end).__add__, tail) if new_end != end else tail
    return spliced


def _check_encoding(encoding: str) -> None:
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown position encoding {encoding!r}; expected one of {ENCODINGS}")


class LineIndex:
    """Line tables for one text, to convert positions in O(log lines) plus the line's length.

    Built in O(1): each table is computed on first use (the UTF-8 bytes too, unless given),
    and ``edited`` derives the next text's tables from these instead of rescanning the file.
    Immutable once built, so it can be shared between threads (a race only computes a table
    twice).
    """

    __slots__ = ("_ascii", "_byte_starts", "_cr", "_data", "_row_starts", "_starts", "text")

    def __init__(self, text: str, data: bytes | None = None) -> None:
        self.text = text
        self._data = data  # must equal encode(text) when given
        self._ascii: bool | None = None
        self._cr: bool | None = None  # does the text hold a "\r" (lines and rows differ)?
        self._starts: list[int] | None = None
        self._byte_starts: list[int] | None = None
        self._row_starts: list[int] | None = None

    def edited(self, start: int, end: int, new_text: str) -> LineIndex:
        """The index of this text with str indices [start, end) replaced by ``new_text``.

        Costs copying the text and bytes and shifting the line starts after the edit, but no
        Python-level rescan or re-encoding of the whole file: what makes typing in a big file
        cheap.
        """
        if not 0 <= start <= end <= len(self.text):
            raise InvalidPosition(f"edit [{start}, {end}) is not within the text")
        new = LineIndex(self.text[:start] + new_text + self.text[end:])
        new_end = start + len(new_text)
        inserted_ascii = new_text.isascii()
        if self._ascii is not None and not (inserted_ascii and not self._ascii):
            new._ascii = self._ascii and inserted_ascii  # else a deletion may have made it ASCII
        if self._cr is not None and not (self._cr and "\r" not in new_text):
            new._cr = self._cr or "\r" in new_text
        start_byte, end_byte = self.byte_offset(start), self.byte_offset(end)
        inserted = encode(new_text)
        new_end_byte = start_byte + len(inserted)
        if self._data is not None:
            new._data = self._data[:start_byte] + inserted + self._data[end_byte:]
        if self._starts is not None:
            new._starts = _splice(self._starts, new.text, start, end, new_end, _line_starts)
        # ASCII text, and text without "\r", share tables; a spliced copy would only cost time.
        if self._byte_starts is not None and new._ascii is not True:
            new._byte_starts = _splice(
                self._byte_starts, new.data, start_byte, end_byte, new_end_byte, _line_starts
            )
        if self._row_starts is not None and new._cr is not False:
            new._row_starts = _splice(
                self._row_starts, new.data, start_byte, end_byte, new_end_byte, _row_starts
            )
        return new

    # -- tables -----------------------------------------------------------------------------

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = encode(self.text)
        return self._data

    @property
    def ascii(self) -> bool:
        """ASCII text needs no conversions at all: index, byte and every unit are the same."""
        if self._ascii is None:
            self._ascii = self.text.isascii()
        return self._ascii

    def _lines(self) -> list[int]:
        if self._starts is None:
            self._starts = _line_starts(self.text)
        return self._starts

    def _byte_lines(self) -> list[int]:
        if self._byte_starts is None:
            self._byte_starts = self._lines() if self.ascii else _line_starts(self.data)
        return self._byte_starts

    def _rows(self) -> list[int]:
        if self._row_starts is None:
            if self._cr is None:
                self._cr = "\r" in self.text
            # Without "\r", LSP lines and tree-sitter rows are the same thing.
            self._row_starts = _row_starts(self.data) if self._cr else self._byte_lines()
        return self._row_starts

    # -- lines ------------------------------------------------------------------------------

    @property
    def line_count(self) -> int:
        """LSP lines: one more than the line breaks, so "a\\n" has two (the second empty)."""
        return len(self._lines())

    def line_bounds(self, line: int) -> tuple[int, int]:
        """Where ``line`` starts and where its content ends (before the line break)."""
        starts = self._lines()
        if line < 0:
            raise InvalidPosition(f"line {line} is negative")
        if line >= len(starts):
            raise InvalidPosition(
                f"line {line} is past the end of the text (lines 0 to {len(starts) - 1})"
            )
        start = starts[line]
        if line + 1 == len(starts):
            return start, len(self.text)
        end = starts[line + 1] - 1
        if end > start and self.text[end] == "\n" and self.text[end - 1] == "\r":
            end -= 1
        return start, end

    def line_of(self, index: int) -> int:
        """The LSP line holding str index ``index`` (its line break counts as part of it)."""
        self._check_index(index)
        return bisect_right(self._lines(), index) - 1

    # -- conversions ------------------------------------------------------------------------

    def offset(self, line: int, character: int, encoding: str = "utf-16") -> int:
        """The str index of an LSP position.

        A character past the end of its line means the end of the line (LSP says so); one
        inside a character (half a surrogate pair in UTF-16, part of a sequence in UTF-8)
        rounds down to that character's start.
        """
        _check_encoding(encoding)
        if character < 0:
            raise InvalidPosition(f"character {character} is negative")
        start, end = self.line_bounds(line)
        head = self.text[start : min(end, start + character)]
        return start + _code_points(head, character, encoding)

    def position(self, offset: int, encoding: str = "utf-16") -> tuple[int, int]:
        """The LSP position of a str index; inside a "\\r\\n" it is the end of the line."""
        _check_encoding(encoding)
        line = self.line_of(offset)
        start, end = self.line_bounds(line)
        return line, units(self.text[start : min(offset, end)], encoding)

    def byte_offset(self, index: int) -> int:
        """The UTF-8 byte offset of a str index."""
        self._check_index(index)
        if self.ascii:
            return index
        line = bisect_right(self._lines(), index) - 1
        start = self._lines()[line]
        return self._byte_lines()[line] + len(encode(self.text[start:index]))

    def point(self, index: int) -> tuple[int, int]:
        """The tree-sitter point (row, byte column) of a str index; rows end at "\\n" only."""
        byte = self.byte_offset(index)
        rows = self._rows()
        row = bisect_right(rows, byte) - 1
        return row, byte - rows[row]

    def str_index_of_byte(self, byte_offset: int) -> int:
        """The str index of a UTF-8 byte offset, rounding down from inside a character."""
        if byte_offset < 0:
            raise InvalidPosition(f"byte offset {byte_offset} is negative")
        if self.ascii:
            self._check_index(byte_offset)
            return byte_offset
        if byte_offset > len(self.data):
            raise InvalidPosition(
                f"byte offset {byte_offset} is past the end of the text ({len(self.data)} bytes)"
            )
        byte_lines = self._byte_lines()
        line = bisect_right(byte_lines, byte_offset) - 1
        start = self._lines()[line]
        count = byte_offset - byte_lines[line]
        return start + _code_points(self.text[start : start + count], count, "utf-8")

    def _check_index(self, index: int) -> None:
        if index < 0:
            raise InvalidPosition(f"offset {index} is negative")
        if index > len(self.text):
            raise InvalidPosition(
                f"offset {index} is past the end of the text ({len(self.text)} characters)"
            )
