"""Fill holes through the completion pipeline, exactly as ``tandem complete`` does.

Per hole: the file without the hole's text becomes the cursor's document (the rest of
the file and the workspace's cross-file context as in normal use), ``prepare`` builds the
one request, ``read_answer`` reads the model and ``clean`` post-processes: the same
functions ``complete`` calls. ``answers`` (optional) remembers raw answers by request, so
a change to post-processing can be measured again without the model.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass

from tandem.completion import Prepared, prepare, read_prepared, reply
from tandem.context.engine import Cursor
from tandem.evaluation.holes import Hole
from tandem.evaluation.metrics import Score, score
from tandem.models.base import WireRequest
from tandem.workspace import Workspace

# Bump when read_answer reads differently: remembered answers then no longer apply.
READ_VERSION = "1"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Filled:
    hole: Hole
    text: str
    raw: str  # the answer read: a chat follow-up's, if there was one
    score: Score
    prepared: Prepared
    first: str = ""  # the answer to the request itself (``prepared.wire``)


def answer_key(prepared: Prepared, wire: WireRequest | None = None) -> str:
    """The identity of one request's answer (``wire``: a follow-up of ``prepared``'s)."""
    wire = wire or prepared.wire
    blob = json.dumps([READ_VERSION, wire.path, wire.body, prepared.multiline], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


async def fill(
    workspace: Workspace,
    hole: Hole,
    *,
    max_tokens: int | None = None,
    answers: MutableMapping[str, str] | None = None,
) -> Filled:
    """One hole through the pipeline; the score's latency is the live request's."""
    started = time.perf_counter()
    engine, settings = workspace.engine, workspace.settings.completion
    client = workspace.models.completion
    cursor = await asyncio.to_thread(engine.parse, Cursor(hole.text, hole.offset, hole.path))
    neighbours = await asyncio.to_thread(workspace.neighbours, cursor, workspace.recent_files())
    prepared = await prepare(
        engine,
        client,
        cursor,
        budget=workspace.completion_budget(),
        max_tokens=max_tokens or settings.max_tokens,
        temperature=settings.temperature,
        neighbours=neighbours,
    )
    raws: list[str] = []

    async def read(wire: WireRequest) -> str:
        key = answer_key(prepared, wire)
        raw = answers.get(key) if answers is not None else None
        if raw is None:
            raw = await read_prepared(client, prepared, None, wire)
            if answers is not None:
                answers[key] = raw
        raws.append(raw)
        return raw

    raw, text = await reply(client, prepared, read)
    elapsed = (time.perf_counter() - started) * 1000
    return Filled(hole, text, raw, score(text, hole.expected, elapsed), prepared, raws[0])


async def fill_all(
    workspace: Workspace,
    holes: Sequence[Hole],
    *,
    max_tokens: int | None = None,
    answers: MutableMapping[str, str] | None = None,
    progress: Progress | None = None,
) -> list[Filled]:
    if workspace.index is not None:
        await asyncio.to_thread(workspace.index.build)
    out: list[Filled] = []
    for i, hole in enumerate(holes):
        out.append(await fill(workspace, hole, max_tokens=max_tokens, answers=answers))
        if progress is not None:
            progress(i + 1, len(holes))
    return out
