"""The cursor's surroundings as post-processing reads them, and syntax errors counted there.

``Site`` holds the windowed prefix and suffix, the cursor line, the file's indentation
unit and the lines after the cursor; ``count`` parses the file with a candidate
completion in place and counts ERROR and MISSING nodes (and empty Python blocks), which
is how every rule in ``postprocess`` decides whether a cut makes the file better.
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
        assert self.spec is not None
        if self._base is None:
            self._base = parse(self.spec, self.prefix + self.suffix)
        if not text:
            return self._base
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
        return self.spec.parser().parse(source.encode(), old)

    def count(self, text: str) -> int:
        """ERROR and MISSING nodes in the file with ``text`` at the cursor."""
        if self.spec is None:
            return 0
        if text not in self._counts:
            self._counts[text] = len(errors(self.tree(text), self.spec))
        return self._counts[text]

    def base(self, multiline: bool) -> int:
        """Errors without a completion, less the hole it fills (rule 7)."""
        if self.spec is None:
            return 0
        k, found = len(self.prefix.rstrip().encode()), errors(self.tree(""), self.spec)
        holes = [e for e in found if e.is_named and k <= e.start_byte == e.end_byte <= self.p]
        return len(found) - sum(e.is_missing or multiline for e in holes)

    def better(self, candidate: str, current: str, text_ok: bool) -> bool:
        """Whether to take ``candidate``: fewer errors, or as many and the text rule agrees."""
        if self.spec is None:
            return text_ok
        diff = self.count(candidate) - self.count(current)
        return diff < 0 or (diff == 0 and text_ok)


def errors(tree: ts.Tree, spec: LanguageSpec | None) -> list[ts.Node]:
    """Outermost ERROR and MISSING nodes, and empty Python blocks (the grammar allows them)."""
    found: list[ts.Node] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            found.append(node)
        elif node.has_error:
            stack.extend(reversed(node.children))
    root = tree.root_node
    # Not over junk parsed as a flat run of error tokens: the query is quadratic there and
    # holds the GIL (200 kB froze the server for half a minute), and such text has no blocks.
    if (
        spec is not None
        and spec.name in INDENTED
        and not (root.has_error and root.child_count > WIDE_ERROR)
    ):
        blocks = ts.QueryCursor(_blocks(spec)).captures(root).get("block", [])
        found.extend(b for b in blocks if b.start_byte == b.end_byte)
    return sorted(found, key=lambda n: n.start_byte)


WIDE_ERROR = 10_000  # top-level nodes of a tree with errors: a query takes ~50 ms there


@cache
def _blocks(spec: LanguageSpec) -> ts.Query:
    return ts.Query(spec.language, "(block) @block")
