"""The pygls language server: thin handlers that convert LSP messages and call the session.

Capabilities follow GitHub Copilot's language server: incremental sync,
``inlineCompletionProvider``, accept commands through ``workspace/executeCommand``,
and a ``tandem/status`` notification (Copilot's ``didChangeStatus``). Nothing but
LSP is written to stdout; logs go to stderr and ``window/logMessage``. Messages are
read by ``framing``, not pygls's reader: badly framed input costs one message.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any, BinaryIO

from lsprotocol import types as t
from pygls.exceptions import JsonRpcException, JsonRpcInvalidRequest
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from tandem import __version__
from tandem.context.documents import uri_path
from tandem.lsp import chat
from tandem.lsp.framing import CHUNK, body_handler, read_messages
from tandem.lsp.session import Session, load_session_settings

log = logging.getLogger(__name__)

ACCEPT = "tandem.acceptCompletion"
CHAT = "tandem.chat"
STATUS = "tandem/status"
CHAT_DELTA = "tandem/chatDelta"
COMMANDS = [ACCEPT, CHAT]


class TandemProtocol(LanguageServerProtocol):
    """pygls's protocol with one copy of each document (ours), and an answer to a request
    whose params do not fit its method.

    pygls mirrors every document in ``ls.workspace`` too; nothing reads that copy, and
    keeping it costs as much as ours on every keystroke (100 ms in a 10 MB file).
    """

    def _forward(self, method: str, params: Any) -> Generator[Any, Any, None]:
        if (user_handler := self.fm.features.get(method)) is not None:
            yield user_handler, (params,), None

    @lsp_method(t.INITIALIZE)
    def lsp_initialize(self, params: t.InitializeParams) -> Generator[Any, Any, Any]:
        """A second ``initialize`` is refused: it would drop every open document and leak
        the first session (its index thread, model clients and cache)."""
        if getattr(self._server, "session", None) is not None:
            raise JsonRpcInvalidRequest("the server is already initialized")
        return (yield from super().lsp_initialize(params))

    @lsp_method(t.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: Any) -> Generator[Any, Any, None]:
        yield from self._forward(t.TEXT_DOCUMENT_DID_OPEN, params)

    @lsp_method(t.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: Any) -> Generator[Any, Any, None]:
        yield from self._forward(t.TEXT_DOCUMENT_DID_CHANGE, params)

    @lsp_method(t.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: Any) -> Generator[Any, Any, None]:
        yield from self._forward(t.TEXT_DOCUMENT_DID_CLOSE, params)

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            # pygls logs and drops the message: without this error the editor would
            # wait for an answer for ever.
            if isinstance(data, dict) and "id" in data and "method" in data:
                self._send_response(data["id"], error=exc.to_response_error())
            raise


class ConnectionProtocol(TandemProtocol):
    """For TCP: ``exit`` ends this connection, not the process serving the next one."""

    @lsp_method(t.EXIT)
    def lsp_exit(self, *args: Any) -> Generator[Any, Any, None]:
        if (user_handler := self.fm.features.get(t.EXIT)) is not None:
            yield user_handler, args, None
        if self.writer is not None:
            closed = self.writer.close()
            if inspect.isawaitable(closed):
                self._closing = asyncio.ensure_future(closed)


class TandemServer(LanguageServer):
    def __init__(self, protocol_cls: type[LanguageServerProtocol] = TandemProtocol) -> None:
        super().__init__(
            "tandem",
            __version__,
            text_document_sync_kind=t.TextDocumentSyncKind.Incremental,
            protocol_cls=protocol_cls,
        )
        self.session: Session | None = None

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Log, never crash or pop up: a bad message must not take the editor's server down."""
        log.error("%s: %s", getattr(source, "__name__", source), error)

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """pygls's stdio loop, reading with ``framing.read_messages`` instead of its reader."""
        self._stop_event = threading.Event()
        source = stdin or sys.stdin.buffer
        read = getattr(source, "read1", source.read)
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        pool = self.thread_pool

        async def read_some() -> bytes:
            return await asyncio.get_running_loop().run_in_executor(pool, read, CHUNK)

        handle = body_handler(self.protocol, lambda exc: self.report_server_error(exc, "input"))
        try:
            asyncio.run(read_messages(read_some, handle, self._stop_event.is_set))
        except BrokenPipeError:
            log.error("the connection to the editor is lost; shutting down")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()

    def require(self) -> Session:
        if self.session is None:
            raise RuntimeError("the server is not initialized")
        return self.session

    def send_status(self, state: str, message: str) -> None:
        self.protocol.notify(STATUS, {"state": state, "message": message})
        level = t.MessageType.Error if state == "error" else t.MessageType.Log
        self.window_log_message(t.LogMessageParams(level, f"tandem: {state}: {message}"))

    def send_warning(self, message: str) -> None:
        self.window_log_message(t.LogMessageParams(t.MessageType.Warning, f"tandem: {message}"))


