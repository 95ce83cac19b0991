"""The fifth round of latency levers (issue 12): per-file work that follows each edit.

A document event now says what it changed (``changes.TextChange``: the edited span and the
ranges whose syntax changed); a file's top-level names and its import fingerprint follow
that change instead of reading the whole file on every request. Each is checked here
against a fresh read of the same version, over random edits of real code in seven grammars
(error recovery included), notifications of several changes, and skipped versions. No
timing is asserted.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.context import import_lines, tags
from tandem.context.changes import SpanTracker
from tandem.context.documents import DocumentStore
from tandem.context.import_lines import IMPORT_WORDS, ImportLines, import_fingerprint
from tandem.context.languages import language_named
from tandem.context.tags import TopLevelNames, top_level_names

from test_tags import CASES

PIECES = [
    '"',
    "'",
    "/*",
    "*/",
    "\n",
    "}",
    "{",
    "(",
    ")",
    "def ",
    "class K:\n",
    "x",
    "# ",
    "`",
    "import ",
    "from a import (",
    "\\\n",
    "use ",
    "#include <x>\n",
    "im",
    "port",
    " ",
    "é日",  # 2 and 3 UTF-8 bytes: str and byte spans part ways
    "😀",  # 2 UTF-16 units, 4 bytes
]


def _range(snap, start: int, end: int):
    """The LSP range (UTF-16) of str indices [start, end) of a snapshot's text."""

    def position(at: int) -> tuple[int, int]:
        line = snap.text.count("\n", 0, at)
        line_start = snap.text.rfind("\n", 0, at) + 1
        units = len(snap.text[line_start:at].encode("utf-16-le")) // 2
        return line, units

    return position(start), position(end)


def _random_changes(rng: random.Random, text: str, count: int):
    """``count`` changes, each on the text the previous left (as LSP sends them), with the
    texts they make."""
    out = []
    for _ in range(count):
        start = rng.randint(0, len(text))
        end = min(len(text), start + rng.choice([0, 0, 0, 1, 2, 7, 40]))
        new = rng.choice(PIECES) if rng.random() < 0.8 else ""
        out.append((start, end, new, text))
        text = text[:start] + new + text[end:]
    return out, text


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", sorted(CASES))
def test_followed_names_and_import_lines_equal_a_fresh_read_through_any_edit(
    name, seed, monkeypatch
):
    calls = {"names": 0, "lines": 0}
    for module, key in ((tags, "names"), (import_lines, "lines")):
        monkeypatch.setattr(module, "_follow", _counting(module._follow, calls, key))
    spec = language_named(name)
    assert spec is not None
    source = CASES[name].source.decode()
    rng = random.Random(f"{name}-{seed}")
    store = DocumentStore()
    uri = f"file:///w/case.{name}"
    doc = store.open(uri, source, name, 1)
    names, lines = TopLevelNames(), ImportLines()
    snap = doc.snapshot()
    assert names(uri, snap.tree, spec, snap.generation) == top_level_names(snap.tree, spec)
    followed = 0
    for version in range(2, 300):
        snap = doc.snapshot()
        count = 1 if rng.random() < 0.8 else rng.randint(2, 4)
        planned, expected_text = _random_changes(rng, snap.text, count)
        changes = []
        for start, end, new, before in planned:
            # each range in the coordinates of the text the previous change left
            changes.append((_range(_Text(before), start, end), new))
        store.change(uri, version, changes)
        snap = doc.snapshot()
        assert snap.text == expected_text
        assert snap.tree is not None and snap.change is not None
        if rng.random() < 0.1:
            continue  # a skipped version: the next call reads everything again
        followed += snap.change.base != 0
        got = names(uri, snap.tree, spec, snap.generation, snap.change)
        assert got == top_level_names(snap.tree, spec), version
        got_lines = lines(uri, snap.text, spec.name, snap.generation, snap.change)
        assert got_lines == import_fingerprint(snap.text, spec.name), version
    assert followed > 200
    assert calls["names"] > 200  # the edits were followed, not read again
    assert calls["lines"] >= 5  # (small files: an edit near an import is read again)


def _counting(follow, calls, key):
    def counted(*args):
        result = follow(*args)
        calls[key] += result is not None
        return result

    return counted


class _Text:
    """A stand-in snapshot for ``_range``: only its text is read."""

    def __init__(self, text: str) -> None:
        self.text = text


