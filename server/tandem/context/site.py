"""The cursor's surroundings as post-processing reads them, and syntax errors counted there.

``Site`` holds the windowed prefix and suffix, the cursor line, the file's indentation
unit and the lines after the cursor; ``count`` parses the file with a candidate
completion in place and counts ERROR and MISSING nodes (and empty Python blocks), which
is how every rule in ``postprocess`` decides whether a cut makes the file better.

Every rule compares two counts (``count`` against ``count`` or ``base``), never a count
against a fixed number, so the counts are kept *relative*: less the empty blocks of the
file without a completion. Those blocks are the same on both sides of every comparison;
counting them took a query over the whole window on every request (issue 12). Only the
blocks where a candidate's tree changed, and those at the cursor (``base``), are counted.
"""

from __future__ import annotations

from collections import Counter
from functools import cache, cached_property
from itertools import pairwise

import tree_sitter as ts

from tandem.context.languages import LanguageSpec
from tandem.context.multiline import indent, parse

INDENTED = frozenset({"python"})  # languages whose blocks end by dedenting


class Site:
    """The cursor's surroundings, and error counts of candidate completions there."""

    def __init__(
        self, prefix: str, suffix: str, spec: LanguageSpec | None, base: ts.Tree | None = None
    ) -> None:
        self.prefix, self.suffix, self.spec = prefix, suffix, spec
        self._base = base  # the tree of prefix + suffix
        self.before = prefix[prefix.rfind("\n") + 1 :]  # the cursor line up to the cursor
        self.rest = suffix.split("\n", 1)[0]  # and after it
        self.blank = not self.before.strip()
        self.p = len(prefix.encode())
        self.indented = spec is None or spec.name in INDENTED
        self._counts: dict[str, int] = {}
        self._trees: dict[str, tuple[ts.Tree, ts.Tree | None]] = {}
        self._errors: list[ts.Node] | None = None  # ERROR/MISSING of the tree without one
        self._blocks: int | None = None  # its empty blocks, counted only when needed

    @cached_property
    def next_lines(self) -> list[str]:
        """The lines after the cursor line, from the first non-blank one."""
        lines = self.suffix.split("\n")[1:40]
        while lines and not lines[0].strip():
            lines.pop(0)
        return lines

    @cached_property
    def unit(self) -> str:
        """The file's indentation step: a tab, or the commonest increase in spaces."""
        text = self.prefix + "x" + self.suffix  # the cursor line counts too
        lines = [ln for ln in text.split("\n") if ln.strip()]
        if sum(ln.startswith("\t") for ln in lines) > sum(ln.startswith(" ") for ln in lines):
            return "\t"
        steps = Counter(indent(b) - indent(a) for a, b in pairwise(lines))
        best = [n for n, _ in steps.most_common() if 1 < n <= 8]
        return " " * (best[0] if best else 4)

    @cached_property
    def body(self) -> int:
        """Lines indented less than this have left the cursor's block."""
        if self.blank:
            return len(self.before)
        opens = self.before.rstrip().endswith((":", "{", "(", "["))
        return indent(self.before) + (1 if opens else 0)

    def placed(self, lines: list[str]) -> list[str]:
        return [self.before + lines[0], *lines[1:]] if lines else []

    def same(self, line: str, other: str) -> bool:
        """Equal lines; brace languages forgive indentation (the parse still judges)."""
        strip = str.rstrip if self.indented else str.strip
        return strip(line) == strip(other)

    def tree(self, text: str) -> ts.Tree:
        """The file with ``text`` at the cursor: edited from the tree without it."""
        return self._edited(text)[0]

    def _edited(self, text: str) -> tuple[ts.Tree, ts.Tree | None]:
        """The tree with ``text`` in place, and the copy of the tree without it that was
        edited to make room for it (None for ``text`` ""); kept per text, as the rules
        ask for the same candidate's tree more than once."""
        assert self.spec is not None
        if self._base is None:
            self._base = parse(self.spec, self.prefix + self.suffix)
        if not text:
            return self._base, None
        known = self._trees.get(text)
        if known is not None:
            return known
        inserted = text.encode()
        row, column = self.prefix.count("\n"), len(self.before.encode())
        if "\n" in text:
            end = (row + text.count("\n"), len(text[text.rfind("\n") + 1 :].encode()))
        else:
            end = (row, column + len(inserted))
        old = self._base.copy()
        old.edit(
            start_byte=self.p,
            old_end_byte=self.p,
            new_end_byte=self.p + len(inserted),
            start_point=(row, column),
            old_end_point=(row, column),
            new_end_point=end,
        )
        source = self.prefix + text + self.suffix
        made = self.spec.parser().parse(source.encode(), old), old
        self._trees[text] = made
        return made

    def count(self, text: str) -> int:
        """ERROR and MISSING nodes in the file with ``text`` at the cursor (and empty
        Python blocks), less the empty blocks of the file without a completion: only
        differences between counts mean anything (``absolute`` adds them back).

        For a candidate, empty blocks are counted only where its tree differs from the
        tree without it (``changed_ranges``), the rest being the same blocks (issue 12).
        """
        if self.spec is None:
            return 0
        if text not in self._counts:
            if not text:
                self._counts[text] = len(self._base_errors())
            else:
                self._counts[text] = self._count_edited(text)
        return self._counts[text]

    def absolute(self, text: str) -> int:
        """``count`` with the empty blocks of the file without a completion added back:
        the count of a fresh parse (for tests and the rare junk tree)."""
        return self.count(text) + self._base_blocks() if self.spec is not None else 0

    def _base_errors(self) -> list[ts.Node]:
        assert self.spec is not None
        if self._errors is None:
            self._errors = _error_nodes(self.tree(""))
        return self._errors

    def _base_blocks(self) -> int:
        """Empty blocks in the whole window without a completion (a query over all of it)."""
        assert self.spec is not None
        if self._blocks is None:
            base = self.tree("")
            self._blocks = 0
            if _counts_blocks(self.spec, base):
                self._blocks = _empty_blocks(base, self.spec, [(0, base.root_node.end_byte)])
        return self._blocks

    def _count_edited(self, text: str) -> int:
        new, old = self._edited(text)
        assert old is not None and self.spec is not None and self._base is not None
        if not _counts_blocks(self.spec, new) or not _counts_blocks(self.spec, self._base):
            # one side has no block count: the whole count, made relative
            return len(errors(new, self.spec)) - self._base_blocks()
        spans = [(r.start_byte, r.end_byte) for r in old.changed_ranges(new)]
        spans.append((self.p, self.p + len(text.encode())))
        # A body emptied or filled shows as a change next to its header's empty block,
        # not always over it: each span grows to the top-level statements around it.
        spans = _merged([_statements(old, new, a, b) for a, b in spans])
        blocks = _empty_blocks(new, self.spec, spans) - _empty_blocks(old, self.spec, spans)
        return len(_error_nodes(new)) + blocks

    def base(self, multiline: bool) -> int:
        """Errors without a completion, less the hole it fills (rule 7); relative, as
        ``count``: the empty blocks at the cursor (a hole) are the only ones looked at."""
        if self.spec is None:
            return 0
        k, found = len(self.prefix.rstrip().encode()), list(self._base_errors())
        base = self.tree("")
        if _counts_blocks(self.spec, base):
            found += _empty_block_nodes(base, self.spec, k, self.p)
        holes = [e for e in found if e.is_named and k <= e.start_byte == e.end_byte <= self.p]
        return len(self._base_errors()) - sum(e.is_missing or multiline for e in holes)

    def better(self, candidate: str, current: str, text_ok: bool) -> bool:
        """Whether to take ``candidate``: fewer errors, or as many and the text rule agrees."""
        if self.spec is None:
            return text_ok
        diff = self.count(candidate) - self.count(current)
        return diff < 0 or (diff == 0 and text_ok)


