"""Start the real ``tandem serve`` under a real LSP client (pytest-lsp over stdio or TCP)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from lsprotocol import types as t
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

TANDEM = str(Path(sys.executable).parent / "tandem")

Span = tuple[tuple[int, int], tuple[int, int]]


class Recorder:
    """Custom notifications from the server, in arrival order, and the initialize result."""

    def __init__(self, client: LanguageClient) -> None:
        self.status: list[dict[str, Any]] = []
        self.deltas: list[dict[str, Any]] = []
        self.result: t.InitializeResult | None = None
        self._changed = asyncio.Event()

        @client.feature("tandem/status")
        def on_status(params: Any) -> None:
            self.status.append(_plain(params))
            self._changed.set()

        @client.feature("tandem/chatDelta")
        def on_delta(params: Any) -> None:
            self.deltas.append(_plain(params))

    async def wait_status(
        self, state: str, timeout: float = 10.0, since: int = 0
    ) -> dict[str, Any]:
        """The latest status in ``state`` among those after the first ``since``."""

        async def wait() -> dict[str, Any]:
            while True:
                for item in reversed(self.status[since:]):
                    if item.get("state") == state:
                        return item
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(wait(), timeout)

    @property
    def state(self) -> str | None:
        return self.status[-1].get("state") if self.status else None


def _plain(params: Any) -> dict[str, Any]:
    """pygls hands unknown notifications' params over as attribute objects."""
    if isinstance(params, dict):
        return params
    if hasattr(params, "_asdict"):
        return dict(params._asdict())
    return {k: v for k, v in vars(params).items() if not k.startswith("_")}


def model_env(url: str, model: str = "qwen2.5-coder", **extra: str) -> dict[str, str]:
    """Environment pointing ``tandem serve`` at an OpenAI-compatible server."""
    return {
        "TANDEM_PROVIDER": "openai",
        "TANDEM_ENDPOINT": url + "/v1",
        "TANDEM_MODEL": model,
        **extra,
    }


def initialize_params(
    root: Path,
    options: dict[str, Any] | None = None,
    capabilities: t.ClientCapabilities | None = None,
) -> t.InitializeParams:
    return t.InitializeParams(
        capabilities=capabilities or client_capabilities("visual-studio-code"),
        root_uri=root.as_uri(),
        workspace_folders=[t.WorkspaceFolder(root.as_uri(), root.name)],
        initialization_options=options or {},
    )


@asynccontextmanager
async def lsp_session(
    root: Path,
    env: dict[str, str] | None = None,
    options: dict[str, Any] | None = None,
    capabilities: t.ClientCapabilities | None = None,
) -> AsyncIterator[tuple[LanguageClient, Recorder]]:
    config = ClientServerConfig(
        server_command=[TANDEM, "serve"],
        server_env={**os.environ, **(env or {})},
    )
    client = await config.start()
    recorder = Recorder(client)
    try:
        recorder.result = await asyncio.wait_for(
            client.initialize_session(initialize_params(root, options, capabilities)), 20
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
    client: LanguageClient, uri: str, line: int, character: int, timeout: float = 10.0
) -> list[t.InlineCompletionItem]:
    result = await asyncio.wait_for(
        client.text_document_inline_completion_async(
            t.InlineCompletionParams(
                context=t.InlineCompletionContext(t.InlineCompletionTriggerKind.Automatic),
                text_document=t.TextDocumentIdentifier(uri),
                position=t.Position(line, character),
            )
        ),
        timeout,
    )
    if result is None:
        return []
    return list(result.items if isinstance(result, t.InlineCompletionList) else result)


