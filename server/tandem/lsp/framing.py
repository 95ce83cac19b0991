"""Reading LSP's base protocol so that a badly framed message costs that message, not the server.

pygls's reader trusts every header. A message without a valid ``Content-Length`` (missing,
``abc``, negative, lower-case, LF-only lines, junk before it) makes it glue that body to the
next header, and from then on no header is recognised again: the server lives, deaf, and the
editor waits for ever. A huge ``Content-Length`` makes it allocate that many bytes and die.

Here a header block (up to a blank line) is read whole and its last ``Content-Length`` used,
whatever came before it; a block without one is skipped. A body is never allocated by its
declared length, only as bytes arrive. JSON never holds a raw line break inside a string, so a
``Content-Length: N`` line inside a body means the declared length was too long: the body ends
there and the next message starts there, and nothing waits for bytes that will not come. A
length that was too short leaves the message's tail as junk before the next header, which is
skipped. Every skip is logged; the next well-framed message is read normally.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from pygls.exceptions import JsonRpcInvalidRequest

log = logging.getLogger(__name__)

MAX_BODY = 512 * 1024 * 1024  # a longer declared body is a broken header, not a message
MAX_HEADER = 64 * 1024  # junk without a blank line is dropped past this
CHUNK = 64 * 1024

_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_CONTENT_LENGTH = re.compile(rb"content-length:[ \t]*(\d{1,12})[ \t]*\r?$", re.I | re.M)
_HEADER_IN_BODY = re.compile(rb"content-length:[ \t]*\d{1,12}[ \t]*\r?\n", re.I)
_OVERLAP = 48  # a header line split across two reads is still found


ReadSome = Callable[[], Awaitable[bytes]]  # at least one byte, or b"" at the end


async def read_messages(
    read_some: ReadSome,
    handle_body: Callable[[bytes], None],
    stopped: Callable[[], bool] = lambda: False,
) -> None:
    """Call ``handle_body`` with each message body until the input ends or ``stopped()``."""
    buffer = bytearray()
    eof = False

    async def fill() -> None:
        nonlocal eof
        data = await read_some()
        if data:
            buffer.extend(data)
        else:
            eof = True

    while not stopped():
        # ---- a header block: everything up to the first blank line ----
        blank = _BLANK_LINE.search(buffer)
        if blank is None:
            if eof:
                if buffer.strip():
                    log.warning("input ended inside a header: %d bytes dropped", len(buffer))
                return
            if len(buffer) > MAX_HEADER:
                keep = _keep_from(buffer)
                log.warning("skipped %d bytes that are not an LSP header", keep)
                del buffer[:keep]
            await fill()
            continue
        header = bytes(buffer[: blank.start()])
        matches = list(_CONTENT_LENGTH.finditer(header))
        length = int(matches[-1].group(1)) if matches else -1
        if length < 0 or length > MAX_BODY:
            log.warning("skipped a header without a usable Content-Length: %r", header[-120:])
            del buffer[: blank.end()]
            continue
        junk = header[: matches[-1].start()].strip()
        if junk and not _only_headers(junk):
            log.warning("skipped %d bytes of junk before a header", len(junk))
        del buffer[: blank.end()]

        # ---- its body: the declared length, unless another header starts first ----
        scanned = 0
        while True:
            cut = _HEADER_IN_BODY.search(buffer, max(0, scanned - _OVERLAP), length + _OVERLAP)
            if cut is not None and cut.start() < length:
                log.warning(
                    "Content-Length %d ran into the next message at %d", length, cut.start()
                )
                end = cut.start()
                break
            if len(buffer) >= length:
                end = length
                break
            if eof:
                log.warning("input ended inside a body: %d of %d bytes", len(buffer), length)
                return
            scanned = len(buffer)
            await fill()
        body = bytes(buffer[:end])
        del buffer[:end]
        handle_body(body)


def _keep_from(buffer: bytearray) -> int:
    """Where to cut junk: at the last "Content-Length" (a header may be arriving), else near
    the end (it may start in the bytes still to come)."""
    last = buffer.lower().rfind(b"content-length")
    return last if last > 0 else max(0, len(buffer) - _OVERLAP)


def _only_headers(block: bytes) -> bool:
    """Other header fields (Content-Type) are allowed before Content-Length."""
    return all(re.fullmatch(rb"[A-Za-z-]+:[^\r\n]*\r?", line) for line in block.splitlines())


def body_handler(protocol: Any, on_error: Callable[[Exception], None]) -> Callable[[bytes], None]:
    """Decode and dispatch one body the way pygls does, answering what pygls would drop.

    A request without ``"jsonrpc"`` (pygls cannot structure it) still has an id: it gets
    an Invalid Request error rather than silence.
    """

    def handle(body: bytes) -> None:
        try:
            message = json.loads(body, object_hook=protocol.structure_message)
        except Exception as exc:
            log.warning("skipped a message that is not valid JSON-RPC: %s", exc)
            on_error(exc)
            return
        if isinstance(message, dict) or not hasattr(message, "jsonrpc"):
            if isinstance(message, dict) and "id" in message and "method" in message:
                error = JsonRpcInvalidRequest("not a JSON-RPC 2.0 request").to_response_error()
                protocol._send_response(message["id"], error=error)
            log.warning("skipped a message that is not JSON-RPC 2.0: %r", body[:120])
            return
        try:
            protocol.handle_message(message)
        except Exception as exc:
            log.exception("unable to handle a message")
            on_error(exc)

    return handle
