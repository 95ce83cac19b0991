"""CPU a keystroke, in this process: scenario (c) of editor_latency.py without the LSP pipes.

Run from the project root::

    .venv/bin/python bench/keystroke_cpu.py                 # 200 keystrokes, 5,000 lines
    .venv/bin/python bench/keystroke_cpu.py --profile 25    # and cProfile's top 25 functions
    .venv/bin/python bench/keystroke_cpu.py --open 20       # scenario (a): new 300-line files

``Session.inline`` is driven directly (``documents.change`` then ``inline``, one character
a keystroke, as editor_latency.py types), against the loopback model server answering at
once. Printed: the process's CPU milliseconds a keystroke (``time.process_time``: all this
process's threads, which on a shared machine moves far less than wall time) and the
medians of the per-stage timers (``TANDEM_STAGES``). The model server runs in its own
process, so its CPU is not counted.
"""

from __future__ import annotations

import os

os.environ["TANDEM_STAGES"] = "1"  # before tandem.stages is imported

import argparse
import asyncio
import cProfile
import gc
import logging
import pstats
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from editor_latency import TYPED, big_source, make_workspace
from lsp_latency import ModelServerProcess, server_env

PER_REQUEST: list[float] = []
GC_PAUSES: dict[int, list[float]] = {0: [], 1: [], 2: []}
_gc_started: list[float] = []


def on_gc(phase: str, info: dict[str, int]) -> None:
    """The collector's pauses during the timed requests, per generation."""
    if phase == "start":
        _gc_started[:] = [time.perf_counter()]
    elif _gc_started:
        GC_PAUSES[info["generation"]].append((time.perf_counter() - _gc_started[0]) * 1000)
STAGE = re.compile(r"([^|:]+?) (\d+\.\d+)(?: \||$)")


