"""The document mirror: text kept in step with the client, trees re-parsed incrementally."""

from __future__ import annotations

import threading

import pytest
import tree_sitter as ts
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.context.documents import (
    MAX_PARSE_BYTES,
    Document,
    DocumentStore,
    UnknownDocument,
    tree_edit,
    uri_path,
)
from tandem.context.languages import language_named
from tandem.context.positions import ENCODINGS, InvalidPosition, LineIndex

SOURCES = {
    "python": (
        "import os\n\n"
        "def greet(name: str) -> str:\n"
        '    """Say hello 👋 to 世界."""\n'
        "    if name:\n"
        '        return f"héllo {name} 😀"\n'
        "    return os.sep\n\n"
        "class Box:\n"
        "    def __init__(self, v):\n"
        "        self.v = v\n"
    ),
    "javascript": (
        "// コメント 🚀\n"
        "function add(a, b) {\n"
        "  const s = '日本語';\n"
        "  return a + b;\n"
        "}\n"
        "class Point { constructor(x) { this.x = x; } }\n"
        "export default add;\n"
    ),
    "rust": (
        "use std::fmt;\n\n"
        "/// A café ☕ order.\n"
        "struct Order { name: String, cups: u32 }\n\n"
        "fn main() {\n"
        '    let s = "😀 crab 🦀";\n'
        '    println!("{}", s.len());\n'
        "}\n"
    ),
}
EXTENSIONS = {"python": "py", "javascript": "js", "rust": "rs"}


def nodes(tree: ts.Tree) -> list[tuple[str, int, int, tuple[int, int], tuple[int, int]]]:
    """Every node with its position: stricter than the s-expression, which has no offsets."""
    out, stack = [], [tree.root_node]
    while stack:
        node = stack.pop()
        out.append((node.type, node.start_byte, node.end_byte, node.start_point, node.end_point))
        stack.extend(reversed(node.children))
    return out


def assert_matches_fresh_parse(doc: Document) -> None:
    assert doc.data == doc.text.encode()
    assert doc.tree is not None
    fresh = doc.language.parser().parse(doc.text.encode())
    assert str(doc.tree.root_node) == str(fresh.root_node)
    assert nodes(doc.tree) == nodes(fresh)


def model_lines(text: str) -> list[int]:
    """Start index of each LSP line, the slow obvious way."""
    starts, i = [0], 0
    while i < len(text):
        if text[i] == "\r" and text[i + 1 : i + 2] == "\n":
            i += 1
        if text[i] in "\r\n":
            starts.append(i + 1)
        i += 1
    return starts


def model_position(text: str, index: int, encoding: str) -> tuple[int, int]:
    starts = model_lines(text)
    line = max(n for n, start in enumerate(starts) if start <= index)
    before = text[starts[line] : index]
    width = {
        "utf-8": len(before.encode()),
        "utf-16": len(before.encode("utf-16-le")) // 2,
        "utf-32": len(before),
    }
    return line, width[encoding]


def lsp_range(text: str, start: int, end: int, encoding: str = "utf-16"):
    return model_position(text, start, encoding), model_position(text, end, encoding)


def open_doc(store: DocumentStore, language: str, text: str | None = None) -> Document:
    uri = f"file:///project/src/main.{EXTENSIONS[language]}"
    return store.open(uri, SOURCES[language] if text is None else text, language, 1)


# -- incremental edits equal a fresh parse ------------------------------------------------


