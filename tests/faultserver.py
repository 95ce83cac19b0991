"""A loopback model server that fails the way servers, proxies and networks fail.

It speaks just enough HTTP/1.1 (keep-alive, chunked streams) to serve OpenAI-style
``/v1/completions`` and ``/v1/chat/completions`` (server-sent events), llama.cpp's
``/infill`` and ``/completion`` (events), ``/tokenize`` and ``GET /health``, on
127.0.0.1. Each request gets a ``Fault`` or none: scripted (``enqueue``, for unit tests)
or drawn by a seeded ``FaultPlan`` (for the soak). The faults, by what the client sees:

before any byte of the answer (a client may send the request again):
  ``drop``        the request is read, the connection closed without a status line;
  ``reset``       the headers are read, the connection reset (RST, ``SO_LINGER`` 0)
                  with the body unread: the client meets it while sending or reading;
  ``stale``       a ``drop`` on a kept-alive connection: the server's idle timer fired
                  as the request came;
  ``429``, ``500``, ``503`` (``+ra``: with ``Retry-After: 1``) a status that says "not now";
after the answer started, or past the deadline (the request must fail, and not be cached):
  ``cut``         the status and the first piece(s), then the connection closes mid-stream;
  ``stall``       no status line for ``Fault.stall`` seconds (past any client deadline);
and one that is not a fault of the request it comes with:
  ``idle-close``  the answer is whole, then the connection is closed after 50 ms idle
                  (without ``Connection: close``), as a server with a short idle timeout.

Every request is recorded (``served``) with what was injected into it.
"""

from __future__ import annotations

import hashlib
import json
import random
import select
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BEFORE_ANSWER = ("drop", "reset", "stale", "429", "429+ra", "500", "503", "503+ra")
TERMINAL = ("cut", "stall")  # after the answer started, or past the deadline
KINDS = (*BEFORE_ANSWER, *TERMINAL, "idle-close")
WEIGHTS = {"drop": 4, "reset": 3, "stale": 4, "429": 1, "429+ra": 1, "500": 1, "503": 1,
           "503+ra": 1, "cut": 3, "stall": 1, "idle-close": 2}  # fmt: skip
STREAMED = ("/completions", "/infill", "/completion")
Respond = Callable[[str, Any], list[str]]  # (path, JSON body) -> the pieces to stream


@dataclass(frozen=True)
class Fault:
    kind: str
    cut_after: int = 1  # pieces sent before a cut
    stall: float = 30.0  # seconds a stall lasts (or until the client hangs up)

    @property
    def status(self) -> int | None:
        head = self.kind.split("+")[0]
        return int(head) if head.isdigit() else None


@dataclass
class Served:
    """One request as the server saw it."""

    index: int
    method: str
    path: str
    body: Any
    digest: str  # of the body: a retry of a request has the same digest
    connection: int  # the connection's serial number
    reused: bool  # not the first request on its connection
    fault: str | None
    finished: bool = False  # the whole answer was written
    gone: bool = False  # the client hung up before the answer was whole
    ended: bool = False  # the server is done with it


class FaultPlan:
    """Faults at random with a fixed seed; ``rate`` of the requests get one.

    A request (one body) gets at most ``max_run`` faults in a row, the transient faults a
    client is built to outlast; ``None`` lifts the cap. GETs and ``/tokenize`` get none.
    """

    def __init__(self, seed: int, rate: float = 0.35, weights: dict[str, int] | None = None,
                 max_run: int | None = 2, stall: float = 30.0) -> None:  # fmt: skip
        self.rng = random.Random(seed)
        self.rate = rate
        self.weights = weights or WEIGHTS
        self.max_run = max_run
        self.stall = stall
        self._runs: Counter[str] = Counter()

    def choose(self, served: Served) -> Fault | None:
        if served.method != "POST" or served.path.endswith("/tokenize"):
            return None
        if self.max_run is not None and self._runs[served.digest] >= self.max_run:
            self._runs[served.digest] = 0
            return None
        if self.rng.random() >= self.rate:
            self._runs[served.digest] = 0
            return None
        kinds = [k for k in self.weights if k != "stale" or served.reused]
        kind = self.rng.choices(kinds, [self.weights[k] for k in kinds])[0]
        self._runs[served.digest] = 0 if kind == "idle-close" else self._runs[served.digest] + 1
        return Fault(kind, cut_after=self.rng.randint(1, 2), stall=self.stall)


