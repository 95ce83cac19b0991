"""Tags: the definitions and references in a file, from each language's tags query.

Query files follow the tree-sitter tags convention (as in the grammar wheels and
aider): a pattern captures the whole node as ``@definition.KIND`` or
``@reference.KIND`` and its identifier as ``@name``. Import statements are
captured as ``@import``. ``summarize`` turns a definition node into what a
prompt shows of it: leading doc comment, signature, docstring, and the body
when it is short.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cache

import tree_sitter as ts

from tandem.cache import Recent
from tandem.context.changes import TextChange
from tandem.context.languages import LanguageSpec

SHORT_BODY_LINES = 12
# Nodes that wrap a definition and belong in its summary (and hold its doc comment):
# `export …`, `declare …`, `template <…>`, the statement a TS `namespace` sits in.
_WRAPPERS = frozenset(
    {"export_statement", "ambient_declaration", "template_declaration", "expression_statement"}
)


@dataclass(frozen=True, slots=True)
class Tag:
    name: str
    kind: str  # "definition" or "reference"
    category: str  # function, method, class, interface, type, module, constant, call, ...
    line: int  # 0-based line of the name
    start_byte: int  # the whole tagged node
    end_byte: int
    start_line: int
    end_line: int


@dataclass(frozen=True, slots=True)
class FileTags:
    definitions: tuple[Tag, ...]
    references: tuple[Tag, ...]
    imports: tuple[tuple[int, int], ...]  # byte ranges of import statements


def extract_tags(spec: LanguageSpec, tree: ts.Tree, *, references: bool = True) -> FileTags:
    """All tags; with ``references=False`` only definitions and imports (much faster)."""
    cursor = ts.QueryCursor(spec.tags_query if references else spec.definitions_query)
    definitions: list[Tag] = []
    references: list[Tag] = []
    imports: list[tuple[int, int]] = []
    seen: set[tuple[str, int, str]] = set()
    for _, captures in cursor.matches(tree.root_node):
        for node in captures.get("import", ()):
            imports.append((node.start_byte, node.end_byte))
        names = captures.get("name")
        if not names:
            continue
        for capture, nodes in captures.items():
            kind, _, category = capture.partition(".")
            if kind not in ("definition", "reference"):
                continue
            for node in nodes:
                name_node = names[0]
                text = (name_node.text or b"").decode("utf-8", "replace")
                key = (text, name_node.start_byte, kind)
                if not text or key in seen:
                    continue
                seen.add(key)
                tag = Tag(
                    name=text,
                    kind=kind,
                    category=category or kind,
                    line=name_node.start_point[0],
                    start_byte=node.start_byte,
                    end_byte=node.end_byte,
                    start_line=node.start_point[0],
                    end_line=node.end_point[0],
                )
                (definitions if kind == "definition" else references).append(tag)
    imports = sorted(set(imports))
    return FileTags(tuple(definitions), tuple(references), tuple(imports))


def top_level_names(tree: ts.Tree, spec: LanguageSpec) -> set[str]:
    """Names defined at the top of a file (and one wrapper deep: export, decorators).

    Cheap, and the right set for "defined here": a method of the same name must
    not hide an imported function. Node kinds are compared as numbers (``kind_id``)
    against sets made once per language: reading each node's type name as a string
    and looking its name field up by name cost half of the ~2 ms this took on a
    5,000-line file, called on every request (issue 12).
    """
    defining, wrappers, name_field = _defining_kinds(spec)
    names: set[str] = set()
    for node in tree.root_node.named_children:
        kind = node.kind_id
        if kind in wrappers or kind in defining:
            names.update(_node_names(node, kind in wrappers, defining, name_field))
    return names


@dataclass(frozen=True, slots=True, eq=False)
class _Names:
    """One file's top-level names as last read: per defining node (in order) its byte
    range and names, how many nodes define each name, and the text-keyed memo."""

    generation: int  # of the document version read (0: unknown, never followed)
    starts: list[int]
    ends: list[int]
    found: list[tuple[str, ...]]
    counts: dict[str, int]
    texts: dict[int, dict[bytes, tuple[str, ...]]]


class TopLevelNames:
    """``top_level_names`` for the files an editor types in, following each edit.

    Given the document event that made this version from the one read last (a
    ``TextChange``), only the top-level nodes that touch the edited span or the ranges
    whose syntax changed (``Tree.changed_ranges``) are read again: every other node is the
    same node, with the same text, as before (tree-sitter: outside those ranges every
    character has the same ancestors). On a 5,000-line file a keystroke reads one or two
    nodes instead of ~560 (issue 12, fifth round).

    Without such a change (a new document, a skipped version, a command's own parse) every
    node is visited, each one's names remembered by its kind and whole text from the last
    call for the same file: keyed by text, not place, so an edit elsewhere, or a re-parse
    that changed the node, can never bring back a stale name. Only the last call per file
    is kept, for ``kept`` files.
    """

    def __init__(self, kept: int = 8) -> None:
        # Ints and tuples of str in flat lists, and bytes keys in a dict per kind, not
        # (kind, text) tuples: ~560 tuples kept a request would each be tracked by the
        # garbage collector and bring on a young collection almost every request.
        self._last: Recent[str, _Names] = Recent(kept)

    def __call__(
        self,
        key: str,
        tree: ts.Tree,
        spec: LanguageSpec,
        generation: int = 0,
        change: TextChange | None = None,
    ) -> set[str]:
        old = self._last.get(key)
        if (
            change is not None
            and old is not None
            and old.generation
            and (old.generation == change.base and change.version == generation)
        ):
            new = _follow(old, tree, spec, change)
        else:
            new = _read_all(old, tree, spec, generation)
        self._last.put(key, new)
        return set(new.counts)


def _read_all(old: _Names | None, tree: ts.Tree, spec: LanguageSpec, generation: int) -> _Names:
    """Every top-level node visited; names reused by kind and text from ``old``."""
    defining, wrappers, name_field = _defining_kinds(spec)
    memo = old.texts if old is not None else {}
    texts: dict[int, dict[bytes, tuple[str, ...]]] = {}
    starts: list[int] = []
    ends: list[int] = []
    found_all: list[tuple[str, ...]] = []
    counts: dict[str, int] = {}
    for node in tree.root_node.named_children:
        kind = node.kind_id
        if kind not in wrappers and kind not in defining:
            continue
        text = node.text or b""
        kept = texts.get(kind)
        if kept is None:
            kept = texts[kind] = {}
        found = memo.get(kind, {}).get(text)
        if found is None:
            found = kept.get(text)  # the same text twice in one file
        if found is None:
            found = _node_names(node, kind in wrappers, defining, name_field)
        kept[text] = found
        starts.append(node.start_byte)
        ends.append(node.end_byte)
        found_all.append(found)
        for name in found:
            counts[name] = counts.get(name, 0) + 1
    return _Names(generation, starts, ends, found_all, counts, texts)


def _follow(old: _Names, tree: ts.Tree, spec: LanguageSpec, change: TextChange) -> _Names:
    """``old`` after ``change``: the nodes touching what changed read again, the rest kept
    (those after the edit moved by its length)."""
    defining, wrappers, name_field = _defining_kinds(spec)
    lo, hi = change.bytes_start, change.bytes_new_end
    for start, end in change.syntax:
        lo, hi = min(lo, start), max(hi, end)
    delta = change.bytes_new_end - change.bytes_old_end
    # Kept before: nodes that end before ``lo`` (<= the edit's start: not moved). Kept
    # after: nodes that start after ``hi`` in the new text (after the edit: moved).
    first = bisect_left(old.ends, lo)
    last = bisect_right(old.starts, hi - delta, lo=first)
    starts, ends, found_all = old.starts[:first], old.ends[:first], old.found[:first]
    counts = dict(old.counts)
    for found in old.found[first:last]:
        for name in found:
            left = counts[name] - 1
            if left:
                counts[name] = left
            else:
                del counts[name]
    # The first top-level node that ends at or after ``lo``, by halving over the root's
    # named children: ``Node.first_named_child_for_byte`` crashes the process when no child
    # ends after the byte, and ``TreeCursor.goto_first_child_for_byte`` misses a child
    # whose leading whitespace holds the byte (py-tree-sitter 0.26).
    root = tree.root_node
    low, high = 0, root.named_child_count
    while low < high:
        middle = (low + high) // 2
        child = root.named_child(middle)
        if child is not None and child.end_byte < lo:
            low = middle + 1
        else:
            high = middle
    node = root.named_child(low) if low < root.named_child_count else None
    while node is not None and node.start_byte <= hi:
        kind = node.kind_id
        if kind in wrappers or kind in defining:
            found = _node_names(node, kind in wrappers, defining, name_field)
            starts.append(node.start_byte)
            ends.append(node.end_byte)
            found_all.append(found)
            for name in found:
                counts[name] = counts.get(name, 0) + 1
        node = node.next_named_sibling
    starts.extend(start + delta for start in old.starts[last:])
    ends.extend(end + delta for end in old.ends[last:])
    found_all.extend(old.found[last:])
    return _Names(change.version, starts, ends, found_all, counts, old.texts)


def _node_names(
    node: ts.Node, wrapper: bool, defining: frozenset[int], name_field: int | None
) -> tuple[str, ...]:
    """The names one top-level node defines (itself, or a wrapper's children)."""
    # Only a wrapper's children are looked into: listing every node's children cost
    # most of the ~5 ms this took before (issue 12).
    candidates = (node, *node.named_children) if wrapper else (node,)
    names: list[str] = []
    for candidate in candidates:
        if candidate.kind_id not in defining:
            continue
        name = candidate.child_by_field_id(name_field) if name_field is not None else None
        if name is None and candidate.type == "lexical_declaration":
            first = candidate.named_children[0] if candidate.named_children else None
            name = first.child_by_field_name("name") if first is not None else None
        if name is not None and name.text:
            names.append(name.text.decode("utf-8", "replace"))
    return tuple(names)


@cache
def _defining_kinds(spec: LanguageSpec) -> tuple[frozenset[int], frozenset[int], int | None]:
    """The kind ids of scopes and declarations, those of wrappers, and the "name" field's
    id, for ``top_level_names``."""
    language = spec.language
    kinds = [(i, language.node_kind_for_id(i) or "") for i in range(language.node_kind_count)]
    defining = frozenset(i for i, k in kinds if k in spec.scope_types or "declaration" in k)
    wrappers = frozenset(i for i, k in kinds if k in ("export_statement", "decorated_definition"))
    return defining, wrappers, language.field_id_for_name("name")


def node_for(tree: ts.Tree, tag: Tag) -> ts.Node | None:
    return tree.root_node.descendant_for_byte_range(tag.start_byte, tag.end_byte)


def body_of(node: ts.Node, spec: LanguageSpec) -> ts.Node | None:
    """The block a definition holds (function body, class body), if any."""
    inner = node.child_by_field_name("definition")  # decorated definitions
    if inner is not None:
        return body_of(inner, spec)
    body = node.child_by_field_name("body")
    if body is not None:
        return body
    for child in node.named_children:
        if child.type in spec.block_types:
            return child
    # `const f = () => {…}`: the body of the function that the lone declarator holds.
    values = [v for c in node.named_children if (v := c.child_by_field_name("value")) is not None]
    if len(values) == 1:
        return values[0].child_by_field_name("body")
    return None


def header_text(node: ts.Node, source: bytes, spec: LanguageSpec) -> str:
    """A definition's header: from its start to the start of its body."""
    body = body_of(node, spec)
    end = body.start_byte if body is not None else node.end_byte
    return source[node.start_byte : end].decode("utf-8", "replace").rstrip()


def summarize(
    node: ts.Node, source: bytes, spec: LanguageSpec, short_body: int = SHORT_BODY_LINES
) -> str:
    """What a prompt shows of a definition: doc comment, signature, docstring, short body.

    Indentation of the first line is kept so a method still reads as one.
    """
    outer = node  # with its `export`, `declare` or `template <…>`
    while outer.parent is not None and outer.parent.type in _WRAPPERS:
        outer = outer.parent
    line_start = source.rfind(b"\n", 0, outer.start_byte) + 1
    indent = source[line_start : outer.start_byte]
    start = line_start if not indent.strip() else outer.start_byte
    start = _leading_comments_start(outer, source, start)
    lines = node.end_point[0] - outer.start_point[0] + 1
    if lines <= short_body:
        return source[start : node.end_byte].decode("utf-8", "replace")
    body = body_of(node, spec)
    if body is None:
        text = source[start : node.end_byte].decode("utf-8", "replace")
        return "\n".join(text.splitlines()[:short_body])
    head = source[start : body.start_byte].decode("utf-8", "replace").rstrip()
    doc = _docstring(body, source, spec)
    if spec.name == "python":
        inner = _body_indent(body, source)
        return head + ("\n" + inner + doc if doc else "") + "\n" + inner + "..."
    return head + " …" if head.endswith(("{", ":")) else head


def _leading_comments_start(node: ts.Node, source: bytes, start: int) -> int:
    """Include the comment lines right above a definition (JSDoc, ///, Javadoc, #).

    Rust's ``#[…]`` attributes between them are included too; a comment that ends a
    line of code (``x = 1  # note``) is not the definition's.
    """
    prev = node.prev_named_sibling
    while (
        prev is not None
        and ("comment" in prev.type or prev.type == "attribute_item")
        and node.start_point[0] - prev.end_point[0] <= 1
    ):
        line_start = source.rfind(b"\n", 0, prev.start_byte) + 1
        if source[line_start : prev.start_byte].strip():
            break
        start = line_start
        node, prev = prev, prev.prev_named_sibling
    return start


def _docstring(body: ts.Node, source: bytes, spec: LanguageSpec) -> str:
    if spec.name != "python" or not body.named_children:
        return ""
    first = body.named_children[0]
    if first.type == "expression_statement" and first.named_children:
        string = first.named_children[0]
        if string.type == "string":
            return _first_paragraph(
                source[string.start_byte : string.end_byte].decode("utf-8", "replace")
            )
    return ""


DOC_LINES = 6


def _first_paragraph(doc: str) -> str:
    """A long docstring's first paragraph: what a caller needs, at a fraction of the tokens."""
    lines = doc.split("\n")
    if len(lines) <= DOC_LINES:
        return doc
    match = re.match(r"[rRuUbBfF]*(\"\"\"|\'\'\'|\"|\')", doc)
    quote = match.group(1) if match else '"""'
    kept: list[str] = []
    for line in lines[:DOC_LINES]:
        if kept and not line.strip():
            break
        kept.append(line)
    indent = lines[-1][: len(lines[-1]) - len(lines[-1].lstrip())]
    return "\n".join(kept) + "\n" + indent + "..." + quote


def _body_indent(body: ts.Node, source: bytes) -> str:
    line_start = source.rfind(b"\n", 0, body.start_byte) + 1
    raw = source[line_start : body.start_byte].decode("utf-8", "replace")
    return raw if not raw.strip() else "    "
