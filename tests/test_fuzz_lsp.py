"""Fuzzed input over the LSP surface (hypothesis): the server never dies and answers every request.

1. The document store in every language Tandem parses, with any characters (lone surrogates,
   U+2028, lone CRs, NULs): the text always equals the same edits applied to a plain string,
   an invalid range leaves the document as it was, and the incremental tree equals a fresh
   parse. (test_documents.py does this for Python, JavaScript and Rust with a fixed alphabet.)
2. A running ``tandem serve``: random edits and inline requests at random positions, valid,
   past the end, negative or beyond 32 bits; then the server's copy is compared with the
   store's through the prompt the model receives.
3. Random bytes and huge lines as document contents (didOpen and didChange).
4. JSON-RPC written straight to the server's stdin: bad framing, truncated and overlong
   bodies, invalid JSON, wrong types, unknown methods, huge numbers, junk. After each, a
   valid request must be answered. Framing errors cost the badly framed message (and, when
   a lying Content-Length ends inside the next message's header line, that message too);
   the reader resynchronises at the next header, see ``tandem.lsp.framing``.

Example counts are modest so the whole file runs in well under a minute.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import tree_sitter as ts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsprotocol import types as t
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcInvalidRequest
from pytest_lsp import LanguageClient

from tandem.context.documents import Document, DocumentStore, clean_text
from tandem.context.languages import LANGUAGES, language_named
from tandem.context.positions import ENCODINGS, InvalidPosition, LineIndex, encode
from tandem.lsp.framing import read_messages

from lsp_support import TANDEM, fim_parts, lsp_session, model_env, open_text, send_raw
from modelserver import Behaviour, ModelServer

SUGGESTION = "x_1"
UINT_MAX = 2**31 - 1  # LSP's uinteger

SOURCES = {
    "python": "import os\n\ndef f(a, b=1):\n    '''Doc 👋.'''\n    return a + b\n",
    "javascript": "// 🚀\nfunction add(a, b) {\n  return a + b;\n}\nexport default add;\n",
    "typescript": "interface P { x: number }\nconst f = (p: P): number => p.x * 2;\n",
    "tsx": "const App = () => <div className='a'>{'héllo'}</div>;\nexport default App;\n",
    "go": 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("世界")\n}\n',
    "rust": 'fn main() {\n    let s = "🦀";\n    println!("{}", s);\n}\n',
    "java": "class A {\n  int f(int x) { return x * 2; }\n}\n",
    "c": '#include <stdio.h>\nint main(void) {\n  printf("%d\\n", 1);\n  return 0;\n}\n',
    "cpp": "#include <vector>\nstruct S { int x; };\nint f(std::vector<int> v) { return v[0]; }\n",
    "c_sharp": 'class A {\n  int F(int x) => x * 2;\n  string S = "é";\n}\n',
    "ruby": "class A\n  def f(x)\n    x * 2 # ü\n  end\nend\n",
    "php": '<?php\nfunction f($x) {\n  return $x . "é";\n}\n',
    "bash": 'f() {\n  echo "$1" | tr a-z A-Z\n}\nf "héllo"\n',
}
assert set(SOURCES) == {spec.name for spec in LANGUAGES}

TRICKY = ["\r", "\n", "\r\n", "\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\t", "😀", "e\u0301",
          "\ud800", "\udfff", "\udc80", "\ufeff", "\ufffd", "{", "}", "(", ")", '"', "'", "`",
          "/*", "*/", "#", "<", ">", "$", "\\", "    ", "def ", "fn ", "end\n"]  # fmt: skip
CHARS = st.one_of(st.characters(), st.sampled_from(TRICKY))
INSERTS = st.lists(CHARS, max_size=8).map("".join)


def nodes(tree: ts.Tree) -> list[tuple[str, int, int, tuple[int, int], tuple[int, int]]]:
    out, stack = [], [tree.root_node]
    while stack:
        node = stack.pop()
        out.append((node.type, node.start_byte, node.end_byte, node.start_point, node.end_point))
        stack.extend(reversed(node.children))
    return out


# ---- 1. the document store, every language -----------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(SOURCES)), st.sampled_from(ENCODINGS), st.data())
def test_store_edits_in_every_language_mirror_a_string_and_parse_like_fresh(
    language: str, encoding: str, data: st.DataObject
):
    store = DocumentStore(encoding=encoding)
    doc = store.open(f"file:///w/main.{language}", SOURCES[language], language, 1)
    model = doc.text
    for version in range(2, 2 + data.draw(st.integers(1, 4), label="notifications")):
        changes: list[Any] = []
        after = model
        valid = True
        for _ in range(data.draw(st.integers(1, 3), label="changes")):
            kind = data.draw(st.sampled_from(["range", "range", "range", "full", "invalid"]))
            new = data.draw(INSERTS, label="inserted")
            if kind == "full":
                changes.append((None, new))
                after = new
            elif kind == "invalid":
                bad = data.draw(st.sampled_from([-1, -(2**31), 10**6, UINT_MAX]), label="line")
                changes.append((((bad, 0), (bad, 0)), new))
                valid = False
            else:
                lines = LineIndex(after, encode(after))
                start = data.draw(st.integers(0, len(after)), label="start")
                end = data.draw(st.integers(start, min(len(after), start + 30)), label="end")
                # Positions cannot point between "\r" and "\n": move to before the "\r".
                start -= after[start - 1 : start + 1] == "\r\n"
                end -= after[end - 1 : end + 1] == "\r\n"
                span = (lines.position(start, encoding), lines.position(end, encoding))
                changes.append((span, new))
                after = after[:start] + new + after[end:]
        before = doc.snapshot()
        if valid:
            store.change(doc.uri, version, changes)
            model = clean_text(after)  # lone surrogates are stored as U+FFFD
        else:
            with pytest.raises(InvalidPosition):
                store.change(doc.uri, version, changes)
            assert doc.snapshot() is before  # all or nothing
        assert doc.text == model
        assert doc.data == encode(model)
    if doc.tree is not None:
        fresh = language_named(language).parser().parse(encode(model))
        assert nodes(doc.tree) == nodes(fresh)
    else:
        assert "\0" in model  # binary text is mirrored, never parsed


# ---- a running server, driven from a synchronous test ------------------------------------------


class Harness:
    """One ``tandem serve`` under pytest-lsp on a loop of its own, so hypothesis can call
    into it example after example (an async test cannot host @given's examples)."""

    def __init__(self, client: LanguageClient, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop

    def run(self, coro: Any, timeout: float = 15.0) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def alive(self) -> None:
        server = self.client._server
        assert server is not None and server.returncode is None, "tandem serve died"


@contextmanager
def harness(ws: Path, env: dict[str, str]) -> Iterator[Harness]:
    loop = asyncio.new_event_loop()
    session = lsp_session(ws, env)
    try:
        client, _ = loop.run_until_complete(asyncio.wait_for(session.__aenter__(), 30))
        try:
            yield Harness(client, loop)
        finally:
            loop.run_until_complete(session.__aexit__(None, None, None))
    finally:
        loop.close()


def inline_params(uri: str, line: int, character: int) -> t.InlineCompletionParams:
    return t.InlineCompletionParams(
        context=t.InlineCompletionContext(t.InlineCompletionTriggerKind.Invoked),
        text_document=t.TextDocumentIdentifier(uri),
        position=t.Position(line, character),
    )


async def ask(client: LanguageClient, uri: str, line: int, character: int) -> list[str] | str:
    """Texts of the answer, or the error's class name for numbers LSP does not allow."""
    if 0 <= line <= UINT_MAX and 0 <= character <= UINT_MAX:
        result = await client.text_document_inline_completion_async(
            inline_params(uri, line, character)
        )
        assert isinstance(result, t.InlineCompletionList), result
        return [str(item.insert_text) for item in result.items]
    params = {
        "textDocument": {"uri": uri},
        "position": {"line": line, "character": character},
        "context": {"triggerKind": 1},
    }
    try:
        await send_raw(client, "textDocument/inlineCompletion", params)
    except JsonRpcInvalidParams:
        return "InvalidParams"
    raise AssertionError("an invalid position was accepted")


def did_change_raw(client: LanguageClient, uri: str, version: int, changes: list[Any]) -> None:
    """didChange as plain JSON: ranges LSP's types would refuse to build (negative lines)."""
    content = [
        {
            "range": {
                "start": {"line": a, "character": b},
                "end": {"line": c, "character": d},
            },
            "text": text,
        }
        for ((a, b), (c, d)), text in changes
    ]
    client.protocol._send_data(
        {
            "jsonrpc": "2.0",
            "method": "textDocument/didChange",
            "params": {"textDocument": {"uri": uri, "version": version}, "contentChanges": content},
        }
    )


def no_surrogates(text: str) -> str:
    """What a prompt holding ``text`` looks like on the wire: lone surrogates become U+FFFD."""
    return re.sub("[\ud800-\udfff]", "\ufffd", text)


NUMBERS = st.one_of(
    st.integers(0, 12),
    st.integers(-3, 200),
    st.sampled_from([UINT_MAX, UINT_MAX + 1, 2**32, 2**53, 10**20, -(2**31), -(10**20)]),
)
DOCUMENTS = {
    "emoji.py": 's = "🙂 é"\nt = 1\n',
    "crlf.py": "def f():\r\n    return 1\r\n\r\nx = \r\n",
    "cr.py": "a = 1\rb = 2\rc = ",
    "seps.py": "x = 1\u2028y = 2\x0cz = 3\n\x85w = ",
    "empty.py": "",
    "combining.js": "const e\u0301 = 'e\u0301'; // 日本\nlet y = ",
}


def test_random_edits_and_positions_against_the_server(model_server: ModelServer, ws: Path):
    """Every request is answered (empty where the position names no place, an InvalidParams
    error where LSP's types do not allow the number); the server's copy stays the store's."""
    model_server.default = Behaviour(tokens=[SUGGESTION])
    with harness(ws, model_env(model_server.url, TANDEM_TIMEOUT="5")) as h:
        oracles: dict[str, Document] = {}
        versions: dict[str, int] = {}
        for name, text in DOCUMENTS.items():
            language = "javascript" if name.endswith(".js") else "python"
            uri = open_text(h.client, ws / name, text, language)
            oracles[uri] = Document(uri, text, 1, language_named(language))
            versions[uri] = 1
        uris = sorted(oracles)
        marker = iter(range(10**9))

        @settings(
            max_examples=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(st.data())
        def run(data: st.DataObject) -> None:
            for _ in range(data.draw(st.integers(1, 6), label="actions")):
                uri = data.draw(st.sampled_from(uris), label="document")
                oracle = oracles[uri]
                if data.draw(st.booleans(), label="edit?"):
                    changes = []
                    for _ in range(data.draw(st.integers(1, 3), label="changes")):
                        a, b = data.draw(NUMBERS), data.draw(NUMBERS)
                        c, d = data.draw(NUMBERS), data.draw(NUMBERS)
                        changes.append((((a, b), (c, d)), data.draw(INSERTS, label="text")))
                    versions[uri] += 1
                    did_change_raw(h.client, uri, versions[uri], changes)
                    if all(0 <= n <= UINT_MAX for span, _ in changes for p in span for n in p):
                        with suppress(InvalidPosition):  # as the server's store does
                            oracle.apply_changes(changes, versions[uri])
                else:
                    line, character = data.draw(NUMBERS), data.draw(NUMBERS)
                    answer = h.run(ask(h.client, uri, line, character))
                    assert answered(answer), answer
            h.alive()
            # the server's copy equals the store's: append a new line, ask at the end
            uri = data.draw(st.sampled_from(uris), label="checked")
            oracle = oracles[uri]
            end = oracle.lines.position(len(oracle.text))
            tail = f"\nzz_{next(marker)} = "
            versions[uri] += 1
            did_change_raw(h.client, uri, versions[uri], [((end, end), tail)])
            oracle.apply_changes([((end, end), tail)], versions[uri])
            asked = len(model_server.requests)
            end = oracle.lines.position(len(oracle.text))
            # (usually the suggestion; post-processing drops it after lone-CR line ends)
            assert answered(h.run(ask(h.client, uri, *end)))
            assert len(model_server.requests) == asked + 1
            prefix, suffix = fim_parts(model_server.requests[-1].body["prompt"])
            assert prefix.endswith(no_surrogates(oracle.text)[-1500:])
            assert suffix == ""

        run()
        h.alive()


def filler(seed: int, size: int) -> str:
    """``size`` characters of code-like junk on one line."""
    block = "".join(random.Random(seed).choice("ab(){}[] ;'\"\\=+") for _ in range(1000))
    return (block * (size // 1000 + 1))[:size]


def answered(answer: list[str] | str) -> bool:
    """Nothing, the suggestion, or part of it (type-ahead, or trimmed to fit the text around),
    or the InvalidParams error for numbers LSP does not allow."""
    if answer == "InvalidParams":
        return True
    return isinstance(answer, list) and len(answer) <= 1 and all(a in SUGGESTION for a in answer)


def junk_text(data: bytes, how: str) -> str:
    if how == "latin-1":  # every byte a character: NULs, controls, C1
        return data.decode("latin-1")
    return data.decode("utf-8", "surrogateescape")  # invalid bytes become lone surrogates


# "No hang" bounds, not speed: a 2.5 MB line is parsed and windowed in about a second alone,
# but a full test run on 2 loaded cores has stretched that past 20 s.
HUGE_ANSWER_WITHIN = 60
NORMAL_ANSWER_WITHIN = 20


def test_random_bytes_and_huge_lines_in_documents(model_server: ModelServer, ws: Path):
    """didOpen and didChange with binary junk and megabyte lines; the server answers a normal
    request on a normal file promptly after each."""
    model_server.default = Behaviour(tokens=[SUGGESTION])
    with harness(ws, model_env(model_server.url, TANDEM_TIMEOUT="5")) as h:
        normal = open_text(h.client, ws / "normal.py", "def f(x):\n    return \n")
        counter = iter(range(10**9))

        @settings(
            max_examples=10,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(
            st.binary(max_size=4096),
            st.sampled_from(["latin-1", "surrogateescape"]),
            st.sampled_from([0, 0, 100_000, 500_000, 2_500_000]),
            st.sampled_from(["py", "js", "txt", "go"]),
            st.data(),
        )
        def run(raw: bytes, how: str, huge: int, ext: str, data: st.DataObject) -> None:
            n = next(counter)
            text = junk_text(raw, how) + filler(n, huge)  # junk, then one enormous line
            uri = open_text(h.client, ws / f"junk{n}.{ext}", text)
            lines = LineIndex(text, encode(text))
            for _ in range(3):
                line = data.draw(st.integers(0, lines.line_count + 1), label="line")
                character = data.draw(st.sampled_from([0, 1, 50, 999_999, UINT_MAX]))
                answer = h.run(ask(h.client, uri, line, character), timeout=HUGE_ANSWER_WITHIN)
                assert answered(answer) and answer != "InvalidParams", answer
            # a huge line typed into the middle of it, and a keystroke after that
            middle = lines.position(len(text) // 2)
            insert = junk_text(data.draw(st.binary(max_size=256)), how) + filler(n + 1, huge)
            did_change_raw(h.client, uri, 2, [((middle, middle), insert)])
            did_change_raw(h.client, uri, 3, [((middle, middle), "x")])
            h.run(ask(h.client, uri, *middle), timeout=HUGE_ANSWER_WITHIN)
            h.alive()
            started = time.monotonic()
            assert h.run(ask(h.client, normal, 1, 11)) == [SUGGESTION]
            assert time.monotonic() - started < NORMAL_ANSWER_WITHIN  # not stuck behind junk
            h.client.text_document_did_close(
                t.DidCloseTextDocumentParams(t.TextDocumentIdentifier(uri))
            )

        run()
        h.alive()


# ---- 4. framing, in memory: the reader on its own ----------------------------------------------


def frame(message: Any, length: int | None = None) -> bytes:
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % (len(body) if length is None else length) + body


async def pieces(data: bytes, sizes: list[int]) -> AsyncIterator[bytes]:
    i = 0
    for size in sizes:
        yield data[i : i + size]
        i += size
    if i < len(data):
        yield data[i:]


def read_all(data: bytes, sizes: list[int]) -> list[bytes]:
    bodies: list[bytes] = []
    stream = pieces(data, sizes)

    async def read_some() -> bytes:
        return await anext(stream, b"")

    asyncio.run(read_messages(read_some, bodies.append))
    return bodies


def message_body(i: int) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": i, "method": "m", "params": {"t": "é\n" * i}}
    ).encode()


JUNK = st.binary(max_size=300).filter(lambda b: b"content-length" not in b.lower())
CHUNKS = st.lists(st.integers(1, 64), max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(JUNK, st.booleans()), min_size=1, max_size=6), CHUNKS)
def test_reader_finds_every_message_after_junk(parts: list[tuple[bytes, bool]], sizes: list[int]):
    """Junk between messages (however the bytes are split into reads) costs only itself."""
    stream, expected = b"", []
    for i, (junk, lf_only) in enumerate(parts):
        body = message_body(i)
        header = frame(body)
        if lf_only:
            header = header.replace(b"\r\n", b"\n").replace(b"Content-Length", b"content-length")
        stream += junk + header
        expected.append(body)
    bodies = read_all(stream, sizes)
    assert [b for b in bodies if b in expected] == expected


@settings(max_examples=200, deadline=None)
@given(st.integers(-40, 200).filter(bool), st.integers(1, 4), CHUNKS)
def test_reader_survives_a_lying_content_length(error: int, after: int, sizes: list[int]):
    """A declared length too short or too long costs that message; the following ones arrive.

    (Too long by less than a header line's length, the next header is still found.)
    """
    bad = message_body(99)
    stream = frame(bad, max(0, len(bad) + error))
    expected = [message_body(i) for i in range(after)]
    stream += b"".join(frame(body) for body in expected)
    bodies = read_all(stream, sizes)
    assert bodies[-after:] == expected


def test_reader_bounds():
    # a declared length past MAX_BODY is a broken header: skipped, nothing allocated for it
    stream = b"Content-Length: 99999999999\r\n\r\n{}" + frame(message_body(1))
    assert read_all(stream, []) == [message_body(1)]
    # megabytes of junk without a blank line: dropped as they come, the message after found
    stream = os.urandom(300_000).replace(b"\n", b" ") + frame(message_body(2))
    assert read_all(stream, [65536] * 10)[-1:] == [message_body(2)]
    # a header split anywhere across reads
    stream = frame(message_body(3))
    for cut in range(1, len(stream)):
        assert read_all(stream, [cut]) == [message_body(3)]


# ---- 4. framing and params, straight into the server's stdin -----------------------------------


class RawServer:
    """``tandem serve`` on pipes we write raw bytes to, and an LSP reader of its stdout."""

    async def start(self, env: dict[str, str]) -> RawServer:
        self.process = await asyncio.create_subprocess_exec(
            TANDEM,
            "serve",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, **env},
        )
        self.messages: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        out = self.process.stdout
        assert out is not None
        while True:
            length = None
            while (line := await out.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if not line or length is None:
                return
            self.messages.append(json.loads(await out.readexactly(length)))
            self._arrived.set()

    async def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        await self.process.stdin.drain()

    async def answer(self, msg_id: Any, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages:
                if message.get("id") == msg_id and "method" not in message:
                    return message
            left = deadline - time.monotonic()
            assert left > 0, f"no answer to {msg_id!r}; server alive: {self.alive}"
            self._arrived.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(left, 0.2))

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def stop(self) -> None:
        if self.alive:
            self.process.kill()
        await self.process.wait()
        self._reader.cancel()


def rpc(method: str, params: Any = None, msg_id: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if msg_id is not None:
        message["id"] = msg_id
    return message


DOC = "file:///w/a.py"
NOTE = json.dumps(rpc("tandem/nothing")).encode()  # a harmless notification, as bytes
INLINE = "textDocument/inlineCompletion"
POSITION = {
    "textDocument": {"uri": DOC},
    "position": {"line": 1, "character": 11},
    "context": {"triggerKind": 1},
}

# (name, bytes to write, the error code the server must answer with, or None for no answer)
MALFORMED: list[tuple[str, bytes, Any]] = [
    ("invalid JSON", frame(b"{not json"), None),
    ("a JSON array (a batch)", frame(b"[1, 2, 3]"), None),
    ("a bare number", frame(b"42"), None),
    ("null", frame(b"null"), None),
    ("not UTF-8", frame(b'{"jsonrpc": "2.0", "method": "x", "params": "\xff\xfe"}'), None),
    ("deep nesting", frame(b"[" * 100_000 + b"]" * 100_000), None),
    ("no jsonrpc member", frame({"id": "v1", "method": INLINE, "params": POSITION}), -32600),
    ("unknown request", frame(rpc("tandem/nothing", {}, "u1")), -32601),
    ("unknown notification", frame(rpc("tandem/nothing", {"x": 1})), None),
    ("$/ notification", frame(rpc("$/unknownThing", {"x": 1})), None),
    ("object id", frame(rpc("workspace/executeCommand", {"command": "x"}, {"a": 1})), None),
    ("huge id", frame(b'{"jsonrpc":"2.0","id":1' + b"0" * 400 + b',"method":"x"}'), None),
    ("position strings", frame(rpc(INLINE, {**POSITION, "position": {"line": "1"}}, "p1")),
     -32602),
    ("huge numbers", frame(rpc(INLINE, {**POSITION, "position": {"line": 10**30,
                                                                "character": 2**64}}, "p2")),
     -32602),
    ("floats and NaN", frame(b'{"jsonrpc":"2.0","id":"p3","method":"' + INLINE.encode()
                             + b'","params":{"textDocument":{"uri":"' + DOC.encode()
                             + b'"},"position":{"line":NaN,"character":1e999}}}'), -32602),
    ("params a string", frame(rpc(INLINE, "nope", "p4")), -32602),
    ("didChange wrong types", frame(rpc("textDocument/didChange", {
        "textDocument": {"uri": DOC, "version": "x"}, "contentChanges": "nope"})), None),
    ("didChange huge version", frame(rpc("textDocument/didChange", {
        "textDocument": {"uri": DOC, "version": 2**70}, "contentChanges": []})), None),
    ("didOpen text a number", frame(rpc("textDocument/didOpen", {"textDocument": {
        "uri": "file:///w/b.py", "languageId": "python", "version": 1, "text": 5}})), None),
    ("response to nothing", frame({"jsonrpc": "2.0", "id": 4242, "result": None}), None),
    ("cancel with a bad id", frame(rpc("$/cancelRequest", {"id": [1]})), None),
    ("initialize again", frame(rpc("initialize", {"capabilities": {}}, "i2")), -32600),
    # framing
    ("Content-Length: abc", b"Content-Length: abc\r\n\r\n" + NOTE, None),
    ("Content-Length: -5", b"Content-Length: -5\r\n\r\n" + NOTE, None),
    ("no Content-Length", b"Content-Type: application/json\r\n\r\n" + NOTE, None),
    ("Content-Length too short", frame(NOTE, 10), None),
    ("Content-Length too long", frame(NOTE, len(NOTE) + 60), None),
    ("Content-Length huge", frame(NOTE, 99_999_999_999_999), None),
    ("lower-case header", frame(NOTE).replace(b"Content-Length", b"content-length"), None),
    ("LF line ends", frame(NOTE).replace(b"\r\n", b"\n"), None),
    ("binary junk", bytes(range(256)) * 8, None),
    ("truncated body, then silence", b"Content-Length: 50\r\n\r\n{\"jsonrpc\"", None),
]  # fmt: skip


async def test_malformed_messages_straight_to_stdin(model_server: ModelServer, tmp_path: Path):
    """After each malformed message, the expected error answer (if any) and a valid request
    answered; the process is alive at the end and exits cleanly on shutdown/exit."""
    model_server.default = Behaviour(tokens=[SUGGESTION])
    env = {**model_env(model_server.url), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    server = await RawServer().start(env)
    try:
        await server.send(frame(rpc("initialize", {"capabilities": {}}, 0)))
        assert "result" in await server.answer(0, 30)
        await server.send(frame(rpc("initialized", {})))
        text = "def f(x):\n    return \n"
        item = {"uri": DOC, "languageId": "python", "version": 1, "text": text}
        await server.send(frame(rpc("textDocument/didOpen", {"textDocument": item})))
        for n, (name, data, code) in enumerate(MALFORMED):
            await server.send(data)
            if code is not None:
                answer_id = json.loads(data.split(b"\r\n\r\n", 1)[1]).get("id")
                answer = await server.answer(answer_id)
                assert answer.get("error", {}).get("code") == code, (name, answer)
            probe = f"probe-{n}"
            await server.send(frame(rpc(INLINE, POSITION, probe)))
            answer = await server.answer(probe)
            assert answer.get("result", {}).get("items"), (name, answer)
            assert server.alive, name
        # random junk, a few times, each followed by a request
        rng = random.Random(7)
        for n in range(20):
            junk = rng.randbytes(rng.randrange(1, 5000))
            await server.send(junk + frame(rpc(INLINE, POSITION, f"junk-{n}")))
            assert (await server.answer(f"junk-{n}")).get("result"), n
        await server.send(frame(rpc("shutdown", None, "bye")))
        assert "result" in await server.answer("bye")
        await server.send(frame(rpc("exit")))
        assert await asyncio.wait_for(server.process.wait(), 10) == 0
    finally:
        await server.stop()


async def test_second_initialize_is_refused_and_documents_stay(model_server: ModelServer, ws: Path):
    """Re-initializing used to replace the session: every open document was lost (and the
    first session's threads and clients leaked)."""
    model_server.default = Behaviour(tokens=[SUGGESTION])
    async with lsp_session(ws, model_env(model_server.url)) as (client, _):
        uri = open_text(client, ws / "a.py", "def f(x):\n    return \n")
        assert await ask(client, uri, 1, 11) == [SUGGESTION]
        with pytest.raises(JsonRpcInvalidRequest):
            await send_raw(client, "initialize", {"capabilities": {}})
        assert await ask(client, uri, 1, 11) == [SUGGESTION]
