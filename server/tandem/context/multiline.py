"""Whether to ask the model for a block or for one line.

Decided before the request: several lines where the cursor starts an empty body
or sits on a blank line between statements, one line elsewhere (an argument list
wants one argument, not a block). Big files are read in a window of whole
statements around the cursor (``WINDOW``), as parsing them whole is slow;
``postprocess`` reads the same window when it cuts what the model returns.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

import tree_sitter as ts

from tandem.context.languages import LanguageSpec

OPENERS, CLOSERS = "([{", ")]}"
WINDOW = 8000  # characters of context kept on each side at least: parsing a big file is slow
_LINE = re.compile(r"(?<=\n)([ \t]*)(\S)")  # a line with code: its indentation, first char
_TOP = re.compile(r"\n(\S)")  # a line with code at column 0 (after its newline)


def wants_block(
    text: str, offset: int, spec: LanguageSpec | None, tree: ts.Tree | None = None
) -> bool:
    """Whether to ask for several lines at ``offset`` (a character index of ``text``).

    True at the start of an empty block body (``at_empty_body``), and on any blank
    line between statements (top level, or a block with code below): callers that
    want to limit the second kind ask ``at_empty_body``. False mid-line, at the end
    of a line that opens no block, and on a blank line inside brackets, a string or
    a comment (an argument list wants one argument, not a block). ``tree``: the parse
    of ``text`` when the caller has one (used where the window is the whole text).
    """
    whole, at, length = text, offset, len(text)
    text, offset = _window_text(text, offset)
    tree = tree if len(text) == length else None
    before, after = _line_around(text, offset)
    if after.strip(" \t\r;,)]}"):
        return False  # text after the cursor: finish this line
    if spec is None:
        return not before.strip() or before.rstrip().endswith(("{", ":"))
    # The whole text, windowed there as here: a window of the window was parsed apart
    # from the one post-processing reads (issue 12: ~4 ms more per request, big files).
    if at_empty_body(whole, at, spec, tree):
        return True
    if before.strip() or after.strip():
        return False
    root = (tree or parse(spec, text)).root_node
    return not _in_expression(root, len(text[:offset].encode()), spec)


def at_empty_body(
    text: str, offset: int, spec: LanguageSpec | None, tree: ts.Tree | None = None
) -> bool:
    """Whether the cursor starts the body of a block with nothing in it yet.

    The cursor is on a blank line or at the end of the header (``def f():|``,
    ``{|}``), and the last token before it opens a block node that holds nothing
    but comments. Where the text around makes the header an ERROR (and without a
    grammar, where the header ends in ``{`` or ``:``), the prefix is read alone
    and the next line must not be indented deeper than the header. ``tree``: the
    parse of ``text``, when the caller has one.
    """
    length = len(text)
    text, offset = _window_text(text, offset)
    tree = tree if len(text) == length else None
    if _line_around(text, offset)[1].strip(" \t\r;,)]}"):
        return False
    prefix = text[:offset]
    header = prefix.rstrip()
    if spec is not None:
        p = len(prefix.encode())
        opener = _last_token((tree or parse(spec, text)).root_node, text.encode(), p)
        if opener is not None and opener.parent is not None and opener.parent.type != "ERROR":
            return _empty_block(opener, spec)
        opener = _last_token(parse(spec, prefix).root_node, prefix.encode(), p)
        if opener is None or not _empty_block(opener, spec):
            return False
    elif not header.endswith(("{", ":")):
        return False
    below = [ln for ln in text[offset:].split("\n")[1:] if ln.strip()]
    return not below or indent(below[0]) <= indent(header[header.rfind("\n") + 1 :])


def _last_token(root: ts.Node, data: bytes, p: int) -> ts.Node | None:
    """The last token before byte ``p``, comments skipped."""
    k = len(data[:p].rstrip())
    while k > 0:
        node = root.descendant_for_byte_range(k - 1, k)
        if node is None or "comment" not in node.type:
            return node
        k = len(data[: node.start_byte].rstrip())
    return None


def _empty_block(opener: ts.Node, spec: LanguageSpec) -> bool:
    """Whether ``opener`` (``{``, ``:``, ``do``...) starts a block node holding nothing."""
    parent = opener.parent
    if parent is None:
        return False
    if parent.type in spec.block_types and parent.child(0) == opener:
        block = parent
    else:  # the block follows the opener (next_sibling skips an empty Python block)
        siblings = parent.children
        after = [c for c in siblings[siblings.index(opener) + 1 :] if "comment" not in c.type]
        if not after or after[0].type not in spec.block_types:
            return False
        block = after[0]
    return not any(c.is_named and "comment" not in c.type for c in block.children)


def _in_expression(root: ts.Node, p: int, spec: LanguageSpec) -> bool:
    """Whether byte ``p`` is inside brackets, a string or a comment, not between statements."""
    node: ts.Node | None = root.descendant_for_byte_range(p, p)
    while node is not None and node.parent is not None:
        if node.start_byte < p < node.end_byte:
            if node.type in spec.block_types:
                return False
            if "string" in node.type or "comment" in node.type:
                return True
            first = node.children[0] if node.child_count else None
            if first is not None and first.type in ("(", "[") and first.end_byte <= p:
                return True
        node = node.parent
    return False


def window(prefix: str, suffix: str) -> tuple[str, str]:
    """The context the rules read: whole statements, from the least indented line
    within reach (as late as can be) to the one after the cursor (as early)."""
    if len(prefix) > WINDOW:
        prefix = prefix[_shallowest(prefix, len(prefix) - 4 * WINDOW, len(prefix) - WINDOW, -1) :]
    if len(suffix) > WINDOW:
        suffix = suffix[: _shallowest(suffix, WINDOW, 4 * WINDOW, 1) or len(suffix)]
    return prefix, suffix


def _window_text(text: str, offset: int) -> tuple[str, int]:
    prefix, suffix = window(text[:offset], text[offset:])
    return prefix + suffix, len(prefix)


def _shallowest(text: str, lo: int, hi: int, order: int) -> int:
    """Where the least indented line that starts code in text[lo:hi] starts (0: none).

    Most code has lines at column 0 in reach: those are found first by one scan for a
    newline before code (~50x faster than measuring every line, which took ~2.5 ms a
    call on a big file, three calls a request); only without one is every line measured.
    """
    lo, hi = max(lo, 0), max(hi, 0)
    top = _first_top(text, max(lo - 1, 0), hi) if order > 0 else _last_top(text, max(lo - 1, 0), hi)
    if top:
        return top
    starts = _LINE.finditer(text, lo, hi)
    lines = [(len(m[1]), m[2] in CLOSERS, order * m.start()) for m in starts]
    return abs(min(lines)[2]) if lines else 0


def _first_top(text: str, lo: int, hi: int) -> int:
    """The start of the first column-0 code line in text[lo:hi] that is not a closing
    bracket, else of the first that is (0: none). Stops at the first such line: listing
    every one cost ~0.1 ms a call on a big file, six calls a request (issue 12)."""
    closer = 0
    for m in _TOP.finditer(text, lo, hi):
        if m[1] not in CLOSERS:
            return m.start() + 1
        closer = closer or m.start() + 1
    return closer


def _last_top(text: str, lo: int, hi: int, chunk: int = 2048) -> int:
    """As ``_first_top``, the last such line: matched chunk by chunk from ``hi`` back."""
    closer = 0
    end, chunk = hi, max(chunk, 2)  # a match is two characters long
    while end > lo:
        start = max(lo, end - chunk)
        for m in reversed(list(_TOP.finditer(text, start, end))):
            if m[1] not in CLOSERS:
                return m.start() + 1
            closer = closer or m.start() + 1
        if start == lo:
            break
        end = start + 1  # a match starting at start - 1 ends at start: in the next chunk
    return closer


def _line_around(text: str, offset: int) -> tuple[str, str]:
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return text[start:offset], text[offset : end if end >= 0 else len(text)]


@lru_cache(maxsize=8)
def parse(spec: LanguageSpec, text: str) -> ts.Tree:
    """The tree of ``text``. Kept: the block decision before a request and post-processing
    after it parse the same window of a big file (~4 ms each on 5,000 lines). A kept tree
    is never edited (``postprocess`` edits a copy).

    Parsed incrementally from the last window parsed in this language when the two
    differ in one stretch (the usual case: a keystroke since the last request) that
    leaves most of the text alike: ~0.8 ms instead of ~4.5 ms for a 16 kB window.
    """
    data = text.encode()
    with _last_lock:
        last = _last.get(spec.name)
    tree = None
    if last is not None:
        tree = _reparse(spec, last[0], last[1], data)
    if tree is None:
        tree = spec.parser().parse(data)
    with _last_lock:
        _last[spec.name] = (data, tree)
    return tree


_last: dict[str, tuple[bytes, ts.Tree]] = {}  # per language: the last window parsed
_last_lock = threading.Lock()
MIN_REUSED = 0.5  # of the new text unchanged at its two ends, to reparse from an old tree


def _reparse(spec: LanguageSpec, old: bytes, tree: ts.Tree, new: bytes) -> ts.Tree | None:
    """``new`` parsed from ``old``'s tree edited by the one stretch where they differ,
    or None when they have too little in common."""
    start = common_prefix(old, new)
    end = common_prefix(old[start:][::-1], new[start:][::-1])  # common suffix, after it
    if start + end < MIN_REUSED * len(new):
        return None
    old_end, new_end = len(old) - end, len(new) - end
    edited = tree.copy()  # the kept tree is never edited: a reader may hold it
    edited.edit(
        start_byte=start,
        old_end_byte=old_end,
        new_end_byte=new_end,
        start_point=point(new, start),
        old_end_point=point(old, old_end),
        new_end_point=point(new, new_end),
    )
    return spec.parser().parse(new, edited)


def common_prefix(a: bytes, b: bytes) -> int:
    """How many leading bytes ``a`` and ``b`` share (by halving: each test is a memcmp)."""
    low, high = 0, min(len(a), len(b))
    if a[:high] == b[:high]:
        return high
    while low < high:  # a[:low] == b[:low] and a[:high] != b[:high]
        mid = (low + high + 1) // 2
        if a[low:mid] == b[low:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def point(data: bytes, at: int) -> tuple[int, int]:
    """The tree-sitter (row, byte column) of byte ``at``."""
    row = data.count(b"\n", 0, at)
    return row, at - (data.rfind(b"\n", 0, at) + 1)


def indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))
