"""What every language's import resolver shares: the ``Import`` record, finding import
nodes with one tree-sitter query, and checking candidate files (remembered briefly: a
new file's imports cost ~90 system calls before, issue 12)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import tree_sitter as ts


@dataclass(frozen=True)
class Import:
    """One import statement's effect: which local names come from which files."""

    files: tuple[Path, ...]
    names: dict[str, str] = field(default_factory=dict)  # local name -> name in the files
    namespace: str | None = None  # a local name bound to the module itself (ns.f)
    wildcard: bool = False  # every top-level name of the files is visible


def node_text(node: ts.Node | None) -> str:
    return (node.text or b"").decode("utf-8", "replace") if node is not None else ""


MAX_IMPORT_DEPTH = 6  # a method's body in a class in a module, with room to spare


@cache
def _finder(language: ts.Language, types: frozenset[str]) -> ts.Query:
    return ts.Query(language, "[" + " ".join(f"({name})" for name in sorted(types)) + "] @node")


def walk(tree: ts.Tree, types: frozenset[str]) -> Iterator[ts.Node]:
    """Nodes of ``types`` anywhere below ``node`` (imports may sit inside functions).

    A query runs in C: walking every node in Python cost ~20 ms on a 5,000-line file.
    """
    root = tree.root_node
    if root.has_error and root.child_count > WIDE_ERROR:
        # Junk (binary, data) parses into one flat run of error tokens, on which a query is
        # quadratic and holds the GIL: 200 kB froze the whole server for a minute.
        return
    cursor = ts.QueryCursor(_finder(tree.language, types))
    cursor.set_max_start_depth(MAX_IMPORT_DEPTH)  # imports sit near the top, never deep
    found = cursor.captures(root).get("node", [])
    yield from sorted(found, key=lambda n: n.start_byte)


WIDE_ERROR = 10_000  # top-level nodes of a tree with errors: a query takes ~50 ms there


def first_file(*candidates: Path) -> Path | None:
    for candidate in candidates:
        if is_file(candidate):
            return candidate
    return None


STAT_TTL = 5.0  # seconds a file's existence is taken as known (the engine's IMPORTS_TTL)
STATS_KEPT = 8192
_stats: dict[Path, tuple[float, bool]] = {}


def is_file(path: Path) -> bool:
    """``path.is_file()``, remembered for ``STAT_TTL`` seconds.

    A new file's imports were resolved with ~90 system calls (each candidate module of
    each import, from each base folder): most of a first request's ~8 ms, the same calls
    for every file that imports the same modules (issue 12). A module created or
    deleted is seen within the TTL, as resolved imports are.
    """
    now = time.monotonic()
    known = _stats.get(path)
    if known is not None and now - known[0] <= STAT_TTL:
        return known[1]
    found = path.is_file()
    if len(_stats) >= STATS_KEPT:
        _stats.clear()
    _stats[path] = (now, found)
    return found


def inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True
