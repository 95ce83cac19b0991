"""Soak test of the language server: an editor typing for minutes across many files.

Run from the project root::

    .venv/bin/python bench/soak.py                  # 10 minutes, 8 keystrokes a second, 20 files
    .venv/bin/python bench/soak.py --minutes 1      # a shorter run

The real ``tandem serve`` runs over stdio under pytest-lsp's ``LanguageClient``. Its model
is the loopback test server (``tests/modelserver.py``) in a child process, answering every
completion after a fixed 150 ms (``--model-ms``) and noticing when a client hangs up.

The editor opens 20 files (Python, JavaScript and Go, 150-300 lines each) and types lines
of code into them at 8 keystrokes a second, moving to another file every few lines. Each
keystroke is a ``didChange`` (one character, or a newline with indentation) and an inline
request; before the next keystroke the editor cancels the previous request if it is still
pending (``$/cancelRequest``, as VS Code does), so most requests are cancelled. At the end
of a line the typist pauses (``--pause``, 0.6 s by default), which lets that line's last
request be answered: a request answered within 125 ms (type-ahead, cache) is answered even
mid-line.

Reported: inline requests asked and how each ended (suggestion, empty, cancelled, error,
no answer); model requests made and how many the model server saw abandoned mid-answer
(cancellation reaching the HTTP request); latency of the requests answered; the server's
RSS after start-up and at the end, and its peak; error statuses; the size of the disk cache.
Every figure is a measurement; the target column only compares.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types as t
from pygls.exceptions import JsonRpcException, JsonRpcRequestCancelled
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from child import stop_process
from tables import ms, percentile, table

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
TANDEM = str(Path(sys.executable).parent / "tandem")
MODEL = "qwen2.5-coder"
SUGGESTION_TOKENS = [" +", " rate", " *", " 2"]
INLINE = "textDocument/inlineCompletion"
SERVE_FLAG = "--serve"
TARGETS = {
    "errors": 0,
    "rss_growth_mb": 50.0,  # RSS at the end over RSS after start-up
    "p95_ms": 500.0,  # answered requests: the model's 150 ms plus queueing behind cancels
}


# ---- the model server (child process) ----------------------------------------------------------


def serve(port: int, model_seconds: float) -> None:
    """``tests/modelserver.py`` answering after ``model_seconds``; ``GET /stats`` counts."""
    sys.path.insert(0, str(TESTS))
    import modelserver

    server = modelserver.ModelServer(tokens=list(SUGGESTION_TOKENS), port=port)
    server.default = modelserver.Behaviour(hang=model_seconds)
    base: Any = server.httpd.RequestHandlerClass

    class WithStats(base):  # type: ignore[misc, valid-type]
        def do_GET(self) -> None:
            if self.path.startswith("/stats"):
                with server._lock:
                    done = [r for r in server.requests if r.done.is_set()]
                    self._json(
                        200,
                        {
                            "count": len(server.requests),
                            "aborted": sum(r.aborted for r in done),
                            "finished": sum(r.finished for r in done),
                        },
                    )
            else:
                super().do_GET()

    server.httpd.RequestHandlerClass = WithStats
    server.httpd.serve_forever()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ModelProcess:
    def __init__(self, model_seconds: float) -> None:
        self.port = free_port()
        command = [sys.executable, __file__, SERVE_FLAG, str(self.port), str(model_seconds)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"the model server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the model server did not start") from None
                time.sleep(0.05)

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.url + "/stats", timeout=10) as response:
            return dict(json.loads(response.read()))

    def stop(self) -> None:
        stop_process(self.proc)


# ---- the workspace -----------------------------------------------------------------------------

LANGUAGES = {  # extension: (LSP id, indent, lines to type)
    "py": (
        "python",
        "    ",
        [
            "subtotal = sum(item.price for item in items)",
            "discount = apply_discount(subtotal, rate)",
            "if discount > limit:",
            "    return limit",
            "total = subtotal - discount",
            "ledger.append((name, total))",
        ],
    ),
    "js": (
        "javascript",
        "  ",
        [
            "const subtotal = items.reduce((a, b) => a + b.price, 0);",
            "const discount = applyDiscount(subtotal, rate);",
            "if (discount > limit) {",
            "  return limit;",
            "}",
            "ledger.push([name, subtotal - discount]);",
        ],
    ),
    "go": (
        "go",
        "\t",
        [
            "subtotal := sum(items)",
            "discount := applyDiscount(subtotal, rate)",
            "if discount > limit {",
            "\treturn limit",
            "}",
            "ledger = append(ledger, subtotal-discount)",
        ],
    ),
}


def function_source(ext: str, i: int) -> list[str]:
    if ext == "py":
        return [f"def price_{i}(items, rate, limit, name, ledger):", "    return None", ""]
    if ext == "js":
        return [f"function price{i}(items, rate, limit, name, ledger) {{", "  return null;", "}"]
    return [f"func price{i}(items []int, rate, limit int, ledger []int) int {{", "\treturn 0", "}"]


def file_source(ext: str, n: int, functions: int) -> str:
    head = {"py": ["import math", ""], "js": ["'use strict';", ""], "go": ["package shop", ""]}
    lines = list(head[ext])
    for i in range(functions):
        lines += function_source(ext, n * 100 + i)
        lines.append("")
    return "\n".join(lines) + "\n"


@dataclass
class Tab:
    """An open document as the editor knows it: text, version, where the cursor is."""

    uri: str
    ext: str
    lines: list[str]
    version: int = 1

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def make_workspace(root: Path, files: int, rng: random.Random) -> list[Tab]:
    tabs = []
    extensions = ["py"] * 12 + ["js"] * 4 + ["go"] * 4
    for n in range(files):
        ext = extensions[n % len(extensions)]
        path = root / f"module_{n:02d}.{ext}"
        text = file_source(ext, n, rng.randrange(40, 80))
        path.write_text(text)
        tabs.append(Tab(path.as_uri(), ext, text.split("\n")))
    return tabs


# ---- the editor --------------------------------------------------------------------------------


@dataclass
class Counts:
    asked: int = 0
    keystrokes: int = 0
    suggestions: int = 0
    empty: int = 0
    cancelled: int = 0
    errors: list[str] = field(default_factory=list)
    unanswered: int = 0
    answered_ms: list[float] = field(default_factory=list)
    suggestion_ms: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    error_statuses: list[str] = field(default_factory=list)
    log: dict[str, int] = field(default_factory=dict)


class Editor:
    def __init__(self, client: LanguageClient, counts: Counts) -> None:
        self.client = client
        self.counts = counts
        self.pending: dict[str, asyncio.Task[None]] = {}
        self.serial = 0

    def open(self, tab: Tab) -> None:
        language = LANGUAGES[tab.ext][0]
        self.client.text_document_did_open(
            t.DidOpenTextDocumentParams(t.TextDocumentItem(tab.uri, language, 1, tab.text))
        )

    def change(self, tab: Tab, line: int, character: int, text: str) -> None:
        tab.version += 1
        here = t.Position(line, character)
        self.client.text_document_did_change(
            t.DidChangeTextDocumentParams(
                t.VersionedTextDocumentIdentifier(version=tab.version, uri=tab.uri),
                [t.TextDocumentContentChangePartial(range=t.Range(here, here), text=text)],
            )
        )

    def cancel_pending(self) -> None:
        for msg_id, task in list(self.pending.items()):
            if not task.done():
                self.client.protocol.notify(t.CANCEL_REQUEST, t.CancelParams(id=msg_id))

    def ask(self, tab: Tab, line: int, character: int) -> None:
        self.serial += 1
        msg_id = f"inline-{self.serial}"
        self.counts.asked += 1
        params = t.InlineCompletionParams(
            context=t.InlineCompletionContext(t.InlineCompletionTriggerKind.Automatic),
            text_document=t.TextDocumentIdentifier(tab.uri),
            position=t.Position(line, character),
        )
        task = asyncio.ensure_future(self._request(msg_id, params))
        self.pending[msg_id] = task
        task.add_done_callback(lambda _: self.pending.pop(msg_id, None))

    async def _request(self, msg_id: str, params: t.InlineCompletionParams) -> None:
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(
                self.client.protocol.send_request_async(INLINE, params, msg_id=msg_id), 30
            )
        except JsonRpcRequestCancelled:
            self.counts.cancelled += 1
            return
        except TimeoutError:
            self.counts.unanswered += 1
            return
        except JsonRpcException as exc:
            self.counts.errors.append(f"{msg_id}: {exc}")
            return
        elapsed = (time.perf_counter() - started) * 1000
        items = result.items if isinstance(result, t.InlineCompletionList) else result or []
        self.counts.answered_ms.append(elapsed)
        if items:
            self.counts.suggestions += 1
            self.counts.suggestion_ms.append(elapsed)
        else:
            self.counts.empty += 1

    async def drain(self) -> None:
        if self.pending:
            await asyncio.wait(list(self.pending.values()), timeout=35)


async def type_for(
    editor: Editor, tabs: list[Tab], seconds: float, rate: float, pause: float, rng: random.Random
) -> float:
    """Type lines into the tabs at ``rate`` keystrokes a second for ``seconds``."""
    interval = 1.0 / rate
    started = time.monotonic()
    next_at = started
    tab = rng.choice(tabs)
    typed_lines = 0
    while time.monotonic() - started < seconds:
        # a line to type: into a function body, before its return
        ext = tab.ext
        indent, templates = LANGUAGES[ext][1], LANGUAGES[ext][2]
        bodies = [i for i, ln in enumerate(tab.lines) if ln.startswith(indent + "return")]
        at = rng.choice(bodies)
        line_text = indent + rng.choice(templates)
        tab.lines.insert(at, indent)
        editor.cancel_pending()
        editor.change(tab, at, 0, indent + "\n")
        column = len(indent)
        for char in line_text[len(indent) :]:
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            editor.cancel_pending()
            editor.change(tab, at, column, char)
            tab.lines[at] = tab.lines[at][:column] + char + tab.lines[at][column:]
            column += 1
            editor.counts.keystrokes += 1
            editor.ask(tab, at, column)
            if time.monotonic() - started >= seconds:
                break
        typed_lines += 1
        if pause:
            next_at += pause
        if typed_lines % 3 == 0:
            tab = rng.choice(tabs)  # another tab
    await editor.drain()
    return time.monotonic() - started


# ---- the server process ------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.startswith("Vm") and value.strip().endswith("kB"):
            out[key] = int(value.split()[0])
    return out


def cache_figures(folder: Path) -> tuple[int, int]:
    """Bytes on disk and entries of the completion cache."""
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0
    entries = 0
    with contextlib.suppress(Exception):
        import diskcache

        with diskcache.Cache(str(folder)) as cache:
            entries = len(cache)
    return size, entries


def log_figures(path: Path) -> dict[str, int]:
    """The server's stderr: tracebacks, errors, and warnings (the benign cancel race apart)."""
    text = path.read_text(errors="replace") if path.exists() else ""
    lines = text.splitlines()
    race = sum("Cancel notification for unknown message id" in ln for ln in lines)
    return {
        "tracebacks": text.count("Traceback"),
        "errors": sum(ln.startswith(("ERROR", "CRITICAL")) for ln in lines),
        "warnings": sum(ln.startswith("WARNING") for ln in lines) - race,
        "cancel_races": race,
    }


