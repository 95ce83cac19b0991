"""``tandem serve`` end to end: a real LSP client (pytest-lsp), the loopback model server.

Every test starts the real server as a subprocess and talks JSON-RPC to it; nothing is
mocked. Each waits with a timeout of its own, so a broken server fails a test, never hangs it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lsprotocol import types as t
from pygls.exceptions import (
    JsonRpcInvalidParams,
    JsonRpcMethodNotFound,
    JsonRpcRequestCancelled,
)
from pytest_lsp import client_capabilities, make_test_lsp_client

from lsp_support import (
    TANDEM,
    change,
    complete,
    edit,
    fim_parts,
    free_port,
    initialize_params,
    inline,
    lsp_session,
    model_env,
    open_text,
    send_raw,
)
from modelserver import Behaviour, ModelServer

SOURCE = "def greet(name):\n    return \n"
SUGGESTION = '"hi " + name'
INLINE = "textDocument/inlineCompletion"
# Proves an answer comes, not how fast: generous for a loaded 2-core machine (bench/ measures).
NO_HANG = 10.0


@pytest.fixture
def second_server() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield server


def env_for(server: ModelServer, **extra: str) -> dict[str, str]:
    return model_env(server.url, **extra)


def texts(items: list[t.InlineCompletionItem]) -> list[str]:
    return [str(i.insert_text) for i in items]


async def wait_requests(server: ModelServer, count: int, timeout: float = 5.0) -> None:
    """Until the model server has received ``count`` requests."""
    deadline = time.monotonic() + timeout
    while len(server.requests) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(server.requests)} model requests, expected {count}")
        await asyncio.sleep(0.01)


def prompt_of(server: ModelServer, index: int = -1) -> tuple[str, str]:
    return fim_parts(server.requests[index].body["prompt"])


# ---- initialize ------------------------------------------------------------------------------


async def test_capabilities(model_server: ModelServer, ws: Path):
    async with lsp_session(ws, env_for(model_server)) as (_, recorder):
        assert recorder.result is not None
        caps = recorder.result.capabilities
        sync = caps.text_document_sync
        assert isinstance(sync, t.TextDocumentSyncOptions)
        assert sync.change == t.TextDocumentSyncKind.Incremental
        assert sync.open_close
        assert caps.inline_completion_provider
        assert caps.completion_provider is not None
        assert caps.execute_command_provider is not None
        assert {"tandem.chat", "tandem.acceptCompletion"} <= set(
            caps.execute_command_provider.commands
        )
        # the VS Code client offers UTF-16 only
        assert caps.position_encoding in (None, t.PositionEncodingKind.Utf16)
        assert recorder.result.server_info is not None
        assert recorder.result.server_info.name == "tandem"
        assert (await recorder.wait_status("ready"))["message"] == "openai:qwen2.5-coder"


@pytest.mark.parametrize(
    "encoding", [t.PositionEncodingKind.Utf8, t.PositionEncodingKind.Utf32], ids=str
)
async def test_negotiated_position_encoding(
    model_server: ModelServer, ws: Path, encoding: t.PositionEncodingKind
):
    """A client offering only UTF-8 (or UTF-32) gets it, and positions are counted in it."""

    def col(text: str) -> int:  # é is 2 UTF-8 bytes, 🙂 4 (and 2 UTF-16 units)
        return len(text.encode()) if encoding == t.PositionEncodingKind.Utf8 else len(text)

    model_server.default = Behaviour(tokens=["x"])
    caps = client_capabilities("visual-studio-code")
    caps.general = t.GeneralClientCapabilities(position_encodings=[encoding])
    async with lsp_session(ws, env_for(model_server), capabilities=caps) as (client, recorder):
        assert recorder.result is not None
        assert recorder.result.capabilities.position_encoding == encoding
        uri = open_text(client, ws / "enc.py", 'name = "é🙂" + x\n')
        await inline(client, uri, 0, col('name = "é🙂" + '))  # UTF-16 would say 15
        prefix, suffix = prompt_of(model_server)
        assert prefix.endswith('name = "é🙂" + ')
        assert suffix.startswith("x\n")
        # edits in the same units: after the emoji, then the é replaced
        after_emoji = col('name = "é🙂')
        edit(
            client,
            uri,
            2,
            [(((0, after_emoji),) * 2, "ü"), (((0, col('name = "')), (0, col('name = "é'))), "e")],
        )
        await inline(client, uri, 0, col('name = "e🙂ü" + '))
        prefix, suffix = prompt_of(model_server)
        assert prefix.endswith('name = "e🙂ü" + ')
        assert suffix.startswith("x\n")


async def test_initialization_options_bare_and_under_tandem(model_server: ModelServer, ws: Path):
    model_server.default = Behaviour(tokens=[SUGGESTION])
    for options, model in (
        ({"completion": {"model": "bare-model"}}, "bare-model"),
        ({"tandem": {"completion": {"model": "nested-model"}, "timeout": 5}}, "nested-model"),
    ):
        async with lsp_session(ws, env_for(model_server), options) as (client, recorder):
            assert (await recorder.wait_status("ready"))["message"] == f"openai:{model}"
            uri = open_text(client, ws / "greet.py", SOURCE)
            assert texts(await inline(client, uri, 1, 11)) == [SUGGESTION]
            assert model_server.requests[-1].body["model"] == model


# ---- inline completion -----------------------------------------------------------------------


async def test_inline_completion_text_range_and_command(model_server: ModelServer, ws: Path):
    model_server.default = Behaviour(tokens=['"hi " + ', "name"])
    async with lsp_session(ws, env_for(model_server)) as (client, recorder):
        uri = open_text(client, ws / "greet.py", SOURCE)
        items = await inline(client, uri, 1, 11)
        assert texts(items) == [SUGGESTION]
        assert items[0].range == t.Range(t.Position(1, 11), t.Position(1, 11))
        assert items[0].command is not None
        assert items[0].command.command == "tandem.acceptCompletion"
        assert list(items[0].command.arguments or []) == [
            {"uri": uri, "text": SUGGESTION, "line": 1, "character": 11}
        ]
        prefix, suffix = prompt_of(model_server)
        assert prefix.endswith("def greet(name):\n    return ")
        assert suffix.startswith("\n")
        await recorder.wait_status("ready")


async def test_incremental_edits_reach_the_prompt(model_server: ModelServer, ws: Path):
    """Ranged changes in UTF-16 units (an emoji is two), several per notification."""
    model_server.default = Behaviour(tokens=["s"])
    text = 'def greet(name):\n    s = "héllo 🙂 wörld"\n    return \n'
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "greet.py", text)
        # "héllo" -> "hi"; then after the emoji (columns 12-13) a waving hand
        edit(client, uri, 2, [(((1, 9), (1, 14)), "hi"), (((1, 14), (1, 14)), "👋")])
        # drop " wörld" (after two emoji: column 16), and a new line before "return"
        edit(client, uri, 3, [(((1, 16), (1, 22)), ""), (((2, 0), (2, 0)), "    t = 1\n")])
        # replace across lines: the whole signature line and the start of the next
        edit(client, uri, 4, [(((0, 4), (1, 4)), "hello(who):\n  ")])
        await inline(client, uri, 3, 11)
        prefix, suffix = prompt_of(model_server)
        assert prefix.endswith('def hello(who):\n  s = "hi 🙂👋"\n    t = 1\n    return ')
        assert suffix.startswith("\n")


# ---- cache and type-ahead --------------------------------------------------------------------


async def test_cache_hit_and_type_ahead(model_server: ModelServer, ws: Path):
    model_server.default = Behaviour(tokens=['"hi " + ', "name"])
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "greet.py", SOURCE)
        assert texts(await inline(client, uri, 1, 11)) == [SUGGESTION]
        # the same request again: from the cache, no model request
        assert texts(await inline(client, uri, 1, 11)) == [SUGGESTION]
        assert len(model_server.requests) == 1
        # type-ahead: the user types the start of the suggestion
        change(client, uri, 2, 1, 11, '"hi')
        ahead = await inline(client, uri, 1, 14)
        assert texts(ahead) == [' " + name']
        assert ahead[0].range == t.Range(t.Position(1, 14), t.Position(1, 14))
        change(client, uri, 3, 1, 14, " ")
        assert texts(await inline(client, uri, 1, 15)) == ['" + name']
        # backspacing to where it was made finds the whole suggestion again
        edit(client, uri, 4, [(((1, 13), (1, 15)), "")])
        assert texts(await inline(client, uri, 1, 13)) == ['i " + name']
        edit(client, uri, 5, [(((1, 11), (1, 13)), "")])
        assert texts(await inline(client, uri, 1, 11)) == [SUGGESTION]
        assert len(model_server.requests) == 1
        # typing something else asks the model
        change(client, uri, 6, 1, 11, "None")
        model_server.default = Behaviour(tokens=[" if name else 0"])
        assert texts(await inline(client, uri, 1, 15)) == [" if name else 0"]
        assert len(model_server.requests) == 2


async def test_cache_survives_a_restart(model_server: ModelServer, ws: Path, tmp_path: Path):
    model_server.default = Behaviour(tokens=[SUGGESTION])
    env = env_for(model_server, TANDEM_CACHE_DIR=str(tmp_path / "shared-cache"))
    async with lsp_session(ws, env) as (client, _):
        uri = open_text(client, ws / "greet.py", SOURCE)
        assert texts(await inline(client, uri, 1, 11)) == [SUGGESTION]
    assert len(model_server.requests) == 1
    async with lsp_session(ws, env) as (client, _):
        uri = open_text(client, ws / "greet.py", SOURCE)
        assert texts(await inline(client, uri, 1, 11)) == [SUGGESTION]
    assert len(model_server.requests) == 1
    # the default XDG cache directory is shared the same way
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "greet.py", SOURCE)
        assert texts(await inline(client, uri, 1, 11)) == [SUGGESTION]
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "greet.py", SOURCE)
        assert texts(await inline(client, uri, 1, 11)) == [SUGGESTION]
    assert len(model_server.requests) == 2


async def test_two_servers_share_one_cache(model_server: ModelServer, ws: Path, tmp_path: Path):
    model_server.default = Behaviour(tokens=[SUGGESTION])
    env = env_for(model_server, TANDEM_CACHE_DIR=str(tmp_path / "shared-cache"))
    other = "def add(a, b):\n    return \n"
    async with lsp_session(ws, env) as (one, _), lsp_session(ws, env) as (two, _):
        uri_one = open_text(one, ws / "greet.py", SOURCE)
        uri_two = open_text(two, ws / "greet.py", SOURCE)
        add_one = open_text(one, ws / "add.py", other)
        add_two = open_text(two, ws / "add.py", other)
        # both answer at once
        answers = await asyncio.gather(inline(one, uri_one, 1, 11), inline(two, add_two, 1, 11))
        assert [texts(a) for a in answers] == [[SUGGESTION], [SUGGESTION]]
        assert len(model_server.requests) == 2
        # each one's answer serves the other without a model request
        assert texts(await inline(two, uri_two, 1, 11)) == [SUGGESTION]
        assert texts(await inline(one, add_one, 1, 11)) == [SUGGESTION]
        assert len(model_server.requests) == 2


# ---- cancellation ----------------------------------------------------------------------------


async def test_a_new_request_cancels_the_one_in_flight(model_server: ModelServer, ws: Path):
    model_server.default = Behaviour(delay=0.05, tokens=["x"] * 100)  # 5 s of answer
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "greet.py", SOURCE)
        first = asyncio.ensure_future(inline(client, uri, 1, 11))
        await wait_requests(model_server, 1)
        model_server.default = Behaviour(tokens=[SUGGESTION])
        started = time.monotonic()
        # an edit above: the text before the cursor is not the first call's any more
        change(client, uri, 2, 0, 0, "# greeting\n")
        assert texts(await inline(client, uri, 2, 11)) == [SUGGESTION]
        assert await asyncio.wait_for(first, 2) == []  # superseded: an empty answer
        assert time.monotonic() - started < 2
        assert model_server.wait_done(0, timeout=2).aborted
        assert len(model_server.requests) == 2


async def test_cancel_request_aborts_the_model_request(model_server: ModelServer, ws: Path):
    model_server.default = Behaviour(delay=0.05, tokens=["x"] * 100)
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "greet.py", SOURCE)
        params = t.InlineCompletionParams(
            context=t.InlineCompletionContext(t.InlineCompletionTriggerKind.Invoked),
            text_document=t.TextDocumentIdentifier(uri),
            position=t.Position(1, 11),
        )
        pending = asyncio.ensure_future(
            client.protocol.send_request_async(INLINE, params, msg_id="slow-1")
        )
        await wait_requests(model_server, 1)
        client.protocol.notify(t.CANCEL_REQUEST, t.CancelParams(id="slow-1"))
        with pytest.raises(JsonRpcRequestCancelled):
            await asyncio.wait_for(pending, 2)
        assert model_server.wait_done(0, timeout=2).aborted
        # the server goes on
        model_server.default = Behaviour(tokens=[SUGGESTION])
        assert texts(await inline(client, uri, 1, 11)) == [SUGGESTION]


# ---- the completion popup --------------------------------------------------------------------


async def test_completion_fallback(model_server: ModelServer, ws: Path):
    model_server.default = Behaviour(tokens=[SUGGESTION])
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "greet.py", SOURCE)
        for kind in (
            t.CompletionTriggerKind.TriggerCharacter,
            t.CompletionTriggerKind.TriggerForIncompleteCompletions,
        ):
            assert await complete(client, uri, 1, 11, kind) == []
        assert model_server.requests == []
        items = await complete(client, uri, 1, 11, t.CompletionTriggerKind.Invoked)
        assert len(items) == 1
        item = items[0]
        assert SUGGESTION in item.label and item.label != SUGGESTION  # labelled as AI
        assert item.text_edit == t.TextEdit(
            t.Range(t.Position(1, 11), t.Position(1, 11)), SUGGESTION
        )
        assert item.command is not None and item.command.command == "tandem.acceptCompletion"
    async with lsp_session(ws, env_for(model_server), {"completion_fallback": True}) as (
        client,
        _,
    ):
        uri = open_text(client, ws / "greet.py", SOURCE)
        items = await complete(client, uri, 1, 11, t.CompletionTriggerKind.TriggerCharacter)
        assert [i.text_edit.new_text for i in items if i.text_edit] == [SUGGESTION]


# ---- configuration ---------------------------------------------------------------------------


async def test_did_change_configuration_switches_the_endpoint(
    model_server: ModelServer, second_server: ModelServer, ws: Path
):
    model_server.default = Behaviour(tokens=["first"])
    second_server.default = Behaviour(tokens=["second"])
    async with lsp_session(ws, env_for(model_server)) as (client, recorder):
        uri = open_text(client, ws / "greet.py", SOURCE)
        assert texts(await inline(client, uri, 1, 11)) == ["first"]
        before = len(recorder.status)
        settings = {
            "tandem": {"completion": {"endpoint": second_server.url + "/v1", "model": "two"}}
        }
        client.workspace_did_change_configuration(t.DidChangeConfigurationParams(settings))
        assert (await recorder.wait_status("ready", since=before))["message"] == "openai:two"
        assert texts(await inline(client, uri, 1, 11)) == ["second"]
        assert len(model_server.requests) == 1
        assert second_server.requests[-1].body["model"] == "two"
        # bare settings: back to the first server (the model from the environment again)
        before = len(recorder.status)
        client.workspace_did_change_configuration(
            t.DidChangeConfigurationParams({"completion": {"endpoint": model_server.url + "/v1"}})
        )
        await recorder.wait_status("ready", since=before)
        change(client, uri, 2, 1, 11, "x")
        assert texts(await inline(client, uri, 1, 12)) == ["first"]
        assert model_server.requests[-1].body["model"] == "qwen2.5-coder"
        # an invalid setting: an error status, and the settings in force stay
        before = len(recorder.status)
        client.workspace_did_change_configuration(
            t.DidChangeConfigurationParams({"completion": {"endpoint": "not a url"}})
        )
        error = await recorder.wait_status("error", since=before)
        assert "endpoint" in error["message"] and "\n" not in error["message"]
        change(client, uri, 3, 1, 12, "y")
        assert texts(await inline(client, uri, 1, 13)) == ["first"]
        assert (len(model_server.requests), len(second_server.requests)) == (3, 1)


# ---- status ----------------------------------------------------------------------------------


async def test_status_model_down_then_back(ws: Path):
    port = free_port()  # nothing listens here yet
    env = model_env(f"http://127.0.0.1:{port}", TANDEM_TIMEOUT="2")
    async with lsp_session(ws, env) as (client, recorder):
        await recorder.wait_status("ready")
        uri = open_text(client, ws / "greet.py", SOURCE)
        started = time.monotonic()
        assert await inline(client, uri, 1, 11) == []
        assert time.monotonic() - started < NO_HANG
        error = await recorder.wait_status("error")
        assert "cannot reach" in error["message"] and "\n" not in error["message"]
        before = len(recorder.status)
        with ModelServer(tokens=[SUGGESTION], port=port):
            assert texts(await inline(client, uri, 1, 11)) == [SUGGESTION]
            await recorder.wait_status("ready", since=before)


async def test_ignored_files_are_inactive_and_never_sent(model_server: ModelServer, ws: Path):
    model_server.default = Behaviour(tokens=[SUGGESTION])
    (ws / ".tandemignore").write_text("private/\n")
    (ws / "private").mkdir()
    (ws / "node_modules" / "lib").mkdir(parents=True)
    async with lsp_session(ws, env_for(model_server)) as (client, recorder):
        for path in (ws / "private" / "keys.py", ws / "node_modules" / "lib" / "x.py"):
            path.write_text(SOURCE)
            uri = open_text(client, path, SOURCE)
            before = len(recorder.status)
            assert await inline(client, uri, 1, 11) == []
            inactive = await recorder.wait_status("inactive", since=before)
            assert path.name in inactive["message"]
        assert model_server.requests == []


async def test_status_inactive_for_a_binary_document(model_server: ModelServer, ws: Path):
    model_server.default = Behaviour(tokens=[SUGGESTION])
    async with lsp_session(ws, env_for(model_server)) as (client, recorder):
        uri = open_text(client, ws / "greet.py", SOURCE)
        assert texts(await inline(client, uri, 1, 11)) == [SUGGESTION]
        await recorder.wait_status("ready")
        blob = open_text(client, ws / "blob.py", "x = 1\0\0\x01\x02\n")
        before = len(recorder.status)
        assert await inline(client, blob, 0, 4) == []
        inactive = await recorder.wait_status("inactive", since=before)
        assert "binary" in inactive["message"]
        assert len(model_server.requests) == 1
        # back in a text file (answered from the cache): ready again
        before = len(recorder.status)
        assert texts(await inline(client, uri, 1, 11)) == [SUGGESTION]
        await recorder.wait_status("ready", since=before)
        assert len(model_server.requests) == 1


FAILURES = [
    (Behaviour(status=500), "HTTP 500"),
    (Behaviour(status=429), "429"),
    (Behaviour(status=503, retry_after="30"), "HTTP 503"),  # a wait past the deadline
    (Behaviour(hang=10), "within 2s"),
    (Behaviour(delay=0.5, tokens=["a"] * 10), "not finished within 2s"),
    (Behaviour(cut_after=1, tokens=["a", "b", "c"]), "broke off"),
    (Behaviour(garbage=True), "not JSON"),
    (Behaviour(status=404), "404"),
]


async def test_model_failures_are_an_empty_answer_and_an_error_status(
    model_server: ModelServer, ws: Path
):
    """Each failure in turn, each followed by a success: one server sees them all."""
    async with lsp_session(ws, env_for(model_server, TANDEM_TIMEOUT="2")) as (client, recorder):
        await recorder.wait_status("ready")
        # a function each: a new prompt each time (the last success is cached)
        text = "".join(f"def greet{i}(name):\n    return \n\n" for i in range(len(FAILURES)))
        uri = open_text(client, ws / "greet.py", text)
        for i, (behaviour, words) in enumerate(FAILURES):
            line = 3 * i + 1
            model_server.default = behaviour
            before = len(recorder.status)
            started = time.monotonic()
            assert await inline(client, uri, line, 11) == [], behaviour
            assert time.monotonic() - started < NO_HANG, behaviour
            error = await recorder.wait_status("error", since=before)
            assert words in error["message"] and "\n" not in error["message"], error
            # the model is back: the next request works, the status is ready
            model_server.default = Behaviour(tokens=[SUGGESTION])
            before = len(recorder.status)
            assert texts(await inline(client, uri, line, 11)) == [SUGGESTION]
            await recorder.wait_status("ready", since=before)
        assert len(model_server.requests) >= 2 * len(FAILURES)


# ---- bad input -------------------------------------------------------------------------------


async def test_bad_positions_and_unknown_documents(model_server: ModelServer, ws: Path):
    model_server.default = Behaviour(tokens=["x"])
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        unknown = (ws / "never-opened.py").as_uri()
        assert await inline(client, unknown, 0, 0) == []
        change(client, unknown, 2, 0, 0, "x")  # changes and closes of unknown documents
        client.text_document_did_close(
            t.DidCloseTextDocumentParams(t.TextDocumentIdentifier(unknown))
        )
        assert await inline(client, "untitled:Untitled-1", 0, 0) == []
        assert await inline(client, "not a uri at all", 3, 3) == []
        assert model_server.requests == []

        uri = open_text(client, ws / "emoji.py", 's = "🙂"\nt = 1\n')
        assert await inline(client, uri, 99, 0) == []  # past the last line
        assert model_server.requests == []
        # past the end of a line means its end (LSP says so)
        await inline(client, uri, 1, 99)
        prefix, suffix = prompt_of(model_server)
        assert prefix.endswith('s = "🙂"\nt = 1') and suffix.startswith("\n")
        # inside a surrogate pair: rounds down to the emoji's start
        await inline(client, uri, 0, 6)
        prefix, suffix = prompt_of(model_server)
        assert prefix.endswith('s = "') and suffix.startswith('🙂"\n')
        # an edit there too, and one past the end of the document: ignored or clamped,
        # never a broken text
        change(client, uri, 2, 0, 6, "X")
        change(client, uri, 3, 50, 0, "lost")
        await inline(client, uri, 0, 5)
        prefix, suffix = prompt_of(model_server)
        assert prefix.endswith('s = "') and suffix.startswith('X🙂"\nt = 1\n')
        assert "lost" not in prefix + suffix


async def test_huge_document_keeps_the_server_responsive(model_server: ModelServer, ws: Path):
    """A 10 MB file is mirrored (not parsed); requests for other files still answer soon."""
    model_server.default = Behaviour(tokens=[SUGGESTION])
    big = "value = 1\n" * (10 * 1024 * 1024 // 10)
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        small = open_text(client, ws / "greet.py", SOURCE)
        started = time.monotonic()
        huge = open_text(client, ws / "huge.py", big)
        assert texts(await inline(client, small, 1, 11)) == [SUGGESTION]
        assert time.monotonic() - started < NO_HANG
        started = time.monotonic()
        for version in range(2, 12):  # ten keystrokes in it
            change(client, huge, version, 1000, 0, "x")
        change(client, small, 2, 1, 11, "None")
        await inline(client, small, 1, 15)
        assert time.monotonic() - started < NO_HANG
        started = time.monotonic()
        requests = len(model_server.requests)
        assert await inline(client, huge, 1000, 10) == []  # too large: Tandem stays out
        assert time.monotonic() - started < NO_HANG
        assert len(model_server.requests) == requests


async def test_unknown_method_and_malformed_params(model_server: ModelServer, ws: Path):
    model_server.default = Behaviour(tokens=[SUGGESTION])
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "greet.py", SOURCE)
        with pytest.raises(JsonRpcMethodNotFound):
            await asyncio.wait_for(client.protocol.send_request_async("tandem/nothing", {}), 5)
        client.protocol.notify("tandem/noSuchNotification", {"x": 1})
        # wrong types, out-of-range numbers, missing fields, no params at all: an error
        # answer (pygls alone would drop the message and leave the editor waiting)
        for method, bad in (
            (INLINE, {"textDocument": {"uri": 42}, "position": {"line": "one"}}),
            (INLINE, {"textDocument": {"uri": uri}, "position": {"line": -1, "character": -5}}),
            (INLINE, {"textDocument": {"uri": uri}}),
            (INLINE, None),
            (INLINE, [1, 2, 3]),
            ("textDocument/completion", {"textDocument": uri}),
            ("workspace/executeCommand", {"arguments": "tandem.acceptCompletion"}),
        ):
            with pytest.raises(JsonRpcInvalidParams):
                await send_raw(client, method, bad)
        # a malformed notification has no answer, and does no harm
        client.protocol._send_data(
            {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"bad": True}}
        )
        assert texts(await inline(client, uri, 1, 11)) == [SUGGESTION]


# ---- telemetry-like notifications and the accept command -------------------------------------


async def test_shown_partially_accepted_and_accept_command(
    model_server: ModelServer, ws: Path, capfd: pytest.CaptureFixture[str]
):
    model_server.default = Behaviour(tokens=[SUGGESTION])
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "greet.py", SOURCE)
        items = await inline(client, uri, 1, 11)
        item = {
            "insertText": SUGGESTION,
            "range": {"start": {"line": 1, "character": 11}, "end": {"line": 1, "character": 11}},
        }
        client.protocol.notify("textDocument/didShowCompletion", {"item": item})
        client.protocol.notify(
            "textDocument/didPartiallyAcceptCompletion", {"item": item, "acceptedLength": 4}
        )
        command = items[0].command
        assert command is not None
        result = await asyncio.wait_for(
            client.workspace_execute_command_async(
                t.ExecuteCommandParams(command.command, command.arguments)
            ),
            5,
        )
        assert result is None
        # no arguments at all is fine too
        await asyncio.wait_for(
            client.workspace_execute_command_async(t.ExecuteCommandParams(command.command)), 5
        )
        assert texts(await inline(client, uri, 1, 11)) == [SUGGESTION]
    err = capfd.readouterr().err
    assert "Error" not in err and "Traceback" not in err, err


# ---- TCP -------------------------------------------------------------------------------------


async def tcp_session(port: int, ws: Path, model: ModelServer) -> None:
    client = make_test_lsp_client()
    await client.start_tcp("127.0.0.1", port)
    try:
        await asyncio.wait_for(client.initialize_session(initialize_params(ws)), 10)
        uri = open_text(client, ws / "greet.py", SOURCE)
        assert texts(await inline(client, uri, 1, 11)) == [SUGGESTION]
        await asyncio.wait_for(client.shutdown_session(), 10)
    finally:
        await asyncio.wait_for(client.stop(), 10)


async def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, "tandem serve --tcp exited"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        writer.close()  # a probe: connect and hang up
        await writer.wait_closed()
        return


async def test_tcp_survives_a_probe_and_serves_sessions_one_after_another(
    model_server: ModelServer, ws: Path
):
    model_server.default = Behaviour(tokens=[SUGGESTION])
    port = free_port()
    process = subprocess.Popen(
        [TANDEM, "serve", "--tcp", f"127.0.0.1:{port}"],
        env={**os.environ, **env_for(model_server)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        await wait_listening(port, process)
        await wait_listening(port, process)  # a second probe: still there
        await tcp_session(port, ws, model_server)
        assert process.poll() is None
        await tcp_session(port, ws, model_server)  # from the cache this time
        assert process.poll() is None
        assert len(model_server.requests) == 1
    finally:
        process.kill()
        process.wait(5)