@pytest.mark.parametrize("language", sorted(SOURCES))
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_incremental_edits_match_a_fresh_parse(language, encoding):
    store = DocumentStore(encoding=encoding)
    doc = open_doc(store, language)
    assert doc.parsed and doc.reason is None
    text = doc.text
    emoji = next(i for i, ch in enumerate(text) if ord(ch) > 0xFFFF)
    edits = [
        (emoji, emoji + 1, "🎉🎉 ünïcode"),  # replace an emoji
        (0, 0, "// 前置き 🧪\n" if language != "python" else "# 前置き 🧪\n"),  # insert at start
        (len(text) // 2, len(text) // 2 + 7, ""),  # delete across lines, mid-token
        (len(text) // 3, len(text) // 3, "\n\n  x = '日本'\n"),  # insert lines
    ]
    for version, (start, end, new) in enumerate(edits, start=2):
        text = doc.text
        start, end = min(start, len(text)), min(end, len(text))
        store.change(doc.uri, version, [(lsp_range(text, start, end, encoding), new)])
        assert doc.text == text[:start] + new + text[end:]
        assert doc.version == version
        assert_matches_fresh_parse(doc)


def test_multiple_changes_apply_in_order_each_to_the_previous_result():
    store = DocumentStore()
    doc = open_doc(store, "javascript")
    text = doc.text
    # As VS Code sends multi-cursor edits: later changes see the earlier ones' results.
    first = (text.index("add(a, b)"), text.index("add(a, b)") + 3, "sum😀")
    text1 = text[: first[0]] + first[2] + text[first[1] :]
    second = (text1.index("a + b"), text1.index("a + b") + 5, "[a, b].reduce((x, y) => x + y)")
    text2 = text1[: second[0]] + second[2] + text1[second[1] :]
    third = (0, text2.index("\n") + 1, "")
    text3 = text2[third[1] :]
    store.change(
        doc.uri,
        2,
        [
            (lsp_range(text, first[0], first[1]), first[2]),
            (lsp_range(text1, second[0], second[1]), second[2]),
            (lsp_range(text2, third[0], third[1]), third[2]),
        ],
    )
    assert doc.text == text3
    assert doc.version == 2
    assert_matches_fresh_parse(doc)


def test_full_replacement_and_then_a_range_in_the_same_notification():
    store = DocumentStore()
    doc = open_doc(store, "rust")
    store.change(doc.uri, 2, [(None, "fn a() {}\n")])
    assert doc.text == "fn a() {}\n"
    assert_matches_fresh_parse(doc)
    store.change(doc.uri, 3, [(None, "fn b() {}\n"), (((0, 3), (0, 4)), "bé")])
    assert doc.text == "fn bé() {}\n"
    assert_matches_fresh_parse(doc)


def test_crlf_and_lone_cr_documents():
    store = DocumentStore()
    doc = store.open("file:///w/crlf.py", "def f():\r\n    return 1\r\n\rx = 2\n", "python", 1)
    store.change(doc.uri, 2, [(((1, 4), (2, 0)), "if 😀:\r\n        pass\r\n")])
    assert doc.text == "def f():\r\n    if 😀:\r\n        pass\r\n\rx = 2\n"
    assert_matches_fresh_parse(doc)
    store.change(doc.uri, 3, [(((0, 99), (1, 0)), "\r")])  # clamped to the end of line 0
    assert doc.text == "def f():\r    if 😀:\r\n        pass\r\n\rx = 2\n"
    assert_matches_fresh_parse(doc)


def test_utf8_position_encoding():
    store = DocumentStore(encoding="utf-8")
    doc = store.open("file:///w/a.py", 's = "日本"\n', "python", 1)
    store.change(doc.uri, 2, [(((0, 8), (0, 11)), "x")])  # bytes: '日' is 5..8, '本' is 8..11
    assert doc.text == 's = "日x"\n'
    assert_matches_fresh_parse(doc)


# -- documents that are mirrored but never parsed -----------------------------------------


def test_unknown_language_mirrors_text_without_a_tree():
    store = DocumentStore()
    doc = store.open("file:///notes/todo.txt", "héllo\nworld", "plaintext", 1)
    assert doc.language is None and doc.tree is None and not doc.parsed
    assert "language" in doc.reason
    store.change(doc.uri, 2, [(((1, 0), (1, 5)), "wörld 😀")])
    assert doc.text == "héllo\nwörld 😀"
    assert doc.data == doc.text.encode()
    assert doc.tree is None


def test_language_from_id_then_from_path():
    store = DocumentStore()
    assert store.open("file:///a/notes.txt", "x = 1", "python", 1).language.name == "python"
    assert store.open("file:///a/b%20c/lib.rs", "fn f() {}", "plaintext", 1).language.name == "rust"
    assert store.open("file:///a/App.jsx", "f()", "javascriptreact", 1).language.name == (
        "javascript"
    )
    assert store.open("untitled:Untitled-1", "x", "", 1).language is None
    assert uri_path("file:///c%3A/w/x.py") == "/c:/w/x.py"
    assert uri_path("/plain/path.go") == "/plain/path.go"


def test_binary_text_is_mirrored_but_never_parsed():
    store = DocumentStore()
    doc = store.open("file:///w/blob.py", "x = 1\n\0\0\x01", "python", 1)
    assert doc.tree is None and not doc.parsed
    assert "binary" in doc.reason
    store.change(doc.uri, 2, [(((1, 0), (1, 3)), "y = 2")])  # the NULs are gone: parse now
    assert doc.text == "x = 1\ny = 2"
    assert_matches_fresh_parse(doc)
    store.change(doc.uri, 3, [(((0, 0), (0, 0)), "\0")])
    assert doc.tree is None and "binary" in doc.reason


def test_huge_text_is_flagged_and_never_parsed():
    store = DocumentStore()
    line = "x = 1  # 😀\n"
    huge = line * (MAX_PARSE_BYTES // len(line.encode()) + 1)
    assert len(huge.encode()) > MAX_PARSE_BYTES
    doc = store.open("file:///w/generated.py", huge, "python", 1)
    assert doc.tree is None and not doc.parsed
    assert "too large" in doc.reason
    store.change(doc.uri, 2, [(((0, 0), (0, 1)), "y")])
    assert doc.text == "y" + huge[1:]
    assert doc.tree is None


def test_size_limit_is_configurable_and_shrinking_parses_again():
    store = DocumentStore(max_bytes=100)
    doc = store.open("file:///w/a.py", "x = 1\n" * 20, "python", 1)
    assert not doc.parsed and "too large" in doc.reason
    store.change(doc.uri, 2, [(((5, 0), (20, 0)), "")])
    assert_matches_fresh_parse(doc)


# -- the store ----------------------------------------------------------------------------


def test_unknown_documents_raise_a_clear_key_error():
    store = DocumentStore()
    with pytest.raises(UnknownDocument) as caught:
        store.change("file:///nowhere.py", 2, [(None, "x")])
    assert isinstance(caught.value, KeyError)
    assert str(caught.value).startswith("document not open: file:///nowhere.py")
    with pytest.raises(UnknownDocument):
        store.close("file:///nowhere.py")
    assert store.get("file:///nowhere.py") is None


def test_open_close_iterate_and_recent():
    store = DocumentStore()
    a = store.open("file:///w/a.py", "a = 1", "python", 1)
    b = store.open("file:///w/b.js", "b", "javascript", 1)
    c = store.open("file:///w/c.rs", "fn c() {}", "rust", 1)
    assert len(store) == 3 and "file:///w/b.js" in store
    assert {doc.uri for doc in store} == {a.uri, b.uri, c.uri}
    assert store.recent(2) == [c, b]
    store.change(a.uri, 2, [(((0, 4), (0, 5)), "2")])
    assert store.recent(10) == [a, c, b]
    assert store.recent(10, exclude=a.uri) == [c, b]
    assert store.recent(0) == []
    store.close(c.uri)
    assert store.recent(10) == [a, b] and store.get(c.uri) is None
    with pytest.raises(UnknownDocument):
        store.change(c.uri, 2, [(None, "")])


def test_invalid_change_leaves_the_document_as_it_was():
    store = DocumentStore()
    doc = open_doc(store, "python")
    before = doc.snapshot()
    with pytest.raises(InvalidPosition, match="line 99"):
        store.change(doc.uri, 2, [(((0, 0), (0, 1)), "#"), (((99, 0), (99, 0)), "x")])
    with pytest.raises(InvalidPosition, match="ends before it starts"):
        store.change(doc.uri, 2, [(((1, 0), (0, 0)), "x")])
    assert doc.snapshot() is before
    assert doc.version == 1


def test_snapshots_are_immutable_while_the_document_moves_on():
    store = DocumentStore()
    doc = open_doc(store, "python")
    old = doc.snapshot()
    old_tree = str(old.tree.root_node)
    old_nodes = nodes(old.tree)
    store.change(doc.uri, 2, [(((2, 0), (2, 0)), "x = '😀'\n")])
    assert old.text == SOURCES["python"] and old.version == 1
    assert str(old.tree.root_node) == old_tree and nodes(old.tree) == old_nodes
    assert doc.snapshot() is not old and doc.version == 2


def test_readers_on_other_threads_always_see_a_consistent_snapshot():
    store = DocumentStore()
    doc = open_doc(store, "python", "x = 0\n")
    stop, problems = threading.Event(), []

    def read() -> None:
        while not stop.is_set():
            snap = doc.snapshot()
            if snap.data != snap.text.encode() or snap.tree.root_node.end_byte != len(snap.data):
                problems.append(snap.version)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    for version in range(2, 200):
        store.change(doc.uri, version, [(((0, 4), (0, 4)), "😀")])
    stop.set()
    for reader in readers:
        reader.join()
    assert problems == []
    assert doc.text == "x = " + "😀" * 198 + "0\n"
    assert_matches_fresh_parse(doc)


# -- properties ---------------------------------------------------------------------------

PIECES = ["a", "x1", " ", "(", ")", "{", "}", ":", "=", '"', "'", "\n", "\r\n", "\r", "    ",
          "é", "e\u0301", "日本", "😀", "🦀", "def ", "fn ", "let ", "if ", "return "]  # fmt: skip
INSERTS = st.lists(st.sampled_from(PIECES), max_size=6).map("".join)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(SOURCES)), st.sampled_from(ENCODINGS), st.data())
def test_random_edits_mirror_a_plain_string_and_parse_like_fresh(language, encoding, data):
    store = DocumentStore(encoding=encoding)
    doc = open_doc(store, language)
    model = doc.text
    for version in range(2, 2 + data.draw(st.integers(1, 4), label="notifications")):
        changes = []
        for _ in range(data.draw(st.integers(1, 3), label="changes")):
            if data.draw(st.integers(0, 20)) == 0:
                new = data.draw(INSERTS, label="full text")
                changes.append((None, new))
                model = new
                continue
            start = data.draw(st.integers(0, len(model)), label="start")
            end = data.draw(st.integers(start, min(len(model), start + 40)), label="end")
            # Positions cannot point between "\r" and "\n": move to before the "\r".
            start -= model[start - 1 : start + 1] == "\r\n"
            end -= model[end - 1 : end + 1] == "\r\n"
            new = data.draw(INSERTS, label="inserted")
            changes.append((lsp_range(model, start, end, encoding), new))
            model = model[:start] + new + model[end:]
        store.change(doc.uri, version, changes)
        assert doc.text == model
        assert doc.data == model.encode()
    assert_matches_fresh_parse(doc)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(ENCODINGS),
    st.tuples(st.integers(-2, 14), st.integers(-2, 60)),
    st.tuples(st.integers(-2, 14), st.integers(-2, 60)),
    INSERTS,
)
def test_random_ranges_apply_or_raise_invalid_position(encoding, start, end, new):
    python = language_named("python")
    doc = Document("file:///w/x.py", SOURCES["python"], 1, python, encoding=encoding)
    before = doc.snapshot()
    try:
        doc.apply_change((start, end), new, 2)
    except InvalidPosition:
        assert doc.snapshot() is before
        return
    assert doc.version == 2
    assert_matches_fresh_parse(doc)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(SOURCES)), st.data())
