"""The one status an editor shows for Tandem, and the model calls behind its "busy".

Sent only when it changes: an editor redraws its status bar for each message, and a
status per keystroke was two messages a keystroke (issue 12). "busy" is shown only for
a call still running after ``BUSY_AFTER``: a spinner for every 100 ms call is a
flicker nobody reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Literal

State = Literal["ready", "busy", "error", "inactive"]
StatusSink = Callable[[State, str], None]

BUSY_AFTER = 0.25  # seconds a model call runs before "busy" is shown


class StatusLine:
    """The status last sent, and at most ``max_concurrent`` model calls at once."""

    def __init__(self, sink: StatusSink, max_concurrent: int) -> None:
        self._sink = sink
        self._sent: tuple[State, str] | None = None
        self._gate = asyncio.Semaphore(max_concurrent)
        self._calls = 0  # model calls running

    @property
    def state(self) -> State | None:
        return self._sent[0] if self._sent is not None else None

    def set(self, state: State, message: str) -> None:
        if self._sent != (state, message):
            self._sent = (state, message)
            self._sink(state, message)

    def limit(self, max_concurrent: int) -> None:
        """New settings: a new bound for the calls that start from now."""
        self._gate = asyncio.Semaphore(max_concurrent)

    def full(self) -> bool:
        """Whether a new call would wait for one to end."""
        return self._gate.locked()

    @asynccontextmanager
    async def call(self, model: str) -> AsyncIterator[None]:
        """One model call: waits for a free place, shows busy if it runs long."""
        async with self._gate:
            self._calls += 1
            loop = asyncio.get_running_loop()
            busy = loop.call_later(BUSY_AFTER, self._busy, model)
            try:
                yield
            finally:
                busy.cancel()
                self._calls -= 1
                # "ready" once the answer is on its way: two turns of the loop later, so
                # its message is not written before the answer's (issue 12).
                loop.call_soon(loop.call_soon, self._ready, model)

    def _busy(self, model: str) -> None:
        if self._calls > 0:
            self.set("busy", f"asking {model}")

    def _ready(self, model: str) -> None:
        if self._calls == 0 and self.state == "busy":
            self.set("ready", model)
