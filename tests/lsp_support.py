"""Start the real ``tandem serve`` under a real LSP client (pytest-lsp over stdio)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from lsprotocol import types as t
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

TANDEM = str(Path(sys.executable).parent / "tandem")


class Recorder:
    """Custom notifications from the server, in arrival order."""

    def __init__(self, client: LanguageClient) -> None:
        self.status: list[dict[str, Any]] = []
        self.deltas: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

        @client.feature("tandem/status")
        def on_status(params: Any) -> None:
            self.status.append(_plain(params))
            self._changed.set()

        @client.feature("tandem/chatDelta")
        def on_delta(params: Any) -> None:
            self.deltas.append(_plain(params))

    async def wait_status(self, state: str, timeout: float = 10.0) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            while True:
                for item in reversed(self.status):
                    if item.get("state") == state:
                        return item
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(wait(), timeout)


def _plain(params: Any) -> dict[str, Any]:
    """pygls hands unknown notifications' params over as attribute objects."""
    if isinstance(params, dict):
        return params
    if hasattr(params, "_asdict"):
        return dict(params._asdict())
    return {k: v for k, v in vars(params).items() if not k.startswith("_")}


@asynccontextmanager
async def lsp_session(
    root: Path,
    env: dict[str, str] | None = None,
    options: dict[str, Any] | None = None,
) -> AsyncIterator[tuple[LanguageClient, Recorder]]:
    config = ClientServerConfig(
        server_command=[TANDEM, "serve"],
        server_env={**os.environ, **(env or {})},
    )
    client = await config.start()
    recorder = Recorder(client)
    try:
        await client.initialize_session(
            t.InitializeParams(
                capabilities=client_capabilities("visual-studio-code"),
                root_uri=root.as_uri(),
                workspace_folders=[t.WorkspaceFolder(root.as_uri(), root.name)],
                initialization_options=options or {},
            )
        )
        yield client, recorder
    finally:
        try:
            await asyncio.wait_for(client.shutdown_session(), 10)
        finally:
            await asyncio.wait_for(client.stop(), 10)


def open_text(client: LanguageClient, path: Path, text: str, language: str = "python") -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        t.DidOpenTextDocumentParams(t.TextDocumentItem(uri, language, 1, text))
    )
    return uri


async def inline(
    client: LanguageClient, uri: str, line: int, character: int
) -> list[t.InlineCompletionItem]:
    result = await client.text_document_inline_completion_async(
        t.InlineCompletionParams(
            context=t.InlineCompletionContext(t.InlineCompletionTriggerKind.Automatic),
            text_document=t.TextDocumentIdentifier(uri),
            position=t.Position(line, character),
        )
    )
    if result is None:
        return []
    return list(result.items if isinstance(result, t.InlineCompletionList) else result)


def change(
    client: LanguageClient, uri: str, version: int, line: int, character: int, text: str
) -> None:
    pos = t.Position(line, character)
    client.text_document_did_change(
        t.DidChangeTextDocumentParams(
            t.VersionedTextDocumentIdentifier(version=version, uri=uri),
            [t.TextDocumentContentChangePartial(range=t.Range(pos, pos), text=text)],
        )
    )
