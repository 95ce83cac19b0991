"""What the model reads about each change: the enclosing code and the definitions it uses.

For every hunk, the view grows from the hunk to the whole enclosing function or class
(tree-sitter, on the new version of the file) and a few lines around it; hunks whose
views overlap become one unit. A unit over the budget falls back to the innermost scope,
then to the hunk alone, then is split at function boundaries (``split_rows``); nothing
is dropped without a ``Skipped`` entry saying so. Each unit also carries the signatures
of the definitions its changed lines use: from the same file (its tags) and from other
files (the context engine: imports first, then the workspace index).

With ``separate`` (``tandem review --per-hunk``), hunks are never merged: each hunk is a
unit of its own, its view still grown to the enclosing scope but stopping short of the
next and previous hunks, so no unit shows a row another unit reviews.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import tree_sitter as ts

from tandem.context.definitions import ParsedFile
from tandem.context.engine import ContextEngine
from tandem.context.imports import Import, resolve_imports
from tandem.context.languages import LanguageSpec, language_for_path
from tandem.context.tags import FileTags, body_of, extract_tags, header_text
from tandem.models.tokens import Tokenizer
from tandem.review.diff import DiffHunk, FileDiff
from tandem.review.findings import Skipped
from tandem.review.unit_definitions import Uncounted, definitions_used, fitted, used_names
from tandem.review.units import HunkLines, ReviewUnit, Row, split_rows

AROUND = 2  # lines shown beyond the enclosing scope
# Nodes whose children are statements: a statement is a node whose parent is one of these.
_BLOCKS = frozenset(
    ("block", "module", "program", "statement_block", "compound_statement", "source_file",
     "translation_unit", "declaration_list", "class_body", "body_statement", "statement_list",
     "field_declaration_list", "enum_body", "interface_body")
)  # fmt: skip
DEFINITION_SHARE = 0.3  # of a unit's budget, at most
SCOPE_HEADER_CHARS = 160
# Scope node types that hold other definitions rather than statements.
_CONTAINER = re.compile(
    r"class|interface|struct|enum|impl_item|trait|mod_item|namespace|module|record|union|"
    r"type_declaration|singleton"
)
Tier = int  # 0: outermost function or innermost class; 1: innermost scope; 2: the hunk alone


@dataclass
class NewFile:
    """The new version of a changed file, as much of it as is known."""

    lines: dict[int, str]  # line number -> text
    count: int  # lines in the file (the highest known number when only hunks are known)
    text: str | None  # the whole text, when known and consistent with the diff


def new_file(diff: FileDiff, text: str | None) -> NewFile:
    """The file's lines, from ``text`` when it matches the diff, else from the hunks alone.

    With ``--diff`` the working tree may not be the diff's new side; a view built from
    a different file would show the model the wrong code, so any mismatch falls back.
    """
    if text is not None:
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        stripped = [line.rstrip("\r") for line in lines]
        consistent = all(
            line.new is None or (line.new <= len(stripped) and stripped[line.new - 1] == line.text)
            for hunk in diff.hunks
            for line in hunk.lines
        )
        if consistent:
            return NewFile(dict(enumerate(stripped, start=1)), len(stripped), text)
    known = {line.new: line.text for h in diff.hunks for line in h.lines if line.new is not None}
    return NewFile(known, max(known, default=0), None)


def _removed_before(hunks: tuple[DiffHunk, ...]) -> dict[int, list[str]]:
    """Removed lines keyed by the new line they preceded (one past the end for the last)."""
    out: dict[int, list[str]] = {}
    for hunk in hunks:
        pending: list[str] = []
        for line in hunk.lines:
            if line.kind == "-":
                pending.append(line.text)
            elif line.new is not None and pending:
                out.setdefault(line.new, []).extend(pending)
                pending = []
        if pending:
            after = hunk.new_start + hunk.new_length if hunk.new_length else hunk.new_start + 1
            out.setdefault(after, []).extend(pending)
    return out


class UnitBuilder:
    """Builds the review units of changed files, in two steps.

    ``prepare`` does what needs no tokenizer (parsing, imports, definitions), so it can
    run while the chat model's tokenizer loads (half a second for a BPE); ``build`` then
    counts and fits the units to the budget.
    """

    def __init__(self, root: Path, engine: ContextEngine | None, separate: bool = False) -> None:
        self.root = root
        self.engine = engine
        self.separate = separate  # one hunk a unit (``--per-hunk``)

    def prepare(self, diff: FileDiff, text: str | None) -> PreparedFile:
        """Parse one file; ``prepare_definitions`` once every changed file is parsed."""
        return PreparedFile(self, diff, new_file(diff, text))

    def build(
        self, prepared: PreparedFile, tokenizer: Tokenizer, budget: int
    ) -> tuple[list[ReviewUnit], list[Skipped]]:
        """The units of one file, and what of it could not be sent (with the reason)."""
        return prepared.build(tokenizer, budget)


class PreparedFile:
    """One changed file, parsed, with its definitions looked up; then cut into units."""

    def __init__(self, owner: UnitBuilder, diff: FileDiff, source: NewFile) -> None:
        self.owner = owner
        self.diff = diff
        self.source = source
        self.spec: LanguageSpec | None = language_for_path(diff.path)
        self.tree: ts.Tree | None = None
        self.data = b""
        self._tags: FileTags | None = None
        if self.spec is not None and source.text is not None:
            self.data = source.text.encode("utf-8", "surrogatepass")
            self.tree = self.spec.parser().parse(self.data)
            self._tags = extract_tags(self.spec, self.tree, references=False)
            if owner.engine is not None:  # changed files import each other: parse each once
                parsed = ParsedFile(self.spec, self.data, self.tree, self._tags)
                owner.engine.files.offer(owner.root / diff.path, parsed)
        self.removed = _removed_before(diff.hunks)
        self.added = frozenset(n for h in diff.hunks for n in h.added)
        self.skipped: list[Skipped] = []
        self.count: Callable[[str], int] = Uncounted().count
        self.budget = 0
        self._imports: list[Import] | None = None
        self._found: dict[tuple[int, int], list[tuple[str, str]]] = {}

    # ---- rows ------------------------------------------------------------------------------

    def _row(self, kind: str, new: int | None, text: str) -> Row:
        row = Row(kind, new, text)  # type: ignore[arg-type]
        return replace(row, tokens=self.count(row.render()) + 1)

    def rows(self, first: int, last: int) -> list[Row]:
        out: list[Row] = []
        for n in range(first, last + 1):
            out.extend(self._row("-", None, t) for t in self.removed.get(n, ()))
            if n in self.source.lines:
                out.append(self._row("+" if n in self.added else " ", n, self.source.lines[n]))
        if last >= self.source.count:
            tail = self.removed.get(self.source.count + 1, ())
            out.extend(self._row("-", None, t) for t in tail)
        return out

    # ---- scopes ----------------------------------------------------------------------------

    def _chain(self, line: int) -> list[ts.Node]:
        """The scopes enclosing a line, innermost first."""
        if self.tree is None or self.spec is None or line not in self.source.lines:
            return []
        text = self.source.lines[line].encode("utf-8", "surrogatepass")
        indent = len(text) - len(text.lstrip())
        node: ts.Node | None = self.tree.root_node.descendant_for_point_range(
            (line - 1, indent), (line - 1, max(indent, len(text)))
        )
        chain = []
        while node is not None:
            if node.type in self.spec.scope_types and node.start_point[0] < line <= (
                node.end_point[0] + 1
            ):
                chain.append(node)
            node = node.parent
        return chain

    def _scope(self, line: int, tier: Tier) -> ts.Node | None:
        chain = self._chain(line)
        if not chain:
            return None
        if tier == 1:
            return chain[0]
        functions = [n for n in chain if not _CONTAINER.search(n.type)]
        return functions[-1] if functions else chain[0]

    def _extent(self, node: ts.Node) -> tuple[int, int]:
        outer = node
        while outer.parent is not None and outer.parent.type in (
            "decorated_definition",
            "export_statement",
        ):
            outer = outer.parent
        return outer.start_point[0] + 1, node.end_point[0] + 1

    def hunk_range(self, hunk: DiffHunk, tier: Tier) -> tuple[int, int]:
        first, last = hunk.span
        if tier < 2 and self.tree is not None:
            for line in hunk.changed:
                scope = self._scope(line, tier)
                if scope is not None:
                    start, end = self._extent(scope)
                    first, last = min(first, start - AROUND), max(last, end + AROUND)
        return max(1, first), min(max(1, self.source.count), last)

    def statement(self, line: int) -> tuple[int, int] | None:
        """The lines of the statement holding ``line``, when it spans several: for a
        compound statement (``if``, ``def``, ...), its header only, never its body."""
        if self.tree is None or line not in self.source.lines:
            return None
        text = self.source.lines[line].encode("utf-8", "surrogatepass")
        indent = len(text) - len(text.lstrip())
        node: ts.Node | None = self.tree.root_node.descendant_for_point_range(
            (line - 1, indent), (line - 1, max(indent, len(text)))
        )
        while node is not None and node.parent is not None and node.parent.type not in _BLOCKS:
            node = node.parent
        if node is None or node.parent is None:
            return None
        first, last = node.start_point[0] + 1, node.end_point[0] + 1
        body = next((c for c in node.named_children if c.type in _BLOCKS), None)
        if body is not None:  # the header: up to the body's first line, or the line before
            row, column = body.start_point
            lead = self.source.lines.get(row + 1, "").encode("utf-8", "surrogatepass")[:column]
            last = row if not lead.strip() else row + 1
        return (first, last) if first <= line <= last and last > first else None

    def scope_headers(self, unit_first: int, line: int) -> tuple[str, ...]:
        """Headers of the scopes around ``line`` that start above the unit."""
        headers = []
        for node in reversed(self._chain(line)):
            if node.start_point[0] + 1 >= unit_first or self.spec is None:
                continue
            head = " ".join(header_text(node, self.data, self.spec).split())
            headers.append(head[:SCOPE_HEADER_CHARS])
        return tuple(headers)

    def boundaries(self) -> set[int]:
        """Lines where a top-level definition, or one in a class body, starts."""
        if self.tree is None or self.spec is None:
            return set()
        out: set[int] = set()
        for node in self.tree.root_node.named_children:
            out.add(node.start_point[0] + 1)
            inner = node.child_by_field_name("definition") or node
            body = body_of(inner, self.spec) if _CONTAINER.search(inner.type) else None
            if body is not None:
                out.update(child.start_point[0] + 1 for child in body.named_children)
        return out

    # ---- units -----------------------------------------------------------------------------

    def build(self, tokenizer: Tokenizer, budget: int) -> tuple[list[ReviewUnit], list[Skipped]]:
        self.count, self.budget, self.skipped = tokenizer.count, budget, []
        tier = 0 if self.tree is not None else 2
        units = self._fit(list(self.diff.hunks), tier)
        units = [self._with_definitions(u) for u in units]
        return units, self.skipped

    def _groups(self, hunks: list[DiffHunk], tier: Tier) -> list[tuple[int, int, list[DiffHunk]]]:
        """Hunks whose views overlap or touch, merged: (first line, last line, hunks).

        Separate (one hunk a unit), each view stops short of its neighbours' lines instead.
        """
        ranges = sorted(((self.hunk_range(h, tier), h) for h in hunks), key=lambda r: r[0])
        if self.owner.separate:
            return [(*self._clipped(first, last, hunk), [hunk]) for (first, last), hunk in ranges]
        groups: list[tuple[int, int, list[DiffHunk]]] = []
        for (first, last), hunk in ranges:
            if groups and first <= groups[-1][1] + 1:
                start, end, members = groups[-1]
                groups[-1] = (start, max(end, last), [*members, hunk])
            else:
                groups.append((first, last, [hunk]))
        return groups

    def _clipped(self, first: int, last: int, hunk: DiffHunk) -> tuple[int, int]:
        """``first``-``last`` without the lines of the hunks before and after ``hunk``
        (their context included: git's hunks never share a line)."""
        low, high = hunk.span
        for other in self.diff.hunks:
            start, end = other.span
            if other is hunk:
                continue
            if end < low:
                first = max(first, end + 1)
            elif start > high:
                last = min(last, start - 1)
        return first, last

    def _fit(self, hunks: list[DiffHunk], tier: Tier) -> list[ReviewUnit]:
        budget = self.budget
        units: list[ReviewUnit] = []
        for first, last, members in self._groups(hunks, tier):
            unit = self._unit(self.rows(first, last), members)
            if unit.code_tokens <= budget:
                units.append(unit)
            elif tier < 2:
                units.extend(self._fit(members, tier + 1))
            else:
                units.extend(self._split(unit, members))
        return units

    def _unit(self, rows: list[Row], hunks: list[DiffHunk], note: str = "") -> ReviewUnit:
        numbers = [r.new for r in rows if r.new is not None]
        first, last = (min(numbers), max(numbers)) if numbers else (1, 1)
        parts = []
        for hunk in hunks:
            changed = tuple(n for n in hunk.changed if first <= n <= last)
            if changed:
                lo, hi = hunk.span
                parts.append(HunkLines(max(lo, first), min(hi, last), changed))
        notes = [note] if note else []
        if self.diff.no_newline_at_end and last >= self.source.count:
            notes.append("no newline at end of file")
        if self.diff.status == "renamed":
            notes.append(f"renamed from {self.diff.old_path}")
        elif self.diff.status == "added":
            notes.append("new file")
        anchor = min((n for p in parts for n in p.changed), default=first)
        spans = (self.statement(n) for p in parts for n in p.changed)
        unit = ReviewUnit(
            path=self.diff.path,
            language=self.spec.name if self.spec else None,
            rows=tuple(rows),
            hunks=tuple(parts),
            scopes=self.scope_headers(first, anchor),
            note=", ".join(notes),
            statements=tuple(sorted({s for s in spans if s is not None})),
        )
        return replace(unit, header_tokens=self.count(unit.header()) + 1)

    def _split(self, unit: ReviewUnit, hunks: list[DiffHunk]) -> list[ReviewUnit]:
        """A range too large even for its hunk alone: cut at definitions, then lines."""
        spare = self.budget - unit.header_tokens - 24  # room for "part i of n"
        changed = {n for h in hunks for n in h.changed}
        result = split_rows(
            unit.rows,
            spare,
            self.boundaries(),
            lambda r: r.kind == "-" or (r.new is not None and r.new in changed),
        )
        for row in result.too_large:
            where = f"line {row.new}" if row.new is not None else "a removed line"
            self.skipped.append(
                Skipped(
                    self.diff.path,
                    f"could not be reviewed: {where} alone is larger than one request "
                    f"({row.tokens} tokens; raise [chat] context_tokens)",
                )
            )
        total = len(result.pieces)
        return [
            self._unit(piece, hunks, note=f"part {i} of {total} of a large change")
            for i, piece in enumerate(result.pieces, start=1)
        ]

    # ---- definitions -----------------------------------------------------------------------

    def prepare_definitions(self) -> None:
        """Look up the definitions of the views most files end up with (tier 0), untimed."""
        if self.tree is None:
            return
        for first, last, _ in self._groups(list(self.diff.hunks), 0):
            texts = [self.source.lines[n] for n in sorted(self.added) if first <= n <= last]
            names = used_names(texts)
            if names:
                self._found[(first, last)] = self._definitions(first, last, names)

    def _with_definitions(self, unit: ReviewUnit) -> ReviewUnit:
        if self.tree is None or self.spec is None:
            return unit
        names = used_names([row.text for row in unit.rows if row.kind == "+"])
        if not names:
            return unit
        found = self._found.get((unit.first, unit.last))
        if found is None:
            found = self._definitions(unit.first, unit.last, names)
        room = min(int(self.budget * DEFINITION_SHARE), self.budget - unit.code_tokens)
        return replace(unit, definitions=fitted(found, room, self.count))

    def _definitions(self, first: int, last: int, names: Counter[str]) -> list[tuple[str, str]]:
        assert self.tree is not None and self.spec is not None and self._tags is not None
        path, engine = self.owner.root / self.diff.path, self.owner.engine
        if self._imports is None:  # once a file: a file has several units
            self._imports = (
                resolve_imports(self.spec, self.tree, path, engine.root) if engine else []
            )
        parsed = ParsedFile(self.spec, self.data, self.tree, self._tags)
        return definitions_used(
            parsed, path, self.diff.path, (first, last), names, engine, self._imports
        )
