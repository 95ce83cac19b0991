"""The completion pipeline shared by the CLI and the language server.

cursor -> context engine builds a budgeted prompt -> the completion model ->
post-processing with the syntax tree. ``prepare`` is the first half on its
own, so ``tandem context`` shows exactly what ``complete`` sends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tandem.cache import CompletionCache, request_key
from tandem.context.engine import ContextEngine, Cursor
from tandem.context.postprocess import postprocess, wants_block
from tandem.context.prompt import Prompt, PromptBudget
from tandem.models import FimRequest, ModelClient
from tandem.models.base import answer_limit
from tandem.models.errors import ModelResponseError
from tandem.models.redact import has_placeholder
from tandem.models.tokens import Tokenizer

# A single line rarely needs more; capping it ends a rambling model sooner.
SINGLE_LINE_MAX_TOKENS = 64


class PositionError(ValueError):
    """A cursor position outside the file."""


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    template: str
    multiline: bool
    elapsed_ms: float
    prompt_tokens: int
    cached: bool = False


@dataclass(frozen=True)
class Prepared:
    prompt: Prompt
    multiline: bool
    cursor: Cursor


def offset_at(text: str, line: int, column: int) -> int:
    """The string index of a 1-based line and column (columns count characters)."""
    lines = text.splitlines(keepends=True) or [""]
    if line < 1 or line > len(lines) + (1 if text.endswith("\n") else 0):
        raise PositionError(f"line {line} is outside the file (1-{len(lines)})")
    if line == len(lines) + 1:
        lines.append("")
    body = lines[line - 1].rstrip("\r\n")
    if column < 1 or column > len(body) + 1:
        raise PositionError(f"column {column} is outside line {line} (1-{len(body) + 1})")
    return sum(len(x) for x in lines[: line - 1]) + column - 1


def prepare_sync(
    engine: ContextEngine,
    client: ModelClient,
    tokenizer: Tokenizer,
    cursor: Cursor,
    *,
    budget: PromptBudget,
    max_tokens: int,
    temperature: float,
    neighbours: Sequence[tuple[Path, str]] = (),
) -> Prepared:
    """CPU-bound half (parse, gather, budget): call it off the event loop."""
    cursor = engine.parse(cursor)
    multiline = wants_block(cursor.text, cursor.offset, cursor.spec)
    request = FimRequest(
        prefix="",
        max_tokens=max_tokens if multiline else min(max_tokens, SINGLE_LINE_MAX_TOKENS),
        temperature=temperature,
    )
    prompt = engine.prompt(client, tokenizer, cursor, budget, request, neighbours)
    return Prepared(prompt, multiline, cursor)


async def prepare(
    engine: ContextEngine,
    client: ModelClient,
    cursor: Cursor,
    *,
    budget: PromptBudget,
    max_tokens: int,
    temperature: float,
    neighbours: Sequence[tuple[Path, str]] = (),
) -> Prepared:
    tokenizer = await client.tokenizer()
    return await asyncio.to_thread(
        prepare_sync,
        engine,
        client,
        tokenizer,
        cursor,
        budget=budget,
        max_tokens=max_tokens,
        temperature=temperature,
        neighbours=neighbours,
    )


async def complete(
    engine: ContextEngine,
    client: ModelClient,
    cursor: Cursor,
    *,
    budget: PromptBudget,
    max_tokens: int = 128,
    temperature: float = 0.2,
    neighbours: Sequence[tuple[Path, str]] = (),
    cache: CompletionCache | None = None,
) -> Completion:
    """Fill the hole at the cursor: prompt, cache or model, clean-up, cache."""
    started = time.perf_counter()
    prepared = await prepare(
        engine,
        client,
        cursor,
        budget=budget,
        max_tokens=max_tokens,
        temperature=temperature,
        neighbours=neighbours,
    )
    return await finish(client, prepared, cache, started)


def cache_key(client: ModelClient, prepared: Prepared) -> str:
    wire = prepared.prompt.wire
    return request_key(client.describe(), client.template.name, wire.path, wire.body)


async def finish(
    client: ModelClient,
    prepared: Prepared,
    cache: CompletionCache | None,
    started: float,
) -> Completion:
    """The second half: a repeated request is answered from the cache, never the model."""
    key = cache_key(client, prepared)
    cleaned = cache.get(key) if cache is not None else None
    cached = cleaned is not None
    if cleaned is None:
        raw = await _read(client, prepared.prompt.request, prepared.multiline)
        text = prepared.cursor.text
        offset = prepared.cursor.offset
        cleaned = await asyncio.to_thread(
            postprocess,
            text[:offset],
            raw,
            text[offset:],
            prepared.cursor.spec,
            multiline=prepared.multiline,
        )
        if has_placeholder(cleaned):
            cleaned = ""  # the model echoed a redacted secret: never insert it as code
        if cache is not None:
            cache.set(key, cleaned)
    return Completion(
        text=cleaned,
        model=client.describe(),
        template=client.template.name,
        multiline=prepared.multiline,
        elapsed_ms=(time.perf_counter() - started) * 1000,
        prompt_tokens=prepared.prompt.tokens,
        cached=cached,
    )


async def _read(client: ModelClient, request: FimRequest, multiline: bool) -> str:
    """The model's answer; for one line, stop reading (and generating) once it is whole.

    A server that ignores ``max_tokens`` is cut off at ``answer_limit`` characters: an
    error status, rather than megabytes kept in memory and shown in the editor.
    """
    limit = answer_limit(request.max_tokens)
    pieces: list[str] = []
    size = 0
    started = multiline  # for one line: a character other than a newline has arrived
    stream = client.complete(request)
    try:
        async for piece in stream:
            pieces.append(piece)
            size += len(piece)
            if size > limit:
                raise ModelResponseError(
                    f"{client.describe()} sent over {limit} characters for "
                    f"{request.max_tokens} tokens; stopped reading",
                    hint="the server ignores max_tokens",
                )
            if not started:
                piece = piece.lstrip("\n")
                started = bool(piece)
            if started and not multiline and "\n" in piece:
                break
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return "".join(pieces)
