"""The completion pipeline shared by the CLI and the language server: one pass per request.

cursor -> parsed once (``ContextEngine.parse``) -> the context engine builds one budgeted
``Prompt`` whose wire request is rendered once -> one cache lookup under that request's
key -> on a miss, exactly that rendered request is sent (``ModelClient.send``) ->
post-processing with the syntax tree -> the cache. ``prepare`` is the first half on its
own, so ``tandem context`` prints the very object ``complete`` sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from tandem.cache import CompletionCache, request_key
from tandem.context.chatreply import HOLE, recover_hole
from tandem.context.engine import ContextEngine, Cursor
from tandem.context.postprocess import postprocess, repeats_next_line, wants_block
from tandem.context.prompt import Prompt, PromptBudget, starts_shallower, without_indent
from tandem.models import FimRequest, ModelClient
from tandem.models.base import WireRequest, bounded
from tandem.models.errors import ModelError
from tandem.models.fim import chat_retry_note
from tandem.models.redact import has_placeholder
from tandem.models.tokens import Tokenizer
from tandem.stages import stage

# A single line rarely needs more; capping it ends a rambling model sooner.
SINGLE_LINE_MAX_TOKENS = 64
INLINE_CHARS = 512 * 1024  # documents up to this size are prepared on the event loop


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
    """One request's prompt, rendered: ``prompt.wire`` is what is sent, byte for byte."""

    prompt: Prompt
    multiline: bool
    cursor: Cursor  # parsed

    @property
    def wire(self) -> WireRequest:
        return self.prompt.wire


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
    """CPU-bound half (gather, budget, render): call it off the event loop.

    ``cursor`` is parsed here unless it already is; the engine gets the parsed one.
    """
    if not cursor.parsed:
        with stage("parse"):
            cursor = engine.parse(cursor)
    with stage("multiline"):
        multiline = wants_block(cursor.text, cursor.offset, cursor.spec, cursor.tree)
    if client.template.kind == "chat":
        # A chat model often restates the code it was shown before and after the hole:
        # room for that, and reading stops once the hole is whole (``read_prepared``).
        max_tokens += budget.total
    elif not multiline:
        max_tokens = min(max_tokens, SINGLE_LINE_MAX_TOKENS)
    request = FimRequest(prefix="", max_tokens=max_tokens, temperature=temperature)
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
    """``prepare_sync``: on the event loop when the cursor has its tree (an editor's
    document), else on a worker thread (a command's file, parsed whole first).

    With the tree, the work is a few milliseconds bounded by the budget and the windows;
    the hop to a thread and back cost more than that on a loaded machine (the GIL is not
    shared anyway), and every request of an editor has a tree (issue 12). A document over
    ``INLINE_CHARS`` still goes to a thread, so that messages are read meanwhile.
    """
    with stage("tokenizer"):
        tokenizer = await client.tokenizer()
    work = partial(
        prepare_sync, engine, client, tokenizer, cursor, budget=budget,
        max_tokens=max_tokens, temperature=temperature, neighbours=neighbours,
    )  # fmt: skip
    if (cursor.tree is not None or not cursor.syntax) and len(cursor.text) <= INLINE_CHARS:
        return work()
    return await asyncio.to_thread(work)


def cache_key(client: ModelClient, wire: WireRequest) -> str:
    """The identity of a completion: the model, its template and the rendered request."""
    return request_key(client.describe(), client.template.name, wire.path, wire.body)


async def finish(
    client: ModelClient,
    prepared: Prepared,
    cache: CompletionCache | None,
    started: float,
    gate: AbstractAsyncContextManager[object] | None = None,
    on_piece: Callable[[str], None] | None = None,
) -> Completion:
    """The second half: one cache lookup, then (on a miss, inside ``gate``) the model.

    ``gate`` is the language server's limit on model calls at once, with its status;
    ``on_piece`` sees the raw answer as it streams (a request following this call
    checks what the user typed against it).
    """
    with stage("cache lookup"):
        key = cache_key(client, prepared.wire)
        cleaned = cache.get(key) if cache is not None else None
    cached = cleaned is not None
    if cleaned is None:
        async with gate or contextlib.nullcontext():
            cleaned = await generate(client, prepared, on_piece)
        if cache is not None:
            with stage("cache store"):
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


async def generate(
    client: ModelClient, prepared: Prepared, on_piece: Callable[[str], None] | None = None
) -> str:
    """Send the rendered request and clean up the answer for insertion at the cursor."""

    async def read(wire: WireRequest) -> str:
        first = wire is prepared.wire  # a follower reads along the first answer only
        return await read_prepared(client, prepared, on_piece if first else None, wire)

    return (await reply(client, prepared, read))[1]


Reader = Callable[[WireRequest], Awaitable[str]]


async def reply(client: ModelClient, prepared: Prepared, read: Reader) -> tuple[str, str]:
    """The raw answer and its text to insert (``clean``): the first one, or the answer to
    asking once more when the first gave nothing to insert in a way a second asking can
    mend (``follow_up``); if that second request fails, the first answer (the model was
    reachable a moment ago). Each answer is cleaned once."""
    raw = await read(prepared.wire)
    with stage("postprocess"):
        cleaned = clean(prepared, raw)  # bounded by the window: cheaper than a thread hop
    again = None if cleaned else await follow_up(client, prepared, raw)
    if again is None:
        return raw, cleaned
    try:
        raw = await read(again)
    except ModelError:
        return raw, cleaned  # the first answer stands: a failed second asking loses nothing
    with stage("postprocess"):
        return raw, clean(prepared, raw)