def mb(kb: int) -> str:
    return f"{kb / 1024:.1f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


async def main(ns: argparse.Namespace) -> int:
    rng = random.Random(ns.seed)
    scratch = Path(tempfile.mkdtemp(prefix="tandem-soak-"))
    model = ModelProcess(ns.model_ms / 1000)
    counts = Counts()
    try:
        root = scratch / "workspace"
        root.mkdir()
        tabs = make_workspace(root, ns.files, rng)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
        for key in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
            env[key] = str(scratch / key.lower())
        cache_dir = scratch / "cache"
        env.update(
            TANDEM_PROVIDER="openai",
            TANDEM_ENDPOINT=model.url + "/v1",
            TANDEM_MODEL=MODEL,
            TANDEM_CACHE_DIR=str(cache_dir),
            TANDEM_TIMEOUT="10",
            NO_PROXY="127.0.0.1",
            no_proxy="127.0.0.1",
        )
        log = scratch / "server.log"  # its stderr, read at the end (exec: the same pid)
        command = ["/bin/sh", "-c", f'exec "{TANDEM}" serve 2>>"{log}"']
        config = ClientServerConfig(server_command=command, server_env=env)
        client = await config.start()

        @client.feature("tandem/status")
        def on_status(params: Any) -> None:
            state = getattr(params, "state", None) or (params or {}).get("state")
            counts.statuses[state] = counts.statuses.get(state, 0) + 1
            if state == "error":
                message = getattr(params, "message", None) or params.get("message")
                counts.error_statuses.append(str(message))

        try:
            await client.initialize_session(
                t.InitializeParams(
                    capabilities=client_capabilities("visual-studio-code"),
                    root_uri=root.as_uri(),
                    workspace_folders=[t.WorkspaceFolder(root.as_uri(), root.name)],
                )
            )
            assert client._server is not None
            pid = client._server.pid
            editor = Editor(client, counts)
            for tab in tabs:
                editor.open(tab)
            await asyncio.sleep(2)  # indexing, tokenizer warm-up
            start = proc_status(pid)
            started = time.perf_counter()
            seconds = await type_for(editor, tabs, ns.minutes * 60, ns.rate, ns.pause, rng)
            end = proc_status(pid)
            alive = client._server.returncode is None
            await asyncio.wait_for(client.shutdown_session(), 10)
        finally:
            await asyncio.wait_for(client.stop(), 10)
        stats = model.stats()
        cache_bytes, cache_entries = cache_figures(cache_dir / "completions")
        counts.log = log_figures(log)
    finally:
        model.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    report(ns, counts, stats, start, end, alive, seconds, cache_bytes, cache_entries, started)
    return 0 if not problems(counts, start, end, alive) else 1


