"""Position conversions: LSP (three encodings), tree-sitter bytes and points, str indices."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.context.languages import language_named
from tandem.context.positions import ENCODINGS, InvalidPosition, LineIndex, units

EMOJI = "😀"  # 2 UTF-16 units, 4 UTF-8 bytes
CJK = "日本語"  # 1 UTF-16 unit and 3 UTF-8 bytes each
E_ACUTE = "e\u0301"  # e + combining acute: two code points, one grapheme


# -- a naive model, written for clarity rather than speed, to check LineIndex against ------


def model_lines(text: str) -> list[tuple[int, int]]:
    """(start, content end) of each LSP line: \\n, \\r\\n and \\r end a line."""
    lines, start, i = [], 0, 0
    while i < len(text):
        if text[i] == "\r" and text[i + 1 : i + 2] == "\n":
            lines.append((start, i))
            i += 2
            start = i
        elif text[i] in "\r\n":
            lines.append((start, i))
            i += 1
            start = i
        else:
            i += 1
    lines.append((start, len(text)))
    return lines


def model_width(ch: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(ch.encode())
    if encoding == "utf-16":
        return 2 if ord(ch) > 0xFFFF else 1
    return 1


def model_offset(text: str, line: int, character: int, encoding: str) -> int:
    start, end = model_lines(text)[line]
    index, used = start, 0
    while index < end and used + model_width(text[index], encoding) <= character:
        used += model_width(text[index], encoding)
        index += 1
    return index


def model_position(text: str, index: int, encoding: str) -> tuple[int, int]:
    for line, (start, end) in enumerate(model_lines(text)):
        next_start = model_lines(text)[line + 1][0] if line + 1 < len(model_lines(text)) else None
        if next_start is None or index < next_start:
            return line, sum(model_width(ch, encoding) for ch in text[start : min(index, end)])
    raise AssertionError("unreachable")


def model_point(text: str, index: int) -> tuple[int, int]:
    before = text[:index].encode()
    return before.count(b"\n"), len(before) - (before.rfind(b"\n") + 1)


# -- examples -----------------------------------------------------------------------------


def test_ascii_lines_and_round_trips():
    lines = LineIndex("def f():\n    return 1\n")
    assert lines.line_count == 3
    assert lines.offset(1, 4) == 13
    assert lines.position(13) == (1, 4)
    assert lines.byte_offset(13) == 13
    assert lines.point(13) == (1, 4)
    assert lines.str_index_of_byte(13) == 13
    assert lines.offset(2, 0) == len(lines.text)  # the empty line after the last break


def test_emoji_is_two_utf16_units_and_four_bytes():
    text = f"a{EMOJI}b"
    lines = LineIndex(text)
    # "b" (str index 2) in each encoding
    assert lines.offset(0, 3, "utf-16") == 2
    assert lines.offset(0, 5, "utf-8") == 2
    assert lines.offset(0, 2, "utf-32") == 2
    assert lines.position(2, "utf-16") == (0, 3)
    assert lines.position(2, "utf-8") == (0, 5)
    assert lines.position(2, "utf-32") == (0, 2)
    assert lines.byte_offset(2) == 5
    assert lines.point(2) == (0, 5)
    assert lines.str_index_of_byte(5) == 2


def test_inside_a_character_rounds_down():
    lines = LineIndex(f"a{EMOJI}b")
    assert lines.offset(0, 2, "utf-16") == 1  # between the two surrogates: before the emoji
    assert [lines.offset(0, c, "utf-8") for c in (2, 3, 4)] == [1, 1, 1]
    assert [lines.str_index_of_byte(b) for b in (2, 3, 4)] == [1, 1, 1]


def test_cjk():
    lines = LineIndex(f"x = '{CJK}'\n")
    quote = 5 + len(CJK)
    assert lines.offset(0, quote, "utf-16") == quote
    assert lines.offset(0, 5 + 9, "utf-8") == quote
    assert lines.offset(0, 5 + 4, "utf-8") == 6  # inside the second character
    assert lines.position(quote, "utf-8") == (0, 14)
    assert lines.byte_offset(quote) == 14
    assert lines.point(len(lines.text)) == (1, 0)


def test_combining_marks_are_separate_code_points():
    lines = LineIndex(f"{E_ACUTE}x")
    assert lines.offset(0, 1) == 1  # between the e and its accent: a valid place in LSP
    assert lines.position(2, "utf-16") == (0, 2)
    assert lines.position(2, "utf-8") == (0, 3)
    assert lines.position(2, "utf-32") == (0, 2)
    assert lines.byte_offset(2) == 3


def test_crlf_and_lone_cr_end_lines():
    text = "a\r\nb\rc\nd"
    lines = LineIndex(text)
    assert lines.line_count == 4
    assert [lines.offset(line, 0) for line in range(4)] == [0, 3, 5, 7]
    assert [lines.line_bounds(line) for line in range(4)] == [(0, 1), (3, 4), (5, 6), (7, 8)]
    assert lines.offset(0, 1) == 1  # the end of "a", before "\r\n"
    assert lines.position(2) == (0, 1)  # between "\r" and "\n": the end of the line
    assert lines.position(3) == (1, 0)


def test_points_follow_tree_sitter_rows_not_lsp_lines():
    text = "a = 1\rb = 2\r\nc = 3\n"
    lines = LineIndex(text)
    assert lines.point(text.index("b")) == (0, 6)  # a lone "\r" is not a row break
    assert lines.point(text.index("c")) == (1, 0)
    tree = language_named("python").parser().parse(lines.data)
    stack, seen = [tree.root_node], 0
    while stack:
        node = stack.pop()
        assert lines.point(lines.str_index_of_byte(node.start_byte)) == tuple(node.start_point)
        assert lines.point(lines.str_index_of_byte(node.end_byte)) == tuple(node.end_point)
        stack.extend(node.children)
        seen += 1
    assert seen > 5


def test_character_past_the_end_of_the_line_clamps():
    lines = LineIndex(f"ab{EMOJI}\r\nnext")
    for encoding in ENCODINGS:
        assert lines.offset(0, 99, encoding) == 3  # before the "\r\n"
        assert lines.offset(1, 99, encoding) == len(lines.text)


def test_empty_text():
    lines = LineIndex("")
    assert lines.line_count == 1
    assert lines.offset(0, 0) == 0
    assert lines.offset(0, 5) == 0
    assert lines.position(0) == (0, 0)
    assert lines.point(0) == (0, 0)
    assert lines.str_index_of_byte(0) == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ix: ix.offset(2, 0), "line 2 is past the end"),
        (lambda ix: ix.offset(-1, 0), "negative"),
        (lambda ix: ix.offset(0, -1), "negative"),
        (lambda ix: ix.position(-1), "negative"),
        (lambda ix: ix.position(99), "past the end"),
        (lambda ix: ix.byte_offset(99), "past the end"),
        (lambda ix: ix.point(-3), "negative"),
        (lambda ix: ix.str_index_of_byte(99), "past the end"),
        (lambda ix: ix.str_index_of_byte(-1), "negative"),
    ],
)
def test_invalid_positions_raise(call, message):
    with pytest.raises(InvalidPosition, match=message) as caught:
        call(LineIndex(f"{EMOJI}\n"))
    assert isinstance(caught.value, ValueError)


def test_unknown_encoding_is_a_programming_error_not_a_bad_position():
    with pytest.raises(ValueError, match="utf-7") as caught:
        LineIndex("x").offset(0, 0, "utf-7")
    assert not isinstance(caught.value, InvalidPosition)


def test_lone_surrogates_do_not_crash():
    # JSON can carry "\ud800"; it must not take the server down.
    lines = LineIndex("a\ud800b\n")
    assert lines.byte_offset(2) == 4
    assert lines.offset(0, 2, "utf-16") == 2
    assert lines.position(3, "utf-8") == (0, 5)
    assert lines.str_index_of_byte(2) == 1


# -- properties ---------------------------------------------------------------------------

ALPHABET = st.sampled_from(["a", "b", " ", "\n", "\r", "\r\n", "é", E_ACUTE, CJK[0], EMOJI, "𝔘"])
TEXTS = st.lists(ALPHABET, max_size=40).map("".join)
ENCODING = st.sampled_from(ENCODINGS)


@settings(max_examples=150, deadline=None)
@given(TEXTS, ENCODING)
def test_conversions_match_the_model_at_every_index(text, encoding):
    lines = LineIndex(text)
    assert lines.line_count == len(model_lines(text))
    for index in range(len(text) + 1):
        position = lines.position(index, encoding)
        assert position == model_position(text, index, encoding)
        in_crlf = 0 < index < len(text) and text[index - 1 : index + 1] == "\r\n"
        assert lines.offset(*position, encoding) == (index - 1 if in_crlf else index)
        assert lines.byte_offset(index) == len(text[:index].encode())
        assert lines.point(index) == model_point(text, index)
        assert lines.str_index_of_byte(lines.byte_offset(index)) == index


@settings(max_examples=150, deadline=None)
@given(TEXTS, st.integers(-3, 50), st.integers(-3, 200), ENCODING)
def test_any_position_gives_the_model_offset_or_invalid_position(text, line, character, encoding):
    lines = LineIndex(text)
    try:
        offset = lines.offset(line, character, encoding)
    except InvalidPosition:
        assert line < 0 or character < 0 or line >= len(model_lines(text))
        return
    assert offset == model_offset(text, line, character, encoding)
    # Clamped and rounded down: never more units than asked for, on the same line.
    got_line, got_character = lines.position(offset, encoding)
    assert got_line == line and got_character <= character


@settings(max_examples=150, deadline=None)
@given(TEXTS, st.integers(-3, 200), st.integers(-3, 200))
def test_any_offset_or_byte_converts_or_raises_invalid_position(text, index, byte):
    lines = LineIndex(text)
    for call in (lines.position, lines.byte_offset, lines.point, lines.line_of):
        try:
            call(index)
        except InvalidPosition:
            assert not 0 <= index <= len(text)
    try:
        found = lines.str_index_of_byte(byte)
    except InvalidPosition:
        assert not 0 <= byte <= len(text.encode())
    else:
        # rounded down to the start of the character the byte is in
        assert len(text[:found].encode()) <= byte
        assert found == len(text) or len(text[: found + 1].encode()) > byte


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30), ENCODING)
def test_units_measures_like_the_client(text, encoding):
    expected = {"utf-8": len(text.encode()), "utf-16": len(text.encode("utf-16-le")) // 2}
    assert units(text, encoding) == expected.get(encoding, len(text))


@settings(max_examples=150, deadline=None)
@given(TEXTS, st.data())
def test_edited_index_equals_a_fresh_one(text, data):
    # Tables carried over and spliced must equal tables built from scratch, whichever of them
    # had been computed before the edit (ASCII and "\r"-free texts share theirs).
    lines = LineIndex(text, text.encode() if data.draw(st.booleans(), label="bytes") else None)
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        warm = data.draw(st.sampled_from(["none", "lines", "bytes", "points"]), label="warm")
        if warm != "none" and lines.text:
            index = len(lines.text) // 2
            {"lines": lines.position, "bytes": lines.byte_offset, "points": lines.point}[warm](
                index
            )
        start = data.draw(st.integers(0, len(text)), label="start")
        end = data.draw(st.integers(start, len(text)), label="end")
        new = data.draw(TEXTS, label="inserted")
        text = text[:start] + new + text[end:]
        lines = lines.edited(start, end, new)
        fresh = LineIndex(text)
        assert lines.text == text and lines.data == text.encode()
        assert lines.line_count == fresh.line_count
        for index in range(len(text) + 1):
            assert lines.position(index) == fresh.position(index)
            assert lines.position(index, "utf-8") == fresh.position(index, "utf-8")
            assert lines.byte_offset(index) == fresh.byte_offset(index)
            assert lines.point(index) == fresh.point(index)
        for byte in range(len(lines.data) + 1):
            assert lines.str_index_of_byte(byte) == fresh.str_index_of_byte(byte)


def test_edited_rejects_a_range_outside_the_text():
    with pytest.raises(InvalidPosition):
        LineIndex("abc").edited(2, 5, "x")
    with pytest.raises(InvalidPosition):
        LineIndex("abc").edited(2, 1, "x")


@pytest.mark.parametrize(
    ("text", "start", "end", "new", "line_count"),
    [
        ("a\nb", 1, 1, "\r", 2),  # inserted "\r" joins the "\n" after it
        ("a\rb", 2, 2, "\n", 2),  # inserted "\n" joins the "\r" before it
        ("a\r\nb", 2, 2, "x", 3),  # splitting a "\r\n" makes two breaks
        ("a\r\nb", 1, 2, "", 2),
        ("a\r\nb", 2, 3, "", 2),
        ("a\r😀\nb", 2, 3, "", 2),  # deleting what stood between "\r" and "\n"
        ("é\r\n", 3, 3, "\r", 3),
    ],
)
def test_edits_at_line_break_boundaries(text, start, end, new, line_count):
    lines = LineIndex(text)
    lines.point(0), lines.position(len(text)), lines.str_index_of_byte(0)  # build every table
    lines = lines.edited(start, end, new)
    fresh = LineIndex(lines.text)
    assert lines.line_count == fresh.line_count == line_count
    for index in range(len(lines.text) + 1):
        assert lines.position(index) == fresh.position(index)
        assert lines.point(index) == fresh.point(index)
        assert lines.byte_offset(index) == fresh.byte_offset(index)