def accept_command(uri: str, text: str) -> t.Command:
    """What the editor runs when the user accepts: counted locally, nothing leaves."""
    return t.Command(
        title="Accept Tandem completion",
        command=ACCEPT,
        arguments=[{"uri": uri, "text": text}],
    )


def root_of(params: t.InitializeParams) -> Path | None:
    folders = params.workspace_folders or []
    uri = folders[0].uri if folders else params.root_uri
    if uri and uri.startswith("file:"):
        return Path(uri_path(uri))
    if params.root_path:
        return Path(params.root_path)
    return None


def build_server(
    protocol_cls: type[LanguageServerProtocol] = TandemProtocol,
) -> TandemServer:
    server = TandemServer(protocol_cls)

    @server.feature(t.INITIALIZE)
    def initialize(ls: TandemServer, params: t.InitializeParams) -> None:
        root = root_of(params)
        options = params.initialization_options or {}
        settings = load_session_settings(root, options if isinstance(options, dict) else {})
        ls.session = Session(root, settings, status=ls.send_status, warn=ls.send_warning)
        encoding = ls.workspace.position_encoding or t.PositionEncodingKind.Utf16
        ls.session.documents.encoding = str(getattr(encoding, "value", encoding))

    @server.feature(t.INITIALIZED)
    def initialized(ls: TandemServer, params: t.InitializedParams) -> None:
        ls.require().start()

    @server.feature(t.SHUTDOWN)
    async def shutdown(ls: TandemServer, params: None) -> None:
        if ls.session is not None:
            await ls.session.close()

    # ---- documents -------------------------------------------------------------------------

    @server.feature(t.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: TandemServer, params: t.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        session = ls.require()
        session.edit(
            lambda: session.documents.open(doc.uri, doc.text, doc.language_id, doc.version),
            "didOpen",
        )

    @server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: TandemServer, params: t.DidChangeTextDocumentParams) -> None:
        changes = []
        for change in params.content_changes:
            if isinstance(change, t.TextDocumentContentChangePartial):
                r = change.range
                span = ((r.start.line, r.start.character), (r.end.line, r.end.character))
                changes.append((span, change.text))
            else:
                changes.append((None, change.text))
        session = ls.require()
        uri, version = params.text_document.uri, params.text_document.version
        session.edit(lambda: session.documents.change(uri, version, changes), "didChange")

    @server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: TandemServer, params: t.DidCloseTextDocumentParams) -> None:
        session = ls.require()
        uri = params.text_document.uri

        def close() -> None:
            if uri in session.documents:
                session.documents.close(uri)
            session.typeahead.forget(uri)

        session.edit(close, "didClose")

    @server.feature(t.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: TandemServer, params: t.DidSaveTextDocumentParams) -> None:
        await ls.require().file_changed(params.text_document.uri)

    @server.feature(t.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def watched(ls: TandemServer, params: t.DidChangeWatchedFilesParams) -> None:
        for change in params.changes:
            await ls.require().file_changed(change.uri)

    @server.feature(t.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def configuration(ls: TandemServer, params: t.DidChangeConfigurationParams) -> None:
        options = params.settings if isinstance(params.settings, dict) else {}
        try:
            await ls.require().reconfigure(options, "workspace/didChangeConfiguration")
        except ValueError as exc:
            ls.require().set_status("error", str(exc))

    # ---- completions -----------------------------------------------------------------------

    @server.feature(t.TEXT_DOCUMENT_INLINE_COMPLETION, t.InlineCompletionOptions())
    async def inline_completion(
        ls: TandemServer, params: t.InlineCompletionParams
    ) -> t.InlineCompletionList:
        uri, pos = params.text_document.uri, params.position
        answer = await ls.require().inline(uri, pos.line, pos.character)
        if answer is None:
            return t.InlineCompletionList(items=[])
        item = t.InlineCompletionItem(
            insert_text=answer.text,
            range=t.Range(pos, pos),
            command=accept_command(uri, answer.text),
        )
        return t.InlineCompletionList(items=[item])

    @server.feature(t.TEXT_DOCUMENT_COMPLETION, t.CompletionOptions(trigger_characters=[]))
    async def completion(ls: TandemServer, params: t.CompletionParams) -> t.CompletionList:
        """One clearly labelled AI item, for clients without inline completion.

        Only on a manual trigger (or when ``completion_fallback`` is on), so the
        popup is never filled with model calls while typing.
        """
        session = ls.require()
        manual = params.context is None or (
            params.context.trigger_kind == t.CompletionTriggerKind.Invoked
        )
        if not (manual or session.settings.completion_fallback):
            return t.CompletionList(is_incomplete=False, items=[])
        uri, pos = params.text_document.uri, params.position
        answer = await session.inline(uri, pos.line, pos.character)
        if answer is None:
            return t.CompletionList(is_incomplete=False, items=[])
        first = next((ln for ln in answer.text.splitlines() if ln.strip()), answer.text)
        item = t.CompletionItem(
            label=f"✨ {first.strip()[:60]}",
            kind=t.CompletionItemKind.Text,
            detail="Tandem AI completion",
            documentation=t.MarkupContent(t.MarkupKind.Markdown, f"```\n{answer.text}\n```"),
            text_edit=t.TextEdit(t.Range(pos, pos), answer.text),
            sort_text="\u0000",
            filter_text="",
            command=accept_command(uri, answer.text),
        )
        return t.CompletionList(is_incomplete=True, items=[item])

    @server.command(ACCEPT)
    def accept(ls: TandemServer, *args: Any) -> None:
        ls.require().stats.accepted += 1

    @server.feature("textDocument/didShowCompletion")
    def did_show(ls: TandemServer, params: Any) -> None:
        ls.require().stats.shown += 1

    @server.feature("textDocument/didPartiallyAcceptCompletion")
    def did_partially_accept(ls: TandemServer, params: Any) -> None:
        ls.require().stats.partially_accepted += 1

    chat.register(server)
    return server


def serve_stdio() -> None:
    build_server().start_io()


def serve_tcp(host: str, port: int) -> None:
    """Serve editors over TCP one connection after another (for debugging).

    pygls's own ``start_tcp`` stops after the first connection closes; here each
    connection gets a fresh server, and a probe that connects and hangs up is
    simply the end of one connection.
    """

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server = build_server(ConnectionProtocol)
        server.protocol.set_writer(writer)  # type: ignore[arg-type]
        handle = body_handler(server.protocol, lambda e: server.report_server_error(e, "input"))
        try:
            await read_messages(lambda: reader.read(CHUNK), handle)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("connection ended: %s", exc)
        finally:
            if server.session is not None:
                await server.session.close()
            writer.close()

    async def main() -> None:
        listener = await asyncio.start_server(connection, host, port)
        addresses = ", ".join(str(s.getsockname()) for s in listener.sockets)
        log.info("serving LSP on %s", addresses)
        async with listener:
            await listener.serve_forever()

    asyncio.run(main())
