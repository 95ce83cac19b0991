"""Document events (open, change, close) applied in order, without stalling messages.

An editor sends a didChange per keystroke. Parsing a big file must not hold up the
messages behind it, yet a request must see every edit sent before it: events go to
one thread in order, or are applied at once when they are small and nothing is queued
(a keystroke's re-parse of a 300-line file is well under a millisecond; the hand-off
to the thread and back cost as much again, issue 12).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tandem import stages

log = logging.getLogger(__name__)

INLINE_EDIT_CHARS = 64_000  # a document event with less text to parse is applied at once


class DocumentEvents:
    """The order in which one connection's document events are applied."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tandem-documents")
        self._last: asyncio.Future[Any] | None = None
        self.applied_ms = 0.0  # what the last event took (stage timers only)

    def apply(self, apply: Callable[[], Any], what: str, size: int = INLINE_EDIT_CHARS + 1) -> None:
        """Apply an event: at once when it is small (``size`` characters to parse, at most
        ``INLINE_EDIT_CHARS``) and no earlier event is still queued, else on the thread.
        An event that fails is logged and lost; the ones after it still apply."""
        if stages.ENABLED:
            apply = stages.timed(apply, lambda ms: setattr(self, "applied_ms", ms))
        last = self._last
        if size <= INLINE_EDIT_CHARS and (last is None or last.done()):
            self._last = None
            try:
                apply()
            except Exception as exc:  # as the thread's report below: one event is lost
                log.warning("%s ignored: %s", what, exc)
            return
        future = asyncio.get_running_loop().run_in_executor(self._thread, apply)

        def report(done: asyncio.Future[Any]) -> None:
            if not done.cancelled() and done.exception() is not None:
                log.warning("%s ignored: %s", what, done.exception())

        future.add_done_callback(report)
        self._last = future

    def after(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` at the loop's next turn once the events so far are applied."""
        loop = asyncio.get_running_loop()
        last = self._last
        if last is None or last.done():
            loop.call_soon(callback)
        else:
            last.add_done_callback(lambda _: loop.call_soon(callback))

    async def settle(self) -> None:
        """Wait until the events received so far are applied."""
        last = self._last
        if last is not None and not last.done():
            await asyncio.wait([last])

    def close(self) -> None:
        self._thread.shutdown(wait=False)
