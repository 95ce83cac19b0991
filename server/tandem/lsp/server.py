"""The pygls language server: thin handlers that convert LSP messages and call the session.

``initialize`` builds the workspace (``open_workspace``, as every entry point does) and
the connection's ``Session`` on it; the handlers below only convert messages.

Capabilities follow GitHub Copilot's language server: incremental sync,
``inlineCompletionProvider``, accept commands through ``workspace/executeCommand``,
and a ``tandem/status`` notification (Copilot's ``didChangeStatus``). Nothing but
LSP is written to stdout; logs go to stderr and ``window/logMessage``. Messages are
read by ``framing``, not pygls's reader: badly framed input costs one message.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from lsprotocol import types as t
from pygls.protocol import LanguageServerProtocol

from tandem.config import load_editor_settings
from tandem.context.documents import uri_path
from tandem.lsp import chat
from tandem.lsp.accept import accepted_at, partially_accepted_at
from tandem.lsp.connection import (
    ACCEPT,
    ConnectionProtocol,
    TandemProtocol,
    TandemServer,
)
from tandem.lsp.framing import CHUNK, body_handler, read_messages
from tandem.session import Session
from tandem.workspace import open_workspace

log = logging.getLogger(__name__)


def accept_command(uri: str, text: str, at: t.Position) -> t.Command:
    """What the editor runs when the user accepts: counted locally, nothing leaves; where
    the text went tells where to prefetch the next suggestion."""
    return t.Command(
        title="Accept Tandem completion",
        command=ACCEPT,
        arguments=[{"uri": uri, "text": text, "line": at.line, "character": at.character}],
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
        settings = load_editor_settings(root, options if isinstance(options, dict) else {})
        workspace = open_workspace(settings, root)
        ls.session = Session(workspace, status=ls.send_status, warn=ls.send_warning)
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
            len(doc.text),
        )
        session.prepare_opened(doc.uri)  # its first request's work, at the loop's next turn

    @server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: TandemServer, params: t.DidChangeTextDocumentParams) -> None:
        changes = []
        size = 0  # what the re-parse must read: the new text (a whole document's, or a range's)
        for change in params.content_changes:
            size += len(change.text)
            if isinstance(change, t.TextDocumentContentChangePartial):
                r = change.range
                span = ((r.start.line, r.start.character), (r.end.line, r.end.character))
                changes.append((span, change.text))
            else:
                changes.append((None, change.text))
        session = ls.require()
        uri, version = params.text_document.uri, params.text_document.version
        session.edit(lambda: session.documents.change(uri, version, changes), "didChange", size)
        session.typing.edited(uri)

    @server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: TandemServer, params: t.DidCloseTextDocumentParams) -> None:
        session = ls.require()
        uri = params.text_document.uri

        def close() -> None:
            if uri in session.documents:
                session.documents.close(uri)
            session.typeahead.forget(uri)

        session.edit(close, "didClose", 0)
        session.typing.closed(uri)

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
        manual = params.context.trigger_kind == t.InlineCompletionTriggerKind.Invoked
        answer = await ls.require().inline(uri, pos.line, pos.character, manual)
        if answer is None:
            return t.InlineCompletionList(items=[])
        item = t.InlineCompletionItem(
            insert_text=answer.text,
            range=t.Range(pos, pos),
            command=accept_command(uri, answer.text, pos),
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
        answer = await session.inline(uri, pos.line, pos.character, manual)
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
            command=accept_command(uri, answer.text, pos),
        )
        return t.CompletionList(is_incomplete=True, items=[item])

    @server.command(ACCEPT)
    async def accept(ls: TandemServer, *args: Any) -> None:
        session = ls.require()
        session.stats.accepted += 1
        # A line in the editor's log: the only place a user (or an e2e test) sees it counted.
        log.info("completion accepted (%d this session)", session.stats.accepted)
        await session.typing.accepted(accepted_at(list(args)))

    @server.feature("textDocument/didShowCompletion")
    def did_show(ls: TandemServer, params: Any) -> None:
        ls.require().stats.shown += 1

    @server.feature("textDocument/didPartiallyAcceptCompletion")
    async def did_partially_accept(ls: TandemServer, params: Any) -> None:
        session = ls.require()
        session.stats.partially_accepted += 1
        await session.typing.accepted(partially_accepted_at(params))

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
