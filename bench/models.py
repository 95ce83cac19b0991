"""Benchmark of the model clients' HTTP overhead.

Run from the project root::

    .venv/bin/python bench/models.py            # full run (200 requests per row)
    .venv/bin/python bench/models.py --quick    # 30 requests per row

Section 1 puts ``OpenAIClient`` next to a bare ``httpx.AsyncClient`` against the
loopback test server (``tests/modelserver.py``'s ``ModelServer``). By default the
server runs in a child process (so its Python work does not share the GIL with
the client being measured) with TCP_NODELAY set on its sockets: run unchanged
(``--server stock``) it stalls about 40 ms per streamed answer on Nagle's
algorithm, which hides everything the client does. A second server that paces its
pieces 5 ms apart shows what the client does to time-to-first-piece.
The embedded model has its own bench: ``bench/embedded.py``.

Everything printed is a measurement (medians and percentiles of repeated runs);
nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tandem.models.base import ChatMessage, ChatOptions, FimRequest, collect
from tandem.models.fim import get_template
from tandem.models.http import HttpEndpoint
from tandem.models.openai import OpenAIClient

from child import free_port, stop_process, wait_for_port
from tables import ms, percentile, table

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"

WARMUP = 20
MODEL = "bench-model"

# About 40 lines of ordinary Python, ending where a completion is expected.
PY_PREFIX = '''\
"""Inventory bookkeeping for a small shop."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path



@dataclass
class Item:
    sku: str
    name: str
    price: float
    quantity: int = 0
    tags: list[str] = field(default_factory=list)

    def total_value(self) -> float:
        return self.price * self.quantity


class Inventory:
    def __init__(self) -> None:
        self.items: dict[str, Item] = {}

    def add(self, item: Item) -> None:
        if item.sku in self.items:
            self.items[item.sku].quantity += item.quantity
        else:
            self.items[item.sku] = item

    def remove(self, sku: str, quantity: int) -> None:
        item = self.items[sku]
        if quantity > item.quantity:
            raise ValueError(f"only {item.quantity} of {sku} left")
        item.quantity -= quantity

    def total_value(self) -> float:
        return sum(item.total_value() for item in self.items.values())

    def load_csv(self, path: Path) -> None:
'''

PY_SUFFIX = """

    def save_json(self, path: Path) -> None:
        path.write_text(json.dumps([vars(i) for i in self.items.values()]))
"""

CHAT_QUESTION = "Write a Python function is_prime(n) that returns True when n is prime."


# ---- statistics and printing -----------------------------------------------------------


# ---- section 1: HTTP client overhead ---------------------------------------------------

# What the bench's own server streams: one line of code in model-sized pieces.
SERVER_TOKENS = [
    "        with", " open", "(path", ",", " newline", '=""', ")", " as", " fh", ":\n",
    "            for", " row", " in", " csv", ".Dict", "Reader", "(fh", "):\n",
    "                self", ".add(Item(**row))\n",
]  # fmt: skip
PACE = 0.005  # seconds between pieces on the paced server
SERVE_FLAG = "--serve"


def serve(port: int, pace: float) -> None:
    """The child-process server: ``tests/modelserver.py`` with TCP_NODELAY on its sockets.

    The stock handler leaves Nagle's algorithm on and writes every SSE chunk with
    its own send(); the second small write then waits for the client's delayed ACK
    (about 40 ms on Linux), which would swamp everything measured here.
    """
    server = start_model_server(port, pace)
    server.httpd.serve_forever()


def start_model_server(port: int, pace: float) -> Any:
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    import modelserver

    modelserver._Handler.disable_nagle_algorithm = True
    server = modelserver.ModelServer(tokens=list(SERVER_TOKENS), port=port)
    server.default = modelserver.Behaviour(delay=pace)
    return server


@dataclass
class Pair:
    """Timings of one scenario, bare httpx vs our client, in seconds."""

    label: str
    raw: list[float] = field(default_factory=list)
    ours: list[float] = field(default_factory=list)


class ServerProcess:
    """A model server in a child process (its own GIL); ``stock`` runs the test file as is."""

    def __init__(self, *, stock: bool = False, pace: float = 0.0) -> None:
        self.port = free_port()
        if stock:
            cmd = [sys.executable, str(TESTS / "modelserver.py"), "--port", str(self.port)]
        else:
            cmd = [sys.executable, __file__, SERVE_FLAG, str(self.port), "--pace", str(pace)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(self.port, self.proc)
        except BaseException:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.proc)


class ServerThread:
    """The same server in a thread of this process (shares the GIL with the client)."""

    def __init__(self, *, pace: float = 0.0) -> None:
        self.server = start_model_server(0, pace).start()
        self.url = self.server.url

    def stop(self) -> None:
        self.server.stop()


async def time_call(fn: Callable[[], Awaitable[float | None]]) -> float:
    """Wall time of ``fn``, or the time it reports itself (time to first piece)."""
    t0 = time.perf_counter()
    reported = await fn()
    return reported if reported is not None else time.perf_counter() - t0


async def run_pair(
    pair: Pair,
    raw: Callable[[], Awaitable[float | None]],
    ours: Callable[[], Awaitable[float | None]],
    n: int,
    warmup: int,
) -> None:
    """Warm both sides up, then alternate which goes first so drift hits both alike."""
    for _ in range(warmup):
        await raw()
        await ours()
    gc.collect()
    for i in range(n):
        if i % 2:
            pair.ours.append(await time_call(ours))
            pair.raw.append(await time_call(raw))
        else:
            pair.raw.append(await time_call(raw))
            pair.ours.append(await time_call(ours))


async def first_piece_of(stream: AsyncIterator[str], t0: float) -> float:
    """Seconds from ``t0`` to the first piece of ``stream``; the rest is drained."""
    first: float | None = None
    async for _ in stream:
        if first is None:
            first = time.perf_counter() - t0
    return first if first is not None else time.perf_counter() - t0


class HttpScenarios:
    """The same requests made by a bare ``httpx.AsyncClient`` and by ``OpenAIClient``.

    One client per side for every request (keep-alive), with the same pool limits.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        template = get_template("starcoder")
        self.client = OpenAIClient(HttpEndpoint(url + "/v1", timeout=10), MODEL, template)
        self.raw_client = httpx.AsyncClient(
            timeout=httpx.Timeout(10, connect=5),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        )
        self.request = FimRequest(
            prefix=PY_PREFIX, suffix=PY_SUFFIX, max_tokens=64, temperature=0.2
        )
        self.messages = [ChatMessage("user", CHAT_QUESTION)]
        self.options = ChatOptions(max_tokens=64, temperature=0.2)
        # The bodies our client sends, so both sides move the same bytes.
        self.completion_body = self.client.fim_request(self.request).body
        self.chat_body = {
            "model": MODEL,
            "messages": [m.as_dict() for m in self.messages],
            "max_tokens": self.options.max_tokens,
            "temperature": self.options.temperature,
            "stream": True,
        }
        self.completions_url = url + "/v1/completions"
        self.chat_url = url + "/v1/chat/completions"

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.raw_client.aclose()

    # whole answers
    async def raw_completion(self) -> None:
        response = await self.raw_client.post(self.completions_url, json=self.completion_body)
        response.raise_for_status()
        _ = response.content

    async def ours_completion(self) -> None:
        await collect(self.client.complete(self.request))

    async def raw_chat(self) -> None:
        async with self.raw_client.stream("POST", self.chat_url, json=self.chat_body) as r:
            r.raise_for_status()
            async for _ in r.aiter_lines():
                pass

    async def ours_chat(self) -> None:
        await collect(self.client.chat(self.messages, self.options))

    # time to first piece
    async def _raw_first(self, target: str, body: dict[str, Any], key: Sequence[str]) -> float:
        """Time to the first ``data:`` event carrying text (parsed as a client would)."""
        t0 = time.perf_counter()
        first: float | None = None
        async with self.raw_client.stream("POST", target, json=body) as response:
            async for line in response.aiter_lines():
                if first is None and line.startswith("data:") and "[DONE]" not in line:
                    value: Any = json.loads(line[5:])["choices"][0]
                    for k in key:
                        value = value.get(k) if isinstance(value, dict) else None
                    if value:
                        first = time.perf_counter() - t0
        return first if first is not None else time.perf_counter() - t0

    async def raw_completion_ttft(self) -> float:
        return await self._raw_first(self.completions_url, self.completion_body, ("text",))

    async def ours_completion_ttft(self) -> float:
        return await first_piece_of(self.client.complete(self.request), time.perf_counter())

    async def raw_chat_ttft(self) -> float:
        return await self._raw_first(self.chat_url, self.chat_body, ("delta", "content"))

    async def ours_chat_ttft(self) -> float:
        stream = self.client.chat(self.messages, self.options)
        return await first_piece_of(stream, time.perf_counter())

    async def first_piece_notes(self) -> list[str]:
        """What each side had in hand at its first piece (one untimed, instrumented call)."""
        endpoint = HttpEndpoint(self.url + "/v1", timeout=10)
        client = OpenAIClient(endpoint, MODEL, self.client.template)
        original = endpoint.stream_lines
        seen: list[str] = []

        def counting(path: str, body: Any, **kw: Any) -> AsyncIterator[str]:
            async def lines() -> AsyncIterator[str]:
                async for line in original(path, body, **kw):
                    if line.startswith("data:") and "[DONE]" not in line:
                        text = json.loads(line[5:])["choices"][0].get("text")
                        if text:
                            seen.append(text)
                    yield line

            return lines()

        endpoint.stream_lines = counting  # type: ignore[method-assign]
        pieces: list[str] = []
        seen_at_first = 0
        try:
            async for piece in client.complete(self.request):
                if not pieces:
                    seen_at_first = len(seen)
                pieces.append(piece)
        finally:
            await endpoint.aclose()
        stops = client.stop_sequences(self.request)
        return [
            f"server text events ({len(seen)}): {seen!r}",
            f"raw first piece: {seen[0]!r} (text event 1 of {len(seen)})",
            f"ours (complete()) first piece: {pieces[0]!r}, yielded after text event "
            f"{seen_at_first} of {len(seen)}; {len(pieces)} pieces in all. cut_at_stops holds "
            f"back only text that could start a stop (stops: {stops!r})",
        ]


async def bench_http(
    url: str, n: int, warmup: int, rows: Sequence[str], suffix: str = ""
) -> tuple[list[Pair], list[str]]:
    labels = {
        "completion": "completions, whole answer (raw: POST, read body; ours: complete())",
        "chat": "chat, whole answer (raw: stream, read all lines; ours: chat())",
        "completion_ttft": "completions, time to first piece",
        "chat_ttft": "chat, time to first piece",
    }
    s = HttpScenarios(url)
    pairs = []
    try:
        for key in rows:
            pair = Pair(labels[key] + suffix)
            await run_pair(pair, getattr(s, f"raw_{key}"), getattr(s, f"ours_{key}"), n, warmup)
            pairs.append(pair)
        notes = await s.first_piece_notes()
    finally:
        await s.aclose()
    return pairs, notes


def http_table(pairs: Sequence[Pair]) -> str:
    rows = []
    for p in pairs:
        raw50, raw95 = percentile(p.raw, 50), percentile(p.raw, 95)
        our50, our95 = percentile(p.ours, 50), percentile(p.ours, 95)
        rows.append(
            [
                p.label,
                str(len(p.raw)),
                ms(raw50),
                ms(raw95),
                ms(our50),
                ms(our95),
                f"{(our50 - raw50) * 1000:+.2f}",
                f"{(our95 - raw95) * 1000:+.2f}",
            ]
        )
    return table(
        ["scenario", "n", "raw p50", "raw p95", "ours p50", "ours p95", "added p50", "added p95"],
        rows,
    )


# ---- main ------------------------------------------------------------------------------


def header() -> str:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = os.cpu_count() or 0
    return (
        f"# tandem model-client benchmark: cpu_count={os.cpu_count()} (usable {affinity}), "
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}, httpx {httpx.__version__}"
    )


async def main(ns: argparse.Namespace) -> None:
    n = 30 if ns.quick else ns.requests
    started = time.perf_counter()
    print(header())
    print()

    all_rows = ("completion", "chat", "completion_ttft", "chat_ttft")
    server: ServerProcess | ServerThread = (
        ServerThread() if ns.server == "thread" else ServerProcess(stock=ns.server == "stock")
    )
    try:
        pairs, notes = await bench_http(server.url, n, WARMUP, all_rows)
    finally:
        server.stop()
    paced_notes: list[str] = []
    n_paced = min(n, 40)
    if ns.server != "stock":
        paced: ServerProcess | ServerThread = (
            ServerThread(pace=PACE) if ns.server == "thread" else ServerProcess(pace=PACE)
        )
        try:
            more, paced_notes = await bench_http(
                paced.url,
                n_paced,
                5,
                ("completion_ttft", "chat_ttft"),
                f", server paced {PACE * 1000:g} ms/piece (n={n_paced})",
            )
        finally:
            paced.stop()
        pairs += more
    where = {
        "process": "in a child process, TCP_NODELAY on",
        "stock": "tests/modelserver.py run unchanged in a child process (Nagle on)",
        "thread": "in a thread of this process, TCP_NODELAY on",
    }[ns.server]
    print(
        f"## 1. HTTP client overhead vs bare httpx (ms; server {where}; {WARMUP} warm-up + "
        f"{n} timed requests per side, sides alternating; one keep-alive client per side)"
    )
    print()
    print(http_table(pairs))
    print()
    print("added = ours minus raw at the same percentile. What the first piece was:")
    for note in paced_notes or notes:
        print(f"- {note}")
    print()

    print(f"total benchmark time: {time.perf_counter() - started:.1f}s")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per row")
    parser.add_argument("--quick", action="store_true", help="30 requests per row")
    parser.add_argument(
        "--server",
        choices=("process", "stock", "thread"),
        default="process",
        help="loopback model server: child process with TCP_NODELAY (default), "
        "tests/modelserver.py unchanged (Nagle's 40 ms stalls), or a thread of this process",
    )
    parser.add_argument(SERVE_FLAG, type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--pace", type=float, default=0.0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    if args.serve is not None:
        serve(args.serve, args.pace)
    else:
        asyncio.run(main(args))