async def follow_up(client: ModelClient, prepared: Prepared, raw: str) -> WireRequest | None:
    """The request to send once more after ``raw`` left nothing to insert, or None: the
    first request with what
    ``indent_follow_up`` or ``chat_follow_up`` adds, within the prompt's budget (the
    oldest lines of the text before the cursor give way, as when the prompt was fitted)."""
    request = prepared.prompt.request
    if prepared.wire.chat:
        note = chat_follow_up(prepared, raw)
        if note is None:
            return None
        render = lambda r: client.fim_request(r).asked_again(note)  # noqa: E731
    else:
        left_out = indent_follow_up(prepared, raw)
        if left_out is None:
            return None
        request = replace(request, prefix=request.prefix + left_out)
        render = client.fim_request
    tokenizer = await client.tokenizer()
    while True:
        wire = render(request)
        if tokenizer.count(wire.prompt) <= prepared.prompt.budget:
            return wire
        _, newline, rest = request.prefix.partition("\n")
        if not newline:
            return None  # nothing left to give way
        request = replace(request, prefix=rest)


def indent_follow_up(prepared: Prepared, raw: str) -> str | None:
    """The cursor line's indentation, to put back after an answer to the line-start
    prompt (``without_indent``) that leaves nothing to insert because it only repeats the
    next line of the file or starts shallower than the cursor; else None.

    Either says the model, asked from the line start, took the block for ended where the
    editor's indentation says it goes on (information the line-start prompt left out);
    asked after the indentation it writes a line there. Only then: the line-start prompt
    is better on average (README "Completion quality").
    """
    text, offset = prepared.cursor.text, prepared.cursor.offset
    before, after = text[:offset], text[offset:]
    left_out = before[len(without_indent(before, after)) :]
    if not left_out or not (repeats_next_line(raw, after) or starts_shallower(raw, left_out)):
        return None
    return left_out


def chat_follow_up(prepared: Prepared, raw: str) -> str | None:
    """What to add to a chat request asked once more, or None: only a reply holding
    ``<FILL_HERE>`` and nothing else usable is asked again, with the cursor line shown on
    its own (an empty reply may mean "insert nothing")."""
    if not prepared.wire.chat or HOLE not in raw:
        return None
    text, offset = prepared.cursor.text, prepared.cursor.offset
    if recover_hole(text[:offset], text[offset:], raw).text:
        return None
    before = text[text.rfind("\n", 0, offset) + 1 : offset]
    end = text.find("\n", offset)
    after = text[offset : end if end >= 0 else len(text)]
    spec = prepared.cursor.spec
    return chat_retry_note(before, after, spec.name if spec else None)


async def read_prepared(
    client: ModelClient,
    prepared: Prepared,
    on_piece: Callable[[str], None] | None = None,
    wire: WireRequest | None = None,
) -> str:
    """The raw answer as the pipeline reads it: a chat reply until it holds the hole.

    ``wire``: a follow-up of ``prepared``'s request (``follow_up``), read the same way.
    """
    wire = wire or prepared.wire
    until = None
    if wire.chat:
        text, offset = prepared.cursor.text, prepared.cursor.offset
        prefix, suffix = text[:offset], text[offset:]
        until = lambda answer: recover_hole(prefix, suffix, answer).complete  # noqa: E731
    return await read_answer(client, wire, prepared.prompt.request.max_tokens,
                             prepared.multiline, on_piece, until)  # fmt: skip


def clean(prepared: Prepared, raw: str) -> str:
    """The model's raw answer cut to what belongs at the cursor (CPU-bound).

    A chat reply is first reduced to the hole's text (``recover_hole``).
    """
    text, offset = prepared.cursor.text, prepared.cursor.offset
    prefix, suffix = text[:offset], text[offset:]
    if prepared.wire.chat:
        raw = recover_hole(prefix, suffix, raw).text or ""
    cleaned = postprocess(prefix, raw, suffix, prepared.cursor.spec,
                          multiline=prepared.multiline, tree=prepared.cursor.tree)  # fmt: skip
    if has_placeholder(cleaned):
        return ""  # the model echoed a redacted secret: never insert it as code
    return cleaned


async def read_answer(
    client: ModelClient,
    wire: WireRequest,
    max_tokens: int,
    multiline: bool,
    on_piece: Callable[[str], None] | None = None,
    until: Callable[[str], bool] | None = None,
) -> str:
    """The model's answer to ``wire``; for one line, stop reading (and generating) once
    it is whole; with ``until``, once it says so of the answer so far (asked at each line
    end). Past ``answer_limit`` characters: an error (``bounded``)."""
    pieces: list[str] = []
    started = multiline  # for one line: a character other than a newline has arrived
    stream = bounded(client.send(wire), max_tokens, client.describe())
    first = stage("http to first byte")
    first.__enter__()
    try:
        async for piece in stream:
            if first is not None:
                first.__exit__(None, None, None)
                first = None
            pieces.append(piece)
            if on_piece is not None:
                on_piece(piece)
            if until is not None:
                if "\n" in piece and until("".join(pieces)):
                    break
                continue
            if not started:
                piece = piece.lstrip("\n")
                started = bool(piece)
            if started and not multiline and "\n" in piece:
                break
    finally:
        if first is not None:
            first.__exit__(None, None, None)
        await stream.aclose()  # type: ignore[attr-defined]
    return "".join(pieces)
