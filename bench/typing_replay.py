"""Typing replay: ghost text while the user types, and what it costs in model calls.

Run from the project root::

    .venv/bin/python bench/typing_replay.py            # 6 lines per cell, the full grid
    .venv/bin/python bench/typing_replay.py --quick    # 3 lines, 8 chars/s and 300 ms only

Lines are taken from real files (this project's ``server/tandem/*.py``: code lines of 30-60
characters, a fixed pseudo-random choice). Each is typed, one character at a time at a
steady 5, 8 or 12 characters a second, into a document holding its file, under the real
``tandem serve`` over stdio (pytest-lsp's client), as VS Code drives it: on every keystroke
``$/cancelRequest`` for the previous inline request, ``didChange``, a new automatic
``textDocument/inlineCompletion``. A comment naming the run sits above the line, so no
answer comes from the cache of an earlier cell.

The model is the loopback server (``tests/modelserver.py``) speaking OpenAI completions, at
a fixed latency L: the first piece after L/2, then 4-character pieces so that a 48-character
answer is complete after L. It knows the line being typed (read from the prompt's last
line), but only once four characters of it are typed; before that it guesses ``pass``, as a
real model guesses wrong at the start of a line. It answers the rest of the line.

Per cell (rate, L, mode):

- **req/key**: model requests (prefetches included) per keystroke;
- **right <=120ms**: share of keystrokes (but the last of a line) after which the server's
  answer to that keystroke's request is exactly the rest of the line, within 120 ms and
  before the next keystroke;
- **first right ms**: median over lines of the time from the first keystroke to the first
  such answer (however late);
- **wasted s/line**: model time (seconds, on the model server) of requests aborted midway.

Modes: ``before`` (``reuse_inflight``, ``prefetch_after_accept`` off: each request its own
call), ``shared`` (the defaults), ``shared+adaptive`` (``adaptive_debounce`` on as well).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tables import table

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from pygls.exceptions import JsonRpcException  # noqa: E402

from lsp_support import (  # noqa: E402
    cancel_request,
    change,
    fim_parts,
    inline_texts,
    lsp_session,
    model_env,
    open_text,
    request_inline,
)
from modelserver import Behaviour, ModelServer  # noqa: E402

KNOW = 4  # characters of the line typed before the model knows it
PIECE = 4
RIGHT_WITHIN = 0.120
MODES: dict[str, dict[str, Any]] = {
    "before": {"reuse_inflight": False, "prefetch_after_accept": False},
    "shared": {},
    "shared+adaptive": {"adaptive_debounce": True},
}


@dataclass
class Line:
    path: Path
    lines: list[str]
    index: int

    @property
    def indent(self) -> str:
        text = self.lines[self.index]
        return text[: len(text) - len(text.lstrip())]

    @property
    def target(self) -> str:
        return self.lines[self.index].strip()


def pick_lines(count: int, seed: int = 14) -> list[Line]:
    candidates = []
    for path in sorted((ROOT / "server" / "tandem").glob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, text in enumerate(lines):
            body = text.strip()
            if 30 <= len(body) <= 60 and body[0].isalpha() and '"""' not in body:
                candidates.append(Line(path, lines, i))
    return random.Random(seed).sample(candidates, count)


def oracle(target: dict[str, str]) -> Any:
    def reply(body: Any) -> list[str]:
        prefix, _ = fim_parts(body["prompt"])
        typed = prefix.rpartition("\n")[2].lstrip()
        line = target["line"]
        known = len(typed) >= KNOW and line.startswith(typed)
        rest = line[len(typed) :] if known else "pass"
        return [rest[i : i + PIECE] for i in range(0, len(rest), PIECE)] + ["\n"]

    return reply


@dataclass
class Cell:
    keystrokes: int = 0
    scored: int = 0
    right: int = 0
    requests: int = 0
    first_right: list[float] = field(default_factory=list)
    wasted: float = 0.0
    lines: int = 0


