"""The floor under the milliseconds Tandem adds: what the two round trips cost on this machine.

An inline completion needs, whatever the server does, one JSON-RPC exchange with the editor
(a didChange, an inline request, its answer) and one HTTP exchange with the model. Both are
measured here, now, on the same machine and under the same load as the scenarios, by the
barest client or server of the same libraries:

- *JSON-RPC*: a bare pygls server (``lsp_latency.py --baseline-server``: pygls's own
  document sync, a constant inline item, nothing else), driven by the same pytest-lsp
  client, typing one character per didChange then an inline request, as scenario (b);
- *HTTP*: a bare ``httpx.AsyncClient`` (one kept-alive connection) streaming a real
  prompt body of scenario (c) to the same model server, added milliseconds over the model
  server's own time for that request, as the scenarios count them.

The sum of their medians is the floor: what an editor would wait over the model's time
with a server that did no work of its own. Each is measured again by clients of raw bytes
(what is the measuring side's) and through asyncio alone (what is the event loop's).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

import lsp_latency
from lsp_latency import BASELINE_FLAG, Editor, ModelServerProcess, Spot, editor


async def pygls_round_trips(root: Path, text: str, keystrokes: int, env: dict[str, str]):
    """Milliseconds from a didChange of one character to the answer of an inline request."""
    command = [sys.executable, lsp_latency.__file__, BASELINE_FLAG]
    path = root / "floor_typing.py"
    path.write_text(text)
    out: list[float] = []
    async with editor(command, env, root) as ed:
        uri = ed.open(path, text)
        line = len(text.split("\n")) // 2
        await _type(ed, uri, line, 3)  # warm up
        for col in range(keystrokes):
            started = time.perf_counter()
            await _type(ed, uri, line, col)
            out.append((time.perf_counter() - started) * 1000)
    return out


async def _type(ed: Editor, uri: str, line: int, col: int) -> None:
    ed.edit(uri, Spot(line, col), Spot(line, col), "x")
    items = await ed.inline(uri, line, col + 1)
    assert items, "the bare server always answers"


async def httpx_added(model: ModelServerProcess, body: dict[str, Any], n: int) -> list[float]:
    """Milliseconds a bare httpx client adds to a streamed request over the model's time."""
    out: list[float] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, connect=5), trust_env=False) as client:
        for i in range(n + 3):
            before = model.count()
            started = time.perf_counter()
            async with client.stream("POST", model.url + "/v1/completions", json=body) as r:
                r.raise_for_status()
                async for _ in r.aiter_lines():
                    pass
            elapsed = time.perf_counter() - started
            own = model.times_since(before)
            if i >= 3 and len(own) == 1:  # the first ones open the connection
                out.append((elapsed - own[0]) * 1000)
    return out


# ---- what the floor itself holds (issue 12, fourth round) --------------------------------
#
# Both figures above are measured by a client in Python on the same two cores, and the HTTP
# one against the fake model server, which is Python too: is part of them the measuring
# side's own cost, which an editor (native) or a real model server would not add? Each is
# measured again with the barest client possible, bytes on a socket or a pipe, no library.


