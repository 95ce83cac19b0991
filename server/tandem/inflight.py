"""While the user types: share the model call in flight, hold new calls for a fast typist,
and fetch the next suggestion after an accept.

An editor asks for ghost text on every keystroke and cancels the request before. With a
model that needs longer than one keystroke, each call used to be superseded before its
answer came: a call per keystroke and no ghost text. Here a document has at most one
*shared call*, anchored at the position it was made for. A request at a position that
extends that position by typed text (same text before the anchor, same text after the
cursor) follows the call instead of starting another: as the answer streams in, what was
typed is compared with it; when they agree the request answers with the part after what
was typed, and only a contradiction cancels the call and starts a new one (Copilot's
"async completions", Continue's generator reuse).

A call belongs to no LSP request: cancelling a request (``$/cancelRequest``, or a newer
request superseding it) only stops following it. A call that nobody follows is cancelled
``GRACE`` seconds later, unless a request that it can answer comes first; if it finishes
meanwhile, its answer goes to type-ahead and the cache like any other, so the next
keystroke still finds it. A prefetch after an accept is such a call from the start: it
runs in the background (never when ``max_concurrent`` calls are busy) and is cancelled
``GRACE`` seconds after the next edit unless a request follows it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Protocol, TypeVar

from tandem.context.positions import InvalidPosition
from tandem.pace import Pace
from tandem.shared_call import Position, Restart, SharedCall, Watch

log = logging.getLogger(__name__)

GRACE = 0.5  # seconds a call nobody follows survives, waiting for a request


class Answer(Protocol):
    text: str
    offset: int


A = TypeVar("A", bound=Answer)


class Settings(Protocol):
    reuse_inflight: bool
    adaptive_debounce: bool
    prefetch_after_accept: bool
    debounce_ms: int


class Counters(Protocol):
    reused: int
    debounced: int
    prefetched: int
    wasted: int


class Host(Protocol):
    """What the editor session (``tandem.session``) lends: settings, counters, documents,
    and the completion pipeline (``ask``)."""

    @property
    def settings(self) -> Any: ...

    @property
    def stats(self) -> Any: ...

    documents: Any
    typeahead: Any
    cache: Any

    async def settle(self) -> None: ...

    def excluded(self, uri: str, snapshot: Any) -> Any: ...

    def position_key(self, cursor: Any) -> str: ...

    async def ask(self, uri: str, cursor: Any, started: float, watch: Watch) -> Any: ...


Ask = Callable[[Watch], Awaitable[Any]]


class Typing:
    """The shared calls, the pace and the prefetches of one editor session."""

    def __init__(
        self, host: Host, busy: Callable[[], bool], cursor_at: Callable[[Any, int], Any]
    ) -> None:
        self.host = host
        self.busy = busy  # True when max_concurrent model calls are running
        self.cursor_at = cursor_at  # (snapshot, offset) -> the session's Cursor
        self.calls: dict[str, SharedCall] = {}
        self.pace = Pace()
        self.grace = GRACE

    @property
    def settings(self) -> Settings:
        return self.host.settings  # type: ignore[no-any-return]

    @property
    def counters(self) -> Counters:
        return self.host.stats  # type: ignore[no-any-return]

    # ---- a request -------------------------------------------------------------------------

    async def complete(
        self, uri: str, position: Position, ask: Ask, *, manual: bool = False
    ) -> Any:
        """The answer at ``position``: from the call in flight, else from a new one.

        ``ask(watch)`` runs the pipeline at ``position`` (prompt, cache, model) and
        returns an ``Answer`` or None.
        """
        settings = self.settings
        if settings.reuse_inflight:
            call = self.calls.get(uri)
            if call is not None:
                typed = call.typed(position)
                if typed is None:
                    self.drop(call)  # another place: that answer is of no use any more
                else:
                    try:
                        answer = await self.follow(call, typed, position)
                    except Restart:
                        pass
                    else:
                        self.counters.reused += 1
                        return answer
        await self.hold(uri, manual)
        if not settings.reuse_inflight:
            return await self._alone(ask)
        call = self.start(uri, position, ask, prefetch=False)
        try:
            return await self.follow(call, "", position)
        except Restart:
            return None

    async def _alone(self, ask: Ask) -> Any:
        """The pipeline for this request only (``reuse_inflight`` off), as before."""
        watch = Watch()
        try:
            answer = await ask(watch)
        except asyncio.CancelledError:
            if watch.in_model:
                self.counters.wasted += 1
            raise
        self._measured(watch)
        return answer

    async def hold(self, uri: str, manual: bool) -> None:
        """The debounce before a new call: fixed (``debounce_ms``) or adapted to the pace."""
        if manual:
            return
        delay = self.settings.debounce_ms / 1000
        if self.settings.adaptive_debounce:
            delay = max(delay, self.pace.delay(uri))
        if delay > 0:
            self.counters.debounced += 1
            await asyncio.sleep(delay)

    def start(self, uri: str, position: Position, ask: Ask, *, prefetch: bool) -> SharedCall:
        previous = self.calls.get(uri)
        if previous is not None:
            self.drop(previous)
        call = SharedCall(uri, position, prefetch)
        call.task = asyncio.ensure_future(ask(call.watch))
        call.task.add_done_callback(lambda _: self._finished(call))
        call.task.add_done_callback(_log_failure)
        self.calls[uri] = call
        return call

    async def follow(self, call: SharedCall, typed: str, position: Position) -> Any:
        """Wait for ``call`` and answer with what follows ``typed``; Restart when it cannot."""
        call.followers += 1
        if call.expiry is not None:
            call.expiry.cancel()
            call.expiry = None
        try:
            if not typed and call.task is not None:
                # Nothing typed to check against the pieces: woken once, when the call
                # ends, not once per streamed piece (issue 12). Cancelling this wait
                # leaves the call running, as the piece-by-piece wait did.
                await asyncio.wait([call.task])
            while not call.done:
                updated = call.watch.updated
                if typed and call.watch.contradicts(typed):
                    self.drop(call)
                    raise Restart
                await updated.wait()
        finally:
            call.followers -= 1
            if call.followers == 0 and not call.done:
                self._expire_later(call)
        assert call.task is not None
        if call.task.cancelled():
            raise Restart
        answer = call.task.result()  # an unexpected error is this request's error too
        if not typed:
            return answer
        if answer is None or not answer.text.startswith(typed) or answer.text == typed:
            raise Restart
        return dataclasses.replace(
            answer, text=answer.text[len(typed) :], offset=position.offset, source="reused"
        )

    # ---- ending calls ----------------------------------------------------------------------

    def drop(self, call: SharedCall) -> None:
        """Cancel a call that can answer nobody; counted as wasted if the model had started."""
        if self.calls.get(call.uri) is call:
            del self.calls[call.uri]
        if call.expiry is not None:
            call.expiry.cancel()
            call.expiry = None
        if call.task is not None and not call.task.done():
            if call.watch.in_model:
                self.counters.wasted += 1
            call.task.cancel()

    def _expire_later(self, call: SharedCall) -> None:
        if call.expiry is None:
            loop = asyncio.get_running_loop()
            call.expiry = loop.call_later(self.grace, self._expire, call)

    def _expire(self, call: SharedCall) -> None:
        call.expiry = None
        if call.followers == 0:
            self.drop(call)

    def _finished(self, call: SharedCall) -> None:
        """A finished call answers only its followers: its answer is in type-ahead and the
        cache for later requests, which must not see one from before a reconfiguration."""
        if self.calls.get(call.uri) is call:
            del self.calls[call.uri]
        if call.expiry is not None:
            call.expiry.cancel()
            call.expiry = None
        self._measured(call.watch)
        call.watch.bump()  # wake the followers

    def _measured(self, watch: Watch) -> None:
        if watch.model_started is not None and watch.model_ended is not None:
            self.pace.model_answered(watch.model_ended - watch.model_started)

    # ---- document events -------------------------------------------------------------------

    def edited(self, uri: str) -> None:
        """A change to the document: a keystroke for the pace; a prefetch nobody follows
        now has ``GRACE`` seconds to be followed."""
        self.pace.keystroke(uri)
        call = self.calls.get(uri)
        if call is not None and call.followers == 0 and not call.done:
            self._expire_later(call)

    def closed(self, uri: str) -> None:
        call = self.calls.get(uri)
        if call is not None:
            self.drop(call)
        self.pace.forget(uri)

    def close(self) -> None:
        for call in list(self.calls.values()):
            self.drop(call)

    # ---- prefetch after an accept ----------------------------------------------------------

    async def accepted(self, found: tuple[str, int, int, str] | None) -> bool:
        """After ``text`` was accepted at (line, character): prefetch at its end, unless
        the document does not show it there (any more) or the answer there is known."""
        if found is None:
            return False
        uri, line, character, text = found
        host = self.host
        await host.settle()
        document = host.documents.get(uri)
        if document is None or not text:
            return False
        snapshot = document.snapshot()
        if host.excluded(uri, snapshot) is not None:
            return False
        try:
            start = snapshot.lines.offset(line, character, host.documents.encoding)
        except InvalidPosition:
            return False
        end = start + len(text)
        if snapshot.text[start:end] != text:
            return False
        cursor = self.cursor_at(snapshot, end)
        if host.typeahead.lookup(uri, cursor.text, cursor.offset) is not None:
            return False
        if host.cache.get(host.position_key(cursor)) is not None:
            return False
        ask = partial(host.ask, uri, cursor, time.perf_counter())
        return self.prefetch(uri, cursor, ask)

    def prefetch(self, uri: str, position: Position, ask: Ask) -> bool:
        """Start the call at the position after an accepted suggestion, in the background.

        Not when it is off, when every model slot is busy, or when a call for this
        document can already answer there.
        """
        if not (self.settings.prefetch_after_accept and self.settings.reuse_inflight):
            return False
        pending = self.calls.get(uri)
        if pending is not None and not pending.done and pending.typed(position) is not None:
            return False
        if self.busy():
            return False
        self.start(uri, position, ask, prefetch=True)
        self.counters.prefetched += 1
        return True


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.info("a shared model call failed: %s", task.exception())