async def complete(
    client: LanguageClient,
    uri: str,
    line: int,
    character: int,
    kind: t.CompletionTriggerKind = t.CompletionTriggerKind.Invoked,
    timeout: float = 10.0,
) -> list[t.CompletionItem]:
    """``textDocument/completion`` (the popup), triggered as ``kind``."""
    context = t.CompletionContext(
        kind, trigger_character="." if kind == t.CompletionTriggerKind.TriggerCharacter else None
    )
    result = await asyncio.wait_for(
        client.text_document_completion_async(
            t.CompletionParams(
                t.TextDocumentIdentifier(uri), t.Position(line, character), context=context
            )
        ),
        timeout,
    )
    if result is None:
        return []
    return list(result.items if isinstance(result, t.CompletionList) else result)


def change(
    client: LanguageClient, uri: str, version: int, line: int, character: int, text: str
) -> None:
    """Insert ``text`` at one position."""
    edit(client, uri, version, [(((line, character), (line, character)), text)])


def edit(
    client: LanguageClient, uri: str, version: int, changes: Sequence[tuple[Span, str]]
) -> None:
    """One didChange with several ranged changes, applied in order."""
    client.text_document_did_change(
        t.DidChangeTextDocumentParams(
            t.VersionedTextDocumentIdentifier(version=version, uri=uri),
            [
                t.TextDocumentContentChangePartial(
                    range=t.Range(t.Position(*start), t.Position(*end)), text=text
                )
                for (start, end), text in changes
            ],
        )
    )


async def send_raw(client: LanguageClient, method: str, params: Any, timeout: float = 5.0) -> Any:
    """A request as raw JSON, past the client's own typing: for malformed params."""
    msg_id = f"raw-{uuid.uuid4()}"
    future: Future[Any] = Future()
    client.protocol._request_futures[msg_id] = future
    client.protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
    return await asyncio.wait_for(asyncio.wrap_future(future), timeout)


def free_port() -> int:
    """A port nothing listens on (closed again at once): for "model down" and --tcp."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fim_parts(prompt: str) -> tuple[str, str]:
    """The prefix and suffix of a Qwen FIM prompt, around the hole."""
    _, _, rest = prompt.rpartition("<|fim_prefix|>")
    prefix, _, rest = rest.partition("<|fim_suffix|>")
    suffix, _, _ = rest.partition("<|fim_middle|>")
    return prefix, suffix


def request_inline(
    client: LanguageClient, uri: str, line: int, character: int, manual: bool = False
) -> tuple[str, asyncio.Future[Any]]:
    """An inline request as an editor sends it while typing, with the id to cancel it by.

    The result is the raw JSON answer (``{"items": [...]}``) or a ``JsonRpc`` error.
    """
    msg_id = f"inline-{uuid.uuid4()}"
    future: Future[Any] = Future()
    client.protocol._request_futures[msg_id] = future
    kind = 1 if manual else 2  # InlineCompletionTriggerKind: Invoked, Automatic
    params = {
        "textDocument": {"uri": uri},
        "position": {"line": line, "character": character},
        "context": {"triggerKind": kind},
    }
    client.protocol._send_data(
        {"jsonrpc": "2.0", "id": msg_id, "method": "textDocument/inlineCompletion",
         "params": params}
    )  # fmt: skip
    wrapped = asyncio.wrap_future(future)
    # an editor does not read the answer of a request it cancelled: neither need a test
    wrapped.add_done_callback(lambda f: f.cancelled() or f.exception())
    return msg_id, wrapped


def cancel_request(client: LanguageClient, msg_id: str) -> None:
    """``$/cancelRequest``, as an editor sends it when the user typed on."""
    client.protocol.notify("$/cancelRequest", t.CancelParams(id=msg_id))


def inline_texts(result: Any) -> list[str]:
    """The insert texts of a raw inline answer (a list, or ``{"items": [...]}``)."""
    if result is not None and not isinstance(result, list):
        result = _plain(result).get("items", [])
    out = []
    for item in result or []:
        text = _plain(item).get("insertText")
        if text is not None and not isinstance(text, str):
            text = _plain(text).get("value")
        out.append(str(text))
    return out
