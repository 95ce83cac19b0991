"""Benchmark of the language server as an editor sees it: inline-completion latency and memory.

Run from the project root::

    .venv/bin/python bench/lsp_latency.py            # 100 cold, 200 per hit row, 1,000 completions
    .venv/bin/python bench/lsp_latency.py --quick    # 20 cold, 50 per hit row, 200 completions

The real ``tandem serve`` is started over stdio under pytest-lsp's ``LanguageClient``
(initialize, didOpen, didChange, ``textDocument/inlineCompletion``), as an editor would
drive it. Its model is the loopback test server (``tests/modelserver.py``'s
``ModelServer``) in a child process with TCP_NODELAY, speaking the OpenAI completions
wire format (``TANDEM_PROVIDER=openai``, so no embedded model is loaded). The bench asks
that server, outside the timed windows, how many requests it has seen and how long it
spent on each (from ``do_POST`` to the last byte written), so every row below is checked:
a miss made exactly one model request, a hit made none.

The workspace is generated: about 1,000 small Python modules in packages (imports between
them, so the context engine resolves definitions) plus ``app/service.py``, a 650-line
module that the latency sections edit, with four of its imports open as neighbour tabs.

1. Latency. (a) cold: a new position every time (neither the cache nor type-ahead can
   answer), the model answering after a fixed hang of 100 ms; the model's own time is
   taken per request on the server and, for comparison, by replaying the same body with
   a bare ``httpx.AsyncClient``. (b) cache hit: the same request again after the
   document was closed and reopened (closing forgets type-ahead; without it, the
   repeated request is answered by type-ahead, which is shown as its own row).
   (c) type-ahead: didChange types the first characters of the suggestion, then an
   inline request at the new position (timed from the didChange). (d) the floor: a bare
   pygls server written in this file (``--baseline-server``) answering every inline
   request with a constant item, and tandem's own trivial answer (an automatic
   ``textDocument/completion``, which it answers empty without work).
2. Memory: a fresh server in the same workspace; after indexing, completions over a
   rotating set of open documents (misses, cache hits after reopening, type-ahead hits);
   then the server process's peak RSS (``VmHWM`` in ``/proc/PID/status``); and, in a
   fresh interpreter, what importing the server and loading its tokenizer cost.
3. Where the time goes: ``Session.inline`` driven in this process (no LSP) in the same
   workspace, with wall-clock timers wrapped around the functions a miss and a cache
   hit go through (patched in this process only), and the garbage collector's pauses.

Everything printed is a measurement (medians and percentiles of repeated runs); the
target column only compares. On a busy machine the figures are worse than on a quiet one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from lsprotocol import types as t
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from child import free_port, stop_process, wait_for_port
from tables import ms, percentile, table

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
TANDEM = str(Path(sys.executable).parent / "tandem")
MODEL = "qwen2.5-coder"
MODEL_HANG = 0.100  # seconds before the model server's status line in section 1(a)
# The model's answer: a single line that continues an expression at the end of a line.
SUGGESTION_TOKENS = [" *", " (", "1", " +", " rate", " /", " 100", ")"]
SUGGESTION = "".join(SUGGESTION_TOKENS)
TARGETS = {
    "added_ms": 3.0,  # p50 over the model's own time, cold
    "hit_ms": 2.0,  # p50, cache and type-ahead hits
    "rss_mb": 150.0,  # peak, after the completions of section 2
}
SERVE_FLAG = "--serve"
BASELINE_FLAG = "--baseline-server"
OPEN_TABS = 20  # documents kept open in section 2 (older ones are closed)


# ---- statistics and printing (as in bench/models.py) -----------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


# ---- the model server (child process) --------------------------------------------------


def serve(port: int) -> None:
    """``tests/modelserver.py`` with TCP_NODELAY, a per-request timer and a control API.

    ``GET /stats?since=N``: the request count and the server-side seconds of requests
    N, N+1, ... (``do_POST`` entry to the last byte written); ``GET /body?index=N``: the
    JSON body of request N; ``GET /set?hang=S``: the default behaviour from now on.
    """
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from urllib.parse import parse_qs, urlsplit

    import modelserver

    modelserver._Handler.disable_nagle_algorithm = True
    server = modelserver.ModelServer(tokens=list(SUGGESTION_TOKENS), port=port)
    times: dict[int, float] = {}
    base: Any = server.httpd.RequestHandlerClass

    class Timed(base):  # type: ignore[misc, valid-type]
        def do_POST(self) -> None:
            started = time.perf_counter()
            with server._lock:
                index = len(server.requests)  # the index do_POST will record this under
            try:
                super().do_POST()
            finally:
                with server._lock:
                    times[index] = time.perf_counter() - started

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/stats":
                since = int(query.get("since", 0))
                deadline = time.monotonic() + 2.0
                while True:  # the last request's timer stops just after its last byte
                    with server._lock:
                        count = len(server.requests)
                        done = all(i in times for i in range(since, count))
                        value = {
                            "count": count,
                            "times": [times.get(i) for i in range(since, count)],
                        }
                    if done or time.monotonic() > deadline:
                        break
                    time.sleep(0.001)
                self._json(200, value)
            elif parts.path == "/body":
                self._json(200, server.requests[int(query["index"])].body)
            elif parts.path == "/set":
                server.default = modelserver.Behaviour(hang=float(query.get("hang", 0)))
                self._json(200, {"hang": server.default.hang})
            else:
                super().do_GET()

    server.httpd.RequestHandlerClass = Timed
    server.httpd.serve_forever()


class ModelServerProcess:
    """The model server in a child process, with its control API (blocking calls)."""

    def __init__(self) -> None:
        self.port = free_port()
        cmd = [sys.executable, __file__, SERVE_FLAG, str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        try:
            wait_for_port(self.port, self.proc)
        except BaseException:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{self.port}"

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())

    def count(self) -> int:
        return int(self._get("/stats?since=1000000000")["count"])

    def times_since(self, since: int) -> list[float]:
        return [float(x) for x in self._get(f"/stats?since={since}")["times"] if x is not None]

    def body(self, index: int) -> dict[str, Any]:
        return dict(self._get(f"/body?index={index}"))

    def set_hang(self, seconds: float) -> None:
        self._get(f"/set?hang={seconds}")

    def stop(self) -> None:
        stop_process(self.proc)


# ---- the baseline language server (child process) --------------------------------------


def baseline_server(start: bool = True) -> Any:
    """A bare pygls server: every inline request gets the same item, nothing else is done.
    ``start`` False: the server, not started (``latency_floor`` starts it its own way)."""
    from pygls.lsp.server import LanguageServer

    server = LanguageServer("lsp-latency-baseline", "1")

    @server.feature(t.TEXT_DOCUMENT_INLINE_COMPLETION, t.InlineCompletionOptions())
    async def inline(ls: LanguageServer, params: t.InlineCompletionParams) -> Any:
        pos = params.position
        item = t.InlineCompletionItem(
            insert_text=SUGGESTION,
            range=t.Range(pos, pos),
            command=t.Command(
                title="Accept",
                command="baseline.accept",
                arguments=[{"uri": params.text_document.uri, "text": SUGGESTION}],
            ),
        )
        return t.InlineCompletionList(items=[item])

    @server.feature(t.TEXT_DOCUMENT_COMPLETION, t.CompletionOptions(trigger_characters=[]))
    async def completion(ls: LanguageServer, params: t.CompletionParams) -> t.CompletionList:
        return t.CompletionList(is_incomplete=False, items=[])

    if not start:
        return server
    server.start_io()
    return None


# ---- the workspace ---------------------------------------------------------------------

PACKAGES = 10
MODULES_PER_PACKAGE = 99  # + one __init__.py each: 1,000 files
SERVICE_FUNCTIONS = 64


def module_name(p: int, m: int) -> str:
    return f"pkg_{p:02d}.mod_{m:03d}"


def module_source(p: int, m: int) -> str:
    """A small module: two functions and a class, importing from the module before it."""
    tag = f"{p}_{m}"
    lines = [f'"""Ledger helpers, part {p}.{m}."""', "", "from __future__ import annotations", ""]
    if m:
        prev = f"{p}_{m - 1}"
        lines += [f"from {module_name(p, m - 1)} import Ledger{prev}, scale_{prev}", ""]
        total = f"scale_{prev}(self.entries, rate)"
    else:
        total = "sum(self.entries) * rate"
    lines += [
        "",
        f"def scale_{tag}(items: list[float], rate: float) -> float:",
        '    """Sum the items and apply the rate."""',
        "    subtotal = sum(items)",
        "    adjusted = subtotal * rate",
        "    return adjusted",
        "",
        "",
        f"def merge_{tag}(left: dict[str, float], right: dict[str, float]) -> dict[str, float]:",
        "    merged = dict(left)",
        "    for key, value in right.items():",
        "        merged[key] = merged.get(key, 0.0) + value",
        "    return merged",
        "",
        "",
        f"class Ledger{tag}:",
        "    def __init__(self, name: str) -> None:",
        "        self.name = name",
        "        self.entries: list[float] = []",
        "",
        "    def add(self, amount: float) -> None:",
        "        self.entries.append(amount)",
        "",
        "    def total(self, rate: float) -> float:",
        f"        base = {total}",
        "        return base",
        "",
    ]
    if m:
        lines += [
            "",
            f"def history_{tag}(name: str) -> Ledger{prev}:",
            f"    return Ledger{prev}(name)",
        ]
        lines.append("")
    return "\n".join(lines)


def service_source() -> str:
    """``app/service.py``: imports from eight modules and many small pricing functions."""
    used = [(p, 10 + 7 * p) for p in range(8)]
    lines = ['"""Pricing for the shop front: one function per product line."""', ""]
    lines += ["from __future__ import annotations", ""]
    for p, m in used:
        lines.append(f"from {module_name(p, m)} import Ledger{p}_{m}, merge_{p}_{m}, scale_{p}_{m}")
    lines.append("")
    for i in range(SERVICE_FUNCTIONS):
        p, m = used[i % len(used)]
        lines += [
            "",
            f"def price_{i}(items: list[float], rate: float, name: str) -> float:",
            f'    """Price of product line {i}, booked in its own ledger."""',
            f"    subtotal = scale_{p}_{m}(items, rate)",
            "    adjusted = subtotal * rate",
            f"    ledger = Ledger{p}_{m}(name)",
            "    ledger.add(adjusted)",
            f"    merge_{p}_{m}({{name: adjusted}}, {{}})",
            "    return ledger.total(rate)",
            "",
        ]
    return "\n".join(lines)


@dataclass(frozen=True)
class Spot:
    """A cursor at the end of a line that ends an expression (a single-line completion)."""

    line: int
    character: int


def spots(text: str) -> list[Spot]:
    """Line ends where the model's answer continues an expression: ``= ...`` lines."""
    out = []
    for i, line in enumerate(text.split("\n")):
        stripped = line.strip()
        if stripped.startswith(("subtotal = ", "adjusted = ", "base = ")):
            out.append(Spot(i, len(line)))
    return out


