"""Chat on a selection and the code actions: end to end through the real ``tandem serve``,
and the plain ``tandem.assist`` functions on a session (the prompt text: test_chat_prompts)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as t
from pygls.exceptions import JsonRpcException

from tandem import assist
from tandem.chat_prompts import CHAT_SYSTEM, EDIT_SYSTEM
from tandem.config import load_settings
from tandem.session import Session
from tandem.workspace import open_workspace

from lsp_support import change, lsp_session, open_text
from modelserver import Behaviour, ModelServer

APP = """from util import shout


class Greeter:
    def greet(self, name):
        return shout(name)
"""
UTIL = '''def shout(text):
    """Loud."""
    return text.upper() + "!"
'''
IDS = itertools.count()
INVALID_PARAMS, REQUEST_FAILED, CONTENT_MODIFIED, CANCELLED = -32602, -32803, -32801, -32800


def env_for(server: ModelServer) -> dict[str, str]:
    return {
        "TANDEM_PROVIDER": "openai",
        "TANDEM_ENDPOINT": server.url + "/v1",
        "TANDEM_MODEL": "qwen2.5-coder",
    }


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "util.py").write_text(UTIL)
    (root / "app.py").write_text(APP)
    return root


def rng(a: int, b: int, c: int, d: int) -> t.Range:
    return t.Range(t.Position(a, b), t.Position(c, d))


def range_json(r: t.Range) -> dict[str, Any]:
    return {
        "start": {"line": r.start.line, "character": r.start.character},
        "end": {"line": r.end.line, "character": r.end.character},
    }


async def chat(client: Any, **argument: Any) -> Any:
    params = t.ExecuteCommandParams(command="tandem.chat", arguments=[argument])
    return await client.workspace_execute_command_async(params)


async def raw(client: Any, method: str, params: Any) -> Any:
    """A request's result as the JSON an editor gets.

    lsprotocol's client reads any code action that carries a command as a bare Command
    (garbling it), so code-action results are checked unconverted.
    """
    msg_id = f"raw-{next(IDS)}"
    future = client.protocol.send_request(method, params, msg_id=msg_id)
    client.protocol._result_types.pop(msg_id, None)  # no result type: plain JSON
    return plain(await asyncio.wrap_future(future))


def plain(value: Any) -> Any:
    """JSON from what pygls makes of untyped results (named tuples for objects)."""
    if hasattr(value, "_asdict"):
        value = value._asdict()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


async def actions(client: Any, uri: str, r: t.Range, only: list[str] | None = None) -> list:
    params = t.CodeActionParams(
        t.TextDocumentIdentifier(uri), r, t.CodeActionContext(diagnostics=[], only=only)
    )
    return list(await raw(client, "textDocument/codeAction", params) or [])


async def resolve(client: Any, action: dict[str, Any]) -> dict[str, Any]:
    params = client.protocol._converter.structure(action, t.CodeAction)
    return await raw(client, "codeAction/resolve", params)


def titled(found: list[dict[str, Any]], title: str) -> dict[str, Any]:
    return next(a for a in found if a["title"] == title)


def messages(server: ModelServer, index: int = -1) -> list[dict[str, str]]:
    return server.requests[index].body["messages"]


def only_edit(edit: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The one text edit of a workspace edit (as JSON), and its document's URI."""
    (change_,) = edit["documentChanges"]
    (text_edit,) = change_["edits"]
    return change_["textDocument"]["uri"], text_edit


# ---- the chat command -------------------------------------------------------------------------


async def test_chat_streams_deltas_then_the_whole_answer(model_server: ModelServer, ws: Path):
    model_server.default = Behaviour(tokens=["It ", "greets ", "loudly."])
    async with lsp_session(ws, env_for(model_server)) as (client, recorder):
        uri = open_text(client, ws / "app.py", APP)
        selected = rng(5, 8, 5, 26)
        result = await chat(
            client, uri=uri, range=range_json(selected), question="What does it do?", token="t1"
        )
        assert result == {"answer": "It greets loudly."}
        assert recorder.deltas == [
            {"token": "t1", "delta": "It "},
            {"token": "t1", "delta": "greets "},
            {"token": "t1", "delta": "loudly."},
        ]
        sent = messages(model_server)
        assert [m["role"] for m in sent] == ["system", "user"]
        assert sent[0]["content"] == CHAT_SYSTEM
        user = sent[1]["content"]
        assert "app.py lines 6-6:\n```python\nreturn shout(name)\n```" in user
        assert "class Greeter:\n    def greet(self, name):" in user  # the enclosing scopes
        assert "util.py:\n```python\ndef shout(text):" in user  # from another file
        assert user.endswith("What does it do?")
        # without a token there is nothing to stream to
        await chat(client, uri=uri, range=range_json(selected), question="Again?")
        assert len(recorder.deltas) == 3