def test_a_change_gives_the_span_that_differs_and_where_syntax_changed():
    store = DocumentStore()
    doc = store.open("file:///w/a.py", "def f():\n    return 1\n\n\ndef g():\n    pass\n", "python")
    base = doc.snapshot()
    store.change("file:///w/a.py", 2, [(((1, 11), (1, 12)), "22"), (((4, 4), (4, 5)), "h")])
    snap = doc.snapshot()
    change = snap.change
    assert change is not None and change.base == base.generation
    assert change.version == snap.generation != base.generation
    old, new = base.text, snap.text
    assert old[: change.start] == new[: change.start]
    assert old[change.old_end :] == new[change.new_end :]
    assert (change.start, change.old_end, change.new_end) == (20, 29, 30)
    assert change.bytes_start == 20 and change.bytes_new_end == 30
    store.change("file:///w/a.py", 3, [(None, "x = 1\n")])  # the whole text: no change told
    assert doc.snapshot().change is None


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="ab\né", max_size=30),
    st.lists(
        st.tuples(st.integers(0, 40), st.integers(0, 5), st.text(alphabet="xyé\n", max_size=4)),
        min_size=1,
        max_size=4,
    ),
)
def test_the_span_of_several_changes_covers_every_difference(text, edits):
    tracker = SpanTracker(len(text))
    new = text
    for at, length, inserted in edits:
        start = min(at, len(new))
        end = min(start + length, len(new))
        tracker.replace(start, end, len(inserted))
        new = new[:start] + inserted + new[end:]
    start, old_end, new_end = tracker.span()
    assert 0 <= start <= old_end <= len(text) and start <= new_end <= len(new)
    assert text[:start] == new[:start]
    assert text[old_end:] == new[new_end:]


IMPORT_PIECES = st.sampled_from(
    [
        "import os",
        "from a import (",
        "b,",
        ")",
        "x = 1",
        "  ",
        "\\",
        "im",
        "port",
        "fr",
        "om",
        "# import",
        "ximport",
        "(",
        "[",
        "]",
        "use x;",
        "\n",
        "\n",
        "\n",
        "é",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(IMPORT_PIECES, max_size=40).map("".join),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 6), IMPORT_PIECES), max_size=12),
    st.sampled_from(["python", "rust", "go", ""]),
)
def test_followed_import_lines_equal_a_fresh_fingerprint(text, edits, language):
    """Edits next to, inside and far from import statements, and edits that make or break
    an import word, through the document store: always the fresh fingerprint."""
    store = DocumentStore()
    uri = "file:///w/x.txt"  # no grammar: the change is told all the same
    doc = store.open(uri, text, None, 1)
    lines = ImportLines()
    snap = doc.snapshot()
    assert lines(uri, snap.text, language, snap.generation) == import_fingerprint(text, language)
    for version, (at, length, inserted) in enumerate(edits, start=2):
        snap = doc.snapshot()
        start = min(at, len(snap.text))
        end = min(start + length, len(snap.text))
        store.change(uri, version, [(_range(snap, start, end), inserted)])
        snap = doc.snapshot()
        got = lines(uri, snap.text, language, snap.generation, snap.change)
        assert got == import_fingerprint(snap.text, language)


def test_import_words_cover_every_language_with_a_resolver():
    from tandem.context.imports import RESOLVERS

    assert set(RESOLVERS) <= set(IMPORT_WORDS)


def test_imported_definitions_drop_a_file_excluded_after_they_were_kept(tmp_path):
    """The imports without their excluded files are kept with the resolved imports; an
    exclusion added later (``Exclusions.forget``) applies at the very next request."""
    from tandem.context.engine import ContextEngine, Cursor
    from tandem.models.tokens import PieceTokenizer

    (tmp_path / "alpha.py").write_text("def from_alpha(x):\n    return x + 1\n")
    (tmp_path / "beta.py").write_text("def from_beta(x):\n    return x * 2\n")
    main = tmp_path / "main.py"
    text = "from alpha import from_alpha\nfrom beta import from_beta\n\nfrom_alpha(from_beta(1))\n"
    main.write_text(text)
    engine = ContextEngine(tmp_path)
    tokenizer = PieceTokenizer("pieces")

    def quoted(eng: ContextEngine) -> list[str]:
        cursor = eng.parse(Cursor(text, len(text), main))
        parts = eng.candidates(cursor, tokenizer).definitions
        return sorted(part.path for part in parts)

    assert quoted(engine) == ["alpha.py", "beta.py"]
    assert quoted(engine) == quoted(ContextEngine(tmp_path))  # kept: as a fresh engine
    engine.exclusions.forget(["beta.py"])
    assert quoted(engine) == ["alpha.py"]
    fresh = ContextEngine(tmp_path)
    fresh.exclusions.forget(["beta.py"])
    assert quoted(engine) == quoted(fresh)


@given(st.text(alphabet="a\r\n é", max_size=40))
def test_line_ends_made_lf_as_by_replacing_every_crlf(text):
    from tandem.context.postprocess import lf

    assert lf(text) == text.replace("\r\n", "\n")
