"""While the user types: the real ``tandem serve`` under a real LSP client, the loopback model
at a fixed latency, the editor cancelling each superseded request as VS Code does.

Nothing here asserts speed: timings only make a model call still be running when the next
keystroke comes, and on a loaded machine a call runs longer, never shorter.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from lsprotocol import types as t
from pygls.exceptions import JsonRpcRequestCancelled

from lsp_support import (
    cancel_request,
    change,
    fim_parts,
    inline_texts,
    lsp_session,
    model_env,
    open_text,
    request_inline,
)
from modelserver import Behaviour, ModelServer

SOURCE = "def greet(name):\n    return \n"
SUGGESTION = '"hi " + name'
LINE, COLUMN = 1, 11  # the cursor after "    return "
NO_HANG = 15.0


def env_for(server: ModelServer) -> dict[str, str]:
    return model_env(server.url)


async def answer(future: asyncio.Future[Any]) -> list[str] | None:
    """The texts of an inline answer, or None when the server reports it cancelled."""
    try:
        return inline_texts(await asyncio.wait_for(future, NO_HANG))
    except JsonRpcRequestCancelled:
        return None


async def wait_requests(server: ModelServer, count: int, timeout: float = NO_HANG) -> None:
    deadline = time.monotonic() + timeout
    while len(server.requests) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(server.requests)} model requests, expected {count}")
        await asyncio.sleep(0.01)


def line_typed(body: Any) -> str:
    """The text of the cursor's line before the cursor, from a Qwen FIM prompt."""
    prefix, _ = fim_parts(body["prompt"])
    return prefix.rpartition("\n")[2]


async def test_typing_along_the_answer_in_flight_makes_one_call(
    model_server: ModelServer, ws: Path
) -> None:
    """VS Code's order: cancel the old request, send the change, ask again."""
    model_server.default = Behaviour(hang=0.8, tokens=['"hi "', " + ", "name"])
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "greet.py", SOURCE)
        first_id, first = request_inline(client, uri, LINE, COLUMN)
        await wait_requests(model_server, 1)
        version, column = 2, COLUMN
        for char in '"h':  # two keystrokes while the model is still thinking
            cancel_request(client, first_id)
            change(client, uri, version, LINE, column, char)
            version, column = version + 1, column + 1
            first_id, later = request_inline(client, uri, LINE, column)
            first = later
        assert await answer(first) == ['i " + name']
        assert len(model_server.requests) == 1
        assert not model_server.wait_done(0).aborted


async def test_cancelling_the_older_request_keeps_the_shared_call(
    model_server: ModelServer, ws: Path
) -> None:
    """The newer request follows the call; ``$/cancelRequest`` of the first must not stop it."""
    model_server.default = Behaviour(hang=0.8, tokens=[SUGGESTION])
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "greet.py", SOURCE)
        first_id, first = request_inline(client, uri, LINE, COLUMN)
        await wait_requests(model_server, 1)
        change(client, uri, 2, LINE, COLUMN, '"')
        _, second = request_inline(client, uri, LINE, COLUMN + 1)
        await asyncio.sleep(0.1)  # the second request is following the call by now
        cancel_request(client, first_id)
        assert await answer(second) == ['hi " + name']
        assert await answer(first) in (None, [])  # cancelled, or superseded: nothing shown
        assert len(model_server.requests) == 1
        assert model_server.wait_done(0).finished


async def test_a_contradicting_keystroke_cancels_and_restarts(
    model_server: ModelServer, ws: Path
) -> None:
    """The answer so far begins with a quote; the user types "x": a new call, the old aborted."""
    model_server.enqueue(
        Behaviour(delay=0.4, tokens=['"', "hi ", '"', " + name"]),
        Behaviour(tokens=[" + 1"]),
    )
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "greet.py", SOURCE)
        first_id, first = request_inline(client, uri, LINE, COLUMN)
        await wait_requests(model_server, 1)
        await asyncio.sleep(0.5)  # the first piece has streamed by now (or comes later)
        cancel_request(client, first_id)
        change(client, uri, 2, LINE, COLUMN, "x")
        _, second = request_inline(client, uri, LINE, COLUMN + 1)
        assert await answer(second) == [" + 1"]
        assert len(model_server.requests) == 2
        assert model_server.wait_done(0).aborted  # the contradicted call was stopped
        assert line_typed(model_server.requests[1].body) == "    return x"
        await answer(first)