def socket_added(model: ModelServerProcess, body: dict[str, Any], n: int) -> list[float]:
    """Milliseconds a raw-socket client adds over the model server's own time: the same
    streamed request as ``httpx_added``, framed by hand, one kept-alive connection.

    What is left is the loopback and the fake server's own work outside its timer (reading
    the request line and headers, before ``do_POST``): not Tandem's, nor httpx's."""
    hostname, port, request = _http_request(model, body)
    out: list[float] = []
    with socket.create_connection((hostname, port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(n + 3):
            before = model.count()
            started = time.perf_counter()
            sock.sendall(request)
            received = b""
            while not received.endswith(b"\r\n0\r\n\r\n"):  # the chunked stream's end
                piece = sock.recv(65536)
                if not piece:
                    raise ConnectionError("the model server closed the connection")
                received += piece
            elapsed = time.perf_counter() - started
            own = model.times_since(before)
            if i >= 3 and len(own) == 1:
                out.append((elapsed - own[0]) * 1000)
    return out


# ---- how much of each floor is the event loop (issue 12, fifth round) ----------------------
#
# Between the raw-bytes clients and the libraries sit asyncio's own streams: the same bytes,
# written and read through the event loop (``asyncio.open_connection`` for HTTP, a server
# reading its pipe with ``connect_read_pipe`` for JSON-RPC), without httpx/httpcore/h11/
# anyio or pygls. library - asyncio = the library's share; asyncio - raw = the loop's.


def _http_request(model: ModelServerProcess, body: dict[str, Any]) -> tuple[str, int, bytes]:
    """The request ``socket_added`` writes, and where to write it."""
    payload = json.dumps(body).encode()
    host = model.url.split("//", 1)[1]
    request = (
        f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    hostname, port = host.rsplit(":", 1)
    return hostname, int(port), request


async def asyncio_added(model: ModelServerProcess, body: dict[str, Any], n: int) -> list[float]:
    """``socket_added`` through asyncio's streams on the running loop: one kept-alive
    connection, the request written at once, the chunked answer read to its end."""
    hostname, port, request = _http_request(model, body)
    reader, writer = await asyncio.open_connection(hostname, port)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out: list[float] = []
    try:
        for i in range(n + 3):
            before = model.count()
            started = time.perf_counter()
            writer.write(request)
            received = b""
            while not received.endswith(b"\r\n0\r\n\r\n"):  # the chunked stream's end
                piece = await reader.read(65536)
                if not piece:
                    raise ConnectionError("the model server closed the connection")
                received += piece
            elapsed = time.perf_counter() - started
            own = model.times_since(before)
            if i >= 3 and len(own) == 1:
                out.append((elapsed - own[0]) * 1000)
    finally:
        writer.close()
        await writer.wait_closed()
    return out


ASYNCIO_SERVER_FLAG = "--asyncio-server"


def asyncio_server() -> None:
    """A bare JSON-RPC server on asyncio alone: stdin read through the loop as Tandem
    reads it (``connect_read_pipe``), each message parsed, each request answered at once
    (an inline request with the bare pygls server's constant item), written to stdout.
    No pygls: no structuring, no document kept (pygls's document sync and cattrs cost
    ~0.1 ms a keystroke, README)."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 22)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        out = sys.stdout.buffer
        while True:
            length = 0
            while True:
                line = await reader.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            message = json.loads(await reader.readexactly(length))
            method = message.get("method")
            if method == "exit":
                return
            if "id" not in message:
                continue
            if method == "initialize":
                result: Any = {"capabilities": {"inlineCompletionProvider": True,
                                                "textDocumentSync": 2}}  # fmt: skip
            elif method == "textDocument/inlineCompletion":
                pos = message["params"]["position"]
                result = {"items": [{"insertText": "x * 2", "range": {"start": pos, "end": pos}}]}
            else:
                result = None
            out.write(_frame({"jsonrpc": "2.0", "id": message["id"], "result": result}))
            out.flush()

    asyncio.run(main())


PYGLS_LOOP_FLAG = "--pygls-loop-server"


def pygls_loop_server() -> None:
    """``lsp_latency``'s bare pygls server reading its pipe the way Tandem's server does
    (``connection.pipe_reader`` on the loop, ``framing.read_messages`` and
    ``body_handler``, pygls's ``StdoutWriter``) instead of pygls's ``start_io`` (a read on
    a thread per chunk): what is left of pygls's share is its message handling."""
    import threading

    from pygls.io_ import StdoutWriter

    from tandem.lsp.connection import pipe_reader
    from tandem.lsp.framing import body_handler, read_messages

    server = lsp_latency.baseline_server(start=False)
    server._stop_event = threading.Event()
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))
    handle = body_handler(server.protocol, lambda exc: None)

    async def main() -> None:
        piped = await pipe_reader(sys.stdin.buffer)
        assert piped is not None, "run with a pipe on stdin"
        await read_messages(piped, handle, server._stop_event.is_set)

    with contextlib.suppress(BrokenPipeError, SystemExit):
        asyncio.run(main())


def _frame(message: dict[str, Any]) -> bytes:
    data = json.dumps(message).encode()
    return f"Content-Length: {len(data)}\r\n\r\n".encode() + data


def _read_message(stream: Any) -> dict[str, Any]:
    length = 0
    while True:
        line = stream.readline()
        if not line:
            raise ConnectionError("the language server closed its output")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return dict(json.loads(stream.read(length)))


def raw_round_trips(
    root: Path, text: str, keystrokes: int, env: dict[str, str], *, server: str = "pygls"
) -> list[float]:
    """``pygls_round_trips`` by a client of bytes on a pipe instead of pytest-lsp's: what
    the bare pygls server and the pipes cost without the measuring client's own work.
    ``server``: "pygls" (``start_io``), "pygls-loop" (``pygls_loop_server``: Tandem's way
    of reading) or "asyncio" (``asyncio_server``: no pygls)."""
    command = {
        "pygls": [sys.executable, lsp_latency.__file__, BASELINE_FLAG],
        "pygls-loop": [sys.executable, __file__, PYGLS_LOOP_FLAG],
        "asyncio": [sys.executable, __file__, ASYNCIO_SERVER_FLAG],
    }[server]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    send, stream = proc.stdin, proc.stdout
    ids = iter(range(1, 1_000_000))

    def ask(method: str, params: dict[str, Any]) -> dict[str, Any]:
        number = next(ids)
        send.write(_frame({"jsonrpc": "2.0", "id": number, "method": method, "params": params}))
        send.flush()
        while True:  # skip the server's own notifications and requests
            message = _read_message(stream)
            if message.get("id") == number and "method" not in message:
                return message

    def tell(method: str, params: dict[str, Any]) -> None:
        send.write(_frame({"jsonrpc": "2.0", "method": method, "params": params}))

    try:
        ask("initialize", {"processId": None, "rootUri": root.as_uri(), "capabilities": {}})
        tell("initialized", {})
        uri = (root / "floor_raw.py").as_uri()
        item = {"uri": uri, "languageId": "python", "version": 1, "text": text}
        tell("textDocument/didOpen", {"textDocument": item})
        line = len(text.split("\n")) // 2
        out: list[float] = []
        for col in range(keystrokes + 3):
            started = time.perf_counter()
            spot = {"line": line, "character": col}
            tell("textDocument/didChange", {
                "textDocument": {"uri": uri, "version": col + 2},
                "contentChanges": [{"range": {"start": spot, "end": spot}, "text": "x"}],
            })  # fmt: skip
            answer = ask("textDocument/inlineCompletion", {
                "textDocument": {"uri": uri},
                "position": {"line": line, "character": col + 1},
                "context": {"triggerKind": 2},
            })  # fmt: skip
            assert answer.get("result"), "the bare server always answers"
            if col >= 3:
                out.append((time.perf_counter() - started) * 1000)
        ask("shutdown", {})
        tell("exit", {})
        send.flush()
        proc.wait(timeout=10)
        return out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    if sys.argv[1:] == [ASYNCIO_SERVER_FLAG]:
        asyncio_server()
    elif sys.argv[1:] == [PYGLS_LOOP_FLAG]:
        pygls_loop_server()
    else:
        raise SystemExit(f"usage: {sys.argv[0]} {ASYNCIO_SERVER_FLAG}|{PYGLS_LOOP_FLAG}")
