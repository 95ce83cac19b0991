"""The fourth round of latency levers (issue 12) answers exactly as the work it replaced.

Each lever stops a per-request pass over the whole of a big file: the prompt's line windows
split only the lines they can keep, the block decision's window edges stop at the first
column-0 line they need, and a file's top-level names are reused node by node from the
last request. Each is checked against the slower way it stands in for, on random texts and
on random edits of real code (error recovery included). A new document's imports and
names are ready after its didOpen (and never read for an excluded one); the floor's
raw-bytes clients make the exchanges the library clients make. No timing is asserted.
"""

from __future__ import annotations

import asyncio
import random
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.context import multiline
from tandem.context.documents import DocumentStore
from tandem.context.languages import language_named
from tandem.context.prompt import _lines_back, _lines_forward
from tandem.context.tags import TopLevelNames, top_level_names
from tandem.models.tokens import PieceTokenizer

from test_tags import CASES

LINES_OF_CODE = st.lists(
    st.sampled_from(
        ["", "x = 1", "    y = 2", "def f():", "}", ")", "\t]", "class C:", "  ", "é日"]
    ),
    max_size=60,
).map("\n".join)


# ---- line windows: split only what can be kept ---------------------------------------------


def old_lines_back(text, count, budget, max_lines):
    """``_lines_back`` as it was: the whole text split into lines first."""
    lines = text.split("\n")
    last, used = multiline_fit(lines[-1], count, budget, True)
    kept = [last]
    for line in reversed(lines[:-1]):
        cost = count.count(line + "\n")
        if used + cost > budget or len(kept) > max_lines:
            break
        kept.append(line)
        used += cost
    kept.reverse()
    return "\n".join(kept), used


def old_lines_forward(text, count, budget, max_lines):
    lines = text.split("\n")
    first, used = multiline_fit(lines[0], count, budget, False)
    kept = [first]
    for line in lines[1:]:
        cost = count.count("\n" + line)
        if used + cost > budget or len(kept) > max_lines:
            break
        kept.append(line)
        used += cost
    return "\n".join(kept), used


def multiline_fit(line, count, budget, keep_end):
    from tandem.context.prompt import _fit

    return _fit(line, count, budget, keep_end=keep_end)


@settings(max_examples=300, deadline=None)
@given(LINES_OF_CODE, st.integers(-2, 400), st.integers(-3, 70))
def test_line_windows_keep_what_splitting_everything_kept(text, budget, max_lines):
    count = PieceTokenizer("pieces")
    assert _lines_back(text, count, budget, max_lines) == old_lines_back(
        text, count, budget, max_lines
    )
    assert _lines_forward(text, count, budget, max_lines) == old_lines_forward(
        text, count, budget, max_lines
    )


def test_a_line_window_of_a_big_file_is_the_same_and_holds_at_most_max_lines():
    text = "\n".join(f"line_{i} = {i}" for i in range(5000))
    count = PieceTokenizer("pieces")
    back = _lines_back(text, count, 10_000, 400)
    assert back == old_lines_back(text, count, 10_000, 400)
    assert back[0].count("\n") == 400 and back[0].endswith("line_4999 = 4999")
    forward = _lines_forward(text, count, 10_000, 120)
    assert forward == old_lines_forward(text, count, 10_000, 120)
    assert forward[0].count("\n") == 120 and forward[0].startswith("line_0 = 0\n")


# ---- the block decision's window: the first column-0 line it needs -------------------------


def old_shallowest(text: str, lo: int, hi: int, order: int) -> int:
    """``multiline._shallowest`` as it was: every column-0 line listed, then the best."""
    lo, hi = max(lo, 0), max(hi, 0)
    top = [
        (m[1] in multiline.CLOSERS, order * (m.start() + 1))
        for m in re.finditer(r"\n(\S)", text[: max(hi, 0)])
        if m.start() >= max(lo - 1, 0)
    ]
    if top:
        return abs(min(top)[1])
    lines = [
        (len(m[1]), m[2] in multiline.CLOSERS, order * m.start())
        for m in re.finditer(r"(?<=\n)([ \t]*)(\S)", text[:hi])
        if m.start() >= lo
    ]
    return abs(min(lines)[2]) if lines else 0