async def test_accept_triggers_exactly_one_prefetch(model_server: ModelServer, ws: Path) -> None:
    model_server.enqueue(Behaviour(tokens=[SUGGESTION]), Behaviour(tokens=[".upper()"]))
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "greet.py", SOURCE)
        _, first = request_inline(client, uri, LINE, COLUMN)
        shown = await answer(first)
        assert shown == [SUGGESTION]
        # the editor inserts the suggestion, then runs the item's command
        change(client, uri, 2, LINE, COLUMN, SUGGESTION)
        arguments = [{"uri": uri, "text": SUGGESTION, "line": LINE, "character": COLUMN}]
        await asyncio.wait_for(
            client.workspace_execute_command_async(
                t.ExecuteCommandParams("tandem.acceptCompletion", arguments)
            ),
            NO_HANG,
        )
        await wait_requests(model_server, 2)
        assert line_typed(model_server.requests[1].body) == "    return " + SUGGESTION
        # the editor asks at the new cursor: the prefetched call answers it
        end = COLUMN + len(SUGGESTION)
        _, after = request_inline(client, uri, LINE, end)
        assert await answer(after) == [".upper()"]
        await asyncio.sleep(0.3)
        assert len(model_server.requests) == 2  # one prefetch, no second call


async def test_partial_accept_prefetches_only_when_type_ahead_does_not_know(
    model_server: ModelServer, ws: Path
) -> None:
    """Copilot's ``{item, acceptedLength}``: taking part of a suggestion needs no call (the
    rest is type-ahead's); taking all of it prefetches what comes after."""
    model_server.enqueue(Behaviour(tokens=[SUGGESTION]), Behaviour(tokens=[".upper()"]))
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "greet.py", SOURCE)
        _, first = request_inline(client, uri, LINE, COLUMN)
        assert await answer(first) == [SUGGESTION]
        arguments = [{"uri": uri, "text": SUGGESTION, "line": LINE, "character": COLUMN}]
        item = {
            "insertText": SUGGESTION,
            "command": {"title": "a", "command": "tandem.acceptCompletion", "arguments": arguments},
        }
        change(client, uri, 2, LINE, COLUMN, SUGGESTION[:4])
        notify = "textDocument/didPartiallyAcceptCompletion"
        client.protocol.notify(notify, {"item": item, "acceptedLength": 4})
        await asyncio.sleep(0.5)
        assert len(model_server.requests) == 1
        change(client, uri, 3, LINE, COLUMN + 4, SUGGESTION[4:])
        client.protocol.notify(notify, {"item": item, "acceptedLength": len(SUGGESTION)})
        await wait_requests(model_server, 2)
        assert line_typed(model_server.requests[1].body) == "    return " + SUGGESTION


async def test_accept_of_text_not_in_the_document_prefetches_nothing(
    model_server: ModelServer, ws: Path
) -> None:
    """Arguments that do not match the document (a stale or hand-made command) are ignored."""
    model_server.default = Behaviour(tokens=[SUGGESTION])
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "greet.py", SOURCE)
        for arguments in (
            [{"uri": uri, "text": "not there", "line": LINE, "character": COLUMN}],
            [{"uri": uri, "text": SUGGESTION, "line": 99, "character": 0}],
            [{"uri": uri, "text": SUGGESTION, "line": "x", "character": None}],
            ["junk"],
            [],
        ):
            await asyncio.wait_for(
                client.workspace_execute_command_async(
                    t.ExecuteCommandParams("tandem.acceptCompletion", arguments)
                ),
                NO_HANG,
            )
        await asyncio.sleep(0.3)
        assert model_server.requests == []


TARGET = 'print("total:", sum(values) / len(values))'


def oracle(body: Any) -> list[str]:
    """A model that knows the line being typed: the rest of ``TARGET`` in short pieces,
    except that before four characters are typed it guesses a wrong call."""
    typed = line_typed(body).lstrip()
    rest = TARGET[len(typed) :] if TARGET.startswith(typed) and len(typed) >= 4 else "pass"
    return [rest[i : i + 4] for i in range(0, len(rest), 4)] + ["\n"]


async def test_nothing_shown_contradicts_what_was_typed(
    model_server: ModelServer, ws: Path
) -> None:
    """Type a line at 8 characters a second against a 300 ms model; every ghost text shown
    must continue exactly what is in the document at that moment."""
    model_server.default = Behaviour(hang=0.2, delay=0.02, reply=oracle)
    source = "values = [1, 2, 3]\n\n"
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "stats.py", source)
        line, typed, pending = 1, "", None
        shown: list[tuple[str, str]] = []  # (typed when asked, text shown)

        async def collect(asked: str, future: asyncio.Future[Any]) -> None:
            texts = await answer(future)
            if texts and texts[0]:
                shown.append((asked, texts[0]))

        waits = []
        for version, char in enumerate(TARGET, start=2):
            if pending is not None:
                cancel_request(client, pending)
            change(client, uri, version, line, len(typed), char)
            typed += char
            pending, future = request_inline(client, uri, line, len(typed))
            waits.append(asyncio.ensure_future(collect(typed, future)))
            await asyncio.sleep(0.125)
        await asyncio.gather(*waits)
        assert shown  # type-ahead and the shared calls did show something
        for asked, text in shown:
            assert TARGET.startswith(asked + text), (asked, text)
    assert len(model_server.requests) < len(TARGET)