async def test_chat_sends_the_history_before_the_question(model_server: ModelServer, ws: Path):
    model_server.default = Behaviour(tokens=["Yes."])
    history = [
        {"role": "user", "content": "What is this?"},
        {"role": "assistant", "content": "A greeter."},
    ]
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "app.py", APP)
        result = await chat(
            client, uri=uri, range=range_json(rng(4, 0, 6, 0)), question="Loudly?", history=history
        )
        assert result == {"answer": "Yes."}
        sent = messages(model_server)
        assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
        assert sent[1:3] == history
        assert "def greet(self, name):\n    return shout(name)\n```" in sent[3]["content"]


async def test_chat_rejects_unknown_documents_and_bad_ranges(model_server: ModelServer, ws: Path):
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "app.py", APP)
        bad = [
            {"uri": (ws / "nope.py").as_uri(), "range": range_json(rng(0, 0, 0, 1))},
            {"uri": uri, "range": range_json(rng(40, 0, 41, 0))},
            {"uri": uri, "range": range_json(rng(5, 3, 4, 0))},
            {"uri": uri, "range": {"start": {"line": 1}}},
            {"uri": uri, "range": range_json(rng(0, 0, 0, 1)), "history": [{"role": "x"}]},
        ]
        for argument in bad:
            with pytest.raises(JsonRpcException) as info:
                await chat(client, question="Why?", **argument)
            assert info.value.code == INVALID_PARAMS, argument
            assert "\n" not in info.value.message
        with pytest.raises(JsonRpcException) as info:
            await chat(client, uri=uri, range=range_json(rng(0, 0, 0, 1)), question=" ")
        assert info.value.code == INVALID_PARAMS
    assert model_server.requests == []


async def test_model_failure_is_an_error_response_and_status(model_server: ModelServer, ws: Path):
    model_server.default = Behaviour(status=500)
    async with lsp_session(ws, env_for(model_server)) as (client, recorder):
        uri = open_text(client, ws / "app.py", APP)
        with pytest.raises(JsonRpcException) as info:
            await chat(client, uri=uri, range=range_json(rng(5, 8, 5, 26)), question="Why?")
        assert info.value.code == REQUEST_FAILED
        assert "500" in info.value.message and "\n" not in info.value.message
        status = await recorder.wait_status("error")
        assert status["message"] == info.value.message
        # the server is still there, and so are the code actions
        assert len(await actions(client, uri, rng(5, 8, 5, 26))) == 4


async def test_cancel_request_aborts_the_model_request(model_server: ModelServer, ws: Path):
    model_server.default = Behaviour(delay=0.05, tokens=["word "] * 100)
    async with lsp_session(ws, env_for(model_server)) as (client, recorder):
        uri = open_text(client, ws / "app.py", APP)
        argument = {"uri": uri, "range": range_json(rng(5, 8, 5, 26)), "question": "Why?"}
        argument["token"] = "c1"
        params = t.ExecuteCommandParams(command="tandem.chat", arguments=[argument])
        pending = asyncio.ensure_future(
            client.protocol.send_request_async(
                "workspace/executeCommand", params, msg_id="chat-to-cancel"
            )
        )
        for _ in range(200):  # until the answer is streaming
            if recorder.deltas:
                break
            await asyncio.sleep(0.02)
        assert recorder.deltas, "no delta arrived"
        client.cancel_request(t.CancelParams(id="chat-to-cancel"))
        with pytest.raises(JsonRpcException) as info:
            await asyncio.wait_for(pending, 10)
        assert info.value.code == CANCELLED
        done = await asyncio.to_thread(model_server.wait_done)
        assert done.aborted and not done.finished
        assert len(recorder.deltas) < 50


# ---- code actions ------------------------------------------------------------------------------


TITLES = ["Tandem: Explain", "Tandem: Fix", "Tandem: Add docstring/comments", "Tandem: Write tests"]


