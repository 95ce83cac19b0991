"""The server's own copy of each open document, with a tree-sitter tree kept in step.

pygls applies a change to its own text before our handler runs, and the byte offsets and
points that ``Tree.edit`` needs must come from the text *before* the change: so we mirror the
text ourselves. (pygls also splits lines at every ``str.splitlines`` break, \\u2028 and \\x0c
included, where LSP has only \\n, \\r\\n and \\r.) Each change becomes a ``tree.edit`` and a
notification becomes one incremental re-parse, costing time in proportion to the edit.

Writers replace a frozen ``Snapshot`` in one assignment and never edit a tree a snapshot holds,
so a reader on another thread (a completion request) takes ``doc.snapshot()`` and gets a text,
tree and version that agree, without taking a lock.

A lone surrogate (JSON can carry one) is stored as U+FFFD: one code point, one UTF-16 unit and
three UTF-8 bytes, like the surrogate it replaces, so every position still means the same
place; and no later step (parsing, prompts, tokenizers, HTTP) meets text it cannot encode.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

import tree_sitter as ts

from tandem.context.changes import SpanTracker, TextChange, next_generation
from tandem.context.languages import LanguageSpec, language_for_path, language_named
from tandem.context.positions import InvalidPosition, LineIndex, encode
from tandem.context.reasons import Reason, Why

MAX_PARSE_BYTES = 2 * 1024 * 1024  # bigger files are mostly generated; a parse would stall us

Position = tuple[int, int]  # (line, character) in the store's position encoding
Range = tuple[Position, Position]
Change = tuple[Range | None, str]  # a None range replaces the whole text


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (positions do not move)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub("\ufffd", text)
    return text


class UnknownDocument(KeyError):
    """A change or close for a document that is not open."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self.uri = uri

    def __str__(self) -> str:  # KeyError would show the repr of its argument
        return f"document not open: {self.uri} (no didOpen, or already closed)"


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    """One version of a document: text, bytes and tree that belong together."""

    uri: str
    version: int
    text: str
    data: bytes  # encode(text): what tree-sitter parsed
    language: LanguageSpec | None
    tree: ts.Tree | None
    reason: Reason | None  # why there is no tree; None when there is one
    lines: LineIndex
    generation: int = 0  # unique in the process (``changes.next_generation``)
    change: TextChange | None = None  # from the previous version, when it was edited

    @property
    def parsed(self) -> bool:
        return self.tree is not None


class Document:
    """An open document: the latest ``Snapshot``, and the edits that make the next one."""

    def __init__(
        self,
        uri: str,
        text: str,
        version: int = 0,
        language: LanguageSpec | None = None,
        *,
        encoding: str = "utf-16",
        max_bytes: int = MAX_PARSE_BYTES,
    ) -> None:
        self.encoding = encoding  # of the positions in ranges given to apply_change
        self.max_bytes = max_bytes
        self._lock = threading.Lock()  # one writer at a time; readers need none
        text = clean_text(text)
        data = encode(text)
        tree, reason = self._parse(language, data, None)
        self._snapshot = Snapshot(
            uri,
            version,
            text,
            data,
            language,
            tree,
            reason,
            LineIndex(text, data),
            next_generation(),
        )

    def __repr__(self) -> str:
        snap = self._snapshot
        return f"Document({snap.uri!r}, version={snap.version}, {len(snap.text)} characters)"

    def snapshot(self) -> Snapshot:
        """The current version, consistent and immutable: hold it across a slow computation."""
        return self._snapshot

    @property
    def uri(self) -> str:
        return self._snapshot.uri

    @property
    def version(self) -> int:
        return self._snapshot.version

    @property
    def text(self) -> str:
        return self._snapshot.text

    @property
    def data(self) -> bytes:
        return self._snapshot.data

    @property
    def language(self) -> LanguageSpec | None:
        return self._snapshot.language

    @property
    def tree(self) -> ts.Tree | None:
        return self._snapshot.tree

    @property
    def parsed(self) -> bool:
        return self._snapshot.parsed

    @property
    def reason(self) -> Reason | None:
        return self._snapshot.reason

    @property
    def lines(self) -> LineIndex:
        return self._snapshot.lines

    def apply_change(self, range_: Range | None, new_text: str, version: int | None = None) -> None:
        """Replace ``range_`` (None: the whole text) with ``new_text``."""
        self.apply_changes([(range_, new_text)], version)

    def apply_changes(self, changes: Iterable[Change], version: int | None = None) -> None:
        """Apply changes in order, each to the text the previous one left (as LSP sends them).

        All or nothing: if one range is invalid, InvalidPosition is raised and the document
        keeps its previous version. The tree is edited once per change but re-parsed once.
        """
        with self._lock:
            snap = self._snapshot
            lines = snap.lines  # holds the text and its bytes
            # Edit a copy: a reader may still be walking the tree of the old snapshot.
            tree = snap.tree.copy() if snap.tree is not None else None
            # What changed, for readers that follow edits (changes.py); None after a
            # whole-text replacement.
            chars: SpanTracker | None = SpanTracker(len(snap.text))
            octets = SpanTracker(len(snap.data))
            for range_, new_text in changes:
                new_text = clean_text(new_text)
                if range_ is None:
                    lines, tree, chars = LineIndex(new_text, encode(new_text)), None, None
                    continue
                (start_line, start_char), (end_line, end_char) = range_
                start = lines.offset(start_line, start_char, self.encoding)
                end = lines.offset(end_line, end_char, self.encoding)
                if end < start:
                    raise InvalidPosition(f"range {range_} ends before it starts")
                edit = tree_edit(lines, start, end, encode(new_text))
                if tree is not None:
                    tree.edit(**edit._asdict())
                if chars is not None:
                    chars.replace(start, end, len(new_text))
                    octets.replace(
                        edit.start_byte, edit.old_end_byte, edit.new_end_byte - edit.start_byte
                    )
                lines = lines.edited(start, end, new_text)
            text, data = lines.text, lines.data
            edited = tree
            tree, reason = self._parse(snap.language, data, tree)
            generation = next_generation()
            change = None
            if chars is not None:  # (its syntax ranges are asked for when first needed)
                change = TextChange(
                    snap.generation, generation, *chars.span(), *octets.span(), edited, tree
                )
            self._snapshot = Snapshot(
                snap.uri,
                snap.version if version is None else version,
                text,
                data,
                snap.language,
                tree,
                reason,
                lines,
                generation,
                change,
            )

    def _parse(
        self, language: LanguageSpec | None, data: bytes, old_tree: ts.Tree | None
    ) -> tuple[ts.Tree | None, Reason | None]:
        """A tree for ``data`` (incrementally from an edited ``old_tree``), or why not."""
        if language is None:
            return None, Reason(Why.UNKNOWN_LANGUAGE)
        if len(data) > self.max_bytes:
            size = f"too large: {len(data)} bytes, over the limit of {self.max_bytes}"
            return None, Reason(Why.TOO_LARGE, size)
        if b"\0" in data:
            return None, Reason(Why.BINARY, "binary: the text contains NUL")
        parser = language.parser()
        tree = parser.parse(data) if old_tree is None else parser.parse(data, old_tree)
        return (tree, None) if tree is not None else (None, Reason(Why.PARSE_FAILED))