@settings(max_examples=400, deadline=None)
@given(LINES_OF_CODE, st.integers(-5, 600), st.integers(-5, 600), st.sampled_from([1, -1]))
def test_window_edges_are_where_listing_every_top_line_put_them(text, lo, hi, order):
    assert multiline._shallowest(text, lo, hi, order) == old_shallowest(text, lo, hi, order)


@settings(max_examples=300, deadline=None)
@given(LINES_OF_CODE, st.integers(0, 600), st.integers(0, 600), st.integers(1, 9))
def test_the_last_top_line_is_found_across_chunk_edges(text, lo, hi, chunk):
    # tiny chunks: a match ("\n" then code) straddles a chunk's edge again and again
    lo = max(lo - 1, 0)
    expected = old_shallowest(text, lo + 1, hi, -1) if lo < hi else 0
    found = multiline._last_top(text, lo, hi, chunk=chunk)
    if found:  # _shallowest falls back to indented lines only when there is no top line
        assert found == expected
    else:
        assert not any(m.start() >= lo for m in re.finditer(r"\n\S", text[:hi]))


def test_windows_of_a_big_file_are_unchanged():
    text = "\n".join(
        f"def f{i}(x):\n    y = x + {i}\n    return (\n        y\n    )\n" for i in range(800)
    )
    for cut in (9000, 20_000, len(text) // 2, len(text) - 9000):
        prefix, suffix = text[:cut], text[cut:]
        for order, (lo, hi) in ((-1, (len(prefix) - 32_000, len(prefix) - 8000)),
                                (1, (8000, 32_000))):  # fmt: skip
            part = prefix if order < 0 else suffix
            assert multiline._shallowest(part, lo, hi, order) == old_shallowest(part, lo, hi, order)


# ---- top-level names reused node by node ---------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_reused_top_level_names_are_those_read_afresh_through_any_edit(name):
    """Random edits of real code, through the editor's document (incremental re-parses):
    after each, the names reused from the last call equal a fresh read of the tree."""
    spec = language_named(name)
    assert spec is not None
    source = CASES[name].source.decode()
    rng = random.Random(name)
    store = DocumentStore()
    uri = f"file:///w/case.{name}"
    doc = store.open(uri, source, name, 1)
    memo = TopLevelNames()
    pieces = ['"', "'", "/*", "*/", "\n", "}", "{", "(", "def ", "class K:\n", "x", "# ", "`"]
    for version in range(2, 80):
        snap = doc.snapshot()
        text = snap.text
        start = rng.randint(0, len(text))
        end = min(len(text), start + rng.choice([0, 0, 1, 5, 40]))
        new = rng.choice(pieces) if rng.random() < 0.8 else ""
        store.change(uri, version, [(_range(snap, start, end), new)])
        snap = doc.snapshot()
        assert snap.tree is not None
        assert memo(uri, snap.tree, spec) == top_level_names(snap.tree, spec), version


def test_reused_names_follow_a_renamed_definition_and_are_kept_per_file():
    spec = language_named("python")
    assert spec is not None
    parser = spec.parser()
    memo = TopLevelNames(kept=2)
    one = parser.parse(b"def alpha():\n    pass\n\n\nclass Beta:\n    x = 1\n")
    assert memo("one", one, spec) == {"alpha", "Beta"}
    renamed = parser.parse(b"def alpha():\n    pass\n\n\nclass Gamma:\n    x = 1\n")
    assert memo("one", renamed, spec) == {"alpha", "Gamma"}
    other = parser.parse(b"def alpha():\n    pass\n")
    assert memo("two", other, spec) == {"alpha"}
    assert memo("three", other, spec) == {"alpha"}
    assert len(memo._last) == 2  # bounded: the oldest file's names went
    assert memo("one", renamed, spec) == {"alpha", "Gamma"}  # read afresh, the same


def _range(snap, start: int, end: int):
    """The LSP range (UTF-16) of str indices [start, end) of a snapshot's text."""

    def position(at: int) -> tuple[int, int]:
        line_start = snap.text.rfind("\n", 0, at) + 1
        line = snap.text.count("\n", 0, at)
        units = len(snap.text[line_start:at].encode("utf-16-le")) // 2
        return line, units

    return position(start), position(end)


# ---- the floor, measured without the measuring side's libraries ----------------------------


def test_the_raw_clients_of_the_floor_make_the_same_exchanges(tmp_path):
    """``bench/latency_floor.py``'s raw-bytes clients: the socket one sends the body httpx
    would (the fake model server records the same JSON) and reads each streamed answer
    to its end on one connection; the pipe one gets the bare pygls server's answer to every
    keystroke. Figures only, nothing about speed is asserted."""
    bench = Path(__file__).resolve().parent.parent / "bench"
    sys.path.insert(0, str(bench))
    try:
        import latency_floor
        from lsp_latency import ModelServerProcess, server_env
    finally:
        sys.path.remove(str(bench))
    model = ModelServerProcess()
    try:
        body = {"model": "m", "prompt": "def f(x):\n    return ", "stream": True}
        added = latency_floor.socket_added(model, body, 4)
        assert len(added) == 4  # one model request each, after three to warm up
        assert model.count() == 7
        assert all(model.body(i) == body for i in range(7))
        env = server_env(model.url, tmp_path / "scratch")
        trips = latency_floor.raw_round_trips(tmp_path, "x = 1\n" * 20, 5, env)
        assert len(trips) == 5 and all(ms > 0 for ms in trips)
        # asyncio alone (fifth round): the same request through asyncio's streams, and
        # the pygls server reading as Tandem does, and a server of asyncio alone, each
        # answering every keystroke
        streamed = asyncio.run(latency_floor.asyncio_added(model, body, 4))
        assert len(streamed) == 4 and model.count() == 14
        assert all(model.body(i) == body for i in range(7, 14))
        for server in ("pygls-loop", "asyncio"):
            trips = latency_floor.raw_round_trips(tmp_path, "x = 1\n" * 20, 5, env, server=server)
            assert len(trips) == 5 and all(ms > 0 for ms in trips), server
    finally:
        model.stop()


# ---- a new document's first-request work, done at didOpen ----------------------------------


def test_an_opened_document_has_its_imports_and_names_ready_before_any_request(tmp_path):
    from tandem import workspace as workspace_module
    from tandem.config import load_settings
    from tandem.context.imports import resolve_imports
    from tandem.session import Session
    from tandem.workspace import open_workspace

    (tmp_path / "alpha.py").write_text("def from_alpha(x):\n    return x + 1\n")
    (tmp_path / ".env").write_text("TOKEN=1\n")
    main = tmp_path / "main.py"
    text = "from alpha import from_alpha\n\n\ndef g():\n    return from_alpha(1)\n"

    async def run() -> Session:
        session = Session(open_workspace(load_settings(tmp_path), tmp_path))
        session.edit(lambda: session.documents.open(main.as_uri(), text, "python", 1), "open")
        session.prepare_opened(main.as_uri())
        env = (tmp_path / ".env").as_uri()
        session.edit(lambda: session.documents.open(env, "import os\n", "python", 1), "open")
        session.prepare_opened(env)
        session.prepare_opened((tmp_path / "never_opened.py").as_uri())  # no error
        await session.settle()  # (the opens went to the document thread: no size given)
        await asyncio.sleep(0.05)  # the loop's next turns
        opened = session.documents.get(env)
        assert opened is not None and session.excluded(env, opened.snapshot()) is not None
        await session.close()
        return session

    session = asyncio.run(run())
    engine = session.workspace.engine
    kept = [key for key in engine._imports if key[0] == str(main)]
    assert len(kept) == 1  # resolved at didOpen, for the text opened
    spec = language_named("python")
    assert spec is not None
    imports = engine._imports.get(kept[0])[1]  # type: ignore[index]
    tree = spec.parser().parse(text.encode())
    assert imports == resolve_imports(spec, tree, main, tmp_path.resolve())
    assert [f.name for imp in imports for f in imp.files] == ["alpha.py"]
    assert str(main) in engine.top_level_names._last
    # the imported file was judged and parsed too (fifth round), and the language's
    # queries compiled
    assert [p.name for p in engine.files._items] == ["alpha.py"]
    assert "python" in workspace_module._warmed
    # an excluded document (a .env in a tab) is not read for anything
    assert not any(".env" in key[0] for key in engine._imports)