def errors(tree: ts.Tree, spec: LanguageSpec | None) -> list[ts.Node]:
    """Outermost ERROR and MISSING nodes, and empty Python blocks (the grammar allows them)."""
    found = _error_nodes(tree)
    if spec is not None and _counts_blocks(spec, tree):
        blocks = ts.QueryCursor(_blocks(spec)).captures(tree.root_node).get("block", [])
        found.extend(b for b in blocks if b.start_byte == b.end_byte)
    return sorted(found, key=lambda n: n.start_byte)


def _error_nodes(tree: ts.Tree) -> list[ts.Node]:
    """Outermost ERROR and MISSING nodes (only subtrees with an error are walked)."""
    found: list[ts.Node] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            found.append(node)
        elif node.has_error:
            stack.extend(reversed(node.children))
    return found


def _counts_blocks(spec: LanguageSpec, tree: ts.Tree) -> bool:
    """Whether empty blocks count in this tree: an indented language, and not junk.

    Not over junk parsed as a flat run of error tokens: the query is quadratic there and
    holds the GIL (200 kB froze the server for half a minute), and such text has no blocks.
    """
    root = tree.root_node
    return spec.name in INDENTED and not (root.has_error and root.child_count > WIDE_ERROR)


def _empty_blocks(tree: ts.Tree, spec: LanguageSpec, spans: list[tuple[int, int]]) -> int:
    """Empty blocks of ``tree`` that start within one of ``spans`` (ends included)."""
    return sum(len(_empty_block_nodes(tree, spec, start, end)) for start, end in spans)


def _empty_block_nodes(tree: ts.Tree, spec: LanguageSpec, start: int, end: int) -> list[ts.Node]:
    """Empty blocks of ``tree`` that start within ``start``-``end`` (ends included)."""
    cursor = ts.QueryCursor(_blocks(spec))
    cursor.set_byte_range(max(0, start - 1), end + 1)
    return [
        block
        for block in cursor.captures(tree.root_node).get("block", [])
        if block.start_byte == block.end_byte and start <= block.start_byte <= end
    ]


def _statements(old: ts.Tree, new: ts.Tree, start: int, end: int) -> tuple[int, int]:
    """``start``-``end`` grown to the whole top-level statements holding either end, in
    either tree (and by a byte each side)."""
    low, high = max(0, start - 1), end + 1
    for tree in (old, new):
        root = tree.root_node
        for at in (low, high):
            node = root.descendant_for_byte_range(at, at)
            while node is not None and node.parent is not None and node.parent != root:
                node = node.parent
            if node is not None and node != root:
                low, high = min(low, node.start_byte), max(high, node.end_byte)
    return low, high


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching spans joined, in order."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


WIDE_ERROR = 10_000  # top-level nodes of a tree with errors: a query takes ~50 ms there


@cache
def _blocks(spec: LanguageSpec) -> ts.Query:
    return ts.Query(spec.language, "(block) @block")