class TreeEdit(NamedTuple):
    """The arguments of ``Tree.edit``, by name."""

    start_byte: int
    old_end_byte: int
    new_end_byte: int
    start_point: tuple[int, int]
    old_end_point: tuple[int, int]
    new_end_point: tuple[int, int]


def tree_edit(lines: LineIndex, start: int, end: int, inserted: bytes) -> TreeEdit:
    """Describe replacing str indices [start, end) of ``lines.text`` with ``inserted``.

    A re-parse re-measures the rows and columns it re-lexes, so wrong points rarely show in
    the new tree; they would show in changed_ranges and in a tree queried before re-parsing.
    """
    start_byte, start_point = lines.byte_offset(start), lines.point(start)
    newlines = inserted.count(b"\n")
    if newlines:
        new_end_point = (start_point[0] + newlines, len(inserted) - inserted.rfind(b"\n") - 1)
    else:
        new_end_point = (start_point[0], start_point[1] + len(inserted))
    return TreeEdit(
        start_byte,
        lines.byte_offset(end),
        start_byte + len(inserted),
        start_point,
        lines.point(end),
        new_end_point,
    )


def uri_path(uri: str) -> str:
    """The path in a URI (file:, untitled:, ...) or a plain path, to guess the language by."""
    parts = urlsplit(uri)
    if len(parts.scheme) <= 1:  # no scheme, or a Windows drive letter
        return uri
    return unquote(parts.path)


class DocumentStore:
    """The open documents, safe to use from several threads.

    The lock guards only which documents are open and their order; parsing happens outside it,
    under the document's own lock, so a big re-parse never blocks requests for other files.
    """

    def __init__(self, encoding: str = "utf-16", max_bytes: int = MAX_PARSE_BYTES) -> None:
        self.encoding = encoding  # negotiated at initialize, before any document opens
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._docs: OrderedDict[str, Document] = OrderedDict()  # least recently edited first

    def open(
        self, uri: str, text: str, language_id: str | None = None, version: int = 0
    ) -> Document:
        """Start mirroring ``uri``; opening it again replaces it (and counts as an edit)."""
        language = language_named(language_id) or language_for_path(uri_path(uri))
        doc = Document(
            uri, text, version, language, encoding=self.encoding, max_bytes=self.max_bytes
        )
        with self._lock:
            self._docs[uri] = doc
            self._docs.move_to_end(uri)
        return doc

    def change(self, uri: str, version: int, changes: Iterable[Change]) -> Document:
        """Apply one didChange notification's changes, in order."""
        doc = self._require(uri)
        doc.apply_changes(changes, version)
        with self._lock:
            if self._docs.get(uri) is doc:
                self._docs.move_to_end(uri)
        return doc

    def close(self, uri: str) -> None:
        with self._lock:
            if self._docs.pop(uri, None) is None:
                raise UnknownDocument(uri)

    def get(self, uri: str) -> Document | None:
        with self._lock:
            return self._docs.get(uri)

    def recent(self, n: int, exclude: str | None = None) -> list[Document]:
        """The ``n`` most recently opened or edited documents, newest first.

        ``exclude`` leaves out one URI: the file being completed is not its own neighbour.
        """
        with self._lock:
            docs = [doc for uri, doc in reversed(self._docs.items()) if uri != exclude]
        return docs[: max(n, 0)]

    def __iter__(self) -> Iterator[Document]:
        with self._lock:
            return iter(list(self._docs.values()))

    def __len__(self) -> int:
        with self._lock:
            return len(self._docs)

    def __contains__(self, uri: object) -> bool:
        with self._lock:
            return uri in self._docs

    def _require(self, uri: str) -> Document:
        with self._lock:
            doc = self._docs.get(uri)
        if doc is None:
            raise UnknownDocument(uri)
        return doc