@dataclass
class Workspace:
    root: Path
    service: Path
    neighbours: list[Path]
    modules: list[Path]  # every generated module except the __init__ files

    @property
    def files(self) -> int:
        return sum(1 for _ in self.root.rglob("*.py"))


def make_workspace(root: Path) -> Workspace:
    modules = []
    for p in range(PACKAGES):
        package = root / f"pkg_{p:02d}"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(f'"""Package {p}."""\n')
        for m in range(MODULES_PER_PACKAGE):
            path = package / f"mod_{m:03d}.py"
            path.write_text(module_source(p, m))
            modules.append(path)
    app = root / "app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    service = app / "service.py"
    service.write_text(service_source())
    neighbours = [root / (module_name(p, 10 + 7 * p).replace(".", "/") + ".py") for p in range(4)]
    return Workspace(root, service, neighbours, modules)


# ---- the LSP client --------------------------------------------------------------------


@dataclass
class Editor:
    """One LSP connection, with what an editor tracks: open documents and their versions."""

    client: LanguageClient
    versions: dict[str, int] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        server = self.client._server
        assert server is not None
        return int(server.pid)

    def open(self, path: Path, text: str | None = None) -> str:
        uri = path.as_uri()
        text = path.read_text() if text is None else text
        self.versions[uri] = 1
        self.client.text_document_did_open(
            t.DidOpenTextDocumentParams(t.TextDocumentItem(uri, "python", 1, text))
        )
        return uri

    def close(self, uri: str) -> None:
        self.versions.pop(uri, None)
        self.client.text_document_did_close(
            t.DidCloseTextDocumentParams(t.TextDocumentIdentifier(uri))
        )

    def edit(self, uri: str, start: Spot, end: Spot, text: str) -> None:
        self.versions[uri] += 1
        span = t.Range(t.Position(start.line, start.character), t.Position(end.line, end.character))
        self.client.text_document_did_change(
            t.DidChangeTextDocumentParams(
                t.VersionedTextDocumentIdentifier(version=self.versions[uri], uri=uri),
                [t.TextDocumentContentChangePartial(range=span, text=text)],
            )
        )

    async def inline(self, uri: str, line: int, character: int) -> list[str]:
        result = await self.client.text_document_inline_completion_async(
            t.InlineCompletionParams(
                context=t.InlineCompletionContext(t.InlineCompletionTriggerKind.Automatic),
                text_document=t.TextDocumentIdentifier(uri),
                position=t.Position(line, character),
            )
        )
        if result is None:
            return []
        items = result.items if isinstance(result, t.InlineCompletionList) else result
        return [i.insert_text if isinstance(i.insert_text, str) else "" for i in items]

    async def barrier(self, uri: str) -> None:
        """A request tandem answers at once (automatic completion: empty, no model).

        Messages are handled in order, so once it is answered every notification sent
        before it (didOpen, didChange: their parses) has been processed.
        """
        await self.client.text_document_completion_async(
            t.CompletionParams(
                text_document=t.TextDocumentIdentifier(uri),
                position=t.Position(0, 0),
                context=t.CompletionContext(
                    t.CompletionTriggerKind.TriggerForIncompleteCompletions
                ),
            )
        )


