"""The language server object and its protocol: what every handler module is given.

``server.py`` registers the document and completion handlers, ``chat.py`` the chat and
code-action ones; both take a ``TandemServer`` from here, so neither imports the other.
Messages are read by ``framing``, not pygls's reader: badly framed input costs one message.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import stat
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any, BinaryIO

from lsprotocol import types as t
from pygls.exceptions import JsonRpcException, JsonRpcInvalidRequest
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from tandem import __version__, stages
from tandem.lsp.framing import CHUNK, body_handler, read_messages
from tandem.session import Session

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

    def _send_handler_result(self, future: Any, *, msg_id: Any) -> None:
        """pygls's answer to a request (with ``TANDEM_STAGES=1`` its write is timed); then
        the work kept off the answer's path (the cache's disk writes)."""
        started = time.perf_counter() if stages.ENABLED else 0.0
        super()._send_handler_result(future, msg_id=msg_id)
        if stages.ENABLED:
            stages.log.info("stages rpc-write %.2f ms: ", (time.perf_counter() - started) * 1000)
        session = getattr(self._server, "session", None)
        if session is not None:
            session.after_answer()

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


async def pipe_reader(source: BinaryIO) -> Callable[[], Awaitable[bytes]] | None:
    """Reads of ``source`` through the event loop when it is a pipe (what editors give),
    else None (a file or a terminal: read on a thread, as pygls does).

    A read on a thread was a hop there and back for every message (~0.25 ms each on a
    loaded machine, two messages a keystroke); the loop polls a pipe with the sockets.
    """
    try:
        if not stat.S_ISFIFO(os.fstat(source.fileno()).st_mode):
            return None
    except (AttributeError, OSError, ValueError):
        return None
    reader = asyncio.StreamReader(limit=4 * CHUNK)
    loop = asyncio.get_running_loop()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), source)
    except (OSError, ValueError, NotImplementedError) as exc:
        log.info("reading the editor's pipe on a thread: %s", exc)
        return None

    async def read_some() -> bytes:
        return await reader.read(CHUNK)

    return read_some


class TandemServer(LanguageServer):
    def __init__(self, protocol_cls: type[LanguageServerProtocol] = TandemProtocol) -> None:
        super().__init__(
            "tandem",
            __version__,
            text_document_sync_kind=t.TextDocumentSyncKind.Incremental,
            protocol_cls=protocol_cls,
        )
        self.session: Session | None = None
        self._last_state = ""

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

        async def main() -> None:
            piped = await pipe_reader(source)
            await read_messages(piped or read_some, handle, self._stop_event.is_set)

        try:
            asyncio.run(main())
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
        """The status notification; and a line in the editor's log, except for the busy
        and ready of each model call (two messages more per keystroke, read by no one)."""
        self.protocol.notify(STATUS, {"state": state, "message": message})
        routine = state == "busy" or (state == "ready" and self._last_state == "busy")
        self._last_state = state
        if routine:
            return
        level = t.MessageType.Error if state == "error" else t.MessageType.Log
        self.window_log_message(t.LogMessageParams(level, f"tandem: {state}: {message}"))

    def send_warning(self, message: str) -> None:
        self.window_log_message(t.LogMessageParams(t.MessageType.Warning, f"tandem: {message}"))
