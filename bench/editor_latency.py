"""What an editor sees: the time Tandem adds to an inline completion over the model's own.

Run from the project root::

    .venv/bin/python bench/editor_latency.py              # scenarios a-c, breakdown, growth
    .venv/bin/python bench/editor_latency.py --no-growth  # scenarios a-c and the breakdown
    .venv/bin/python bench/editor_latency.py --runs 3     # medians of three runs per figure
    .venv/bin/python bench/editor_latency.py --floor-only # the floor table alone

``tandem serve`` runs in its own process over stdio, driven by pytest-lsp's
``LanguageClient`` (what an editor sends: initialize, didOpen, didChange,
``textDocument/inlineCompletion``). Its model is ``tests/modelserver.py`` in another
process (bench/lsp_latency.py's wrapper), answering every request after a 100 ms hang
and timing each request on its side. *Added* milliseconds = what the client measured,
from sending the didOpen/didChange to the answer, minus the model server's own time for
that request: what Tandem and the JSON-RPC round trip cost. Every timed request must
make exactly one model request (checked: a type-ahead or cache hit would flatter us).

*Server CPU ms/req*: the ``tandem serve`` process's CPU time (all its threads, from
``/proc``) over a scenario divided by its requests: what each keystroke costs the server
whatever else the machine runs, where the added milliseconds also hold waits for a core on
a busy machine. The machine's load average is printed with the tables.

The servers of the first run have ``TANDEM_STAGES=1``: their per-stage log lines give the
breakdown tables (the timers are off in the other runs, as in an editor).

Scenarios: (a) didOpen of a new 300-line file, then at once an inline request, 20
different files; (b) typing in an open 300-line file, one character per didChange then
an inline request, 200 keystrokes; (c) the same in a 5,000-line file in a 1,000-file
workspace, then the server's RSS (its model runs in another process). The per-stage
breakdown is the server's own ``TANDEM_STAGES=1`` log of scenario (b). Growth: typing
(60 keystrokes) in 1k/5k/20k-line files (1,000-file workspace) and in a 300-line file in
100/1,000/10,000-file workspaces, with added latency and RSS. The floor
(``latency_floor.py``): a bare pygls server's round trip and a bare httpx request's added
time, measured after the scenarios on the same machine, and both again by clients of raw
bytes (pipes, a socket): what of the floor is the measuring side's own work; and by
asyncio alone (an asyncio-streams HTTP client, a bare asyncio JSON-RPC server): what of it
is the event loop's and what the libraries'.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from latency_floor import (
    asyncio_added,
    httpx_added,
    pygls_round_trips,
    raw_round_trips,
    socket_added,
)
from lsp_latency import (
    MODEL_HANG,
    Editor,
    ModelServerProcess,
    Spot,
    cpu_seconds,
    editor,
    module_source,
    proc_status,
    server_env,
    wait_idle,
)

from tables import percentile, table

TANDEM = str(Path(sys.executable).parent / "tandem")
TARGET_P50, TARGET_P95, TARGET_RSS = 5.0, 15.0, 150.0
TYPED = "compute_ledger_balance_for_the_quarter_"  # never starts a suggestion (" * (1 ...")


# ---- workspaces and files ------------------------------------------------------------------


def make_workspace(root: Path, files: int) -> None:
    """``files`` small modules in packages of 100 (imports between neighbours)."""
    per = 99
    for n in range(files):
        p, m = divmod(n, per + 1)
        package = root / f"pkg_{p:02d}"
        package.mkdir(parents=True, exist_ok=True)
        if m == per:
            (package / "__init__.py").write_text(f'"""Package {p}."""\n')
        else:
            (package / f"mod_{m:03d}.py").write_text(module_source(p, m))


def big_source(lines: int, seed: int = 0) -> str:
    """A module of about ``lines`` lines: imports from the workspace and many functions."""
    used = [(p, 10 + 7 * p) for p in range(8)]
    out = ['"""Pricing for the shop front."""', "", "from __future__ import annotations", ""]
    for p, m in used:
        out.append(f"from pkg_{p:02d}.mod_{m:03d} import Ledger{p}_{m}, scale_{p}_{m}")
    i = 0
    while len(out) < lines:
        p, m = used[i % len(used)]
        out += [
            "",
            "",
            f"def price_{seed}_{i}(items: list[float], rate: float, name: str) -> float:",
            f'    """Price of product line {i}, booked in its own ledger."""',
            f"    subtotal = scale_{p}_{m}(items, rate)",
            "    adjusted = subtotal * rate",
            f"    ledger = Ledger{p}_{m}(name)",
            "    ledger.add(adjusted)",
            "    return ledger.total(rate)",
        ]
        i += 1
    return "\n".join(out) + "\n"


# ---- measuring -----------------------------------------------------------------------------


@dataclass
class Result:
    added_ms: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rss_mb: float = float("nan")
    hwm_mb: float = float("nan")
    cpu_ms: float = float("nan")  # the server's CPU time per timed request (all threads)

    def p(self, q: float) -> float:
        return percentile(self.added_ms, q)


async def timed(ed: Editor, model: ModelServerProcess, result: Result, send, uri, line, col):
    """``send()`` (notifications), then an inline request; added ms over the model's time."""
    before = model.count()
    started = time.perf_counter()
    send()
    items = await ed.inline(uri, line, col)
    elapsed = time.perf_counter() - started
    times = model.times_since(before)
    if len(times) != 1 or not items:
        result.problems.append(f"{len(times)} model requests, {len(items)} items at {line}:{col}")
        return
    result.added_ms.append((elapsed - times[0]) * 1000)