class Lines(logging.Handler):
    """The stage timers' log lines, kept."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def medians(lines: list[str]) -> dict[str, float]:
    per: dict[str, list[float]] = {}
    for line in lines:
        _, _, body = line.partition("ms: ")
        for part in body.split(" | "):
            name, _, value = part.rpartition(" ")
            try:
                per.setdefault(name, []).append(float(value))
            except ValueError:
                continue
    return {name: statistics.median(values) for name, values in per.items()}


async def run(ns: argparse.Namespace) -> None:
    from tandem.config import load_settings
    from tandem.session import Session
    from tandem.workspace import open_workspace

    model = ModelServerProcess()
    model.set_hang(0)
    handler = Lines()
    logging.getLogger("tandem.stages").addHandler(handler)
    try:
        with tempfile.TemporaryDirectory(prefix="tandem-keystroke-") as tmp:
            root = Path(tmp) / "ws"
            root.mkdir()
            make_workspace(root, ns.files)
            env = server_env(model.url, Path(tmp) / "scratch")
            settings = load_settings(root, environ=env)
            session = Session(open_workspace(settings, root))
            session.start()
            assert session.workspace.index is not None
            session.workspace.index.wait(300)
            await session._warming  # as tandem serve is, once idle (editor_latency.py)
            modules = set(sys.modules)
            gc.callbacks.append(on_gc)
            profile = cProfile.Profile() if ns.profile else None
            if ns.open:
                cpu = await open_files(session, root, ns.open, profile)
                count = ns.open
            else:
                cpu = await typing(session, root, ns.lines, ns.keystrokes, profile)
                count = ns.keystrokes
            gc.callbacks.remove(on_gc)
            await session.close()
            late = sorted(set(sys.modules) - modules)
    finally:
        model.stop()
    timed = handler.lines[-count:]
    if ns.open:
        print(f"first request: {timed[0]}")
        print(f"last request:  {timed[-1]}")
    print(f"CPU ms a request (process_time): {cpu * 1000 / count:.2f}  ({count} requests)")
    print(f"load average: {os.getloadavg()[0]:.2f}")
    print(f"CPU ms per request, slowest five: {sorted(PER_REQUEST, reverse=True)[:5]}")
    if ns.slowest:
        order = sorted(range(len(PER_REQUEST)), key=PER_REQUEST.__getitem__, reverse=True)
        for k in order[: ns.slowest]:
            print(f"  #{k} {PER_REQUEST[k]} ms CPU: {timed[k]}")
    print(f"modules first imported by the timed requests: {late}")
    for generation, pauses in GC_PAUSES.items():
        if pauses:
            print(
                f"gc generation {generation}: {len(pauses)} collections, median "
                f"{statistics.median(pauses):.2f} ms, max {max(pauses):.2f} ms"
            )
    for name, value in medians(timed).items():
        print(f"  {name:<34} {value:7.3f}")
    if profile is not None:
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(ns.profile)
        stats.sort_stats("cumulative").print_stats(ns.profile)
        for name in ns.callees:
            stats.print_callees(name)
        for name in ns.callers:
            stats.print_callers(name)


async def typing(session, root: Path, lines: int, keystrokes: int, profile) -> float:
    path = root / f"typing_{lines}.py"
    text = big_source(lines)
    path.write_text(text)
    uri = path.as_uri()
    session.documents.open(uri, text, "python", 1)
    rows = text.split("\n")
    line = next(i for i in range(len(rows) // 2, len(rows)) if rows[i].startswith("    ledger.add"))
    await session.inline(uri, line, 4)
    col: int | None = None
    version = 2
    cpu = 0.0
    for _ in range(keystrokes):
        if col is None or col >= 4 + len("value = ") + len(TYPED):
            start = line + 1 if col is not None else line
            session.documents.change(uri, version, [(((start, 0), (start, 0)), "    value = \n")])
            version += 1
            line, col = start, len("    value = ")
        char = TYPED[(col - len("    value = ")) % len(TYPED)]
        started = time.process_time()
        if profile is not None:
            profile.enable()
        session.documents.change(uri, version, [(((line, col), (line, col)), char)])
        answer = await session.inline(uri, line, col + 1)
        session.after_answer()  # as the server does once the answer is written
        if profile is not None:
            profile.disable()
        cpu += time.process_time() - started
        PER_REQUEST.append(round((time.process_time() - started) * 1000, 1))
        if answer is None or answer.source != "model":
            raise SystemExit(f"keystroke at {line}:{col} was not a model call: {answer}")
        version += 1
        col += 1
    return cpu


async def open_files(session, root: Path, n: int, profile) -> float:
    new = root / "new"
    new.mkdir()
    cpu = 0.0
    for k in range(n):
        text = big_source(300, seed=1000 + k)
        path = new / f"fresh_{k}.py"
        path.write_text(text)
        line = text.split("\n").index("    adjusted = subtotal * rate", 200)
        uri = path.as_uri()
        started = time.process_time()
        if profile is not None:
            profile.enable()
        session.documents.open(uri, text, "python", 1)
        session.prepare_opened(uri)
        await asyncio.sleep(0)  # the server reads the request a loop turn later: prepared
        answer = await session.inline(uri, line, len("    adjusted = subtotal"))
        session.after_answer()
        if profile is not None:
            profile.disable()
        cpu += time.process_time() - started
        PER_REQUEST.append(round((time.process_time() - started) * 1000, 1))
        if answer is None or answer.source != "model":
            raise SystemExit(f"{path.name} was not a model call: {answer}")
        session.documents.close(uri)
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keystrokes", type=int, default=200)
    parser.add_argument("--lines", type=int, default=5000)
    parser.add_argument("--files", type=int, default=1000, help="workspace modules")
    parser.add_argument("--open", type=int, default=0, help="scenario (a): this many files")
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions")
    parser.add_argument("--callees", nargs="*", default=[], help="with --profile: of these")
    parser.add_argument("--callers", nargs="*", default=[], help="with --profile: of these")
    parser.add_argument("--slowest", type=int, default=0, help="stage lines of the N slowest")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
