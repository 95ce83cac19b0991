"""``tandem serve`` end to end: a real LSP client over stdio, the loopback model server."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as t

from lsp_support import change, inline, lsp_session, open_text
from modelserver import Behaviour, ModelServer

SOURCE = "def greet(name):\n    return \n"


def env_for(server: ModelServer) -> dict[str, str]:
    return {
        "TANDEM_PROVIDER": "openai",
        "TANDEM_ENDPOINT": server.url + "/v1",
        "TANDEM_MODEL": "qwen2.5-coder",
    }


async def test_capabilities_and_inline_completion(model_server: ModelServer, tmp_path: Path):
    model_server.default = Behaviour(tokens=['"hi " + ', "name"])
    async with lsp_session(tmp_path, env_for(model_server)) as (client, recorder):
        uri = open_text(client, tmp_path / "greet.py", SOURCE)
        items = await inline(client, uri, 1, 11)
        assert [i.insert_text for i in items] == ['"hi " + name']
        assert items[0].range == t.Range(t.Position(1, 11), t.Position(1, 11))
        assert (
            items[0].command is not None and items[0].command.command == "tandem.acceptCompletion"
        )
        await recorder.wait_status("ready")
        # the same request again: from the cache, no model request
        again = await inline(client, uri, 1, 11)
        assert [i.insert_text for i in again] == ['"hi " + name']
        assert len(model_server.requests) == 1
        # type-ahead: the user types the start of the suggestion
        change(client, uri, 2, 1, 11, '"hi')
        ahead = await inline(client, uri, 1, 14)
        assert [i.insert_text for i in ahead] == [' " + name']
        assert len(model_server.requests) == 1
