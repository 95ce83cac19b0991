"""One model call for one document position, which later requests may follow.

The call remembers its position by digests of the text on each side of it: a later
request extends that position when the text before the anchor and after the cursor are
unchanged, and what lies between is what the user typed since (``SharedCall.typed``).
While it runs, the call's ``Watch`` collects the model's raw answer as it streams, so a
follower can tell as soon as the answer contradicts what was typed. ``tandem.inflight``
decides who follows which call.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

CONTEXT_CHARS = 2000  # text on each side that must be unchanged to follow a call


class Position(Protocol):
    text: str
    offset: int


@dataclass
class Watch:
    """What a running call reports while it runs: when the model started, the raw answer."""

    received: str = ""
    model_started: float | None = None
    model_ended: float | None = None
    updated: asyncio.Event = field(default_factory=asyncio.Event)

    def piece(self, text: str) -> None:
        self.received += text
        self.bump()

    def bump(self) -> None:
        event, self.updated = self.updated, asyncio.Event()
        event.set()

    @property
    def in_model(self) -> bool:
        return self.model_started is not None and self.model_ended is None

    def gate(self, inner: AbstractAsyncContextManager[Any]) -> AbstractAsyncContextManager[None]:
        """``inner`` (the session's limit on model calls), noting when the model runs."""

        @asynccontextmanager
        async def watched() -> AsyncIterator[None]:
            async with inner:
                self.model_started = time.perf_counter()
                try:
                    yield
                finally:
                    self.model_ended = time.perf_counter()

        return watched()

    def contradicts(self, typed: str) -> bool:
        """True when the answer so far disagrees with what the user typed after the anchor.

        Leading newlines are skipped on both sides: a one-line answer may begin with one
        that post-processing drops.
        """
        received = self.received
        if not typed.startswith("\n"):
            received = received.lstrip("\n")
        n = min(len(received), len(typed))
        return received[:n] != typed[:n]


class Restart(Exception):
    """The call cannot answer this request (contradicted, cancelled, or said nothing)."""


def digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class SharedCall:
    """One model call for one document position, followed by zero or more requests."""

    def __init__(self, uri: str, position: Position, prefetch: bool) -> None:
        self.uri = uri
        self.anchor = position.offset
        text = position.text
        self.before = digest(text[max(0, self.anchor - CONTEXT_CHARS) : self.anchor])
        self.after = digest(text[self.anchor : self.anchor + CONTEXT_CHARS])
        self.prefetch = prefetch
        self.watch = Watch()
        self.followers = 0
        self.task: asyncio.Task[Any] | None = None
        self.expiry: asyncio.TimerHandle | None = None

    def typed(self, position: Position) -> str | None:
        """What was typed since the call started, when ``position`` extends its position."""
        text, offset = position.text, position.offset
        if offset < self.anchor:
            return None
        if digest(text[offset : offset + CONTEXT_CHARS]) != self.after:
            return None
        if digest(text[max(0, self.anchor - CONTEXT_CHARS) : self.anchor]) != self.before:
            return None
        return text[self.anchor : offset]

    @property
    def done(self) -> bool:
        return self.task is not None and self.task.done()