def test_tree_edit_moves_the_nodes_after_the_edit_to_their_new_points(language, data):
    # A re-parse re-measures what it re-lexes, so the fresh-parse comparison cannot see a wrong
    # point: check the edited tree itself, before any re-parse.
    old = data.draw(st.lists(st.sampled_from(PIECES), max_size=30).map("".join), label="old")
    old = SOURCES[language][: data.draw(st.integers(0, 80), label="keep")] + old
    start = data.draw(st.integers(0, len(old)), label="start")
    end = data.draw(st.integers(start, len(old)), label="end")
    new = data.draw(INSERTS, label="inserted")
    text = old[:start] + new + old[end:]
    edit = tree_edit(LineIndex(old), start, end, new.encode())
    assert edit.old_end_byte - edit.start_byte == len(old[start:end].encode())
    tree = language_named(language).parser().parse(old.encode())
    tree.edit(**edit._asdict())
    lines = LineIndex(text)
    moved = [node for node in nodes(tree) if node[1] >= edit.new_end_byte]
    for _, start_byte, end_byte, start_point, end_point in moved:
        assert start_point == lines.point(lines.str_index_of_byte(start_byte))
        assert end_point == lines.point(lines.str_index_of_byte(end_byte))
    assert edit.new_end_point == lines.point(start + len(new))