@contextlib.asynccontextmanager
async def editor(command: list[str], env: dict[str, str], root: Path) -> AsyncIterator[Editor]:
    config = ClientServerConfig(server_command=command, server_env=env)
    client = await config.start()

    @client.feature("tandem/status")
    def on_status(params: Any) -> None:
        pass

    try:
        await client.initialize_session(
            t.InitializeParams(
                capabilities=client_capabilities("visual-studio-code"),
                root_uri=root.as_uri(),
                workspace_folders=[t.WorkspaceFolder(root.as_uri(), root.name)],
                initialization_options={},
            )
        )
        yield Editor(client)
    finally:
        try:
            await asyncio.wait_for(client.shutdown_session(), 10)
        finally:
            await asyncio.wait_for(client.stop(), 10)


def server_env(model_url: str, scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    for key in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        folder = scratch / key.lower()
        folder.mkdir(parents=True, exist_ok=True)
        env[key] = str(folder)
    env.update(
        TANDEM_PROVIDER="openai",
        TANDEM_ENDPOINT=model_url + "/v1",
        TANDEM_MODEL=MODEL,
        TANDEM_CACHE_DIR=str(scratch / "cache"),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


# ---- the server process ----------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM... of a process, in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.startswith("Vm") and value.strip().endswith("kB"):
            out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_idle(pid: int, timeout: float = 300.0) -> float:
    """Wait until the process has used no CPU for a while (background indexing done)."""
    started = time.monotonic()
    last, quiet = cpu_seconds(pid), 0
    while time.monotonic() - started < timeout:
        await asyncio.sleep(0.25)
        now = cpu_seconds(pid)
        quiet = quiet + 1 if now - last <= 0.011 else 0
        last = now
        if quiet >= 4:
            return time.monotonic() - started - 1.0
    return float("nan")


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()


# ---- section 1: latency ----------------------------------------------------------------


@dataclass
class Row:
    label: str
    seconds: list[float] = field(default_factory=list)
    target: float | None = None  # p50 ms


class Checks:
    """Model-request counts seen around each timed request, and what they should have been."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def expect(self, what: str, got: int, want: int) -> None:
        if got != want and len(self.failures) < 20:
            self.failures.append(f"{what}: {got} model requests, expected {want}")


async def cold_rows(
    ed: Editor,
    uri: str,
    model: ModelServerProcess,
    positions: Sequence[Spot],
    warmup: int,
    checks: Checks,
) -> tuple[Row, Row, Row, Row, Row]:
    """(a): a new position each time; the model hangs MODEL_HANG before answering."""
    total = Row("cold: inline request, total (editor's view)")
    server_side = Row("  the model's own time, on the model server (do_POST to last byte)")
    added = Row("  added = total - model's own time (paired per request)", [], TARGETS["added_ms"])
    raw = Row("  reference: the same body replayed by a bare httpx.AsyncClient")
    added_raw = Row("  added over the bare httpx replay (paired per request)")
    model.set_hang(MODEL_HANG)
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(10, connect=5),
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        trust_env=False,
    ) as raw_client:
        gc.collect()
        for i, spot in enumerate(positions):
            before = model.count()
            t0 = time.perf_counter()
            items = await ed.inline(uri, spot.line, spot.character)
            elapsed = time.perf_counter() - t0
            after = model.count()
            checks.expect(f"cold request {i}", after - before, 1)
            if items != [SUGGESTION]:
                checks.failures.append(f"cold request {i} at {spot}: answered {items!r}")
            own = model.times_since(before)
            body = model.body(after - 1)
            t1 = time.perf_counter()
            async with raw_client.stream("POST", model.url + "/v1/completions", json=body) as r:
                r.raise_for_status()
                async for _ in r.aiter_bytes():
                    pass
            replay = time.perf_counter() - t1
            if i < warmup or len(own) != 1:
                continue
            total.seconds.append(elapsed)
            server_side.seconds.append(own[0])
            added.seconds.append(elapsed - own[0])
            raw.seconds.append(replay)
            added_raw.seconds.append(elapsed - replay)
    model.set_hang(0)
    return total, server_side, added, raw, added_raw


async def cache_rows(
    ed: Editor,
    path: Path,
    text: str,
    spot: Spot,
    n: int,
    warmup: int,
    model: ModelServerProcess,
    checks: Checks,
) -> tuple[Row, Row]:
    """(b): the same request again; type-ahead forgotten by closing and reopening."""
    uri = path.as_uri()
    before = model.count()
    first = await ed.inline(uri, spot.line, spot.character)  # primes cache and type-ahead
    checks.expect("cache priming request", model.count() - before, 1)
    cache = Row("cache hit: same request after didClose + didOpen", [], TARGETS["hit_ms"])
    repeat = Row("same request repeated, document left open (type-ahead answers it)")
    repeat.target = TARGETS["hit_ms"]
    gc.collect()
    before = model.count()
    for i in range(warmup + n):
        ed.close(uri)
        ed.open(path, text)
        await ed.barrier(uri)
        t0 = time.perf_counter()
        items = await ed.inline(uri, spot.line, spot.character)
        elapsed = time.perf_counter() - t0
        if items != first:
            checks.failures.append(f"cache hit {i}: answered {items!r}, first {first!r}")
        if i >= warmup:
            cache.seconds.append(elapsed)
    checks.expect(f"{warmup + n} cache hits", model.count() - before, 0)
    before = model.count()
    for i in range(warmup + n):
        t0 = time.perf_counter()
        items = await ed.inline(uri, spot.line, spot.character)
        elapsed = time.perf_counter() - t0
        if items != first:
            checks.failures.append(f"repeat {i}: answered {items!r}, first {first!r}")
        if i >= warmup:
            repeat.seconds.append(elapsed)
    checks.expect(f"{warmup + n} repeated requests", model.count() - before, 0)
    return cache, repeat


async def typeahead_row(
    ed: Editor,
    uri: str,
    spot: Spot,
    n: int,
    warmup: int,
    model: ModelServerProcess,
    checks: Checks,
) -> Row:
    """(c): type the first 1..6 characters of the suggestion, ask at the new position."""
    before = model.count()
    first = await ed.inline(uri, spot.line, spot.character)
    checks.expect("type-ahead priming request", model.count() - before, 1)
    suggestion = first[0] if first else ""
    row = Row("type-ahead hit: didChange (typed 1-6 chars) + inline request", [], TARGETS["hit_ms"])
    if len(suggestion) < 2:
        checks.failures.append(f"type-ahead: no usable suggestion ({first!r})")
        return row
    gc.collect()
    before = model.count()
    for i in range(warmup + n):
        typed = suggestion[: 1 + i % min(6, len(suggestion) - 1)]
        end = Spot(spot.line, spot.character + len(typed))
        t0 = time.perf_counter()
        ed.edit(uri, spot, spot, typed)
        items = await ed.inline(uri, end.line, end.character)
        elapsed = time.perf_counter() - t0
        if items != [suggestion[len(typed) :]]:
            checks.failures.append(f"type-ahead {i} ({typed!r}): answered {items!r}")
        ed.edit(uri, spot, end, "")  # back to where the suggestion was made
        await ed.barrier(uri)
        if i >= warmup:
            row.seconds.append(elapsed)
    checks.expect(f"{warmup + n} type-ahead requests", model.count() - before, 0)
    return row


async def floor_rows(ed: Editor, uri: str, n: int, warmup: int, label: str) -> Row:
    row = Row(label)
    gc.collect()
    for i in range(warmup + n):
        t0 = time.perf_counter()
        await ed.barrier(uri)
        if i >= warmup:
            row.seconds.append(time.perf_counter() - t0)
    return row


async def baseline_rows(ws: Workspace, n: int, warmup: int, spot: Spot) -> tuple[Row, Row]:
    command = [sys.executable, __file__, BASELINE_FLAG]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    inline = Row("baseline: bare pygls server, constant inline item (the floor)")
    async with editor(command, env, ws.root) as ed:
        uri = ed.open(ws.service)
        gc.collect()
        for i in range(warmup + n):
            t0 = time.perf_counter()
            items = await ed.inline(uri, spot.line, spot.character)
            elapsed = time.perf_counter() - t0
            assert items == [SUGGESTION], items
            if i >= warmup:
                inline.seconds.append(elapsed)
        completion = await floor_rows(
            ed, uri, n, warmup, "baseline: bare pygls server, completion answered empty"
        )
    return inline, completion


def latency_table(rows: Sequence[Row]) -> str:
    out = []
    for r in rows:
        p50 = percentile(r.seconds, 50)
        target = ""
        if r.target is not None:
            target = f"{verdict(p50 * 1000 <= r.target)} (<= {r.target:g} ms)"
        out.append(
            [
                r.label,
                str(len(r.seconds)),
                ms(p50),
                ms(percentile(r.seconds, 95)),
                ms(min(r.seconds)) if r.seconds else "nan",
                ms(max(r.seconds)) if r.seconds else "nan",
                target,
            ]
        )
    return table(["case", "n", "p50 ms", "p95 ms", "min ms", "max ms", "target p50"], out)


# ---- section 2: memory -----------------------------------------------------------------


@dataclass
class MemoryResult:
    files: int
    index_seconds: float
    after_start: dict[str, int]
    after_first: dict[str, int]  # right after the first completion
    first_seconds: float  # the first completion's latency (it loads the tokenizer)
    after_run: dict[str, int]
    completions: int
    misses: int
    hits: dict[str, int]
    kinds: dict[str, list[float]]
    documents: int
    seconds: float


async def bench_memory(
    ws: Workspace,
    env: dict[str, str],
    model: ModelServerProcess,
    completions: int,
    checks: Checks,
) -> MemoryResult:
    """Completions over rotating open documents; five per visit of a document.

    Each visit opens the next document (at most OPEN_TABS stay open; the oldest is
    closed): a miss at its first spot, a miss at its second spot, the same request
    again (type-ahead), two characters of the suggestion typed (type-ahead), then the
    document closed and reopened as it is on disk and the first spot asked again (a
    cache hit: closing forgets type-ahead, and the open tabs are the same so the
    prompt is too). Documents are taken in a stride over the workspace, none twice.
    """
    model.set_hang(0)
    visits = -(-completions // 5)
    stride = max(1, len(ws.modules) // max(1, visits))
    pool = ws.modules[::stride]
    kinds: dict[str, list[float]] = {"miss": [], "cache": [], "typeahead": []}
    hits = {"cache": 0, "typeahead": 0}
    misses = done = 0
    seen: dict[Path, int] = {}
    open_uris: list[str] = []
    first: dict[str, int] | None = None
    first_seconds = float("nan")
    async with editor([TANDEM, "serve"], env, ws.root) as ed:
        pid = ed.pid
        index_seconds = await wait_idle(pid)
        after_start = proc_status(pid)
        started = time.perf_counter()

        async def ask(uri: str, spot: Spot, kind: str, label: str) -> list[str]:
            nonlocal done, misses, first, first_seconds
            before = model.count()
            t0 = time.perf_counter()
            items = await ed.inline(uri, spot.line, spot.character)
            elapsed = time.perf_counter() - t0
            made = model.count() - before
            checks.expect(label, made, 1 if kind == "miss" else 0)
            if first is None:  # loads the tokenizer: reported on its own
                first, first_seconds = proc_status(pid), elapsed
            else:
                kinds[kind].append(elapsed)
            if kind == "miss":
                misses += made
            else:
                hits[kind] += made == 0
            done += 1
            return items

        def reopen(path: Path, text: str) -> str:
            uri = path.as_uri()
            if uri in open_uris:
                open_uris.remove(uri)
                ed.close(uri)
            uri = ed.open(path, text)
            open_uris.append(uri)
            return uri

        v = 0
        while done < completions:
            path = pool[v % len(pool)]
            v += 1
            text = path.read_text()
            where = spots(text)
            seen[path] = seen.get(path, 0) + 1
            uri = reopen(path, text)
            if len(open_uris) > OPEN_TABS:
                ed.close(open_uris.pop(0))
            name = path.relative_to(ws.root)
            plan = [
                ("miss", where[0], "first spot"),
                ("miss", where[1], "second spot"),
                ("typeahead", where[1], "second spot again"),
                ("typed", where[1], "second spot, 2 characters typed"),
                ("cache", where[0], "first spot after reopening"),
            ]
            suggestion: list[str] = []
            for kind, spot, label in plan:
                if done >= completions:
                    break
                if kind == "typed":
                    if not suggestion or len(suggestion[0]) < 3:
                        continue
                    ed.edit(uri, spot, spot, suggestion[0][:2])
                    spot, kind = Spot(spot.line, spot.character + 2), "typeahead"
                elif kind == "cache":
                    uri = reopen(path, text)
                    await ed.barrier(uri)
                items = await ask(uri, spot, kind, f"{name}: {label}")
                if label == "second spot":
                    suggestion = items
        seconds = time.perf_counter() - started
        after_run = proc_status(pid)
    return MemoryResult(
        ws.files,
        index_seconds,
        after_start,
        first or {},
        first_seconds,
        after_run,
        done,
        misses,
        hits,
        kinds,
        len(seen),
        seconds,
    )


def mb(kb: int) -> str:
    return f"{kb / 1024:.1f}"


def memory_tables(m: MemoryResult) -> tuple[str, str]:
    peak = m.after_run.get("VmHWM", 0)
    ok = peak / 1024 <= TARGETS["rss_mb"]
    rows = [
        ["after initialize + indexing (VmRSS)", mb(m.after_start.get("VmRSS", 0)), ""],
        ["  peak so far (VmHWM)", mb(m.after_start.get("VmHWM", 0)), ""],
        ["after the first completion (VmRSS)", mb(m.after_first.get("VmRSS", 0)), ""],
        [
            f"after {m.completions} completions: peak (VmHWM)",
            mb(peak),
            f"{verdict(ok)} (<= {TARGETS['rss_mb']:g} MB)",
        ],
        ["  current (VmRSS)", mb(m.after_run.get("VmRSS", 0)), ""],
    ]
    memory = table(["tandem serve process", "MB", "target"], rows)
    kinds = [["first completion (loads the tokenizer)", "1", ms(m.first_seconds), ""]]
    for kind, label in (
        ("miss", "miss (model answers at once)"),
        ("cache", "cache hit (document closed and reopened)"),
        ("typeahead", "type-ahead hit (repeat, or 2 chars typed)"),
    ):
        values = m.kinds[kind]
        kinds.append(
            [label, str(len(values)), ms(percentile(values, 50)), ms(percentile(values, 95))]
        )
    return memory, table(["completion", "n", "p50 ms", "p95 ms"], kinds)


# ---- section 3: where the time goes -----------------------------------------------------

# Run in a fresh interpreter (``python -c``): RSS at start, after importing the server, and
# after the tokenizer a first completion loads (``OpenAIClient.tokenizer`` ->
# ``tokenizer_for_model``: for a non-OpenAI model name, o200k from bpe-openai, scaled).
MEMORY_PROBE = """
import gc, json, os, sys, time
def status():
    out = {}
    for line in open(f"/proc/{os.getpid()}/status"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out
def collect():
    t0 = time.perf_counter(); gc.collect(); return time.perf_counter() - t0
start = status()["VmRSS"]
import tandem.lsp.server
collect()
imported, gc_imported = status()["VmRSS"], collect()
from tandem.models.tokens import tokenizer_for_model

t0 = time.perf_counter()
tokenizer = tokenizer_for_model(sys.argv[1])
tokenizer.count("x = 1")
seconds = time.perf_counter() - t0
collect()
gc_tokenizer = collect()
print(json.dumps({"start": start, "imported": imported, "tokenizer": status()["VmRSS"],
    "tokenizer_seconds": seconds, "tokenizer_name": tokenizer.name,
    "gc_imported": gc_imported, "gc_tokenizer": gc_tokenizer}))
"""


def run_memory_probe() -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, MODEL], capture_output=True, text=True, timeout=120
    )
    if out.returncode:
        raise SystemExit(f"the memory probe failed:\n{out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


class Timers:
    """Wall time per labelled function, summed over one request (functions may nest)."""

    def __init__(self) -> None:
        self.current: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.sizes: dict[str, int] = {}
        self._restore: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        original = getattr(owner, attr)
        timers = self

        def add(started: float, result: Any) -> None:
            timers.current[label] = timers.current.get(label, 0.0) + time.perf_counter() - started
            timers.calls[label] = timers.calls.get(label, 0) + 1
            if isinstance(result, list):
                timers.sizes[label] = len(result)

        if asyncio.iscoroutinefunction(original):

            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                result = await original(*args, **kwargs)
                add(started, result)
                return result

            setattr(owner, attr, async_wrapper)
        else:

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                result = original(*args, **kwargs)
                add(started, result)
                return result

            setattr(owner, attr, wrapper)
        self._restore.append((owner, attr, original))

    def take(self) -> dict[str, float]:
        taken, self.current = self.current, {}
        return taken

    def restore(self) -> None:
        for owner, attr, original in reversed(self._restore):
            setattr(owner, attr, original)
        self._restore.clear()


def timed_functions() -> list[tuple[str, Any, str, int]]:
    """(label, module or class, attribute, depth): what prepare() and finish() call, nested."""
    import tandem.completion as completion
    import tandem.context.engine as engine
    import tandem.session as session
    from tandem.cache import CompletionCache
    from tandem.context.index import WorkspaceIndex
    from tandem.context.tags import TopLevelNames

    functions = [
        ("prepare(): tokenizer + prompt assembly in a worker thread", session, "prepare", 0),
        ("prepare_sync", completion, "prepare_sync", 1),
        ("wants_block (one line or a block? parses the window)", completion, "wants_block", 2),
        ("ContextEngine.candidates", engine.ContextEngine, "candidates", 2),
        ("extract_tags(whole document) for defined_here", engine, "extract_tags", 3),
        ("TopLevelNames for defined_here", TopLevelNames, "__call__", 3),
        ("resolve_imports", engine, "resolve_imports", 3),
        ("imported_definitions", engine, "imported_definitions", 3),
        ("ContextEngine._index_definitions", engine.ContextEngine, "_index_definitions", 3),
        ("WorkspaceIndex.rank", WorkspaceIndex, "rank", 4),
        ("ContextEngine._snippets (neighbour tabs)", engine.ContextEngine, "_snippets", 3),
        ("scope_headers", engine, "scope_headers", 3),
        ("build_prompt (budget, render the FIM prompt)", engine, "build_prompt", 2),
        ("CompletionCache.get", CompletionCache, "get", 0),
        ("_read: the model request (HTTP, answer at once)", completion, "_read", 0),
        ("read_answer: the model request (HTTP, answer at once)", completion, "read_answer", 0),
        ("postprocess (in a worker thread)", completion, "postprocess", 0),
        ("CompletionCache.set", CompletionCache, "set", 0),
    ]
    # The server changes under this bench: time what the current code has.
    return [f for f in functions if callable(getattr(f[1], f[2], None))]


@dataclass
class Breakdown:
    labels: list[tuple[str, int]]
    cold: list[dict[str, float]]
    hits: list[dict[str, float]]
    calls: dict[str, float]
    ranked: int
    sources: dict[str, str]
    gc_pauses: dict[int, list[float]]  # per generation, during the timed requests
    full_collection: float  # one gc.collect() with the session loaded


async def bench_breakdown(
    ws: Workspace, env: dict[str, str], model: ModelServerProcess, n: int, warmup: int
) -> Breakdown:
    """``Session.inline`` in this process (no LSP), with timers around its parts."""
    from tandem.config import load_settings
    from tandem.session import Session
    from tandem.workspace import open_workspace

    model.set_hang(0)
    settings = load_settings(ws.root, environ=env)
    session = Session(open_workspace(settings, ws.root))
    session.start()
    assert session.workspace.index is not None
    session.workspace.index.wait(300)
    for path in ws.neighbours:
        session.documents.open(path.as_uri(), path.read_text(), "python", 1)
    text = ws.service.read_text()
    uri = ws.service.as_uri()
    session.documents.open(uri, text, "python", 1)
    where = spots(text)
    timers = Timers()
    functions = timed_functions()
    cold: list[dict[str, float]] = []
    hits: list[dict[str, float]] = []
    sources: dict[str, str] = {}
    for label, owner, attr, _ in functions:
        timers.wrap(owner, attr, label)
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    gc_started: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[:] = [time.perf_counter()]
        elif gc_started:
            pauses[info["generation"]].append(time.perf_counter() - gc_started[0])

    try:
        await session.inline(uri, where[-3].line, where[-3].character)  # loads the tokenizer
        t0 = time.perf_counter()
        gc.collect()
        full_collection = time.perf_counter() - t0
        gc.callbacks.append(on_gc)
        for i, spot in enumerate(where[: warmup + n]):
            if i == warmup:
                timers.calls.clear()
            timers.take()
            t0 = time.perf_counter()
            answer = await session.inline(uri, spot.line, spot.character)
            total = time.perf_counter() - t0
            sources.setdefault("a new position", answer.source if answer else "none")
            if i >= warmup:
                cold.append({"total": total, **timers.take()})
        calls = {k: v / max(1, n) for k, v in timers.calls.items()}
        spot = where[0]
        answer = await session.inline(uri, spot.line, spot.character)
        sources["the same position again"] = answer.source if answer else "none"
        for i in range(warmup + n):
            session.typeahead.forget(uri)  # what didClose does
            timers.take()
            t0 = time.perf_counter()
            answer = await session.inline(uri, spot.line, spot.character)
            total = time.perf_counter() - t0
            sources["the same position, type-ahead forgotten"] = answer.source if answer else "-"
            if i >= warmup:
                hits.append({"total": total, **timers.take()})
        ranked = timers.sizes.get("WorkspaceIndex.rank", 0)
    finally:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(on_gc)
        timers.restore()
        await session.close()
    labels = [(f[0], f[3]) for f in functions]
    return Breakdown(labels, cold, hits, calls, ranked, sources, pauses, full_collection)


def breakdown_table(b: Breakdown) -> str:
    def cell(rows: list[dict[str, float]], key: str, q: float) -> str:
        values = [r.get(key, 0.0) for r in rows]
        return ms(percentile(values, q))

    out = [
        [
            "Session.inline, total",
            "",
            cell(b.cold, "total", 50),
            cell(b.cold, "total", 95),
            cell(b.hits, "total", 50),
            cell(b.hits, "total", 95),
        ]
    ]
    for label, depth in b.labels:
        out.append(
            [
                "  " * (depth + 1) + label,
                f"{b.calls.get(label, 0):g}",
                cell(b.cold, label, 50),
                cell(b.cold, label, 95),
                cell(b.hits, label, 50),
                cell(b.hits, label, 95),
            ]
        )
    return table(
        ["part", "calls/miss", "miss p50", "miss p95", "cache hit p50", "cache hit p95"], out
    )


# ---- main ------------------------------------------------------------------------------


def header() -> str:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = os.cpu_count() or 0
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"# tandem language-server latency benchmark: cpu_count={os.cpu_count()} (usable "
        f"{affinity}), load average {load}, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.machine()}, "
        f"pygls {_version('pygls')}, pytest-lsp {_version('pytest-lsp')}, tandem {_git_state()}"
    )


def _git_state() -> str:
    """The commit, and whether server/ differs from it (the server is under active work)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "server"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "(no git)"
    return f"{head or '?'}{' + uncommitted changes in server/' if dirty else ''}"


def _version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


async def main(ns: argparse.Namespace) -> None:
    n = ns.requests or (50 if ns.quick else 200)
    n_cold = ns.cold or (20 if ns.quick else 100)
    completions = ns.completions or (200 if ns.quick else 1000)
    warmup = 5 if ns.quick else 20
    cold_warmup = 3 if ns.quick else 10
    n_breakdown = 20 if ns.quick else 50
    started = time.perf_counter()
    print(header())
    print()
    sys.stdout.flush()
    scratch = Path(tempfile.mkdtemp(prefix="tandem-lsp-bench-"))
    model = ModelServerProcess()
    checks = Checks()
    try:
        ws = make_workspace(scratch / "workspace")
        files = ws.files
        text = ws.service.read_text()
        where = spots(text)
        cache_spot, typeahead_spot = where[-1], where[-2]
        cold = where[: min(len(where) - 2, cold_warmup + n_cold)]
        if len(cold) < cold_warmup + n_cold:
            raise SystemExit(f"only {len(cold)} cold positions for {cold_warmup + n_cold}")
        env = server_env(model.url, scratch / "latency")
        async with editor([TANDEM, "serve"], env, ws.root) as ed:
            pid = ed.pid
            index_seconds = await wait_idle(pid)
            for path in ws.neighbours:
                ed.open(path)
            uri = ed.open(ws.service, text)
            await ed.barrier(uri)
            cold_result = await cold_rows(ed, uri, model, cold, cold_warmup, checks)
            cache, repeat = await cache_rows(
                ed, ws.service, text, cache_spot, n, warmup, model, checks
            )
            typeahead = await typeahead_row(ed, uri, typeahead_spot, n, warmup, model, checks)
            floor = await floor_rows(
                ed, uri, n, warmup, "tandem: completion request answered empty (no model)"
            )
            server_cmd = command_line(pid)
        base_inline, base_completion = await baseline_rows(ws, n, warmup, cache_spot)
        memory = await bench_memory(
            ws, server_env(model.url, scratch / "memory"), model, completions, checks
        )
        probe = run_memory_probe()
        breakdown = await bench_breakdown(
            ws, server_env(model.url, scratch / "breakdown"), model, n_breakdown, cold_warmup
        )
    finally:
        model.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    print(
        f"Workspace: {files} generated Python files (10 packages of 100 modules, and "
        f"app/service.py of {text.count(chr(10))} lines, edited below with "
        f"{len(ws.neighbours)} neighbours open). Server: `{server_cmd}`, "
        f"provider openai -> loopback model server (child process, TCP_NODELAY). "
        f"Indexing took about {index_seconds:.1f}s before measuring."
    )
    print()
    print(
        f"## 1. Inline-completion latency (ms, wall time at the LSP client from request sent "
        f"to response parsed; {warmup} warm-up requests per row, {cold_warmup} for cold)"
    )
    print()
    print(
        f"(a) cold: the model server hangs {MODEL_HANG * 1000:g} ms, then streams "
        f"{len(SUGGESTION_TOKENS)} pieces at once ({SUGGESTION!r}). (b)(c) hits must make no "
        "model request (checked by the model server's request count). (d) floor rows."
    )
    print()
    rows = [
        *cold_result,
        cache,
        repeat,
        typeahead,
        floor,
        base_inline,
        base_completion,
    ]
    print(latency_table(rows))
    print()
    floor50 = percentile(base_inline.seconds, 50)
    for r in (cache, repeat, typeahead):
        print(
            f"- {r.label.split(':')[0]}: p50 {ms(percentile(r.seconds, 50))} ms, of which "
            f"{ms(floor50)} ms is the bare pygls round trip; tandem's own work "
            f"{ms(percentile(r.seconds, 50) - floor50)} ms."
        )
    print()
    print(
        f"## 2. Memory: {memory.completions} completions over {memory.documents} documents "
        f"(at most {OPEN_TABS} open at once), fresh server, "
        f"{memory.files} files in the workspace (indexed in about {memory.index_seconds:.1f}s)"
    )
    print()
    mem_table, kind_table = memory_tables(memory)
    print(mem_table)
    print()
    print(
        f"Completions: {memory.misses} misses (one model request each), "
        f"{memory.hits['cache']} cache hits and {memory.hits['typeahead']} type-ahead hits "
        f"(no model request), in {memory.seconds:.1f}s:"
    )
    print()
    print(kind_table)
    print()
    print(
        f"In a fresh interpreter (python -c): {mb(probe['start'])} MB at start, "
        f"{mb(probe['imported'])} MB after importing tandem.lsp.server, "
        f"{mb(probe['tokenizer'])} MB after loading the tokenizer a first completion loads "
        f"({probe['tokenizer_name']}: {probe['tokenizer_seconds'] * 1000:.0f} ms, "
        f"+{mb(probe['tokenizer'] - probe['imported'])} MB). A full gc.collect() there: "
        f"{ms(probe['gc_imported'])} ms before the tokenizer, {ms(probe['gc_tokenizer'])} ms "
        "after."
    )
    print()
    print(
        f"## 3. Where the time goes: Session.inline in this process (no LSP), same workspace "
        f"and tabs, model answering at once; {n_breakdown} misses at new positions and "
        f"{n_breakdown} cache hits (type-ahead forgotten first), ms per request"
    )
    print()
    print(breakdown_table(breakdown))
    print()
    print(
        f"WorkspaceIndex.rank returned {breakdown.ranked} definitions on the last request "
        "(_index_definitions keeps 6). Which source answered (InlineAnswer.source): "
        + "; ".join(f"{k}: {v}" for k, v in breakdown.sources.items())
        + "."
    )
    pauses = breakdown.gc_pauses
    print(
        f"Garbage collector during those {2 * n_breakdown} requests (this process holds the "
        f"same session, tokenizer and index): "
        + ", ".join(
            f"generation {g}: {len(p)} collections, max {ms(max(p, default=0))} ms"
            for g, p in pauses.items()
        )
        + f". One full gc.collect() here: {ms(breakdown.full_collection)} ms."
    )
    print()
    if checks.failures:
        print("CHECKS FAILED:")
        for failure in checks.failures:
            print(f"- {failure}")
    else:
        print("All checks passed: every miss made one model request, every hit none.")
    print()
    print(f"total benchmark time: {time.perf_counter() - started:.1f}s")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 hits, 20 cold, 200 completions")
    parser.add_argument("--requests", type=int, default=0, help="timed hits per row (200)")
    parser.add_argument("--cold", type=int, default=0, help="timed cold requests (100)")
    parser.add_argument(
        "--completions", type=int, default=0, help="completions before reading RSS (1000)"
    )
    parser.add_argument(SERVE_FLAG, type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument(BASELINE_FLAG, action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    if args.serve is not None:
        serve(args.serve)
    elif args.baseline_server:
        baseline_server()
    else:
        asyncio.run(main(args))