async def scenario_open(ed: Editor, model: ModelServerProcess, root: Path, n: int) -> Result:
    """(a) a new file each time: didOpen then an inline request at once."""
    result = Result()
    new = root / "new"
    new.mkdir(exist_ok=True)
    cpu = cpu_seconds(ed.pid)
    for k in range(n):
        text = big_source(300, seed=1000 + k)
        path = new / f"fresh_{k}.py"
        path.write_text(text)
        line = text.split("\n").index("    adjusted = subtotal * rate", 200)
        col = len("    adjusted = subtotal")
        uri = path.as_uri()

        def send(path: Path = path, text: str = text) -> None:
            ed.open(path, text)

        await timed(ed, model, result, send, uri, line, col)
        ed.close(uri)
    result.cpu_ms = (cpu_seconds(ed.pid) - cpu) * 1000 / max(1, n)
    return result


async def scenario_typing(
    ed: Editor, model: ModelServerProcess, path: Path, keystrokes: int
) -> Result:
    """(b), (c): one character per didChange, each followed by an inline request."""
    result = Result()
    text = path.read_text()
    uri = ed.open(path, text)
    lines = text.split("\n")
    # Type new lines in the middle of the file, inside a function body.
    middle = range(len(lines) // 2, len(lines))
    line = next(i for i in middle if lines[i].startswith("    ledger.add"))
    await ed.barrier(uri)
    await ed.inline(uri, line, 4)  # the first request of a document is scenario (a)'s
    col = None
    typed = 0
    cpu = cpu_seconds(ed.pid)
    while typed < keystrokes:
        if col is None or col >= 4 + len("value = ") + len(TYPED):
            # a new line "    value = " (one edit), then one character at a time
            start = (line + 1, 0) if col is not None else (line, 0)
            ed_text = "    value = \n"
            ed.edit(uri, _spot(*start), _spot(*start), ed_text)
            line = start[0]
            col = len("    value = ")
        char = TYPED[(col - len("    value = ")) % len(TYPED)]

        def send(c: int = col, ch: str = char, ln: int = line) -> None:
            ed.edit(uri, _spot(ln, c), _spot(ln, c), ch)

        await timed(ed, model, result, send, uri, line, col + 1)
        col += 1
        typed += 1
    result.cpu_ms = (cpu_seconds(ed.pid) - cpu) * 1000 / max(1, keystrokes)
    status = proc_status(ed.pid)
    result.rss_mb = status.get("VmRSS", 0) / 1024
    result.hwm_mb = status.get("VmHWM", 0) / 1024
    ed.close(uri)
    return result


def _spot(line: int, character: int) -> Spot:
    return Spot(line, character)


# ---- one server per workspace --------------------------------------------------------------


@dataclass
class Setup:
    files: int
    big_lines: tuple[int, ...] = ()


async def with_server(model: ModelServerProcess, files: int, work, *, stages: Path | None = None):
    """A fresh workspace of ``files`` modules and a fresh ``tandem serve`` on it."""
    with tempfile.TemporaryDirectory(prefix="tandem-editor-bench-") as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        make_workspace(root, files)
        env = server_env(model.url, Path(tmp) / "scratch")
        command = [TANDEM, "serve"]
        if stages is not None:
            env["TANDEM_STAGES"] = "1"
            command = ["sh", "-c", f'exec "{TANDEM}" serve 2>>"{stages}"']
        async with editor(command, env, root) as ed:
            await wait_idle(ed.pid)  # the index is built in the background
            return await work(ed, root)


async def run_abc(model: ModelServerProcess, ns: argparse.Namespace, stages: Path | None):
    """Scenarios a-c; with ``stages`` (a folder), the servers' stage logs go there."""

    async def small(ed: Editor, root: Path):
        a = await scenario_open(ed, model, root, ns.files_a)
        path = root / "typing_300.py"
        path.write_text(big_source(300))
        b = await scenario_typing(ed, model, path, ns.keystrokes)
        return a, b

    async def large(ed: Editor, root: Path):
        path = root / "typing_5000.py"
        path.write_text(big_source(5000))
        return await scenario_typing(ed, model, path, ns.keystrokes)

    a, b = await with_server(model, 100, small, stages=stages and stages / "b.log")
    c = await with_server(model, 1000, large, stages=stages and stages / "c.log")
    return {"a": a, "b": b, "c": c}


async def run_growth(model: ModelServerProcess, keystrokes: int) -> dict[str, Result]:
    out: dict[str, Result] = {}

    def typing(lines: int):
        async def work(ed: Editor, root: Path):
            path = root / f"typing_{lines}.py"
            path.write_text(big_source(lines))
            return await scenario_typing(ed, model, path, keystrokes)

        return work

    for lines in (1000, 5000, 20000):
        out[f"file {lines:,} lines, 1,000 files"] = await with_server(model, 1000, typing(lines))
    for files in (100, 1000, 10000):
        out[f"file 300 lines, {files:,} files"] = await with_server(model, files, typing(300))
    return out


# ---- printing ------------------------------------------------------------------------------

STAGE_LINE = re.compile(r"stages (\w+) ([\d.]+) ms: (.*)")
WRITE_LINE = re.compile(r"stages rpc-write ([\d.]+) ms")


def breakdown(log: Path, label: str, part: slice = slice(None)) -> str:
    """Median milliseconds per stage over the model-answered requests in the server's log;
    ``part``: which of them, in order (one server serves (a) and then (b))."""
    per: dict[str, list[float]] = {}
    totals: list[float] = []
    lines = [m for m in STAGE_LINE.finditer(log.read_text() if log.exists() else "")
             if m.group(1) == "model"]  # fmt: skip
    for match in lines[part]:
        totals.append(float(match.group(2)))
        for item in match.group(3).split(" | "):
            name, _, value = item.rpartition(" ")
            per.setdefault(name, []).append(float(value))
    if not totals:
        return "(no stage lines in the server's log)"
    text = log.read_text()
    writes = [float(m.group(1)) for m in WRITE_LINE.finditer(text)][part]
    per["JSON-RPC write (after the request)"] = writes
    rows = [[name, f"{statistics.median(v):.2f}", f"{percentile(v, 95):.2f}"]
            for name, v in per.items()]  # fmt: skip
    rows.append(["total, model included", f"{statistics.median(totals):.2f}",
                 f"{percentile(totals, 95):.2f}"])  # fmt: skip
    return table([f"stage (server side, {label})", "p50 ms", "p95 ms"], rows)


def median_of(runs: Sequence[Result], what) -> float:
    return statistics.median(what(r) for r in runs)


def scenario_table(runs: Sequence[dict[str, Result]], labels: dict[str, str]) -> str:
    rows = []
    for key, label in labels.items():
        rs = [r[key] for r in runs]
        p50, p95 = median_of(rs, lambda r: r.p(50)), median_of(rs, lambda r: r.p(95))
        rss = median_of(rs, lambda r: r.rss_mb)
        cpu = median_of(rs, lambda r: r.cpu_ms)
        ok = p50 <= TARGET_P50 and p95 <= TARGET_P95
        rows.append([label, str(len(rs[0].added_ms)), f"{p50:.1f}", f"{p95:.1f}", f"{cpu:.1f}",
                     "-" if rss != rss else f"{rss:.0f}", "met" if ok else "MISSED"])  # fmt: skip
    return table(["scenario", "requests", "added p50 ms", "added p95 ms", "server CPU ms/req",
                  "RSS MB", f"target <= {TARGET_P50:g}/{TARGET_P95:g}"], rows)  # fmt: skip


async def floor_table(model: ModelServerProcess, ns: argparse.Namespace) -> str:
    """The floor (``latency_floor.py``): a bare pygls server's JSON-RPC round trip and a
    bare httpx request's added time over the model's, measured now."""
    body = model.body(model.count() - 1)  # the last prompt of scenario (c)
    with tempfile.TemporaryDirectory(prefix="tandem-floor-") as tmp:
        env = server_env(model.url, Path(tmp) / "scratch")
        rpc = await pygls_round_trips(Path(tmp), big_source(300), ns.keystrokes, env)
        raw = raw_round_trips(Path(tmp), big_source(300), ns.keystrokes, env)
        pygls_loop = raw_round_trips(
            Path(tmp), big_source(300), ns.keystrokes, env, server="pygls-loop"
        )
        loop_only = raw_round_trips(
            Path(tmp), big_source(300), ns.keystrokes, env, server="asyncio"
        )
    http = await httpx_added(model, body, ns.keystrokes // 2)
    streams = await asyncio_added(model, body, ns.keystrokes // 2)
    bare = socket_added(model, body, ns.keystrokes // 2)
    rows = [
        ["bare pygls server: didChange + inline request, answered at once", rpc],
        ["bare httpx client: streamed prompt of (c), over the model's own time", http],
    ]
    out = [[label, str(len(v)), f"{percentile(v, 50):.2f}", f"{percentile(v, 95):.2f}"]
           for label, v in rows]  # fmt: skip
    floor = percentile(rpc, 50) + percentile(http, 50)
    out.append(["the floor (sum of the medians)", "", f"{floor:.2f}", ""])
    # What of the floor is the measuring side's (issue 12, fourth round): the same two
    # exchanges by clients of raw bytes, without pytest-lsp or httpx.
    # And what of each is the event loop (fifth round): asyncio alone, no pygls / no httpx.
    for label, v in (
        ["  same pygls server, client of raw bytes on the pipes (no pytest-lsp)", raw],
        ["  same pygls server reading its pipe as Tandem does, raw-bytes client", pygls_loop],
        ["  bare asyncio server (connect_read_pipe, no pygls), raw-bytes client", loop_only],
        ["  same fake model server, asyncio streams client (no httpx)", streams],
        ["  same fake model server, client of raw bytes on a socket (no httpx)", bare],
    ):
        out.append([label, str(len(v)), f"{percentile(v, 50):.2f}", f"{percentile(v, 95):.2f}"])
    return (f"\nThe floor on this machine now ({load()})\n\n"
            + table(["round trip", "n", "p50 ms", "p95 ms"], out))  # fmt: skip


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


async def floor_only(ns: argparse.Namespace) -> None:
    """The floor table alone: a short scenario (c) for its last prompt, then the floor."""
    model = ModelServerProcess()
    try:
        model.set_hang(MODEL_HANG)

        async def large(ed: Editor, root: Path) -> Result:
            path = root / "typing_5000.py"
            path.write_text(big_source(5000))
            return await scenario_typing(ed, model, path, 5)

        await with_server(model, 1000, large)
        print(await floor_table(model, ns))
    finally:
        model.stop()


async def main(ns: argparse.Namespace) -> None:
    if ns.floor_only:
        await floor_only(ns)
        return
    started_load = load()
    model = ModelServerProcess()
    try:
        model.set_hang(MODEL_HANG)
        runs: list[dict[str, Result]] = []
        with tempfile.TemporaryDirectory(prefix="tandem-stages-") as logs:
            for run in range(ns.runs):
                runs.append(await run_abc(model, ns, Path(logs) if run == 0 else None))
                print(f"run {run + 1}/{ns.runs} done", file=sys.stderr)
            first = slice(None, ns.files_a)  # (a)'s requests come first in its server's log
            stage_table = breakdown(Path(logs) / "b.log", "scenario a, run 1", first)
            stage_table += "\n\n" + breakdown(
                Path(logs) / "b.log", "scenario b, run 1", slice(ns.files_a, None)
            )
            stage_table += "\n\n" + breakdown(Path(logs) / "c.log", "scenario c, run 1")
        labels = {
            "a": f"(a) didOpen new 300-line file + inline, {ns.files_a} files",
            "b": f"(b) typing, 300-line file, 100-file workspace, {ns.keystrokes} keys",
            "c": f"(c) typing, 5,000-line file, 1,000-file workspace, {ns.keystrokes} keys",
        }
        print(f"Added latency over the model's {MODEL_HANG * 1000:.0f} ms "
              f"(medians of {ns.runs} run(s); machine at start: {started_load}, "
              f"after a-c: {load()})\n")  # fmt: skip
        print(scenario_table(runs, labels))
        c_rss = statistics.median(r["c"].rss_mb for r in runs)
        print(f"\nRSS after (c): {c_rss:.0f} MB (target <= {TARGET_RSS:g} MB: "
              f"{'met' if c_rss <= TARGET_RSS else 'MISSED'})\n")  # fmt: skip
        print(stage_table)
        problems = [p for r in runs for res in r.values() for p in res.problems]
        if not ns.no_growth:
            growth = [await run_growth(model, ns.growth_keys) for _ in range(ns.runs)]
            rows = []
            for key in growth[0]:
                rs = [g[key] for g in growth]
                rows.append([key, f"{median_of(rs, lambda r: r.p(50)):.1f}",
                             f"{median_of(rs, lambda r: r.p(95)):.1f}",
                             f"{median_of(rs, lambda r: r.cpu_ms):.1f}",
                             f"{median_of(rs, lambda r: r.rss_mb):.0f}",
                             f"{median_of(rs, lambda r: r.hwm_mb):.0f}"])  # fmt: skip
                problems += [p for r in rs for p in r.problems]
            print(f"\nGrowth ({ns.growth_keys} keystrokes per row, medians of {ns.runs} run(s); "
                  f"{load()})\n")  # fmt: skip
            print(table(["typing in", "added p50 ms", "added p95 ms", "server CPU ms/req",
                         "RSS MB", "peak RSS MB"],
                        rows))  # fmt: skip
        if not ns.no_floor:
            print(await floor_table(model, ns))
        if problems:
            print(f"\n{len(problems)} request(s) not counted (not exactly one model request):")
            for p in problems[:10]:
                print("  " + p)
    finally:
        model.stop()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="runs per figure (medians)")
    parser.add_argument("--files-a", type=int, default=20)
    parser.add_argument("--keystrokes", type=int, default=200)
    parser.add_argument("--growth-keys", type=int, default=60)
    parser.add_argument("--no-growth", action="store_true")
    parser.add_argument("--no-floor", action="store_true", help="skip the bare round trips")
    parser.add_argument("--floor-only", action="store_true", help="only the bare round trips")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