async def test_code_actions_are_offered_without_asking_the_model(
    model_server: ModelServer, ws: Path
):
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "app.py", APP)
        found = await actions(client, uri, rng(4, 4, 5, 26))
        assert [a["title"] for a in found] == TITLES
        assert [a["kind"] for a in found] == ["", "quickfix", "refactor.rewrite", "source"]
        assert all("edit" not in a for a in found)
        assert all(a["data"]["range"] == range_json(rng(4, 4, 5, 26)) for a in found)
        fixes = await actions(client, uri, rng(4, 4, 5, 26), ["quickfix"])
        assert [a["title"] for a in fixes] == ["Tandem: Fix"]
        refactors = await actions(client, uri, rng(4, 4, 5, 26), ["refactor"])
        assert [a["title"] for a in refactors] == ["Tandem: Add docstring/comments"]
        # nothing where there is no code, and no error either
        assert await actions(client, uri, rng(1, 0, 2, 0)) == []  # blank lines
        assert await actions(client, uri, rng(5, 8, 5, 8)) == []  # just a cursor
        assert await actions(client, uri, rng(50, 0, 60, 0)) == []
        assert await actions(client, uri, rng(5, 0, 4, 0)) == []
        assert await actions(client, (ws / "nope.py").as_uri(), rng(0, 0, 0, 4)) == []
    assert model_server.requests == []


async def test_fix_replaces_only_the_selected_range(model_server: ModelServer, ws: Path):
    answer = (
        "Here is the fix:\n```python\ndef greet(self, name):\n    return shout(name.strip())\n```\n"
    )
    model_server.default = Behaviour(tokens=[answer[:20], answer[20:]])
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "app.py", APP)
        selected = rng(4, 0, 6, 0)  # whole lines: the method
        fix = titled(await actions(client, uri, selected), "Tandem: Fix")
        resolved = await resolve(client, fix)
        assert resolved["title"] == "Tandem: Fix"
        target, edit = only_edit(resolved["edit"])
        assert target == uri and edit["range"] == range_json(selected)
        assert edit["newText"] == "    def greet(self, name):\n        return shout(name.strip())\n"
        assert resolved["edit"]["documentChanges"][0]["textDocument"]["version"] == 1
        sent = messages(model_server)
        assert sent[0]["content"] == EDIT_SYSTEM
        assert "Fix the bugs" in sent[1]["content"]
        assert (
            "```python\ndef greet(self, name):\n    return shout(name)\n```" in sent[1]["content"]
        )
        assert "def shout(text):" in sent[1]["content"]
    assert len(model_server.requests) == 1


async def test_docstring_keeps_the_selection_indentation(model_server: ModelServer, ws: Path):
    answer = '```py\ndef greet(self, name):\n    """Greet loudly."""\n    return shout(name)\n```'
    model_server.default = Behaviour(tokens=[answer])
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "app.py", APP)
        selected = rng(4, 4, 5, 26)  # from "def" to the end of "return shout(name)"
        doc = titled(await actions(client, uri, selected), "Tandem: Add docstring/comments")
        resolved = await resolve(client, doc)
        _, edit = only_edit(resolved["edit"])
        assert edit["range"] == range_json(selected)
        assert edit["newText"] == (
            'def greet(self, name):\n        """Greet loudly."""\n        return shout(name)'
        )
        assert "Add a docstring" in messages(model_server)[1]["content"]


async def test_write_tests_creates_a_test_file_next_to_the_source(
    model_server: ModelServer, ws: Path
):
    answer = "```python\nfrom app import Greeter\n\n\ndef test_greet():\n    assert Greeter()\n```"
    model_server.default = Behaviour(tokens=[answer])
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "app.py", APP)
        tests = titled(await actions(client, uri, rng(4, 0, 6, 0)), "Tandem: Write tests")
        resolved = await resolve(client, tests)
        create, insert = resolved["edit"]["documentChanges"]
        tests_uri = (ws / "test_app.py").as_uri()
        assert create == {
            "kind": "create",
            "uri": tests_uri,
            "options": {"overwrite": False, "ignoreIfExists": True},
        }
        assert insert["textDocument"] == {"uri": tests_uri, "version": None}
        assert insert["edits"] == [
            {
                "range": range_json(rng(0, 0, 0, 0)),
                "newText": "from app import Greeter\n\n\ndef test_greet():\n    assert Greeter()\n",
            }
        ]
        assert "saved as test_app.py" in messages(model_server)[1]["content"]
        assert "pytest" in messages(model_server)[1]["content"]

        # a test file that exists already gets the tests at its end
        (ws / "test_app.py").write_text("import app\n")
        resolved = await resolve(client, tests)
        target, edit = only_edit(resolved["edit"])
        assert target == tests_uri
        assert edit["range"] == range_json(rng(1, 0, 1, 0))
        assert edit["newText"].startswith("\n\nfrom app import Greeter")