def problems(counts: Counts, start: dict[str, int], end: dict[str, int], alive: bool) -> list[str]:
    found = []
    if counts.errors or counts.unanswered or counts.error_statuses or not alive:
        found.append("errors")
    if counts.log.get("tracebacks") or counts.log.get("errors"):
        found.append("errors")
    if (end.get("VmRSS", 0) - start.get("VmRSS", 0)) / 1024 > TARGETS["rss_growth_mb"]:
        found.append("rss")
    return found


def report(
    ns: argparse.Namespace,
    c: Counts,
    stats: dict[str, int],
    start: dict[str, int],
    end: dict[str, int],
    alive: bool,
    seconds: float,
    cache_bytes: int,
    cache_entries: int,
    started: float,
) -> None:
    print(
        f"# Soak: {seconds / 60:.1f} minutes of typing, {ns.rate:g} keystrokes/s, "
        f"{ns.files} files, model {ns.model_ms:g} ms"
    )
    print()
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs. "
        f"Server: `tandem serve` (stdio) -> loopback model server (child process) answering "
        f"after {ns.model_ms:g} ms. A {ns.pause:g} s pause at each line end; seed {ns.seed}."
    )
    print()
    made, aborted = stats["count"], stats["aborted"]
    errors = len(c.errors) + c.unanswered + len(c.error_statuses) + (0 if alive else 1)
    errors += c.log.get("tracebacks", 0) + c.log.get("errors", 0)
    growth = end.get("VmRSS", 0) - start.get("VmRSS", 0)
    p50 = percentile(c.answered_ms, 50) / 1000
    p95 = percentile(c.answered_ms, 95) / 1000
    rows = [
        ["keystrokes (didChange + inline request each)", f"{c.keystrokes}", ""],
        ["  rate achieved (keystrokes/s, pauses included)", f"{c.keystrokes / seconds:.2f}", ""],
        ["inline requests asked", f"{c.asked}", ""],
        ["  cancelled by the editor before an answer", f"{c.cancelled}", ""],
        ["  answered with a suggestion", f"{c.suggestions}", ""],
        ["  answered empty (superseded, or nothing to say)", f"{c.empty}", ""],
        ["  error answers / no answer in 30 s", f"{len(c.errors)} / {c.unanswered}", "0"],
        ["model requests made", f"{made}", ""],
        ["  of those, abandoned mid-answer (client hung up)", f"{aborted}", ""],
        ["  answered to the end", f"{stats['finished']}", ""],
        ["requests asked per model answer read to the end", f"{c.asked / max(1, stats['finished']):.1f}", ""],  # noqa: E501
        ["latency of answered requests, p50 (ms)", ms(p50), ""],
        ["latency of answered requests, p95 (ms)", ms(p95), f"< {TARGETS['p95_ms']:g}"],
        ["latency with a suggestion, p50 / p95 (ms)",
         f"{ms(percentile(c.suggestion_ms, 50) / 1000)} / "
         f"{ms(percentile(c.suggestion_ms, 95) / 1000)}", ""],
        ["server RSS after start-up (MB)", mb(start.get("VmRSS", 0)), ""],
        ["server RSS at the end (MB)", mb(end.get("VmRSS", 0)), ""],
        ["  growth (MB)", mb(growth), f"< {TARGETS['rss_growth_mb']:g}"],
        ["  peak, VmHWM (MB)", mb(end.get("VmHWM", 0)), ""],
        ["status notifications: ready / busy / error",
         f"{c.statuses.get('ready', 0)} / {c.statuses.get('busy', 0)} / "
         f"{c.statuses.get('error', 0)}", ""],
        ["server log: tracebacks / errors / warnings",
         f"{c.log.get('tracebacks', 0)} / {c.log.get('errors', 0)} / {c.log.get('warnings', 0)}",
         ""],
        ["  cancels that crossed the answer (logged, harmless)",
         f"{c.log.get('cancel_races', 0)}", ""],
        ["errors (all of the above that are errors, or an exit)", f"{errors}", "0"],
        ["completion cache on disk (kB / entries)", f"{cache_bytes / 1024:.0f} / {cache_entries}", ""],  # noqa: E501
    ]  # fmt: skip
    print(table(["measure", "value", "target"], rows))
    print()
    verdicts = [
        f"errors {verdict(errors == TARGETS['errors'])}",
        f"RSS growth {verdict(growth / 1024 < TARGETS['rss_growth_mb'])}",
        f"p95 {verdict(p95 * 1000 < TARGETS['p95_ms'])}",
    ]
    print("Targets: " + ", ".join(verdicts) + ".")
    for line in (c.errors + c.error_statuses)[:10]:
        print(f"- {line}")
    print()
    print(f"total run time: {time.perf_counter() - started:.1f}s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to type (10)")
    parser.add_argument("--rate", type=float, default=8.0, help="keystrokes a second (8)")
    parser.add_argument("--files", type=int, default=20, help="open files typed into (20)")
    parser.add_argument("--model-ms", type=float, default=150.0, help="model latency (150)")
    parser.add_argument("--pause", type=float, default=0.6, help="seconds at each line end")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(SERVE_FLAG, nargs=2, metavar=("PORT", "SECONDS"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    if args.serve is not None:
        serve(int(args.serve[0]), float(args.serve[1]))
    else:
        sys.exit(asyncio.run(main(args)))
