"""Definitions that the code near the cursor uses, found in the files its imports name.

``nearby_names`` weighs the identifiers around the cursor (closer counts more);
``imported_definitions`` follows the file's imports to the definitions of those
names and summarizes each (signature, docstring, short body).
"""

from __future__ import annotations

import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path

import tree_sitter as ts

from tandem.context.imports import Import
from tandem.context.languages import LanguageSpec, language_for_path
from tandem.context.tags import FileTags, Tag, extract_tags, node_for, summarize

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Starts only at a word's start, and never backtracks into a word: on a long identifier the
# plain pattern retried every start and every length (a 200 kB line took minutes).
DOTTED = re.compile(
    r"(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*+)\s*+(?:\.|::|->)\s*+([A-Za-z_][A-Za-z0-9_]*+)"
)
MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class Definition:
    """A definition to show the model, with why it was picked."""

    name: str
    path: Path
    text: str
    line: int
    score: float


@dataclass
class ParsedFile:
    spec: LanguageSpec
    source: bytes
    tree: ts.Tree
    tags: FileTags


class ParsedFiles:
    """Parsed workspace files, reused while their mtime and size are unchanged (LRU)."""

    def __init__(self, capacity: int = 256) -> None:
        self._items: OrderedDict[Path, tuple[tuple[int, int], ParsedFile]] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, path: Path) -> ParsedFile | None:
        spec = language_for_path(path)
        if spec is None:
            return None
        try:
            stat = path.stat()
        except OSError:
            return None
        if stat.st_size > MAX_FILE_BYTES:
            return None
        key = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            hit = self._items.get(path)
            if hit is not None and hit[0] == key:
                self._items.move_to_end(path)
                return hit[1]
        try:
            source = path.read_bytes()
        except OSError:
            return None
        if b"\0" in source[:8192]:
            return None
        tree = spec.parser().parse(source)
        # Only definitions are looked up here: references would cost ten times the query.
        parsed = ParsedFile(spec, source, tree, extract_tags(spec, tree, references=False))
        self._keep(path, key, parsed)
        return parsed

    def offer(self, path: Path, parsed: ParsedFile) -> None:
        """A file the caller has parsed already (the reviewer parses every changed file).

        It is kept only when it is exactly what is on disk now, so ``get`` stays true to
        the disk; ``parsed.tags`` must hold the definitions.
        """
        try:
            stat = path.stat()
            if stat.st_size != len(parsed.source) or path.read_bytes() != parsed.source:
                return
        except OSError:
            return
        self._keep(path, (stat.st_mtime_ns, stat.st_size), parsed)

    def _keep(self, path: Path, key: tuple[int, int], parsed: ParsedFile) -> None:
        with self._lock:
            self._items[path] = (key, parsed)
            self._items.move_to_end(path)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)


def nearby_names(text: str, offset: int, lines_before: int = 30, lines_after: int = 3) -> Counter:
    """Identifiers around the cursor, weighted: the cursor's line counts most.

    Qualified uses (``mod.name``, ``pkg::Name``) are counted under ``"mod.name"``
    too, so a namespace import can be followed to the right member.
    """
    start = offset
    for _ in range(lines_before + 1):
        start = text.rfind("\n", 0, start)
        if start < 0:
            start = 0
            break
    end = offset
    for _ in range(lines_after):
        found = text.find("\n", end + 1)
        end = len(text) if found < 0 else found
    window = text[start:end]
    cursor_line = text[start:offset].count("\n")
    weights: Counter = Counter()
    for number, line in enumerate(window.split("\n")):
        weight = 1.0 / (1 + abs(cursor_line - number))
        for match in DOTTED.finditer(line):
            weights[f"{match.group(1)}.{match.group(2)}"] += weight
        for word in WORD.findall(line):
            weights[word] += weight
    return weights


def _definitions_named(parsed: ParsedFile, name: str) -> list[Tag]:
    return [t for t in parsed.tags.definitions if t.name == name]


def imported_definitions(
    imports: list[Import],
    names: Counter,
    files: ParsedFiles,
    *,
    defined_here: set[str] | frozenset[str] = frozenset(),
    limit: int = 12,
) -> list[Definition]:
    """Definitions, in the imported files, of the names used near the cursor, best first."""
    wanted: dict[tuple[Path, str], float] = {}
    for imp in imports:
        for local, original in imp.names.items():
            if local in names:
                for path in imp.files:
                    key = (path, original)
                    wanted[key] = max(wanted.get(key, 0.0), names[local])
        if imp.namespace:
            head = imp.namespace.split(".")[-1]
            for qualified, weight in names.items():
                ns, _, member = qualified.partition(".")
                if member and ns in (imp.namespace, head):
                    for path in imp.files:
                        key = (path, member)
                        wanted[key] = max(wanted.get(key, 0.0), weight)
        if imp.wildcard:
            for path in imp.files:
                parsed = files.get(path)
                if parsed is None:
                    continue
                for tag in parsed.tags.definitions:
                    if tag.name in names and tag.name not in defined_here:
                        key = (path, tag.name)
                        wanted[key] = max(wanted.get(key, 0.0), names[tag.name] * 0.9)
    found: list[Definition] = []
    for (path, name), score in sorted(wanted.items(), key=lambda kv: -kv[1]):
        parsed = files.get(path)
        if parsed is None:
            continue
        for tag in _definitions_named(parsed, name)[:2]:
            found.append(definition_of(parsed, path, tag, score))
        if len(found) >= limit:
            break
    return found[:limit]


def definition_of(parsed: ParsedFile, path: Path, tag: Tag, score: float) -> Definition:
    node = node_for(parsed.tree, tag)
    if node is None:
        text = parsed.source[tag.start_byte : tag.end_byte].decode("utf-8", "replace")
    else:
        text = summarize(node, parsed.source, parsed.spec)
    return Definition(tag.name, path, text, tag.line, score)
