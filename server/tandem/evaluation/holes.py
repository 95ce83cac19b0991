"""Holes cut from real code: the text a completion should restore, and where.

Three placements, as an editor meets them: ``line`` (a statement line emptied, the
cursor after its indentation, as auto-indent leaves it), ``block`` (a block's whole
body emptied under its header, the cursor on the first line's indentation) and
``midline`` (a call's arguments removed, the closing bracket and the rest of the line
kept after the cursor). Holes are chosen by syntax (tree-sitter), deterministically.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import tree_sitter as ts

from tandem.context.languages import LanguageSpec

PLACEMENTS = ("line", "block", "midline")
MAX_LINE = 120  # characters: longer lines are rare to type and noisy to score
MAX_BLOCK_LINES = 8
SKIP = {"comment", "string"}
ARGUMENTS = {"argument_list", "arguments"}  # a call's bracketed arguments, by grammar


@dataclass(frozen=True)
class Hole:
    """One task: ``text`` is the file without ``expected``, which belonged at ``offset``."""

    path: Path
    placement: str
    text: str
    offset: int
    expected: str
    line: int  # 1-based, where the cursor is


def cut_holes(
    path: Path, source: str, spec: LanguageSpec, placement: str, limit: int, seed: int = 0
) -> list[Hole]:
    """Up to ``limit`` holes of one placement in ``source``, spread over the file."""
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r} (known: {', '.join(PLACEMENTS)})")
    data = source.encode()
    if b"\r" in data:
        return []
    tree = spec.parser().parse(data)
    cutter = {"line": _lines, "block": _blocks, "midline": _midlines}[placement]
    spans = sorted(set(cutter(tree.root_node, data, spec)))
    rng = random.Random(f"{seed}:{path.name}:{placement}")
    chosen = sorted(rng.sample(spans, min(limit, len(spans))))
    holes = []
    for start, end in chosen:
        before, expected, after = data[:start].decode(), data[start:end].decode(), data[end:]
        text = before + after.decode()
        holes.append(Hole(path, placement, text, len(before), expected, before.count("\n") + 1))
    return holes


def _walk(node: ts.Node) -> Iterator[ts.Node]:
    stack = [node]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def _in_function(node: ts.Node) -> bool:
    parent = node.parent
    while parent is not None:
        if "function" in parent.type or "method" in parent.type:
            return True
        parent = parent.parent
    return False


def _alone(node: ts.Node, data: bytes) -> bool:
    """Whether ``node`` starts its line and ends it (nothing else on the line but space)."""
    start = data.rfind(b"\n", 0, node.start_byte) + 1
    end = data.find(b"\n", node.end_byte)
    tail = data[node.end_byte : end if end >= 0 else len(data)]
    return not data[start : node.start_byte].strip() and not tail.strip(b" \t;")


def _statements(root: ts.Node, data: bytes, spec: LanguageSpec) -> Iterator[ts.Node]:
    """Single-line statements alone on their line inside functions, not docstrings."""
    for node in _walk(root):
        parent = node.parent
        if parent is None or parent.type not in spec.block_types or not node.is_named:
            continue
        if not _alone(node, data):
            continue
        if node.type in SKIP or node.start_point[0] != node.end_point[0]:
            continue
        if _docstring(node):
            continue
        if _in_function(node) and node.end_byte - node.start_byte <= MAX_LINE:
            yield node


def _lines(root: ts.Node, data: bytes, spec: LanguageSpec) -> Iterator[tuple[int, int]]:
    for node in _statements(root, data, spec):
        end = data.find(b"\n", node.end_byte)
        yield node.start_byte, end if end >= 0 else len(data)


def _blocks(root: ts.Node, data: bytes, spec: LanguageSpec) -> Iterator[tuple[int, int]]:
    """Bodies of 2 to 8 lines of compound statements inside functions, nothing nested:
    from the first statement to the end of the last (a brace block keeps its braces)."""
    for node in _walk(root):
        if node.type not in spec.block_types or node.parent is None or not _in_function(node):
            continue
        body = [c for c in node.named_children]
        if not body or body[0].type == "comment" or _docstring(body[0]):
            continue
        first, last = body[0], body[-1]
        lines = last.end_point[0] - first.start_point[0] + 1
        if not 2 <= lines <= MAX_BLOCK_LINES or first.start_point[0] == node.parent.start_point[0]:
            continue
        if any(c.type in spec.scope_types for c in _walk(node)):
            continue
        if _alone(first, data) and data[last.end_byte : last.end_byte + 1] in (b"\n", b""):
            yield first.start_byte, last.end_byte


def _midlines(root: ts.Node, data: bytes, spec: LanguageSpec) -> Iterator[tuple[int, int]]:
    """A call's arguments on a one-line statement, the ``)`` and what follows kept."""
    for statement in _statements(root, data, spec):
        for node in _walk(statement):
            if node.type not in ARGUMENTS or node.end_byte - node.start_byte < 4:
                continue
            inner = data[node.start_byte + 1 : node.end_byte - 1]
            if inner.strip() and b"\n" not in inner and not inner.startswith(b" "):
                yield node.start_byte + 1, node.end_byte - 1
                break


def _docstring(node: ts.Node) -> bool:
    return (
        node.type == "expression_statement"
        and node.named_child_count > 0
        and (node.named_children[0].type == "string")
    )
