"""A small model server of ours on 127.0.0.1 that speaks every provider's wire format.

It answers OpenAI SSE (``/v1/completions``, ``/v1/chat/completions``), Azure paths,
Ollama NDJSON (``/api/generate``, ``/api/chat``) and llama.cpp (``/infill``,
``/completion``, ``/tokenize``, ``/v1/chat/completions``). It records what it
received, and can be told to be slow, fail with any status (with Retry-After),
hang, send garbage (a line that is not JSON, or raw binary junk), cut a stream
mid-way, or stream a huge answer as fast as the socket takes it. It notices when
a client goes away mid-answer, so tests can prove that cancelling aborts the HTTP
request. Given a certificate and key it speaks HTTPS instead (for TLS faults).

Run it by hand: ``python tests/modelserver.py --port 8090``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Behaviour:
    """What to do with one request."""

    status: int = 200
    retry_after: str | None = None
    hang: float = 0.0  # seconds before the status line
    delay: float = 0.0  # seconds between streamed pieces
    tokens: list[str] | None = None  # pieces to stream (default: the server's)
    cut_after: int | None = None  # close the connection after this many pieces
    garbage: bool = False  # send a line that is not JSON
    error_body: str = '{"error": {"message": "injected failure"}}'
    body: bytes | None = None  # a 200 whose whole body is these bytes: junk, or hand-made
    huge: int = 0  # stream about this many bytes of answer, as fast as the client reads
    huge_shape: str = "events"  # "events": many small well-formed events; "token": one
    # event holding one enormous token; "line": one line with no end and no framing
    reply: Callable[[Any], list[str]] | None = None  # the pieces, computed from the body
    finish: str = "stop"  # an OpenAI stream's last finish_reason: "length" when cut at max_tokens


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    connection: int  # the client port: equal for requests on one kept-alive connection
    aborted: bool = False
    finished: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None  # when the answer ended (finished or aborted)


class ModelServer:
    def __init__(
        self,
        tokens: list[str] | None = None,
        port: int = 0,
        tls: tuple[str, str] | None = None,  # (certificate file, key file): serve HTTPS
    ) -> None:
        self.tokens = tokens or ["Hello", ",", " world", "!"]
        self.requests: list[Recorded] = []
        self.script: deque[Behaviour] = deque()
        self.default = Behaviour()
        self.api_key: str | None = None
        self.known_models: set[str] | None = None
        self.connections_opened = 0
        self.open_sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        server = self

        class Handler(_Handler):
            owner = server

        self.httpd = _QuietServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.httpd.tls = context
            self.scheme = "https"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def start(self) -> ModelServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stopped as a real server process stops: kept-alive connections are cut too."""
        self.httpd.shutdown()
        self.httpd.server_close()
        with self._lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def enqueue(self, *behaviours: Behaviour) -> None:
        """Behaviours for the next requests, in order; then the default again."""
        with self._lock:
            self.script.extend(behaviours)

    def next_behaviour(self) -> Behaviour:
        with self._lock:
            return self.script.popleft() if self.script else self.default

    def record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)

    def wait_done(self, index: int = -1, timeout: float = 5.0) -> Recorded:
        """The recorded request once its answer has ended (finished or aborted)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.requests:
                rec = self.requests[index]
                if rec.done.wait(0.02):
                    return rec
            else:
                time.sleep(0.01)
        raise AssertionError("the model server saw no finished request in time")


class _QuietServer(ThreadingHTTPServer):
    tls: ssl.SSLContext | None = None

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        if self.tls is not None:  # the handshake happens in the handler's thread, not here
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up mid-answer are what several tests are about


class _Handler(BaseHTTPRequestHandler):
    owner: ModelServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # each streamed piece leaves at once, as from a real server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()  # a failed handshake ends this connection only
        super().setup()
        with self.owner._lock:
            self.owner.connections_opened += 1
            self.owner.open_sockets.add(self.connection)

    def finish(self) -> None:
        with self.owner._lock:
            self.owner.open_sockets.discard(self.connection)
        super().finish()

    # ---- request handling ----------------------------------------------------------

    def do_GET(self) -> None:
        self._json(200, {"status": "ok"})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        parts = urlsplit(self.path)
        rec = Recorded(
            method="POST",
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            connection=self.client_address[1],
        )
        self.owner.record(rec)
        try:
            self._answer(rec, self.owner.next_behaviour())
            rec.finished = not rec.aborted
        except (BrokenPipeError, ConnectionResetError):
            rec.aborted = True
            self.close_connection = True
        finally:
            rec.ended = time.monotonic()
            rec.done.set()

    def _answer(self, rec: Recorded, b: Behaviour) -> None:
        if b.hang and self._wait_or_gone(b.hang):
            rec.aborted = True
            self.close_connection = True
            return
        if self.owner.api_key is not None:
            given = rec.headers.get("api-key") or rec.headers.get("authorization", "")
            if given.removeprefix("Bearer ") != self.owner.api_key:
                self._raw(401, '{"error": {"message": "invalid api key"}}')
                return
        model = rec.body.get("model") if isinstance(rec.body, dict) else None
        if self.owner.known_models is not None and model not in self.owner.known_models:
            self._raw(404, json.dumps({"error": f"model '{model}' not found"}))
            return
        if b.status >= 400:
            self._raw(b.status, b.error_body, retry_after=b.retry_after)
            return
        if b.body is not None:
            self._body(b.body)
            return
        path = rec.path
        if path.endswith("/tokenize"):
            content = rec.body.get("content", "") if isinstance(rec.body, dict) else ""
            self._json(200, {"tokens": list(range((len(content) + 3) // 4))})
            return
        tokens = b.tokens if b.tokens is not None else self.owner.tokens
        if b.reply is not None:
            tokens = b.reply(rec.body)
        if path.startswith("/api/"):
            self._stream(rec, b, tokens, _ollama_event(path), ndjson=True)
        elif path.endswith(("/infill", "/completion")) and not path.endswith("/completions"):
            self._stream(rec, b, tokens, _llamacpp_event, ndjson=False)
        elif path.endswith("/chat/completions"):
            self._stream(rec, b, tokens, _openai_chat_event, ndjson=False)
        elif path.endswith("/completions"):
            self._stream(rec, b, tokens, _openai_text_event, ndjson=False)
        else:
            self._raw(404, '{"error": "no such route"}')

    # ---- writing ---------------------------------------------------------------------

    def _stream(
        self, rec: Recorded, b: Behaviour, tokens: list[str], event: Any, *, ndjson: bool
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson" if ndjson else "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if b.garbage:
            self._chunk(b"data: {this is not json\n\n" if not ndjson else b"{not json\n")
        if b.huge:
            self._huge(b, event, ndjson)
            return
        for i, token in enumerate(tokens):
            if b.cut_after is not None and i >= b.cut_after:
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if b.delay and self._wait_or_gone(b.delay):
                rec.aborted = True
                self.close_connection = True
                return
            self._chunk(_frame(event(token, False), ndjson))
        last = event("", True)
        for choice in last.get("choices", []):
            choice["finish_reason"] = b.finish
        self._chunk(_frame(last, ndjson))
        if not ndjson and not rec.path.endswith(("/infill", "/completion")):
            self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _huge(self, b: Behaviour, event: Any, ndjson: bool) -> None:
        """About ``b.huge`` bytes in 64 KiB writes: a server gone mad, or a hostile one."""
        piece = 64 * 1024
        if b.huge_shape == "line":  # no newline, no framing: a reader must not buffer it all
            block = b"x" * piece
            for _ in range(0, b.huge, piece):
                self._chunk(block)
            self._chunk(b"")
            return
        if b.huge_shape == "token":  # one well-formed event, enormous
            self._chunk(_frame(event("y" * b.huge, False), ndjson))
        else:
            frame = _frame(event("z" * 200, False), ndjson)  # no newline in the text
            block = frame * max(1, piece // len(frame))
            for _ in range(0, b.huge, len(block)):
                self._chunk(block)
        self._chunk(_frame(event("", True), ndjson))
        self._chunk(b"")

    def _body(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _raw(self, status: int, text: str, retry_after: str | None = None) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _json(self, status: int, value: Any) -> None:
        self._raw(status, json.dumps(value))

    def _wait_or_gone(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as the client has closed the connection."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.02))
            if readable:
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        return True
                except OSError:
                    return True
                time.sleep(min(left, 0.02))  # a pipelined request: not a close
        return False


def _frame(payload: dict[str, Any], ndjson: bool) -> bytes:
    text = json.dumps(payload)
    return (text + "\n").encode() if ndjson else f"data: {text}\n\n".encode()


def _openai_text_event(token: str, final: bool) -> dict[str, Any]:
    return {"choices": [{"index": 0, "text": token, "finish_reason": "stop" if final else None}]}


def _openai_chat_event(token: str, final: bool) -> dict[str, Any]:
    delta = {} if final else {"content": token}
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if final else None}]}


def _llamacpp_event(token: str, final: bool) -> dict[str, Any]:
    return {"content": token, "stop": final}


def _ollama_event(path: str) -> Any:
    def event(token: str, final: bool) -> dict[str, Any]:
        if path.endswith("/chat"):
            return {"message": {"role": "assistant", "content": token}, "done": final}
        return {"response": token, "done": final}

    return event


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8090)
    ns = parser.parse_args()
    srv = ModelServer(port=ns.port)
    print(f"serving on {srv.url}", flush=True)
    srv.httpd.serve_forever()
