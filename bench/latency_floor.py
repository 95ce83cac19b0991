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
with a server that did no work of its own.
"""

from __future__ import annotations

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