class FaultServer:
    def __init__(self, tokens: list[str] | None = None, respond: Respond | None = None,
                 plan: FaultPlan | None = None, idle_timeout: float = 5.0) -> None:  # fmt: skip
        self.tokens = tokens or ["Hello", ",", " world", "!"]
        self.respond = respond or (lambda path, body: self.tokens)
        self.plan = plan
        self.idle_timeout = idle_timeout  # as llama.cpp's: idle connections are closed
        self.served: list[Served] = []
        self.script: deque[Fault | None] = deque()
        self.connections = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def start(self) -> FaultServer:
        thread = threading.Thread(target=self._accept, daemon=True, name="faultserver")
        thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._sock.close()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def enqueue(self, *faults: Fault | str | None) -> None:
        """Faults for the next requests, in order (None: answer it); then the plan again."""
        with self._lock:
            self.script.extend(Fault(f) if isinstance(f, str) else f for f in faults)

    def injected(self, since: int = 0) -> Counter[str]:
        """Faults injected by kind, in the requests from ``since`` on."""
        with self._lock:
            return Counter(s.fault for s in self.served[since:] if s.fault)

    def count(self) -> int:
        with self._lock:
            return len(self.served)

    def wait_idle(self, since: int = 0, timeout: float = 10.0) -> list[Served]:
        """The requests from ``since`` on, once each has ended (answered, faulted, gone)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                batch = self.served[since:]
                if all(s.ended for s in batch):
                    return list(batch)
            time.sleep(0.01)
        raise AssertionError("the fault server is still answering")

    # ---- connections ---------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                serial = self.connections
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._connection, args=(conn, serial), daemon=True).start()

    def _connection(self, conn: socket.socket, serial: int) -> None:
        reader = _Reader(conn, self._stopping)
        first, idle = True, self.idle_timeout
        try:
            while (head := reader.head(idle)) is not None:
                served, keep = self._one(conn, reader, head, serial, not first)
                served.ended = True
                first = False
                if not keep:
                    return
                idle = 0.05 if served.fault == "idle-close" else self.idle_timeout
        except OSError:
            pass
        finally:
            conn.close()

    def _one(self, conn: socket.socket, reader: _Reader, head: bytes, serial: int,
             reused: bool) -> tuple[Served, bool]:  # fmt: skip
        """Read and answer one request; whether the connection stays open."""
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = [*lines[0].split(" "), "", ""][:3]
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
        }
        length = int(headers.get("content-length") or 0)
        path = target.split("?")[0]
        with self._lock:
            served = Served(len(self.served), method, path, None, "", serial, reused, None)
            fault = self.script.popleft() if self.script else None
        if fault is not None and fault.kind == "reset":  # before the body is read
            self._record(served, None, fault)
            _reset(conn)
            return served, False
        raw = reader.exact(length)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        served.body, served.digest = body, hashlib.sha256(raw or target.encode()).hexdigest()[:16]
        with self._lock:
            if fault is None and self.plan is not None:
                fault = self.plan.choose(served)
        self._record(served, body, fault)
        if fault is None or fault.kind == "idle-close":
            keep = self._answer(conn, served, body)
        elif fault.kind == "reset":
            _reset(conn)
            return served, False
        elif fault.kind in ("drop", "stale"):
            return served, False
        elif fault.status is not None:
            extra = {"Retry-After": "1"} if fault.kind.endswith("+ra") else {}
            error = {"error": {"message": f"injected {fault.kind}"}}
            _send(conn, fault.status, json.dumps(error).encode(), extra)
            return served, True
        elif fault.kind == "stall":
            served.gone = _wait_gone(conn, fault.stall, self._stopping)
            return served, False
        else:  # cut
            keep = self._answer(conn, served, body, cut_after=fault.cut_after)
        return served, keep

    def _record(self, served: Served, body: Any, fault: Fault | None) -> None:
        served.fault = fault.kind if fault else None
        with self._lock:
            self.served.append(served)

    # ---- answers -------------------------------------------------------------------

    def _answer(self, conn: socket.socket, served: Served, body: Any,
                cut_after: int | None = None) -> bool:  # fmt: skip
        path = served.path
        if served.method == "GET":
            status, payload = (200, {"status": "ok"}) if path in ("/health", "/v1/models") \
                else (404, {"error": "no such route"})  # fmt: skip
            _send(conn, status, json.dumps(payload).encode())
            served.finished = True
            return True
        if path.endswith("/tokenize"):
            content = body.get("content", "") if isinstance(body, dict) else ""
            _send(conn, 200, json.dumps({"tokens": list(range((len(content) + 3) // 4))}).encode())
            served.finished = True
            return True
        if not path.endswith(STREAMED):
            _send(conn, 404, b'{"error": "no such route"}')
            return True
        event = _event(path)
        pieces = [_frame(event(p, False)) for p in self.respond(path, body)]
        pieces.append(_frame(event("", True)))
        if not path.endswith(("/infill", "/completion")):
            pieces.append(b"data: [DONE]\n\n")
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        conn.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            for i, piece in enumerate(pieces):
                if cut_after is not None and i >= min(cut_after, len(pieces) - 1):
                    conn.shutdown(socket.SHUT_WR)  # mid-stream: the final chunk never comes
                    return False
                conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            conn.sendall(b"0\r\n\r\n")
        except OSError:
            served.gone = True
            return False
        served.finished = True
        return True


class _Reader:
    """Bytes from one connection: request heads within an idle timeout, bodies in full."""

    def __init__(self, conn: socket.socket, stopping: threading.Event) -> None:
        self.conn, self.stopping, self.buffer = conn, stopping, b""

    def head(self, idle: float) -> bytes | None:
        deadline = time.monotonic() + idle
        while b"\r\n\r\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or self.stopping.is_set() or not self._fill(min(left, 0.1), idle=True):
                return None
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        return head

    def exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._fill(5.0):
                break
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def _fill(self, wait: float, idle: bool = False) -> bool:
        """Read what is there; False once the peer closed (or nothing came, unless idle)."""
        readable, _, _ = select.select([self.conn], [], [], wait)
        if not readable:
            return idle
        data = self.conn.recv(65536)
        self.buffer += data
        return bool(data)


def _send(
    conn: socket.socket, status: int, data: bytes, extra: dict[str, str] | None = None
) -> None:
    reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
              503: "Service Unavailable"}.get(status, "Error")  # fmt: skip
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        *(f"{k}: {v}" for k, v in (extra or {}).items()),
    ]
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + data)


def _reset(conn: socket.socket) -> None:
    """Close with RST instead of FIN: what a crashed process or a resetting proxy sends."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def _wait_gone(conn: socket.socket, seconds: float, stopping: threading.Event) -> bool:
    """Say nothing for ``seconds``; True as soon as the client hangs up."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0 and not stopping.is_set():
        readable, _, _ = select.select([conn], [], [], min(left, 0.05))
        if readable:
            try:
                if conn.recv(65536) == b"":
                    return True
            except OSError:
                return True
    return False


def _finish(final: bool) -> str | None:
    return "stop" if final else None


def _frame(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def _event(path: str) -> Callable[[str, bool], dict[str, Any]]:
    def llamacpp(token: str, final: bool) -> dict[str, Any]:
        return {"content": token, "stop": final}

    def chat(token: str, final: bool) -> dict[str, Any]:
        delta = {} if final else {"content": token}
        return {"choices": [{"index": 0, "delta": delta, "finish_reason": _finish(final)}]}

    def text(token: str, final: bool) -> dict[str, Any]:
        return {"choices": [{"index": 0, "text": token, "finish_reason": _finish(final)}]}

    if path.endswith(("/infill", "/completion")):
        return llamacpp
    return chat if path.endswith("/chat/completions") else text