async def type_line(
    client: Any, folder: Path, line: Line, run: int, interval: float, cell: Cell
) -> None:
    """Type one line as VS Code would; score the answers."""
    lines = list(line.lines)
    lines[line.index] = line.indent
    lines.insert(line.index, f"{line.indent}# replay {run}")
    row = line.index + 1
    path = folder / f"r{run}_{line.path.name}"
    uri = open_text(client, path, "\n".join(lines) + "\n")
    target = line.target
    column = len(line.indent)
    sent: list[tuple[float, asyncio.Future[Any]]] = []
    answers: dict[int, tuple[float, list[str]]] = {}

    def arrived(k: int, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        answers[k] = (time.monotonic(), inline_texts(future.result()))

    await asyncio.sleep(0.3)  # the document is open and parsed before the first keystroke
    start = time.monotonic()
    pending: str | None = None
    for k, char in enumerate(target):
        delay = start + k * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if pending is not None:
            cancel_request(client, pending)
        change(client, uri, k + 2, row, column + k, char)
        pending, future = request_inline(client, uri, row, column + k + 1)
        future.add_done_callback(lambda f, k=k: arrived(k, f))
        sent.append((time.monotonic(), future))
    await asyncio.wait([f for _, f in sent], timeout=5)
    first = None
    for k, (at, _) in enumerate(sent[:-1]):
        rest = target[k + 1 :]
        got = answers.get(k)
        right = got is not None and bool(got[1]) and got[1][0].rstrip("\n") == rest
        if not right:
            continue
        assert got is not None
        if first is None:
            first = got[0] - sent[0][0]
        if got[0] - at <= RIGHT_WITHIN and got[0] < sent[k + 1][0]:
            cell.right += 1
    cell.scored += len(target) - 1
    cell.keystrokes += len(target)
    cell.lines += 1
    if first is not None:
        cell.first_right.append(first)
    client.text_document_did_close(_close_params(uri))


def _close_params(uri: str) -> Any:
    from lsprotocol import types as t

    return t.DidCloseTextDocumentParams(t.TextDocumentIdentifier(uri))


async def run_mode(
    mode: str, rates: list[float], latencies: list[float], lines: list[Line]
) -> dict[tuple[float, float], Cell]:
    cells: dict[tuple[float, float], Cell] = {}
    target: dict[str, str] = {"line": ""}
    with ModelServer() as model, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ws"
        folder.mkdir()
        env = model_env(model.url, TANDEM_CACHE_DIR=str(Path(tmp) / "cache"))
        async with lsp_session(folder, env, MODES[mode]) as (client, _):
            run = 0
            for latency in latencies:
                half = latency / 2
                model.default = Behaviour(hang=half, delay=half / 12, reply=oracle(target))
                for rate in rates:
                    cell = cells.setdefault((rate, latency), Cell())
                    for line in lines:
                        run += 1
                        target["line"] = line.target
                        before = len(model.requests)
                        try:
                            await type_line(client, folder, line, run, 1 / rate, cell)
                        except JsonRpcException as exc:
                            print(f"{mode}: an LSP error: {exc}", file=sys.stderr)
                        await asyncio.sleep(max(1.0, 2 * latency))  # let the calls end
                        mine = model.requests[before:]
                        cell.requests += len(mine)
                        cell.wasted += sum(
                            (r.ended or r.started) - r.started for r in mine if r.aborted
                        )
                    print(f"  {mode} {rate:g}/s {latency * 1000:g} ms done", file=sys.stderr)
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 lines, 8 chars/s, 300 ms")
    parser.add_argument("--lines", type=int, default=6)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--rates", default="5,8,12", help="characters a second, e.g. 5,8")
    parser.add_argument("--latencies", default="100,300,800", help="model ms, e.g. 100")
    ns = parser.parse_args()
    rates = [float(r) for r in ns.rates.split(",")]
    latencies = [float(ms) / 1000 for ms in ns.latencies.split(",")]
    count = ns.lines
    if ns.quick:
        rates, latencies, count = [8.0], [0.3], min(count, 3)
    lines = pick_lines(count)
    rows = []
    for mode in ns.modes.split(","):
        cells = asyncio.run(run_mode(mode, rates, latencies, lines))
        for (rate, latency), cell in sorted(cells.items()):
            first = (
                f"{statistics.median(cell.first_right) * 1000:.0f}"
                f" ({len(cell.first_right)}/{cell.lines})"
                if cell.first_right
                else f"- (0/{cell.lines})"
            )
            rows.append(
                [
                    f"{rate:g}/s",
                    f"{latency * 1000:g}",
                    mode,
                    f"{cell.requests / cell.keystrokes:.2f}",
                    f"{100 * cell.right / max(1, cell.scored):.0f}%",
                    first,
                    f"{cell.wasted / max(1, cell.lines):.2f}",
                ]
            )
    rows.sort(key=lambda r: (float(r[0][:-2]), float(r[1]), list(MODES).index(r[2])))
    lengths = [len(line.target) for line in lines]
    print(
        f"{len(lines)} lines of {min(lengths)}-{max(lengths)} characters from server/tandem/*.py;"
        f" the model knows a line after {KNOW} characters"
    )
    headers = ["rate", "model ms", "mode", "req/key", "right <=120ms", "first right ms (lines)",
               "wasted s/line"]  # fmt: skip
    print(table(headers, rows))


if __name__ == "__main__":
    main()