async def test_explain_is_a_chat_command(model_server: ModelServer, ws: Path):
    model_server.default = Behaviour(tokens=["It greets."])
    async with lsp_session(ws, env_for(model_server)) as (client, _):
        uri = open_text(client, ws / "app.py", APP)
        selected = rng(5, 8, 5, 26)
        explain = titled(await actions(client, uri, selected), "Tandem: Explain")
        resolved = await resolve(client, explain)
        arguments = [{"uri": uri, "range": range_json(selected), "question": "Explain this code"}]
        for action in (explain, resolved):
            assert "edit" not in action
            assert action["command"]["command"] == "tandem.chat"
            assert action["command"]["arguments"] == arguments
        assert model_server.requests == []
        params = t.ExecuteCommandParams(command="tandem.chat", arguments=arguments)
        assert await client.workspace_execute_command_async(params) == {"answer": "It greets."}
        assert messages(model_server)[-1]["content"].endswith("Explain this code")


async def test_resolve_failures_are_error_responses(model_server: ModelServer, ws: Path):
    async with lsp_session(ws, env_for(model_server)) as (client, recorder):
        uri = open_text(client, ws / "app.py", APP)
        fix = titled(await actions(client, uri, rng(5, 8, 5, 26)), "Tandem: Fix")
        model_server.default = Behaviour(status=500)
        with pytest.raises(JsonRpcException) as info:
            await resolve(client, fix)
        assert info.value.code == REQUEST_FAILED
        await recorder.wait_status("error")
        model_server.default = Behaviour(tokens=["   \n"])
        with pytest.raises(JsonRpcException) as info:
            await resolve(client, fix)
        assert info.value.code == REQUEST_FAILED and "without any code" in info.value.message
        # the document changed since the action was offered: its range may be wrong
        change(client, uri, 2, 0, 0, "# edited\n")
        requests = len(model_server.requests)
        with pytest.raises(JsonRpcException) as info:
            await resolve(client, fix)
        assert info.value.code == CONTENT_MODIFIED
        assert len(model_server.requests) == requests
        with pytest.raises(JsonRpcException) as info:
            await resolve(client, {"title": "Something else", "data": {"foo": 1}})
        assert info.value.code == INVALID_PARAMS


# ---- the plain functions, on a session without LSP ------------------------------------------


async def test_tests_go_to_the_end_of_the_file_without_file_creation(
    model_server: ModelServer, ws: Path
):
    model_server.default = Behaviour(tokens=["```python\ndef test_greet():\n    pass\n```"])
    session = plain_session(ws, model_server)
    try:
        uri = (ws / "app.py").as_uri()
        session.documents.open(uri, APP, "python", 3)
        span = ((4, 0), (6, 0))
        insertion = await assist.write_tests(session, uri, span, 3, new_files=False)
        assert insertion == assist.Insertion(uri, 3, (6, 0), "\n\ndef test_greet():\n    pass\n")
        assert "appended to the end of app.py" in messages(model_server)[1]["content"]
        with pytest.raises(assist.StaleDocument):
            await assist.rewrite(session, "fix", uri, span, version=2)
        with pytest.raises(assist.BadRequest):
            await assist.rewrite(session, "fix", uri, ((9, 0), (10, 0)))
    finally:
        await session.close()


async def test_chat_about_text_without_a_parser(model_server: ModelServer, ws: Path):
    model_server.default = Behaviour(tokens=["A ", "list."])
    session = plain_session(ws, model_server)
    try:
        uri = "untitled:Untitled-1"
        session.documents.open(uri, "- milk\n- eggs\n", "plaintext", 1)
        pieces: list[str] = []
        answer = await assist.chat(
            session, uri, ((0, 0), (2, 0)), "What is it?", on_delta=pieces.append
        )
        assert answer == "A list." and pieces == ["A ", "list."]
        user = messages(model_server)[-1]["content"]
        assert user == "Untitled-1 lines 1-2:\n```\n- milk\n- eggs\n```\n\nWhat is it?"
    finally:
        await session.close()


def plain_session(root: Path, server: ModelServer) -> Session:
    overrides = {
        "completion.provider": "openai",
        "completion.endpoint": server.url + "/v1",
        "completion.model": "qwen2.5-coder",
    }
    return Session(open_workspace(load_settings(root, overrides=overrides), root))
